"""``tasklets.Future``: a ``concurrent.futures.Future`` that is cheap on a loop.

Theory of operation
-------------------
The stdlib future pays for a ``threading.Condition`` on every creation (about
1.5 µs of its 2.1 µs) although most futures of an event loop are created,
completed and waited on by one thread and never see a blocking waiter. This
class keeps the stdlib's attribute names and state machine, so
``concurrent.futures.wait``/``as_completed`` (which reach into ``_condition``,
``_state`` and ``_waiters``) work unchanged, but:

* every state change is guarded by the future's mutex (``_mutex.py``: a
  one-item list, taken by ``pop()`` and given back by ``append()``, for a
  fraction of the price of a ``threading.Lock``), which is what makes
  completion from a foreign thread safe against a callback being registered
  on the loop thread at the same moment;
* the ``Condition`` that blocking waiters sleep on is built *on that same
  mutex* only when somebody first asks for ``_condition`` (a blocking
  ``result()`` or ``concurrent.futures.wait``), so holding the mutex is holding
  the condition and no notification can be missed;
* ``_waiters`` (the stdlib's hook for ``wait``/``as_completed``) and the
  callback list are created on first use.

A cancelled tasklets future goes straight to ``CANCELLED_AND_NOTIFIED``: no
executor will ever call ``set_running_or_notify_cancel`` on it, and the stdlib's
``wait`` only counts a cancelled future as done in that state.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable, Generator, Iterable
from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    PENDING,
    RUNNING,
)
from typing import Any, TypeVar

from . import _context
from ._bridge import await_elsewhere, running_asyncio_loop
from ._exceptions import BlockingResultError, CancelledError, InvalidStateError
from ._mutex import BlockingWaiters, MutexLock, take
from ._where import default_executor

__all__ = [
    "Future",
    "cancel_soon",
    "copy_outcome",
    "detach",
    "done_future",
    "failed_future",
    "is_future_like",
    "read_outcome",
]

T = TypeVar("T")

logger = logging.getLogger("tasklets")

_DONE_STATES = (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)
_STATE_NAMES = {
    PENDING: "pending",
    RUNNING: "running",
    CANCELLED: "cancelled",
    CANCELLED_AND_NOTIFIED: "cancelled",
    FINISHED: "finished",
}


class Future(concurrent.futures.Future[T]):
    """The result of an asynchronous operation; a ``concurrent.futures.Future``.

    Inside a task, ``result = yield future`` (or ``await future``) suspends
    the task until the future is done. From plain code on any thread that is
    not running a loop, ``future.result(timeout)`` blocks as usual.
    """

    #: False in subclasses that override ``add_done_callback``: tasks then
    #: call it rather than appending to ``_callbacks`` themselves.
    _plain_callbacks = True

    __slots__ = ("_state", "_result", "_exception", "_mutex", "_blocking", "_callbacks")

    def __init__(self) -> None:
        self._state = PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        self._mutex: list[bool] = [True]  # a _mutex.py mutex, made inline: this runs for every future
        self._blocking: BlockingWaiters | None = None
        self._callbacks: list[Callable[[Any], object]] | None = None

    # -- the stdlib's private hooks, created on demand -------------------------

    # The stdlib's attributes become lazy properties on purpose (see the module docstring).
    @property
    def _condition(self) -> threading.Condition:  # type: ignore[override]
        """The stdlib's condition, built lazily on the future's own mutex."""
        blocking = self._blocking
        if blocking is None:
            with MutexLock(self._mutex):
                blocking = self._blocking
                if blocking is None:
                    blocking = self._blocking = BlockingWaiters(self._mutex)
        return blocking.cond

    @property
    def _waiters(self) -> list[Any]:  # type: ignore[override]  # lazy, as _condition
        # Only touched by the stdlib's wait()/as_completed(), with the mutex held
        # (they take ``_condition`` first, so ``_blocking`` exists by now).
        blocking = self._blocking
        if blocking is None:
            blocking = self._blocking = BlockingWaiters(self._mutex)
        return blocking.waiters

    @property
    def _done_callbacks(self) -> list[Callable[[Any], object]]:
        callbacks = self._callbacks
        if callbacks is None:
            callbacks = self._callbacks = []
        return callbacks

    # -- inspection --------------------------------------------------------------

    def done(self) -> bool:
        """True once the future has a result, an exception, or was cancelled."""
        return self._state in _DONE_STATES

    def cancelled(self) -> bool:
        """True if the future was cancelled."""
        state = self._state
        return state is CANCELLED_AND_NOTIFIED or state is CANCELLED

    def running(self) -> bool:
        """True while an executor runs the work behind the future."""
        return self._state is RUNNING

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {id(self):#x} {self._describe_state()}>"

    def _describe_state(self) -> str:
        """The stdlib's words for the state: ``state=pending``, ``state=finished returned int``..."""
        state = self._state
        if state is FINISHED:
            if self._exception is not None:
                return f"state=finished raised {type(self._exception).__name__}"
            return f"state=finished returned {type(self._result).__name__}"
        return f"state={_STATE_NAMES[state]}"

    def _already_done(self) -> InvalidStateError:
        # The stdlib's message ("FINISHED: <Future at 0x... state=finished returned int>"), then ours.
        return InvalidStateError(f"{self._state}: {self!r} is already done; its outcome is set only once")

    # -- waiting -------------------------------------------------------------------

    def result(self, timeout: float | None = None) -> T:
        """The future's result, blocking up to ``timeout`` seconds for it.

        Raises:
            concurrent.futures.CancelledError: the future was cancelled.
            TimeoutError: the future is not done after ``timeout`` seconds.
            BlockingResultError: the future is pending and the calling thread
                runs a tasklets loop, which this call would block forever.
            Exception: whatever exception the future completed with.
        """
        if self._state is not FINISHED:
            self._wait_until_done(timeout)
        exc = self._exception
        if exc is not None:
            try:
                raise exc
            finally:
                del exc  # break the frame -> traceback -> frame cycle
        result: T = self._result
        return result

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The future's exception (None if it succeeded), blocking like ``result``."""
        if self._state is not FINISHED:
            self._wait_until_done(timeout)
        return self._exception

    def _wait_until_done(self, timeout: float | None) -> None:
        """Block until done; raise CancelledError or TimeoutError as the stdlib does."""
        if self._state not in _DONE_STATES:
            if _context.thread_context.loop is None and running_asyncio_loop() is not None:
                raise BlockingResultError(
                    f"result() called on pending {self!r} from the thread running the asyncio loop "
                    f"{running_asyncio_loop()!r}: that thread would block its loop until the future is "
                    "done, stalling everything else on it (forever, if completing the future needs it). "
                    "In a coroutine write 'value = await future' instead."
                )
            if _context.thread_context.loop is not None:
                raise BlockingResultError(
                    f"result() called on pending {self!r} from the thread running "
                    f"{_context.thread_context.loop!r}: that thread would block the loop "
                    "that must complete it, forever. Inside a task write "
                    "'value = yield future' (or 'await future') instead."
                )
            cond = self._condition
            with cond:
                if self._state not in _DONE_STATES:
                    cond.wait(timeout)
                if self._state not in _DONE_STATES:
                    raise TimeoutError(f"{self!r} still not done after {timeout} s")
        if self._state is not FINISHED:
            raise CancelledError(f"{self!r} was cancelled")

    def _mark_retrieved(self) -> None:
        """A task consumed this future's exception (tasks override this to stop their report)."""

    # -- callbacks ---------------------------------------------------------------------

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        """Call ``fn(future)`` once the future is done (at once if it is already).

        The callback runs on whichever thread completes the future; a callback
        that must run on a loop has to hand itself over with
        ``loop.call_soon_threadsafe``.
        """
        mutex = self._mutex
        try:
            mutex.pop()  # take(mutex), inlined on this hot path
        except IndexError:
            take(mutex)
        try:
            state = self._state
            if state is PENDING or state is RUNNING:
                callbacks = self._callbacks
                if callbacks is None:
                    self._callbacks = [fn]
                else:
                    callbacks.append(fn)
                return
        finally:
            mutex.append(True)
        self._run_callback(fn)

    def remove_done_callback(self, fn: Callable[[Future[T]], object]) -> int:
        """Forget every registration of ``fn``; return how many were removed.

        Combinators use this to detach from futures they no longer watch, so
        an abandoned wait does not pin its state in memory.
        """
        with MutexLock(self._mutex):
            callbacks = self._callbacks
            if not callbacks:
                return 0
            kept = [cb for cb in callbacks if cb != fn]
            removed = len(callbacks) - len(kept)
            self._callbacks = kept
            return removed

    def _run_callback(self, fn: Callable[[Future[T]], object]) -> None:
        try:
            fn(self)
        except Exception:
            logger.exception("exception calling callback for %r", self)

    def _invoke_callbacks(self) -> None:
        callbacks = self._callbacks
        if callbacks:
            self._callbacks = None
            for fn in callbacks:
                try:
                    fn(self)
                except Exception:
                    logger.exception("exception calling callback for %r", self)

    # -- completion ----------------------------------------------------------------------

    def set_result(self, result: T) -> None:
        """Complete the future with ``result``; callable from any thread.

        Raises:
            concurrent.futures.InvalidStateError: the future is already done.
        """
        if not self._try_set_result(result):
            raise self._already_done()

    def _try_set_result(self, result: T) -> bool:
        """``set_result`` that says False, rather than raising, when the future is already done.

        Streams use it when a reader may have been cancelled from another
        thread a moment ago: the data then goes back into their buffer.
        """
        mutex = self._mutex
        try:
            mutex.pop()  # take(mutex), inlined on this hot path
        except IndexError:
            take(mutex)
        try:
            state = self._state
            if state is not PENDING and state is not RUNNING:
                return False
            self._result = result
            self._state = FINISHED
            if self._blocking is not None:
                self._blocking.wake(self, "add_result")
            callbacks = self._callbacks
            self._callbacks = None
        finally:
            mutex.append(True)
        if callbacks:
            for fn in callbacks:
                try:
                    fn(self)
                except Exception:
                    logger.exception("exception calling callback for %r", self)
        return True

    def _try_complete(
        self,
        value: Any,
        exc: BaseException | None,
        cancel: bool = False,
        before: Callable[[], object] | None = None,
    ) -> bool:
        """Complete the future with an outcome of any kind, unless it is done already (then False).

        The one completion step for code that completes futures of its own
        kind on behalf of others (the matcher of ``as_completed``): the check,
        ``before()`` and the outcome happen under the future's mutex, so a
        future cancelled from another thread a moment ago is left as it is
        and ``before()`` does not run; blocked waiters are woken and the
        callbacks run outside the mutex, as ``set_result`` does.

        Args:
            value: the result (when ``exc`` is None and ``cancel`` is false).
            exc: the exception to complete with, or None.
            cancel: cancel the future instead.
            before: what must be visible together with the outcome (the
                input a signal future carries).
        """
        mutex = self._mutex
        try:
            mutex.pop()  # take(mutex), inlined on this hot path
        except IndexError:
            take(mutex)
        try:
            state = self._state
            if state is not PENDING and state is not RUNNING:
                return False
            if before is not None:
                before()
            if cancel:
                self._state = CANCELLED_AND_NOTIFIED
                how = "add_cancelled"
            elif exc is not None:
                self._exception = exc
                self._state = FINISHED
                how = "add_exception"
            else:
                self._result = value
                self._state = FINISHED
                how = "add_result"
            if self._blocking is not None:
                self._blocking.wake(self, how)
            callbacks = self._callbacks
            self._callbacks = None
        finally:
            mutex.append(True)
        if callbacks:
            for fn in callbacks:
                try:
                    fn(self)
                except Exception:
                    logger.exception("exception calling callback for %r", self)
        return True

    def _complete_unseen(self, value: Any, exc: BaseException | None = None, cancel: bool = False) -> None:
        """Complete a future nobody else can see yet: no mutex, no waiters, no callbacks to run.

        The fast path of code that hands out futures born done (``done_future``,
        the signals of an iteration whose inputs finished before it got to them).
        """
        if cancel:
            self._state = CANCELLED_AND_NOTIFIED
        elif exc is not None:
            self._exception = exc
            self._state = FINISHED
        else:
            self._result = value
            self._state = FINISHED

    def _complete_unseen_from(self, source: Future[Any]) -> bool:
        """``_complete_unseen`` with the outcome of ``source``, a done future of this kind; False if it was cancelled.

        The matcher's hot path (an input handed to a fresh signal): one call
        where reading the outcome and completing would be three.
        """
        if source._state is not FINISHED:
            return False
        exc = source._exception
        if exc is None:
            self._result = source._result
        else:
            source._mark_retrieved()
            self._exception = exc
        self._state = FINISHED
        return True

    # Stricter than typeshed's ``BaseException | None`` on purpose: set_exception(None)
    # would finish the future with a None *result*.
    def set_exception(self, exception: BaseException) -> None:  # type: ignore[override]
        """Complete the future with ``exception``; callable from any thread.

        Raises:
            concurrent.futures.InvalidStateError: the future is already done.
        """
        if isinstance(exception, type):
            exception = exception()
        with MutexLock(self._mutex):
            if self._state in _DONE_STATES:
                raise self._already_done()
            self._exception = exception
            self._state = FINISHED
            if self._blocking is not None:
                self._blocking.wake(self, "add_exception")
        self._invoke_callbacks()

    def cancel(self, msg: Any = None) -> bool:
        """Cancel the future unless it is running or done; True if it is cancelled.

        ``msg`` is accepted for asyncio's sake (its tasks pass their cancel
        message to the future they wait on) and otherwise unused.
        """
        with MutexLock(self._mutex):
            state = self._state
            if state is FINISHED or state is RUNNING:
                return False
            if state is CANCELLED or state is CANCELLED_AND_NOTIFIED:
                return True
            self._state = CANCELLED_AND_NOTIFIED
            if self._blocking is not None:
                self._blocking.wake(self, "add_cancelled")
        self._invoke_callbacks()
        return True

    def set_running_or_notify_cancel(self) -> bool:
        """The executor protocol: mark running, or report that it was cancelled."""
        with MutexLock(self._mutex):
            if self._state is PENDING:
                self._state = RUNNING
                return True
            if self._state is CANCELLED or self._state is CANCELLED_AND_NOTIFIED:
                return False
        raise InvalidStateError(f"{self!r} is {_STATE_NAMES[self._state]}; cannot start running")

    # -- the task protocol ------------------------------------------------------------------

    def __iter__(self) -> Generator[Future[T], None, T]:
        """``value = yield from future`` in a generator task."""
        if self._state not in _DONE_STATES:
            yield self
        return self.result()

    def __await__(self) -> Generator[Any, None, T]:
        """``value = await future`` in an ``async def`` task, or in a coroutine run by asyncio or trio."""
        loop = _context.thread_context.loop
        if loop is None or loop._current_task is None:
            return (yield from await_elsewhere(self))  # type: ignore[no-any-return]
        if self._state not in _DONE_STATES:
            yield self
        return self.result()


def done_future(value: Any) -> Future[Any]:
    """A future born resolved with ``value``: the fast paths' answer when no wait is needed.

    Nobody else can see it yet, so its state is set without the mutex.
    """
    future: Future[Any] = Future()
    future._result = value
    future._state = FINISHED
    return future


def failed_future(exc: BaseException) -> Future[Any]:
    """A future born failed with ``exc``."""
    future: Future[Any] = Future()
    future._exception = exc
    future._state = FINISHED
    return future


def read_outcome(future: Any) -> tuple[Any, BaseException | None, bool]:
    """``(value, exception, cancelled)`` of the done ``future``, of any origin.

    The combinators, task groups and :func:`copy_outcome` read every outcome
    here, so that they cope with the least :func:`is_future_like` lets
    through: ``add_done_callback``, ``result`` and ``done``. ``result()``
    raising is a failure, and raising a ``concurrent.futures.CancelledError``
    a cancellation, unless the object has a ``cancelled()`` to ask. The
    exception of a cancelled future is the ``CancelledError`` its ``result()``
    raises. A finished tasklets future is read without its mutex, as a task
    reads it; a ``concurrent.futures.Future`` through ``cancelled()`` and
    ``exception()``; any other object's ``result()`` is called once (it may
    block: a Dask future's fetches the value), on the calling thread.
    """
    if isinstance(future, Future) and future._state is FINISHED:
        exc = future._exception
        if exc is None:
            return future._result, None, False
        future._mark_retrieved()
        return None, exc, False
    if isinstance(future, concurrent.futures.Future):
        if future.cancelled():
            return None, CancelledError(f"{future!r} was cancelled"), True
        exc = future.exception()
        if exc is not None:
            return None, exc, False
        return future.result(), None, False
    cancelled = getattr(future, "cancelled", None)
    if cancelled is not None and cancelled():
        return None, CancelledError(f"{future!r} was cancelled"), True
    try:
        return future.result(), None, False
    except CancelledError as error:
        return None, error, cancelled is None
    except BaseException as error:
        return None, error, False


def copy_outcome(source: Any, target: Future[Any]) -> None:
    """Complete ``target`` like the done future ``source`` (of any origin); ignore a ``target`` already done."""
    value, exc, cancelled = read_outcome(source)
    try:
        if cancelled:
            target.cancel()
        elif exc is not None:
            target.set_exception(exc)
        else:
            target.set_result(value)
    except InvalidStateError:
        pass  # target was cancelled (or timed out) meanwhile: nobody wants this outcome


def is_future_like(obj: object) -> bool:
    """Whether ``obj`` quacks like a ``concurrent.futures.Future`` (a task may yield it)."""
    return hasattr(obj, "add_done_callback") and hasattr(obj, "result") and hasattr(obj, "done")


def cancel_soon(future: Any) -> None:
    """Cancel ``future`` without letting a foreign library block the calling thread.

    Ours, and a ``concurrent.futures.Future`` with no done-callbacks (a thread
    pool's, say), are cancelled at once. Anything else is cancelled from the
    default thread pool, since its ``cancel()`` may block and the caller is
    often a loop: a Dask ``distributed.Future``'s waits for its client's I/O
    thread, and so does a Dask executor's stdlib future, whose done-callback
    (run inside ``cancel()``) cancels the remote work. (Called on Dask's I/O
    thread itself, that callback could not cancel anything.) An object
    without ``cancel()`` is left to run.
    """
    if isinstance(future, concurrent.futures.Future) and (
        isinstance(future, Future) or not future._done_callbacks  # type: ignore[attr-defined]
    ):
        future.cancel()
        return
    if not hasattr(future, "cancel"):
        return
    try:
        default_executor().submit(_cancel_quietly, future)
    except RuntimeError:  # the interpreter is shutting down: no new threads
        _cancel_quietly(future)


def _cancel_quietly(future: Any) -> None:
    try:
        future.cancel()
    except Exception:
        logger.exception("cancelling %r failed", future)


def detach(futures: Iterable[Any], callback: Callable[[Any], object]) -> None:
    """Remove ``callback`` from every input that supports removal."""
    for f in futures:
        if isinstance(f, Future) and f._state is not PENDING and f._state is not RUNNING:
            continue  # done: completing it already dropped every callback
        remove = getattr(f, "remove_done_callback", None)
        if remove is not None:
            try:
                remove(callback)
            except Exception:
                pass
