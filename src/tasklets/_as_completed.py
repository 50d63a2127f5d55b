"""``as_completed`` and ``map_unordered``: process results in the order they finish.

Theory of operation
-------------------
The seed's ``as_completed`` built a fresh ``wait_first`` over the remaining
futures at every step: O(n²) callbacks, none removable. Here a *matcher*
registers exactly one callback per input and pairs two queues:

* ``finished``: inputs that completed before anyone asked for them;
* ``requests``: askers (signal futures handed out by ``next()``, or the
  futures behind ``async for``) still waiting for an input to complete.

An input that completes goes to the oldest request, or joins ``finished``; a
new request takes the oldest finished input, or joins ``requests``. Both are
O(1), so the whole iteration is O(n). The iterator object is separate from the
matcher the callbacks point to, so an iteration abandoned half way lets the
iterator be collected, which detaches the remaining callbacks.

``map_unordered`` feeds a matcher lazily: it calls ``fn`` on the next item
whenever a slot is free, with at most ``limit`` calls started and not yet
handed out, so a million-item input never sits in memory.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future as _CfFuture
from concurrent.futures._base import FINISHED
from typing import Any

from ._combinators import SignalFuture, cancel_soon, check_futures, detach
from ._exceptions import TimeoutError
from ._future import Future, copy_outcome, is_future_like
from ._loop import Loop, _get_ident
from ._task import Task, _resolved
from ._timers import Timer, timer_loop

__all__ = ["as_completed", "map_unordered", "AsCompleted", "MapUnordered"]


def _answer(request: Future[Any], f: Any) -> None:
    """Resolve a request with the completed input ``f``.

    A :class:`SignalFuture` takes on ``f``'s outcome (the ordinary iterator);
    a plain future resolves to ``f`` itself (``async for``).
    """
    outcome = f
    if isinstance(f, _Completed):  # from map_unordered (the call and its item), or a foreign input
        if isinstance(request, SignalFuture):
            request.item = f.item
        outcome = f.future if f.outcome is None else f.outcome
        f = f.future
    if isinstance(request, SignalFuture):
        request.completed = f
        copy_outcome(outcome, request)
    elif not request.done():
        request.set_result(f)


def _read_foreign(f: Any) -> Any:
    """An input that is no ``concurrent.futures.Future``, with its outcome read now (see ``on_done``)."""
    if isinstance(f, _Completed):
        if not isinstance(f.future, _CfFuture):
            f.outcome = _resolved(f.future)
        return f
    return _Completed(f, None, _resolved(f))


def _answer_fresh(request: Future[Any], f: Any) -> None:
    """``_answer`` for a request nobody has seen yet: no callbacks, no waiters, no lock needed.

    The common case of an iteration whose inputs finished before it got to
    them; it skips ``set_result``'s lock and callback machinery.
    """
    if type(f) is Future or type(f) is Task:
        if isinstance(request, SignalFuture):
            if f._state is FINISHED:
                request.completed = f
                exc = f._exception
                if exc is not None:
                    f._mark_retrieved()
                    request._exception = exc
                else:
                    request._result = f._result
                request._state = FINISHED
                return
        else:
            request._result = f
            request._state = FINISHED
            return
    _answer(request, f)


class _Matcher:
    """Pairs completed inputs with requests for them, oldest first, from any thread."""

    __slots__ = ("lock", "finished", "requests", "expired", "failed_one", "on_match", "owner")

    def __init__(self, on_match: Callable[[], None] | None = None) -> None:
        self.lock = threading.Lock()
        self.finished: deque[Any] = deque()
        self.requests: deque[Future[Any]] = deque()
        self.expired: BaseException | None = None
        self.failed_one = False  # a request has been failed with ``expired``
        self.on_match = on_match
        self.owner: Any = None  # map_unordered: kept alive while requests wait (see MapUnordered)

    def on_done(self, f: Any) -> None:
        """Done-callback on every input."""
        if not isinstance(f, _CfFuture):
            # A foreign future's result() may block (a Dask future's fetches
            # the value): read it here, on the thread that completed it, not
            # later on the loop of whoever asks for it.
            f = _read_foreign(f)
        lock = self.lock
        lock.acquire()
        try:
            if self.expired is not None:
                return
            if not self.requests:
                self.finished.append(f)
                return
            request = self.requests.popleft()
        finally:
            lock.release()
        _answer(request, f)
        if self.on_match is not None:
            self.on_match()

    def request(self, request: Future[Any]) -> None:
        """Answer ``request`` (a future not yet handed out) with the next input to complete."""
        lock = self.lock
        lock.acquire()
        try:
            if self.finished:
                f = self.finished.popleft()
            elif self.expired is not None:
                f = None
                self.failed_one = True
            else:
                self.requests.append(request)
                return
        finally:
            lock.release()
        if f is None:
            request.set_exception(self.expired)  # type: ignore[arg-type]
            return
        _answer_fresh(request, f)
        if self.on_match is not None:
            self.on_match()

    def expire(self, failure: BaseException) -> None:
        """Fail every waiting request; later ones get what finished in time, then ``failure``."""
        with self.lock:
            self.expired = failure
            waiting = list(self.requests)
            self.requests.clear()
            self.failed_one = self.failed_one or bool(waiting)
        for request in waiting:
            if not request.done():
                request.set_exception(failure)


class AsCompleted:
    """The iterator :func:`as_completed` returns."""

    def __init__(self, fs: Iterable[Any], timeout: float | None) -> None:
        self._futures = list(dict.fromkeys(check_futures(fs, "as_completed")))  # duplicates count once
        self._left = len(self._futures)
        self._matcher = _Matcher()
        self._timer: Timer | None = None  # __del__ tells a half-built iterator by its absence
        on_done = self._matcher.on_done  # one bound method for all inputs, not one each
        for f in self._futures:
            f.add_done_callback(on_done)
        if timeout is not None and self._left:
            self._timer = Timer(max(0.0, timeout), functools.partial(_expire, self._matcher, self._futures, timeout))

    def __iter__(self) -> Iterator[SignalFuture[Any]]:
        return self

    def __next__(self) -> SignalFuture[Any]:
        """A signal future for the next input to complete (``.completed`` names it)."""
        signal: SignalFuture[Any] = SignalFuture()
        self._take(signal, StopIteration)
        return signal

    def __aiter__(self) -> AsCompleted:
        return self

    def __anext__(self) -> Future[Any]:
        """Under ``async for``: the next *original* future to complete."""
        waiter: Future[Any] = Future()
        self._take(waiter, StopAsyncIteration)
        return waiter

    def _take(self, request: Future[Any], stop: type[BaseException]) -> None:
        matcher = self._matcher
        if matcher.failed_one and not matcher.finished:
            self._left = 0  # past the deadline, a signal failed and what finished in time is out
        if self._left <= 0:
            raise stop
        self._left -= 1
        self._matcher.request(request)
        if self._matcher.expired is not None and request.done() and request.exception() is not None:
            self._left = 0  # the deadline passed: this failed signal is the last one

    def close(self) -> None:
        """Stop: detach from every input and from the timer. Dropping the iterator does this too."""
        self._left = 0
        detach(self._futures, self._matcher.on_done)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __del__(self) -> None:
        # Signals handed out and still waiting (``list(as_completed(fs))``)
        # must still resolve: detach only when nobody waits on us any more.
        if hasattr(self, "_timer") and not self._matcher.requests:
            self.close()


def _expire(matcher: _Matcher, futures: list[Any], timeout: float) -> None:
    left = sum(1 for f in futures if not f.done())
    matcher.expire(TimeoutError(f"as_completed(): {left} of {len(futures)} futures not done within {timeout} s"))
    detach(futures, matcher.on_done)


def as_completed(fs: Iterable[Any], timeout: float | None = None) -> AsCompleted:
    """Iterate over ``fs`` in the order they complete.

    As an ordinary iterator it yields one *signal future* per distinct input,
    at once; yield each in a task (or call ``.result()``) to get the outcome
    of the next input to complete, and read ``signal.completed`` afterwards to
    learn which one it was::

        for signal in as_completed(fs):
            value = yield signal            # or signal.result() in plain code
            print(signal.completed, value)

    Under ``async for`` it yields the original futures, each once it is done.

    Args:
        fs: futures of any origin; duplicates count once.
        timeout: seconds after which waiting signals fail with
            :class:`TimeoutError`; inputs that finished in time are still
            handed out, then the iteration ends.
    """
    return AsCompleted(fs, timeout)


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
        self._handed_out = 0  # signals given to the consumer
        self._taken = 0  # items taken from the input
        self._active = 0  # calls started and not yet handed to a signal
        self._running: set[Any] = set()
        self._closed = False
        # The running calls' callbacks reach the matcher, never this object
        # (weakly, or through ``owner`` while signals wait), so dropping the
        # iterator collects it and cancels the calls (see ``__del__``).
        self._matcher = _Matcher(on_match=_weakly(self._slot_freed))
        self._on_loop(self._start_more)

    def _on_loop(self, fn: Callable[[], None]) -> None:
        if self._loop._thread_id == _get_ident():
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def _slot_freed(self) -> None:
        with self._lock:
            self._active -= 1
        matcher = self._matcher
        with matcher.lock:
            if not matcher.requests:
                matcher.owner = None
        self._on_loop(self._start_more)

    def _pull(self) -> bool:
        """Take one more item from the input into ``_pulled`` (lock held); False at its end."""
        if self._exhausted:
            return False
        try:
            item = next(self._items)
        except StopIteration:
            self._exhausted = True
            return False
        self._pulled.append(item)
        self._taken += 1
        return True

    def _start_more(self) -> None:
        while True:
            with self._lock:
                if self._closed or self._active >= self._limit:
                    return
                if not self._pulled and not self._pull():
                    return
                item = self._pulled.popleft()
                self._active += 1
            self._start(item)

    def _start(self, item: Any) -> None:
        future = _call(self._fn, item)
        running, matcher = self._running, self._matcher
        running.add(future)

        def on_done(f: Any, item: Any = item) -> None:
            running.discard(f)
            # The signal learns which item this was before anyone sees it resolve.
            matcher.on_done(_Completed(f, item))

        future.add_done_callback(on_done)

    def __iter__(self) -> Iterator[SignalFuture[Any]]:
        return self

    def __next__(self) -> SignalFuture[Any]:
        """A signal future for the next call to complete (``.item`` and ``.completed`` name it)."""
        with self._lock:
            if self._closed or (self._handed_out >= self._taken and not self._pull()):
                raise StopIteration
            self._handed_out += 1
        signal: SignalFuture[Any] = SignalFuture()
        matcher = self._matcher
        matcher.request(signal)
        with matcher.lock:
            if matcher.requests:
                matcher.owner = self  # a signal handed out waits: keep the calls going if we are dropped
        return signal

    def __aiter__(self) -> MapUnordered:
        return self

    def __anext__(self) -> Future[Any]:
        """Under ``async for``: the next completed signal future (already done)."""
        try:
            signal = next(self)
        except StopIteration:
            raise StopAsyncIteration from None
        done: Future[Any] = Future()
        signal.add_done_callback(lambda s: done.set_result(s))
        return done

    def close(self) -> None:
        """Stop starting calls and cancel those still running. Dropping the iterator does this too."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            running = list(self._running)
        for f in running:
            cancel_soon(f)

    def __del__(self) -> None:
        if hasattr(self, "_matcher"):  # not when __init__ refused its arguments
            self.close()


class _Completed:
    """A completed input as the matcher hands it out: a map_unordered call, or a foreign future.

    ``item`` is what map_unordered called its function with; ``outcome`` a
    done :class:`Future` with the outcome of a foreign ``future``, read on
    the thread that completed it (None for a ``concurrent.futures.Future``).
    """

    __slots__ = ("future", "item", "outcome")

    def __init__(self, future: Any, item: Any, outcome: Future[Any] | None = None) -> None:
        self.future = future
        self.item = item
        self.outcome = outcome


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
    from ._task import Task

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
    resolves. Under ``async for`` it yields the signal futures already done.
    Dropping the iterator (or ``close()``) cancels the calls still running.
    """
    return MapUnordered(fn, items, limit, timer_loop())
