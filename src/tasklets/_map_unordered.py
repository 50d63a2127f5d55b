"""``map_unordered``: call a function on many items, a bounded number at once, results as they finish.

Theory of operation
-------------------
``map_unordered`` feeds a :class:`~tasklets._matcher.Matcher` lazily: it
calls ``fn`` on the next item whenever a slot is free, with at most ``limit``
calls started and not yet handed out, so a million-item input never sits in
memory. A call that completes at once frees its slot from inside the loop
that starts calls; a re-entrancy guard turns that into one more turn of the
loop, not a recursion as deep as the input. While a signal waits, the matcher
holds the iterator (its *owner*), so a dropped iterator keeps the calls going
for it; a callback on each waiting signal lets go once every waiting one has
given up, so a cancelled consumer cancels the calls at once.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._combinators import SignalFuture
from ._future import Future, cancel_soon, is_future_like
from ._loop import Loop
from ._matcher import WAITS, Completed, Matcher, SignalRequest
from ._task import Task
from ._where import loop_for_caller

__all__ = ["map_unordered", "MapUnordered"]


class MapUnordered:
    """The iterator :func:`map_unordered` returns."""

    def __init__(self, fn: Callable[[Any], Any], items: Iterable[Any], limit: int, loop: Loop) -> None:
        if limit < 1:
            raise ValueError(f"map_unordered() limit must be at least 1, got {limit!r}")
        self._fn = fn
        self._items = iter(items)
        self._limit = limit
        self._loop = loop
        self._lock = threading.Lock()
        self._pulled: deque[Any] = deque()  # items taken from the input, not yet started
        self._exhausted = False
        self._error: Exception | None = None  # what reading the input raised
        self._aborted = False  # ``_abort`` has acted on ``_error``
        self._handed_out = 0  # signals given to the consumer (less those that gave way, once reclaimed)
        self._taken = 0  # items taken from the input
        self._active = 0  # calls started and not yet handed to a signal
        self._running: set[Any] = set()
        self._closed = False
        self._halted = False  # no more calls start: closed, or the input failed
        self._starting = False  # _start_more's loop is on the (loop thread's) stack
        # The running calls' callbacks reach the matcher, never this object
        # (weakly, or through ``owner`` while signals wait), so dropping the
        # iterator collects it and cancels the calls (see ``__del__``).
        self._matcher = Matcher(on_match=_weakly(self._slot_freed))
        self._on_request_done = self._matcher.on_request_done  # one bound method for every waiting signal
        self._on_loop(self._start_more)

    def _on_loop(self, fn: Callable[[], None]) -> None:
        if self._loop.is_loop_thread():
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def _slot_freed(self) -> None:
        with self._lock:
            self._active -= 1
        self._matcher.let_go_if_idle()
        self._on_loop(self._start_more)

    def _pull(self) -> bool:
        """Take one more item from the input into ``_pulled`` (lock held); False at its end.

        An exception from the input ends it too: it is kept in ``_error`` for
        ``_abort``, which the caller runs once it has released the lock.
        """
        if self._exhausted:
            return False
        try:
            item = next(self._items)
        except StopIteration:
            self._exhausted = True
            return False
        except Exception as exc:
            self._exhausted = self._halted = True
            self._error = exc
            return False
        self._pulled.append(item)
        self._taken += 1
        return True

    def _start_more(self) -> None:
        """Start calls while slots are free (on the loop thread only).

        A call done at once frees its slot from inside ``_start`` (its
        callback runs ``on_done`` -> ``on_match`` -> ``_slot_freed``, which
        lands here again): the guard makes that one more turn of this loop,
        not a recursion as deep as the input is long.
        """
        if self._starting:
            return
        self._starting = True
        try:
            while True:
                with self._lock:
                    if self._halted or self._active >= self._limit or (not self._pulled and not self._pull()):
                        break
                    item = self._pulled.popleft()
                    self._active += 1
                self._start(item)
        finally:
            self._starting = False
        if self._error is not None:
            self._abort()

    def _start(self, item: Any) -> None:
        future = _call(self._fn, item)
        running, matcher = self._running, self._matcher
        running.add(future)

        def on_done(f: Any, item: Any = item) -> None:
            running.discard(f)
            # The signal learns which item this was before anyone sees it resolve.
            matcher.on_done(Completed(f, item))

        future.add_done_callback(on_done)

    def _abort(self) -> None:
        """The input raised ``_error``: the signals waiting fail with it, the running calls are cancelled.

        Later signals get the results that completed before, then (if no
        signal failed yet) one fails with the error, and the iteration ends:
        the matcher's ``expire``, as for ``as_completed``'s timeout.
        """
        with self._lock:
            if self._aborted:
                return
            self._aborted = True
            error = self._error
            running = list(self._running)
        assert error is not None
        self._matcher.expire(error)  # first, so the cancelled calls below are no results
        for f in running:
            cancel_soon(f)

    def __iter__(self) -> Iterator[SignalFuture[Any]]:
        return self

    def __next__(self) -> SignalFuture[Any]:
        """A signal future for the next call to complete (``.item`` and ``.completed`` name it)."""
        signal: SignalFuture[Any] = SignalFuture()
        self._take(signal)
        return signal

    def _take(self, request: Future[Any]) -> None:
        matcher = self._matcher
        with self._lock:
            if self._closed or (self._error is not None and matcher.spent_by_failure()):
                raise StopIteration
            if self._handed_out >= self._taken:
                self._handed_out -= matcher.reclaim_if_any()  # one more signal for each that gave way
                if self._handed_out >= self._taken and not self._pull() and self._error is None:
                    raise StopIteration
            self._handed_out += 1
        if self._error is not None:
            self._abort()  # if this very call found the error
            if matcher.spent_by_failure():
                raise StopIteration  # the error went to the signals that were waiting
        if matcher.request(request) == WAITS:  # not SPENT: that takes an error, checked above
            # It waits: if we are dropped, keep the calls going for it, until
            # it resolves or gives up (then the callback lets go of us).
            matcher.hold_while_waiting(self)
            request.add_done_callback(self._on_request_done)

    def __aiter__(self) -> MapUnordered:
        return self

    def __anext__(self) -> Future[Any]:
        """Under ``async for``: the next completed signal future (already done)."""
        request = SignalRequest()
        try:
            self._take(request)
        except StopIteration:
            raise StopAsyncIteration from None
        return request

    def close(self) -> None:
        """Stop: start no more calls, cancel those running and the signals still waiting.

        Dropping the iterator does this too, once no signal it handed out waits.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = self._halted = True
            running = list(self._running)
        for f in running:
            cancel_soon(f)  # a signal waiting for it is cancelled, naming the call
        self._matcher.close()

    def __del__(self) -> None:
        if hasattr(self, "_matcher"):  # not when __init__ refused its arguments
            self.close()


def _weakly(method: Callable[[], None]) -> Callable[[], None]:
    """Call the bound ``method`` as long as its object is alive; do nothing after."""
    ref = weakref.WeakMethod(method)

    def call() -> None:
        bound = ref()
        if bound is not None:
            bound()

    return call


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    """``fn(item)`` as a future: a future returned as is, a generator run as a task, a value wrapped."""
    future: Future[Any]
    try:
        made = fn(item)
    except Exception as exc:
        future = Future()
        future.set_exception(exc)
        return future
    if is_future_like(made):
        return made
    if hasattr(made, "send") and hasattr(made, "throw"):
        return Task(made)
    future = Future()
    future.set_result(made)
    return future


def map_unordered(fn: Callable[[Any], Any], items: Iterable[Any], *, limit: int) -> MapUnordered:
    """Call ``fn`` on every item, at most ``limit`` at once, yielding results as they complete.

    ``fn(item)`` may return a future (a task, say), a generator (run as a
    task) or a plain value. Items are read lazily: no more than ``limit``
    calls are started and not yet handed out, so a huge or endless input
    never sits in memory. Like :func:`as_completed`, the ordinary iterator
    yields signal futures; each carries ``.item`` and ``.completed`` once it
    resolves, and a signal cancelled before it resolves gives way to the next
    one. Under ``async for`` it yields the signal futures already done.

    Abandoning the iteration cancels the calls still running and starts no
    more: ``close()`` (which cancels the signals still waiting, too),
    dropping the iterator, or cancelling the task that consumes it. Signals
    handed out and still waiting keep the calls going after the iterator is
    dropped (``list(map_unordered(...))``), until they resolve or give up.

    If iterating over ``items`` raises, no more calls start, the running ones
    are cancelled and the signals waiting fail with that exception; later
    signals get the results that completed before it, then (if none failed
    yet) one fails with it, and the iteration ends. Under ``async for`` the
    exception is raised by the loop itself.
    """
    return MapUnordered(fn, items, limit, loop_for_caller())
