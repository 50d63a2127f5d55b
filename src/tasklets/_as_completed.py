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

A request whose asker gave up (a signal cancelled by ``with_timeout``, or
with the task that waited on it) *gives way*: an input that completes skips
it for the next live request, or joins ``finished`` for a later one, and the
iterator hands out one more request for each that gave way, so no input is
lost. A request cancelled between the matcher's pop and its answer (from
another thread) gives the input back the same way: requests are completed
under their own lock, with a check that they are still pending. Dead requests
are noticed lazily, where the matcher meets them anyway (an input completing,
the iterator reaching its end or being collected), so the common path pays
one state check. An iterator collected while live requests wait leaves the
matcher ``abandoned``: once none waits, the next input to complete detaches
them all, since no new request can come.

``map_unordered`` feeds a matcher lazily: it calls ``fn`` on the next item
whenever a slot is free, with at most ``limit`` calls started and not yet
handed out, so a million-item input never sits in memory. A call that
completes at once frees its slot from inside the loop that starts calls; a
re-entrancy guard turns that into one more turn of the loop, not a recursion
as deep as the input. While a signal waits, the matcher holds the iterator
(``owner``), so a dropped iterator keeps the calls going for it; a callback on
each waiting signal lets go once every waiting one has given up, so a
cancelled consumer cancels the calls at once.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future as _CfFuture
from concurrent.futures._base import CANCELLED_AND_NOTIFIED, FINISHED, PENDING
from typing import Any

from ._combinators import SignalFuture, check_futures
from ._exceptions import TimeoutError
from ._future import Future, cancel_soon, detach, is_future_like
from ._loop import Loop, _get_ident
from ._task import Task, _outcome, _resolved
from ._timers import Timer
from ._where import loop_for_caller

__all__ = ["as_completed", "map_unordered", "AsCompleted", "MapUnordered"]

logger = logging.getLogger("tasklets")


def _answer(request: Future[Any], f: Any) -> bool:
    """Resolve a request with the completed input ``f``; False if the request gave up meanwhile.

    A :class:`SignalFuture` takes on ``f``'s outcome (the ordinary iterator);
    a :class:`_SignalRequest` resolves to a done signal future with it
    (``async for`` over ``map_unordered``); any other future resolves to ``f``
    itself (``async for`` over ``as_completed``).
    """
    item = None
    outcome = f
    if isinstance(f, _Completed):  # from map_unordered (the call and its item), or a foreign input
        item = f.item
        outcome = f.future if f.outcome is None else f.outcome
        f = f.future
    if isinstance(request, SignalFuture):
        if outcome.cancelled():
            return _settle(request, f, item, None, None, True)
        value, exc = _outcome(outcome)
        return _settle(request, f, item, value, exc, False)
    if type(request) is _SignalRequest:
        signal: SignalFuture[Any] = SignalFuture()  # nobody sees it yet: no lock needed
        signal.completed = f
        signal.item = item
        if outcome.cancelled():
            signal._state = CANCELLED_AND_NOTIFIED
        else:
            signal._result, signal._exception = _outcome(outcome)
            signal._state = FINISHED
        return _settle(request, None, None, signal, None, False)
    return _settle(request, None, None, f, None, False)


def _settle(
    request: Future[Any], completed: Any, item: Any, value: Any, exc: BaseException | None, cancel: bool
) -> bool:
    """Complete ``request`` unless it is done already (its asker gave up): ``Future``'s ``set_*`` as one step.

    The check, ``completed`` and ``item`` (for a :class:`SignalFuture`) and
    the outcome are set under the request's lock, so a request cancelled from
    another thread a moment ago neither swallows the input nor claims it.
    """
    lock = request._lock
    lock.acquire()
    try:
        if request._state is not PENDING:
            return False
        if isinstance(request, SignalFuture):
            request.completed = completed
            request.item = item
        if cancel:
            request._state = CANCELLED_AND_NOTIFIED
            how = "add_cancelled"
        else:
            if exc is not None:
                request._exception = exc
                how = "add_exception"
            else:
                request._result = value
                how = "add_result"
            request._state = FINISHED
        if request._blocking is not None:
            request._blocking.wake(request, how)
        callbacks = request._callbacks
        request._callbacks = None
    finally:
        lock.release()
    if callbacks:
        for fn in callbacks:
            try:
                fn(request)
            except Exception:
                logger.exception("exception calling callback for %r", request)
    return True


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
        elif type(request) is Future:
            request._result = f
            request._state = FINISHED
            return
    _answer(request, f)


class _Matcher:
    """Pairs completed inputs with requests for them, oldest first, from any thread."""

    __slots__ = (
        "lock",
        "finished",
        "requests",
        "expired",
        "failed_one",
        "gave_way",
        "dead_hint",
        "abandoned",
        "on_match",
        "owner",
    )

    def __init__(self, on_match: Callable[[], None] | None = None) -> None:
        self.lock = threading.Lock()
        self.finished: deque[Any] = deque()
        self.requests: deque[Future[Any]] = deque()
        self.expired: BaseException | None = None
        self.failed_one = False  # a request has been failed with ``expired``
        self.gave_way = 0  # requests dropped because their askers gave up, not yet reclaimed
        self.dead_hint = 0  # map_unordered: requests given up since the last purge (an upper bound)
        self.abandoned: list[Any] | None = None  # the inputs, once the iterator is gone (see ``abandon``)
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
        requests = self.requests
        given_back = False  # f went to a request cancelled after we popped it: it is still ours
        while True:
            lock.acquire()
            try:
                if given_back:
                    self.gave_way += 1
                if self.expired is not None:
                    return
                request = None
                while requests:
                    request = requests.popleft()
                    if request._state is PENDING:
                        break
                    self.gave_way += 1  # its asker gave up while it waited
                    request = None
                if request is None:
                    orphaned = self.abandoned
                    owner = self.owner  # map_unordered: nobody waits (those that did gave up): let go
                    if orphaned is None:
                        if given_back:
                            self.finished.appendleft(f)  # it completed before any input still unclaimed
                        else:
                            self.finished.append(f)
                        if owner is None:
                            return
                    self.abandoned = self.owner = None
            finally:
                lock.release()
            if request is None:
                if orphaned is not None:
                    detach(orphaned, self.on_done)  # the iterator is gone and nobody waits: nobody ever will
                del owner  # out of the lock, as in on_request_done
                return
            if _answer(request, f):
                break
            given_back = True
        if self.on_match is not None:
            self.on_match()

    def request(self, request: Future[Any]) -> bool:
        """Answer ``request`` (a future not yet handed out) with the next input to complete.

        Returns True if ``request`` has to wait (it joined ``requests``).
        """
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
                return True
        finally:
            lock.release()
        if f is None:
            request.set_exception(self.expired)  # type: ignore[arg-type]
            return False
        _answer_fresh(request, f)
        if self.on_match is not None:
            self.on_match()
        return False

    def expire(self, failure: BaseException) -> None:
        """Fail every waiting request; later ones get what finished in time, then ``failure``."""
        with self.lock:
            self.expired = failure
            waiting = list(self.requests)
            self.requests.clear()
            if any(request._state is PENDING for request in waiting):
                self.failed_one = True
            owner, self.owner = self.owner, None  # dropped below, out of the lock (its __del__ may need it)
        given_up = 0
        for request in waiting:
            if not _settle(request, None, None, None, failure, False):
                given_up += 1
        if given_up:
            with self.lock:
                self.gave_way += given_up
        del owner

    def _drop_dead(self) -> None:
        """Drop the waiting requests whose askers gave up (lock held); they count in ``gave_way``."""
        requests = self.requests
        live = [request for request in requests if request._state is PENDING]
        if len(live) != len(requests):
            self.gave_way += len(requests) - len(live)
            requests.clear()
            requests.extend(live)
        self.dead_hint = 0

    def reclaim(self) -> int:
        """How many requests gave way since the last call: the iterator owes their askers' successors."""
        with self.lock:
            self._drop_dead()
            count = self.gave_way
            self.gave_way = 0
        return count

    def abandon(self, inputs: list[Any]) -> bool:
        """The iterator is being collected: True if no live request waits (detach now).

        Otherwise the live requests must still be answered: the next input to
        complete once none waits detaches from ``inputs`` (see ``on_done``).
        """
        with self.lock:
            self._drop_dead()
            if self.requests:
                self.abandoned = inputs
                return False
        return True

    def on_request_done(self, request: Future[Any]) -> None:
        """Done-callback on a map_unordered request that had to wait.

        Once every waiting request has given up, let go of ``owner``: a
        consumer that was cancelled (or timed out and dropped the iterator)
        must not keep the calls going. The purge runs only when as many
        requests gave up as wait, so mass cancellation stays O(n).
        """
        if request._state is FINISHED or getattr(request, "completed", None) is not None:
            return  # answered (a cancelled call cancels its signal too, naming the call)
        with self.lock:
            self.dead_hint += 1
            if self.dead_hint < len(self.requests):
                return
            self._drop_dead()
            if self.requests:
                return
            owner, self.owner = self.owner, None
        del owner  # out of the lock: the iterator's __del__ cancels the calls, whose callbacks take it


class AsCompleted:
    """The iterator :func:`as_completed` returns."""

    def __init__(self, fs: Iterable[Any], timeout: float | None) -> None:
        self._futures = list(dict.fromkeys(check_futures(fs, "as_completed")))  # duplicates count once
        self._left = len(self._futures)  # requests still to hand out (one more for each that gives way)
        self._closed = False
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
            raise stop
        if self._left <= 0:
            if self._closed:
                raise stop
            self._left += matcher.reclaim()  # one more request for each that gave way
            if self._left <= 0:
                raise stop
        self._left -= 1
        matcher.request(request)

    def close(self) -> None:
        """Stop: detach from every input and from the timer, cancel the signals still waiting.

        Dropping the iterator does this too, once no signal it handed out waits.
        """
        self._closed = True
        self._left = 0
        matcher = self._matcher
        detach(self._futures, matcher.on_done)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with matcher.lock:
            waiting = list(matcher.requests)
            matcher.requests.clear()
        for request in waiting:
            request.cancel()

    def __del__(self) -> None:
        # Signals handed out and still waiting (``list(as_completed(fs))``)
        # must still resolve: detach only when none waits any more (a signal
        # whose task was cancelled does not count), or later, when the last
        # one is answered or gives up (see _Matcher.abandon).
        if hasattr(self, "_timer") and self._matcher.abandon(self._futures):
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

    A signal cancelled before it resolves (``with_timeout(signal, t)`` that
    expired, a task cancelled while it waited on one) gives way: the input
    it would have carried goes to the next signal, and the iterator hands out
    one more signal in its place, so no outcome is lost (a loop that goes on
    after each timed-out signal runs until every input is handed out: break
    out of it, or pass ``timeout``, to give up). Breaking out of the loop, or
    a consuming task that is cancelled, detaches the iteration from its
    inputs once the iterator is collected; ``close()`` does so at once and
    cancels the signals still waiting.

    Args:
        fs: futures of any origin; duplicates count once.
        timeout: seconds after which waiting signals fail with
            :class:`TimeoutError`; inputs that finished in time are still
            handed out, then (unless a signal already failed) one signal
            fails with it, and the iteration ends.
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
        self._matcher = _Matcher(on_match=_weakly(self._slot_freed))
        self._on_request_done = self._matcher.on_request_done  # one bound method for every waiting signal
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
        owner = None
        with matcher.lock:
            requests = matcher.requests
            if requests and matcher.dead_hint >= len(requests):
                matcher._drop_dead()  # as many gave up as wait: perhaps all of them
            if not requests:
                owner, matcher.owner = matcher.owner, None
        del owner  # out of the lock, as in _Matcher.on_request_done
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
            matcher.on_done(_Completed(f, item))

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
            if self._closed or (self._error is not None and matcher.failed_one and not matcher.finished):
                raise StopIteration
            if self._handed_out >= self._taken:
                if matcher.gave_way or matcher.dead_hint:  # every waiting signal reports giving up there
                    self._handed_out -= matcher.reclaim()  # one more signal for each that gave way
                if self._handed_out >= self._taken and not self._pull() and self._error is None:
                    raise StopIteration
            self._handed_out += 1
        if self._error is not None:
            self._abort()  # if this very call found the error
            if matcher.failed_one and not matcher.finished:
                raise StopIteration  # the error went to the signals that were waiting
        if matcher.request(request):
            # It waits: if we are dropped, keep the calls going for it, until
            # it resolves or gives up (then the callback lets go of us).
            with matcher.lock:
                if matcher.requests:
                    matcher.owner = self
            request.add_done_callback(self._on_request_done)

    def __aiter__(self) -> MapUnordered:
        return self

    def __anext__(self) -> Future[Any]:
        """Under ``async for``: the next completed signal future (already done)."""
        request = _SignalRequest()
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
        matcher = self._matcher
        with matcher.lock:
            waiting = list(matcher.requests)
            matcher.requests.clear()
            owner, matcher.owner = matcher.owner, None
        for request in waiting:
            request.cancel()
        del owner  # out of the lock, as in _Matcher.on_request_done

    def __del__(self) -> None:
        if hasattr(self, "_matcher"):  # not when __init__ refused its arguments
            self.close()


class _SignalRequest(Future[Any]):
    """A request of ``async for`` over map_unordered: it resolves to a done :class:`SignalFuture`."""

    __slots__ = ()


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
