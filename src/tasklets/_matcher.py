"""The matcher behind ``as_completed`` and ``map_unordered``: completed inputs paired with requests.

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
with ``Future._try_complete``, which leaves a future already done alone.
Dead requests are noticed lazily, where the matcher meets them anyway (an
input completing, the iterator reaching its end or being collected), so the
common path pays one state check. An iterator collected while live requests
wait leaves the matcher ``abandoned``: once none waits, the next input to
complete detaches them all, since no new request can come.

The iterators (``_as_completed.py``, ``_map_unordered.py``) use the
matcher's methods only; its state is its own.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future as _CfFuture
from typing import Any

from ._combinators import SignalFuture
from ._future import Future, detach
from ._task import Task, _outcome, _resolved

__all__ = ["Matcher", "Completed", "SignalRequest", "ANSWERED", "WAITS", "SPENT"]

#: What :meth:`Matcher.request` did with a request.
ANSWERED = 0  # answered at once
WAITS = 1  # it joined the waiting requests
SPENT = 2  # untouched: a request failed with the ``expire`` failure and what finished in time is out


class SignalRequest(Future[Any]):
    """A request of ``async for`` over map_unordered: it resolves to a done :class:`SignalFuture`."""

    __slots__ = ()


class Completed:
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


def _answer(request: Future[Any], f: Any) -> bool:
    """Resolve a request with the completed input ``f``; False if the request gave up meanwhile.

    A :class:`SignalFuture` takes on ``f``'s outcome (the ordinary iterator);
    a :class:`SignalRequest` resolves to a done signal future with it
    (``async for`` over ``map_unordered``); any other future resolves to ``f``
    itself (``async for`` over ``as_completed``).
    """
    item = None
    outcome = f
    if isinstance(f, Completed):  # from map_unordered (the call and its item), or a foreign input
        item = f.item
        outcome = f.future if f.outcome is None else f.outcome
        f = f.future
    if isinstance(request, SignalFuture):
        if outcome.cancelled():
            return _settle(request, f, item, None, None, True)
        value, exc = _outcome(outcome)
        return _settle(request, f, item, value, exc, False)
    if type(request) is SignalRequest:
        signal: SignalFuture[Any] = SignalFuture()
        signal.completed = f
        signal.item = item
        if outcome.cancelled():
            signal._complete_unseen(None, cancel=True)
        else:
            signal._complete_unseen(*_outcome(outcome))
        return _settle(request, None, None, signal, None, False)
    return _settle(request, None, None, f, None, False)


def _settle(
    request: Future[Any], completed: Any, item: Any, value: Any, exc: BaseException | None, cancel: bool
) -> bool:
    """Complete ``request`` unless it is done already (its asker gave up).

    ``completed`` and ``item`` (for a :class:`SignalFuture`) are set in the
    same step as the outcome, so a request cancelled from another thread a
    moment ago neither swallows the input nor claims it.
    """
    if isinstance(request, SignalFuture):

        def name_the_input() -> None:
            request.completed = completed
            request.item = item

        return request._try_complete(value, exc, cancel, name_the_input)
    return request._try_complete(value, exc, cancel)


def _read_foreign(f: Any) -> Any:
    """An input that is no ``concurrent.futures.Future``, with its outcome read now (see ``on_done``)."""
    if isinstance(f, Completed):
        if not isinstance(f.future, _CfFuture):
            f.outcome = _resolved(f.future)
        return f
    return Completed(f, None, _resolved(f))


def _answer_fresh(request: Future[Any], f: Any) -> None:
    """``_answer`` for a request nobody has seen yet: no callbacks, no waiters, no lock needed.

    The common case of an iteration whose inputs finished before it got to
    them; it skips ``set_result``'s lock and callback machinery.
    """
    if type(f) is Future or type(f) is Task:
        if isinstance(request, SignalFuture):
            if request._complete_unseen_from(f):  # False if f was cancelled
                request.completed = f
                return
        elif type(request) is Future:
            request._complete_unseen(f)
            return
    _answer(request, f)


class Matcher:
    """Pairs completed inputs with requests for them, oldest first, from any thread.

    ``on_match()`` runs after each input handed to a request (map_unordered
    starts the next call there). An *owner* (the map_unordered iterator) may
    be held while requests wait, so that a dropped iterator keeps the calls
    going for them; it is let go once none waits.
    """

    __slots__ = (
        "_lock",
        "_finished",
        "_requests",
        "_expired",
        "_failed_one",
        "_gave_way",
        "_dead_hint",
        "_abandoned",
        "_on_match",
        "_owner",
    )

    def __init__(self, on_match: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._finished: deque[Any] = deque()
        self._requests: deque[Future[Any]] = deque()
        self._expired: BaseException | None = None
        self._failed_one = False  # a request has been failed with ``_expired``
        self._gave_way = 0  # requests dropped because their askers gave up, not yet reclaimed
        self._dead_hint = 0  # map_unordered: requests given up since the last purge (an upper bound)
        self._abandoned: list[Any] | None = None  # the inputs, once the iterator is gone (see ``abandon``)
        self._on_match = on_match
        self._owner: Any = None  # map_unordered: kept alive while requests wait (see MapUnordered)

    def on_done(self, f: Any) -> None:
        """Done-callback on every input."""
        if not isinstance(f, _CfFuture):
            # A foreign future's result() may block (a Dask future's fetches
            # the value): read it here, on the thread that completed it, not
            # later on the loop of whoever asks for it.
            f = _read_foreign(f)
        lock = self._lock
        requests = self._requests
        given_back = False  # f went to a request cancelled after we popped it: it is still ours
        while True:
            lock.acquire()
            try:
                if given_back:
                    self._gave_way += 1
                if self._expired is not None:
                    return
                request = None
                while requests:
                    request = requests.popleft()
                    if not request.done():
                        break
                    self._gave_way += 1  # its asker gave up while it waited
                    request = None
                if request is None:
                    orphaned = self._abandoned
                    owner = self._owner  # map_unordered: nobody waits (those that did gave up): let go
                    if orphaned is None:
                        if given_back:
                            self._finished.appendleft(f)  # it completed before any input still unclaimed
                        else:
                            self._finished.append(f)
                        if owner is None:
                            return
                    self._abandoned = self._owner = None
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
        if self._on_match is not None:
            self._on_match()

    def request(self, request: Future[Any]) -> int:
        """Answer ``request`` (a future not yet handed out) with the next input to complete.

        Returns :data:`ANSWERED`, :data:`WAITS` (``request`` joined the
        waiting requests) or :data:`SPENT` (the iteration is over: see
        :meth:`spent_by_failure`; ``request`` is left alone). One call on
        the iterators' hot path, where asking first would be two.
        """
        lock = self._lock
        lock.acquire()
        try:
            if self._finished:
                f = self._finished.popleft()
            elif self._failed_one:
                return SPENT
            elif self._expired is not None:
                f = None
                self._failed_one = True
            else:
                self._requests.append(request)
                return WAITS
        finally:
            lock.release()
        if f is None:
            request.set_exception(self._expired)  # type: ignore[arg-type]
            return ANSWERED
        _answer_fresh(request, f)
        if self._on_match is not None:
            self._on_match()
        return ANSWERED

    def expire(self, failure: BaseException) -> None:
        """Fail every waiting request; later ones get what finished in time, then ``failure``."""
        with self._lock:
            self._expired = failure
            waiting = list(self._requests)
            self._requests.clear()
            if any(not request.done() for request in waiting):
                self._failed_one = True
            owner, self._owner = self._owner, None  # dropped below, out of the lock (its __del__ may need it)
        given_up = 0
        for request in waiting:
            if not _settle(request, None, None, None, failure, False):
                given_up += 1
        if given_up:
            with self._lock:
                self._gave_way += given_up
        del owner

    def spent_by_failure(self) -> bool:
        """A request failed with the ``expire`` failure and every input that finished in time is out: the end."""
        return self._failed_one and not self._finished

    def _drop_dead(self) -> None:
        """Drop the waiting requests whose askers gave up (lock held); they count in ``_gave_way``."""
        requests = self._requests
        live = [request for request in requests if not request.done()]
        if len(live) != len(requests):
            self._gave_way += len(requests) - len(live)
            requests.clear()
            requests.extend(live)
        self._dead_hint = 0

    def reclaim(self) -> int:
        """How many requests gave way since the last call: the iterator owes their askers' successors."""
        with self._lock:
            self._drop_dead()
            count = self._gave_way
            self._gave_way = 0
        return count

    def reclaim_if_any(self) -> int:
        """``reclaim()``, skipped (0) when no request is known to have given up since the last one."""
        if self._gave_way or self._dead_hint:  # every waiting signal reports giving up there
            return self.reclaim()
        return 0

    def abandon(self, inputs: list[Any]) -> bool:
        """The iterator is being collected: True if no live request waits (detach now).

        Otherwise the live requests must still be answered: the next input to
        complete once none waits detaches from ``inputs`` (see ``on_done``).
        """
        with self._lock:
            self._drop_dead()
            if self._requests:
                self._abandoned = inputs
                return False
        return True

    def hold_while_waiting(self, owner: Any) -> None:
        """Keep ``owner`` alive while requests wait (a request has just joined them)."""
        with self._lock:
            if self._requests:
                self._owner = owner

    def on_request_done(self, request: Future[Any]) -> None:
        """Done-callback on a map_unordered request that had to wait.

        Once every waiting request has given up, let go of ``owner``: a
        consumer that was cancelled (or timed out and dropped the iterator)
        must not keep the calls going. The purge runs only when as many
        requests gave up as wait, so mass cancellation stays O(n).
        """
        if (request.done() and not request.cancelled()) or getattr(request, "completed", None) is not None:
            return  # answered (a cancelled call cancels its signal too, naming the call)
        with self._lock:
            self._dead_hint += 1
            if self._dead_hint < len(self._requests):
                return
            self._drop_dead()
            if self._requests:
                return
            owner, self._owner = self._owner, None
        del owner  # out of the lock: the iterator's __del__ cancels the calls, whose callbacks take it

    def let_go_if_idle(self) -> None:
        """Let go of the owner if no live request waits (an input was just handed out)."""
        owner = None
        with self._lock:
            requests = self._requests
            if requests and self._dead_hint >= len(requests):
                self._drop_dead()  # as many gave up as wait: perhaps all of them
            if not requests:
                owner, self._owner = self._owner, None
        del owner  # out of the lock, as in on_request_done

    def close(self) -> None:
        """Cancel the requests still waiting and let go of the owner: the iteration is over."""
        with self._lock:
            waiting = list(self._requests)
            self._requests.clear()
            owner, self._owner = self._owner, None
        for request in waiting:
            request.cancel()
        del owner  # out of the lock, as in on_request_done
