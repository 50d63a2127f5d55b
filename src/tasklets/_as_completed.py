"""``as_completed``: process futures in the order they finish.

The iterator hands out one request per input (a signal future, or a plain
future under ``async for``); the :class:`~tasklets._matcher.Matcher` pairs
each with the next input to complete, in O(1), from any thread. This module
decides how many requests to hand out, and when the iteration ends.
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar, overload

from ._combinators import SignalFuture, check_futures
from ._exceptions import TimeoutError
from ._future import Future, detach
from ._matcher import SPENT, Matcher
from ._timers import Timer

__all__ = ["as_completed", "AsCompleted"]

T = TypeVar("T")


class AsCompleted(Generic[T]):
    """The iterator :func:`as_completed` returns."""

    def __init__(self, fs: Iterable[Any], timeout: float | None) -> None:
        self._futures = list(dict.fromkeys(check_futures(fs, "as_completed")))  # duplicates count once
        self._left = len(self._futures)  # requests still to hand out (one more for each that gives way)
        self._closed = False
        self._matcher = Matcher()
        self._request = self._matcher.request  # bound once: called for every input
        self._timer: Timer | None = None  # __del__ tells a half-built iterator by its absence
        on_done = self._matcher.on_done  # one bound method for all inputs, not one each
        for f in self._futures:
            f.add_done_callback(on_done)
        if timeout is not None and self._left:
            self._timer = Timer(max(0.0, timeout), functools.partial(_expire, self._matcher, self._futures, timeout))

    def __iter__(self) -> Iterator[SignalFuture[T]]:
        return self

    def __next__(self) -> SignalFuture[T]:
        """A signal future for the next input to complete (``.completed`` names it)."""
        signal: SignalFuture[T] = SignalFuture()
        # The hand-out is written out here and in __anext__ (not a shared
        # method): a call per input is a tenth of the iteration's cost.
        if self._left <= 0 and not self._reclaim():
            raise StopIteration
        self._left -= 1
        if self._request(signal) == SPENT:
            self._left = 0  # past the deadline, a signal failed and what finished in time is out
            raise StopIteration
        return signal

    def __aiter__(self) -> AsCompleted[T]:
        return self

    def __anext__(self) -> Future[concurrent.futures.Future[T]]:
        """Under ``async for``: the next *original* future to complete."""
        waiter: Future[concurrent.futures.Future[T]] = Future()
        if self._left <= 0 and not self._reclaim():
            raise StopAsyncIteration
        self._left -= 1
        if self._request(waiter) == SPENT:
            self._left = 0
            raise StopAsyncIteration
        return waiter

    def _reclaim(self) -> bool:
        """Every request is handed out: True if one more is owed (one for each that gave way)."""
        if self._closed:
            return False
        self._left += self._matcher.reclaim()
        return self._left > 0

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
        matcher.close()

    def __del__(self) -> None:
        # Signals handed out and still waiting (``list(as_completed(fs))``)
        # must still resolve: detach only when none waits any more (a signal
        # whose task was cancelled does not count), or later, when the last
        # one is answered or gives up (see Matcher.abandon).
        if hasattr(self, "_timer") and self._matcher.abandon(self._futures):
            self.close()


def _expire(matcher: Matcher, futures: list[Any], timeout: float) -> None:
    left = sum(1 for f in futures if not f.done())
    matcher.expire(TimeoutError(f"as_completed(): {left} of {len(futures)} futures not done within {timeout} s"))
    detach(futures, matcher.on_done)


@overload
def as_completed(fs: Iterable[concurrent.futures.Future[T]], timeout: float | None = None) -> AsCompleted[T]: ...
@overload
def as_completed(fs: Iterable[Any], timeout: float | None = None) -> AsCompleted[Any]: ...


def as_completed(fs: Iterable[Any], timeout: float | None = None) -> AsCompleted[Any]:
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
