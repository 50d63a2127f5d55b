"""Combinators: the asynchronous twins of ``concurrent.futures``' helpers.

Each takes futures of any origin (ours, executors', Dask's: anything with
``add_done_callback``), mixed, and returns a :class:`Future`, so it serves both
as ``yield combinator(...)`` in a task and as ``combinator(...).result()`` in
plain code. Their callbacks may run on any thread, so each keeps its state
behind a small lock and completes its own future outside it.

Every combinator registers one callback per input future, and detaches the
callbacks it no longer needs where the input allows it
(``remove_done_callback``), so waiting is O(n) in all and an abandoned wait
does not pin its state. An input may complete the combinator's future while
the callbacks are still being registered (it was done already, or another
thread completed it): registration then stops, and the input registered last
is detached again, as the detaching may have missed it. Outcomes are read
through :func:`read_outcome`, which needs no more of an input than
``result()``.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures._base import PENDING
from typing import Any, TypeVar, overload

from ._exceptions import InvalidStateError, TimeoutError
from ._future import Future, cancel_soon, copy_outcome, detach, is_future_like, read_outcome
from ._timers import Timer
from ._where import default_executor, loop_for_caller

__all__ = [
    "SignalFuture",
    "wait_first",
    "wait",
    "gather",
    "with_timeout",
    "sleep",
    "to_thread",
    "wrap_future",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "ALL_COMPLETED",
]

T = TypeVar("T")

logger = logging.getLogger("tasklets")

FIRST_COMPLETED = concurrent.futures.FIRST_COMPLETED
FIRST_EXCEPTION = concurrent.futures.FIRST_EXCEPTION
ALL_COMPLETED = concurrent.futures.ALL_COMPLETED


class SignalFuture(Future[T]):
    """A future that reports the outcome of another one.

    ``completed`` is the original future whose outcome it carries (None until
    it resolves); ``item`` is the input that ``map_unordered`` called its
    function with.
    """

    __slots__ = ("completed", "item")

    def __init__(self) -> None:
        # Future.__init__ inlined: as_completed makes one of these per input.
        self._state = PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        self._mutex = [True]
        self._blocking = None
        self._callbacks = None
        self.completed: Any = None
        self.item: Any = None


def check_futures(fs: Iterable[Any], what: str) -> list[Any]:
    """The inputs as a list, with a clear error for anything that is not a future."""
    futures = list(fs)
    for f in futures:
        if not isinstance(f, Future) and not is_future_like(f):
            hint = " (call the task function, or wrap the generator with tasklets.spawn)" if hasattr(
                f, "send"
            ) else ""
            raise TypeError(f"{what}() takes futures, but got {f!r}{hint}")
    return futures


@overload
def wait_first(fs: Iterable[concurrent.futures.Future[T]]) -> SignalFuture[T]: ...
@overload
def wait_first(fs: Iterable[Any]) -> SignalFuture[Any]: ...


def wait_first(fs: Iterable[Any]) -> SignalFuture[Any]:
    """A future with the outcome of whichever of ``fs`` completes first.

    Its ``completed`` attribute is that original future. Cancelling the
    returned future stops the wait but not the inputs.

    Raises:
        ValueError: ``fs`` is empty (the wait could never end).
    """
    futures = check_futures(fs, "wait_first")
    if not futures:
        raise ValueError("wait_first() needs at least one future")
    signal: SignalFuture[Any] = SignalFuture()
    lock = threading.Lock()

    def on_done(f: Any) -> None:
        with lock:
            if signal.completed is not None:
                return
            signal.completed = f
        detach(futures, on_done)
        copy_outcome(f, signal)

    def on_signal_done(_: object) -> None:
        if signal.cancelled():
            detach(futures, on_done)

    signal.add_done_callback(on_signal_done)
    for f in futures:
        f.add_done_callback(on_done)
        if signal.completed is not None or signal.done():
            detach((f,), on_done)  # the winner's detach may have run before this registration
            break
    return signal


@overload
def gather(fs: Iterable[concurrent.futures.Future[T]]) -> Future[list[T]]: ...
@overload
def gather(fs: Iterable[Any]) -> Future[list[Any]]: ...


def gather(fs: Iterable[Any]) -> Future[list[Any]]:
    """A future of the list of results of ``fs``, in order; fails with the first exception.

    Cancelling the returned future cancels the inputs still running.
    """
    futures = check_futures(fs, "gather")
    result: Future[list[Any]] = Future()
    count = len(futures)
    if not count:
        result.set_result([])
        return result
    values: list[Any] = [None] * count
    remaining = [count]
    lock = threading.Lock()

    def on_done(index: int, f: Any) -> None:
        if result.done():
            return
        # Each input is read in its own callback, on the thread that completed
        # it: a foreign future may be unreadable elsewhere (a Dask future's
        # result() fetches the value, and cannot be called on Dask's own I/O
        # thread, where an executor future of the same client completes).
        value, exc, cancelled = read_outcome(f)
        if cancelled:
            result.cancel()
            return
        if exc is not None:
            try:
                result.set_exception(exc)
            except InvalidStateError:
                pass
            return
        with lock:
            values[index] = value
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            try:
                result.set_result(values)
            except InvalidStateError:
                pass

    callbacks = [functools.partial(on_done, index) for index in range(count)]

    def on_result_done(_: object) -> None:
        for f, callback in zip(futures, callbacks):
            detach((f,), callback)
        if result.cancelled():
            for f in futures:
                if not f.done():
                    cancel_soon(f)

    result.add_done_callback(on_result_done)
    for f, callback in zip(futures, callbacks):
        f.add_done_callback(callback)
        if result.done():  # an input failed or was cancelled: the rest are not needed
            detach((f,), callback)  # on_result_done may have run before this registration
            break
    return result


@overload
def wait(
    fs: Iterable[concurrent.futures.Future[T]], timeout: float | None = None, return_when: str = ALL_COMPLETED
) -> Future[concurrent.futures._base.DoneAndNotDoneFutures[T]]: ...
@overload
def wait(
    fs: Iterable[Any], timeout: float | None = None, return_when: str = ALL_COMPLETED
) -> Future[concurrent.futures._base.DoneAndNotDoneFutures[Any]]: ...


def wait(
    fs: Iterable[Any], timeout: float | None = None, return_when: str = ALL_COMPLETED
) -> Future[concurrent.futures._base.DoneAndNotDoneFutures[Any]]:
    """A future of ``(done, not_done)`` sets, like ``concurrent.futures.wait``.

    Args:
        fs: the futures to wait for (duplicates count once).
        timeout: seconds after which the future resolves with whatever is done.
        return_when: ``FIRST_COMPLETED``, ``FIRST_EXCEPTION`` or ``ALL_COMPLETED``.
    """
    if return_when not in (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED):
        raise ValueError(f"return_when must be FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED, not {return_when!r}")
    futures = set(check_futures(fs, "wait"))
    result: Future[Any] = Future()
    done: set[Any] = set()
    lock = threading.Lock()
    timer: Timer | None = None

    def finish() -> None:
        with lock:
            snapshot = (set(done), futures - done)
        try:
            result.set_result(concurrent.futures._base.DoneAndNotDoneFutures(*snapshot))
        except InvalidStateError:
            pass

    def on_done(f: Any) -> None:
        failed = False
        if return_when == FIRST_EXCEPTION:
            _, exc, cancelled = read_outcome(f)
            failed = exc is not None and not cancelled
        with lock:
            done.add(f)
            complete = len(done) == len(futures) or return_when == FIRST_COMPLETED or failed
        if complete:
            finish()

    def on_result_done(_: object) -> None:
        detach(futures, on_done)
        if timer is not None:
            timer.cancel()

    if not futures:
        finish()
        return result
    result.add_done_callback(on_result_done)
    for f in futures:
        f.add_done_callback(on_done)
        if result.done():
            detach((f,), on_done)  # on_result_done may have run before this registration
            break
    if timeout is not None and not result.done():
        timer = Timer(max(0.0, timeout), finish)
        if result.done():
            timer.cancel()
    return result


@overload
def with_timeout(future: concurrent.futures.Future[T], seconds: float) -> Future[T]: ...
@overload
def with_timeout(future: Any, seconds: float) -> Future[Any]: ...


def with_timeout(future: Any, seconds: float) -> Future[Any]:
    """``future``'s outcome, or :class:`TimeoutError` after ``seconds`` (``future`` is then cancelled)."""
    if not is_future_like(future):
        raise TypeError(f"with_timeout() takes a future, got {future!r}")
    result: Future[Any] = Future()

    def expire() -> None:
        if future.done():
            return  # its callback is on its way (from another thread)
        try:
            result.set_exception(TimeoutError(f"{future!r} did not complete within {seconds} s"))
        except InvalidStateError:
            return
        cancel_soon(future)

    timer = Timer(max(0.0, seconds), expire)

    def on_done(f: Any) -> None:
        timer.cancel()
        copy_outcome(f, result)

    def on_result_done(_: object) -> None:
        if result.cancelled():
            timer.cancel()
            cancel_soon(future)

    result.add_done_callback(on_result_done)
    future.add_done_callback(on_done)
    return result


def sleep(seconds: float, result: T = None) -> Future[T]:  # type: ignore[assignment]
    """A future that resolves to ``result`` after ``seconds``.

    ``yield sleep(0)`` lets every other ready task run once, like ``yield None``.
    """
    future: Future[T] = Future()

    def wake() -> None:
        if not future.done():
            future.set_result(result)

    if seconds <= 0:
        loop = loop_for_caller()
        loop.call_soon_threadsafe(wake)
        return future
    timer = Timer(seconds, wake)

    def on_done(_: object) -> None:
        if future.cancelled():
            timer.cancel()

    future.add_done_callback(on_done)
    return future


@overload
def wrap_future(future: concurrent.futures.Future[T]) -> Future[T]: ...
@overload
def wrap_future(future: Any) -> Future[Any]: ...


def wrap_future(future: Any) -> Future[Any]:
    """A tasklets :class:`Future` that follows ``future`` (any future-like object).

    Generator tasks can ``yield`` any future directly; ``async def`` tasks
    need ``await``, which the stdlib's and Dask's futures do not support:
    ``await wrap_future(executor.submit(fn))``. Cancelling the wrapper
    cancels ``future`` too (a foreign future whose ``cancel()`` may block, from a thread of the pool).
    """
    if isinstance(future, Future):
        return future
    if not is_future_like(future):
        raise TypeError(f"wrap_future() takes a future, got {future!r}")
    wrapper: Future[Any] = Future()

    def on_wrapper_done(_: object) -> None:
        if wrapper.cancelled():
            cancel_soon(future)

    wrapper.add_done_callback(on_wrapper_done)
    future.add_done_callback(lambda done: copy_outcome(done, wrapper))
    return wrapper


def to_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
    """Run ``fn(*args, **kwargs)`` in the default thread pool; a future of its result.

    Cancelling the future before a worker picks the call up stops it from
    running at all (as with ``Executor.submit``); a call already running runs
    to its end and its result is dropped.
    """
    future: Future[T] = Future()
    default_executor().submit(_run_into, future, fn, args, kwargs)
    return future


def _run_into(future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        value = fn(*args, **kwargs)
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(value)
