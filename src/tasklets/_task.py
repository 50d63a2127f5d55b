"""Tasks: generators and coroutines driven by the futures they yield.

Theory of operation
-------------------
A :class:`Task` is a :class:`Future` that owns a generator (or coroutine) and
a small explicit stepper, ``_step`` (after tornado's ``gen.Runner`` and
asyncio's ``Task.__step``). One step sends a value or throws an exception
into the generator and looks at what comes out:

* a future that is already done: its outcome goes straight back in, without
  a trip through the loop;
* a pending future: the task registers ``_on_done`` on it and records it in
  ``_waiting_on``. That callback may run on any thread; it never steps the
  task, it only enqueues the step on the task's loop. The step checks that
  the future is still the one awaited, so a late completion of a future the
  task has abandoned (after a cancellation) is dropped;
* ``None``: the step is enqueued again behind everything already ready;
* a future-like object that is no ``concurrent.futures.Future`` (a Dask
  ``distributed.Future``, say): its ``result()`` may block (Dask's fetches
  the value from a worker), so the loop never calls it. Its outcome is read
  on the thread that completes it, in ``_on_done``, or, when it is already
  done at the ``yield``, in the default thread pool; likewise its
  ``cancel()`` runs in the pool (:func:`cancel_soon`);
* a list or tuple: waited on as ``gather(...)``;
* anything else: a :class:`BadYieldError` is thrown back in, saying what to
  write instead.

``cancel()`` marks the task, abandons and cancels what it waits on, and
enqueues a step, which throws :class:`Cancelled` at the task's ``yield``.

A task is referenced by its loop's ``_tasks`` set until it finishes, so it
cannot be garbage collected while it waits. A task that fails without anyone
asking for its exception logs it (with its name and traceback) when it is
collected.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import types
from collections.abc import Callable, Coroutine, Generator
from concurrent.futures import Future as _CfFuture
from concurrent.futures._base import FINISHED, PENDING, RUNNING
from typing import Any, ParamSpec, TypeVar, cast, overload

from . import _context
from ._aio_loop import EventLoop
from ._aio_task import AsyncioTask, asyncio_current_tasks, register_task
from ._aio_wait import asyncio_outcome, asyncio_proxy
from ._bridge import is_asyncio_future, running_asyncio_loop
from ._combinators import gather
from ._exceptions import BadYieldError, Cancelled
from ._future import Future, cancel_soon, copy_outcome, is_future_like, read_outcome
from ._guest import GuestLoop, guest_loop_for
from ._loop import Loop, _get_ident
from ._mutex import take
from ._where import default_executor, loop_for_caller

__all__ = ["Task", "task", "spawn", "current_task"]

logger = logging.getLogger("tasklets")

T = TypeVar("T")
P = ParamSpec("P")

_task_numbers = itertools.count(1)


class Task(Future[T], AsyncioTask):
    """A generator or coroutine running on a loop; its result is the task's result.

    Create tasks by calling a function decorated with :func:`task`, or with
    :func:`spawn`. Inside a running loop the task is scheduled on that loop;
    elsewhere it starts on the default background loop.
    """

    __slots__ = (
        "_coro",
        "_loop",
        "_waiting_on",
        "_resume_from",
        "_must_cancel",
        "_cancel_message",
        "_name",
        "_qualname",
        "_number",
        "_log_exception",
        "_wakeup",
        "_stepper",
        "_cancels",
        "_asyncio_host",
    )

    def __init__(
        self,
        coro: Generator[Any, Any, T] | Coroutine[Any, Any, T],
        *,
        name: str | None = None,
        loop: Loop | None = None,
    ) -> None:
        if not (isinstance(coro, (types.GeneratorType, types.CoroutineType)) or _is_generator_like(coro)):
            raise TypeError(
                f"Task() needs a generator or a coroutine, got {coro!r}. "
                "Call the generator function first: Task(fn(*args)), or use spawn(fn, *args)."
            )
        super().__init__()
        self._coro: Any = coro
        self._waiting_on: Any = None
        self._resume_from: Any = None
        self._must_cancel = False
        self._cancel_message: str | None = None
        self._name = name
        self._qualname: str = getattr(coro, "__qualname__", "Task")
        self._number = next(_task_numbers)
        self._log_exception = False
        self._cancels = 0
        if loop is None:
            loop = _loop_for_new_task()
        # Bound once, not at every wait: registered on every future the task
        # waits on, and enqueued at every step. (Cycles broken in _finish.)
        self._wakeup = self._on_done
        # On an asyncio loop (its own, or a foreign one as a guest) the task is
        # in asyncio.all_tasks() and each step makes it asyncio's current_task();
        # decided here, so plain loops pay one test per step for it.
        self._stepper = self._step
        self._asyncio_host: Any = None  # the asyncio loop whose current_task() this task is while it steps
        if type(loop) is not Loop and isinstance(loop, (EventLoop, GuestLoop)):
            self._asyncio_host = loop.host if type(loop) is GuestLoop else loop
            register_task(self)
        self._loop: Loop = loop
        loop._tasks.add(self)
        loop._enqueue(self._stepper)

    # -- identity -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name given to the task, else its function's qualified name and a number."""
        if self._name is None:
            self._name = f"{self._qualname}-{self._number}"
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = str(value)

    @property
    def loop(self) -> Loop:
        """The loop that steps this task."""
        return self._loop

    def __repr__(self) -> str:
        parts = [f"<Task {self.name!r} {self._describe_state()}"]
        if not self.done():
            where = _suspension_point(self._coro)
            if where:
                parts.append(f"at {where}")
            if self._waiting_on is not None:
                parts.append(f"waiting on {self._waiting_on!r}")
            if self._must_cancel:
                parts.append("(cancelling)")
        return " ".join(parts) + ">"

    # -- results (mark the exception as seen) --------------------------------------------

    def result(self, timeout: float | None = None) -> T:
        self._log_exception = False
        try:
            return super().result(timeout)
        finally:
            self._log_exception = False  # again: the task may have failed while we waited

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._log_exception = False
        try:
            return super().exception(timeout)
        finally:
            self._log_exception = False

    def _mark_retrieved(self) -> None:
        self._log_exception = False

    def __del__(self) -> None:
        if getattr(self, "_log_exception", False):  # unset if __init__ refused its argument
            exc = cast(BaseException, self._exception)  # set whenever _log_exception is
            logger.error(
                "exception of task %r was never retrieved", self, exc_info=(type(exc), exc, exc.__traceback__)
            )

    # -- cancellation ------------------------------------------------------------------------

    def cancel(self, msg: str | None = None) -> bool:
        """Ask the task to stop: :class:`Cancelled` is thrown in at its current ``yield``.

        The future the task waits on is cancelled too. Callable from any
        thread. Returns False if the task is already done. The task may catch
        :class:`Cancelled` to clean up, and may even swallow it and go on.
        """
        if self._state is not PENDING:
            return self.cancelled()
        self._cancels += 1
        loop = self._loop
        if loop._thread_id != _get_ident() and loop._thread_id is not None:
            loop.call_soon_threadsafe(self._cancel_on_loop, msg)
            return True
        return self._cancel_on_loop(msg)

    def _cancel_on_loop(self, msg: str | None) -> bool:
        if self._state is not PENDING:
            return False
        self._must_cancel = True
        self._cancel_message = msg
        waited = self._waiting_on
        if waited is not None:
            # Abandon it first: its completion, caused by the cancel() below or
            # arriving late from another thread, must not resume us again.
            self._waiting_on = None
            remove = getattr(waited, "remove_done_callback", None)
            if remove is not None:
                remove(self._wakeup)
            elif isinstance(waited, _CfFuture):
                _forget_callback(waited, self._wakeup)
            try:
                cancel_soon(waited)  # at once, or from the pool where a foreign cancel() may block
            except Exception:
                logger.exception("cancelling %r, awaited by %r, failed", waited, self)
            if isinstance(waited, _CfFuture) and waited.done() and not waited.cancelled():
                # It completed before it could be cancelled (on another thread,
                # say): deliver that outcome; the cancellation lands at the
                # task's next wait.
                self._resume_from = waited
            self._loop._ready.append(self._stepper)
        # Otherwise a step is already enqueued (or running): it sees _must_cancel.
        return True

    # -- waking up -------------------------------------------------------------------------------

    def _on_done(self, future: Any) -> None:
        """Done-callback on what the task waits on; runs on the completing thread."""
        loop = self._loop
        if loop._thread_id == _get_ident():
            if future is self._waiting_on:
                self._waiting_on = None
                self._resume_from = future
                loop._ready.append(self._stepper)
        elif isinstance(future, _CfFuture):
            loop._enqueue(functools.partial(self._resume_on_loop, future))
        elif future is self._waiting_on:  # else abandoned: its outcome is nobody's business
            # A foreign future's result() may block (Dask fetches the value):
            # read it here, on its own thread, and hand the loop the outcome.
            loop._enqueue(functools.partial(self._resume_on_loop, future, _resolved(future)))

    def _resume_on_loop(self, future: Any, outcome: Future[Any] | None = None) -> None:
        if future is self._waiting_on:
            self._waiting_on = None
            self._resume_from = future if outcome is None else outcome
            self._stepper()

    # -- the stepper ---------------------------------------------------------------------------------

    def _step(self) -> None:
        if self._state is not PENDING:
            return
        value: Any = None
        exc: BaseException | None = None
        source = self._resume_from
        self._resume_from = None
        if source is not None:
            # A completed wait is delivered even when cancellation is pending:
            # its result may be something the task now owns (a lock, a queue
            # item). The cancellation then lands at the task's next wait.
            if type(source) is Future and source._state is FINISHED:
                value = source._result
                exc = source._exception
            else:
                value, exc = _outcome(source)
        elif self._must_cancel:
            self._must_cancel = False
            exc = Cancelled(self._cancel_message) if self._cancel_message else Cancelled()
        coro = self._coro
        loop = self._loop
        outer = loop._current_task
        loop._current_task = self
        host = self._asyncio_host
        if host is not None:
            asyncio_current_tasks[host] = self  # what asyncio's _enter_task does, without a call
        try:
            while True:
                if exc is None:
                    yielded = coro.send(value)
                else:
                    yielded = coro.throw(exc)
                    exc = None
                if yielded is None:
                    loop._ready.append(self._stepper)
                    return
                if isinstance(yielded, Future):
                    if yielded._plain_callbacks:
                        # add_done_callback inlined: this is the hottest wait of all.
                        mutex = yielded._mutex
                        try:
                            mutex.pop()  # _mutex.take(mutex), inlined
                        except IndexError:
                            take(mutex)
                        state = yielded._state
                        if state is PENDING or state is RUNNING:
                            self._waiting_on = yielded
                            callbacks = yielded._callbacks
                            if callbacks is None:
                                yielded._callbacks = [self._wakeup]
                            else:
                                callbacks.append(self._wakeup)
                            mutex.append(True)
                            if self._must_cancel:
                                self._cancel_on_loop(self._cancel_message)  # cancelled from inside this step
                            return
                        mutex.append(True)
                    elif not yielded.done():
                        self._wait_on(yielded)
                        return
                    if yielded._state is FINISHED and yielded._exception is None:
                        value = yielded._result
                    else:
                        value, exc = _outcome(yielded)
                    continue
                if isinstance(yielded, (list, tuple)):
                    try:
                        self._wait_on(gather(yielded))
                    except TypeError as error:
                        value, exc = None, BadYieldError(f"task {self.name!r} yielded {error}")
                        continue
                    return
                if is_future_like(yielded):
                    if is_asyncio_future(yielded):
                        if yielded.done():
                            value, exc = asyncio_outcome(yielded)
                            continue
                        try:
                            self._wait_on(asyncio_proxy(yielded, loop, self.name))
                        except BadYieldError as error:
                            value, exc = None, error
                            continue
                        return
                    if isinstance(yielded, _CfFuture):
                        if yielded.done():
                            value, exc = _outcome(yielded)
                            continue
                    elif yielded.done():
                        # Its result() may block: read it in the pool, not here.
                        self._wait_on(_resolve_off_loop(yielded))
                        return
                    self._wait_on(yielded)
                    return
                value, exc = None, BadYieldError(_explain_bad_yield(self, yielded))
        except StopIteration as stop:
            self._finish(stop.value, None)
        except Cancelled:
            self._finish_cancelled()
        except (KeyboardInterrupt, SystemExit) as error:
            self._finish(None, error)
            raise
        except BaseException as error:
            self._finish(None, error)
        finally:
            loop._current_task = outer
            if host is not None:
                if outer is None:
                    del asyncio_current_tasks[host]
                else:  # stepped inside another task's step: that one is current again
                    asyncio_current_tasks[host] = outer

    def _wait_on(self, future: Any) -> None:
        self._waiting_on = future
        future.add_done_callback(self._wakeup)
        if self._must_cancel and self._waiting_on is future:
            # cancel() was called from inside this very step: act on it now.
            self._cancel_on_loop(self._cancel_message)

    def _finish(self, value: Any, exc: BaseException | None) -> None:
        self._coro = None  # the generator and its frame can go now
        # Break the task -> bound method -> task cycles. Typed as never None: nothing reads
        # them once the task is done (every reader checks _state first).
        self._wakeup = self._stepper = None  # type: ignore[assignment]
        self._loop._tasks.discard(self)
        if exc is None:
            self.set_result(value)
        else:
            self._log_exception = True
            self.set_exception(exc)

    def _finish_cancelled(self) -> None:
        self._coro = None
        self._wakeup = self._stepper = None  # type: ignore[assignment]  # as in _finish
        self._loop._tasks.discard(self)
        Future.cancel(self)


def _outcome(future: Any) -> tuple[Any, BaseException | None]:
    """(value, exception) of a done future of any origin (a cancellation is a CancelledError)."""
    value, exc, _ = read_outcome(future)
    return value, exc


def _resolved(future: Any) -> Future[Any]:
    """A done :class:`Future` with the outcome of the done future-like ``future``."""
    value, exc = _outcome(future)
    resolved: Future[Any] = Future()
    if exc is None:
        resolved.set_result(value)
    else:
        resolved.set_exception(exc)
    return resolved


def _resolve_off_loop(future: Any) -> Future[Any]:
    """A future of the outcome of the done future-like ``future``, read in the default thread pool."""
    proxy: Future[Any] = Future()
    default_executor().submit(lambda: copy_outcome(_resolved(future), proxy))
    return proxy


def _forget_callback(future: _CfFuture[Any], fn: Callable[..., Any]) -> None:
    """Take ``fn`` off a stdlib future's done-callbacks (it has no remove_done_callback).

    An abandoned wait leaves nothing behind on a long-lived future, and a thread
    pool's future with no other callback can then be cancelled at once.
    """
    with future._condition:
        try:
            future._done_callbacks.remove(fn)  # type: ignore[attr-defined]
        except ValueError:
            pass


def _is_generator_like(obj: object) -> bool:
    return hasattr(obj, "send") and hasattr(obj, "throw") and hasattr(obj, "__next__")


def _explain_bad_yield(task: Task[Any], yielded: object) -> str:
    if isinstance(yielded, types.GeneratorType):
        return (
            f"task {task.name!r} yielded a generator, {yielded!r}. To run it as part of this task, "
            "write 'result = yield from gen'; to run it as a task of its own, decorate its "
            "function with @tasklets.task."
        )
    if isinstance(yielded, types.CoroutineType):
        yielded.close()
        return (
            f"task {task.name!r} yielded a coroutine, {yielded!r}. Decorate its function with "
            "@tasklets.task and yield the task it returns, or await it from an async def task."
        )
    return (
        f"task {task.name!r} yielded {yielded!r}, which is not something a task can wait on. "
        "A task may yield a future (any object with add_done_callback), a list or tuple of "
        "futures, or None to let other tasks run."
    )


# ``await future`` and ``yield from future`` step into Future.__iter__: a repr
# pointing there would show the library's line, not the task's.
_FUTURE_ADAPTERS = (Future.__iter__.__code__, Future.__await__.__code__)


def _suspension_point(coro: Any) -> str | None:
    """'file:line' of the innermost generator/coroutine frame the task is suspended in (the task's own code)."""
    where = None
    seen = 0
    while coro is not None and seen < 100:
        frame = getattr(coro, "gi_frame", None) or getattr(coro, "cr_frame", None)
        if frame is None:
            break
        if frame.f_code not in _FUTURE_ADAPTERS:
            where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        coro = getattr(coro, "gi_yieldfrom", None) or getattr(coro, "cr_await", None)
        seen += 1
    return where


# -- making tasks --------------------------------------------------------------------------------


@overload
def task(fn: Callable[P, Generator[Any, Any, T]], /) -> Callable[P, Task[T]]: ...
@overload
def task(fn: Callable[P, Coroutine[Any, Any, T]], /) -> Callable[P, Task[T]]: ...
@overload
def task(*, name: str | None = None) -> Callable[[Callable[P, Any]], Callable[P, Task[Any]]]: ...


def task(fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Make a generator function or ``async def`` function return a running :class:`Task`.

    Calling the decorated function returns the task at once. Inside a running
    loop it is scheduled on that loop; outside any loop it starts on the
    default background loop, so plain code can write ``fetch(url).result()``.

    Args:
        fn: a generator function (``def`` with ``yield``) or an ``async def``.
        name: a name for every task made (default: the function's name and a number).

    Raises:
        TypeError: ``fn`` is an ordinary function, which could never wait on anything.
    """
    if fn is None:
        return functools.partial(task, name=name)
    if not (inspect.isgeneratorfunction(fn) or inspect.iscoroutinefunction(fn)):
        raise TypeError(
            f"@task decorates generator functions and async def functions; {fn!r} is neither. "
            "Give it a 'yield' (to wait on futures) or make it 'async def'; "
            "to run ordinary blocking code in the background, use tasklets.to_thread()."
        )

    @functools.wraps(fn)
    def start_task(*args: Any, **kwargs: Any) -> Task[Any]:
        return Task(fn(*args, **kwargs), name=name)

    start_task.__tasklets_task__ = True  # type: ignore[attr-defined]
    return start_task


@overload
def spawn(fn: Callable[..., Task[T]], /, *args: Any, name: str | None = None, **kwargs: Any) -> Task[T]: ...
@overload
def spawn(
    fn: Callable[..., Generator[Any, Any, T]], /, *args: Any, name: str | None = None, **kwargs: Any
) -> Task[T]: ...
@overload
def spawn(
    fn: Callable[..., Coroutine[Any, Any, T]], /, *args: Any, name: str | None = None, **kwargs: Any
) -> Task[T]: ...


def spawn(fn: Callable[..., Any], /, *args: Any, name: str | None = None, **kwargs: Any) -> Task[Any]:
    """Run ``fn(*args, **kwargs)`` as a task: a generator function, ``async def`` or @task function."""
    made = fn(*args, **kwargs)
    if isinstance(made, Task):
        if name is not None:
            made.name = name
        return made
    return Task(made, name=name)


def current_task() -> Task[Any] | None:
    """The task being stepped in this thread right now, or None outside any task."""
    loop = _context.thread_context.loop
    return None if loop is None else loop._current_task



def _loop_for_new_task() -> Loop:
    """Where a task made here runs: this thread's loop; in a running foreign asyncio loop, that loop as a guest."""
    loop = _context.thread_context.loop
    if loop is not None:
        return loop
    host = running_asyncio_loop()
    if host is not None and not isinstance(host, Loop):
        return guest_loop_for(host)
    return loop_for_caller()
