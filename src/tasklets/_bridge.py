"""Bridges between tasklets futures and the other async worlds: asyncio (and uvloop), trio.

Theory of operation
-------------------
``await future`` hands the future to whatever drives the coroutine. Inside a
tasklets task that is the task's stepper, which waits on it natively; from
a coroutine driven by asyncio, uvloop or trio, :func:`await_elsewhere` waits
in that library's own currency:

* **asyncio** (any loop, the tasklets :class:`~tasklets.asyncio.EventLoop`
  included): a future of the running loop is completed from the tasklets
  future's done-callback, directly when that callback runs on the loop's
  thread, else through ``call_soon_threadsafe``. Cancelling the awaiting
  asyncio task cancels the tasklets future (a tasklets task then receives
  ``Cancelled`` at its ``yield``).
* **trio**: the trio task parks in ``wait_task_rescheduled`` and is
  rescheduled through its run's token; a cancel scope cancels the future and
  the trio task wakes when the future is done, with ``trio.Cancelled`` if it
  ended cancelled.
* anything else (a coroutine stepped by hand, curio): a :class:`LoopError`
  saying what can drive a tasklets future.

The other direction, a tasklets task yielding an asyncio future, is
``_aio_wait``'s.

Nothing here imports asyncio or trio: a program that uses neither never
loads them, and a loop of theirs can only run if they are imported already.
"""

from __future__ import annotations

import functools
import sys
from _thread import get_ident
from collections.abc import Generator
from typing import Any

from ._exceptions import LoopError

__all__ = ["await_elsewhere", "running_asyncio_loop", "is_asyncio_future"]


def running_asyncio_loop() -> Any:
    """The asyncio loop running in this thread, or None (asyncio not even imported: None)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    return asyncio._get_running_loop()


def is_asyncio_future(obj: object) -> bool:
    """Whether ``obj`` is an asyncio future or task (asyncio's own duck-typing test)."""
    return getattr(obj, "_asyncio_future_blocking", None) is not None


# -- awaiting a tasklets future from asyncio or trio -------------------------------------------


def await_elsewhere(future: Any) -> Generator[Any, Any, Any]:
    """``await future`` from a coroutine that no tasklets task drives: the iterator to delegate to.

    Called by ``Future.__await__`` (a generator) at its first step, so what
    this raises is raised at the ``await``; it is no generator itself, which
    spares every step of the await one level of delegation.
    """
    asyncio = sys.modules.get("asyncio")
    loop = None if asyncio is None else asyncio._get_running_loop()
    if future.done():
        if loop is not None and future.cancelled():
            # What awaiting a cancelled future raises there (asyncio is loaded: its loop runs).
            raise asyncio.CancelledError()  # type: ignore[union-attr]
        return _at_once(future.result())
    if loop is not None:
        return _await_in_asyncio(future, loop)
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
        else:
            return _await_in_trio(future, trio).__await__()
    raise LoopError(
        f"nothing here can wait on {future!r}: a tasklets future is awaited inside a tasklets task, "
        "or in a coroutine run by asyncio (or uvloop) or trio, and this coroutine is driven by none of "
        "them. Start it with tasklets.run(), @tasklets.task or asyncio.run(), or block on "
        "future.result() from plain code."
    )


def _at_once(value: Any) -> Generator[Any, Any, Any]:
    return value
    yield  # a generator that finishes at its first step


def _await_in_asyncio(future: Any, loop: Any) -> Generator[Any, Any, Any]:
    waiter = loop.create_future()
    future.add_done_callback(functools.partial(_deliver_to_asyncio, loop, get_ident(), waiter))
    try:
        return (yield from waiter)
    finally:
        # Cancelling the awaiting asyncio task cancels the waiter and throws
        # CancelledError in here: the cancelled await cancels what it awaited.
        # (Here rather than in a done-callback of the waiter, which asyncio
        # would schedule as one more callback on every await.)
        if waiter.cancelled():
            future.cancel()


def _deliver_to_asyncio(loop: Any, thread: int, waiter: Any, future: Any) -> None:
    """The tasklets future's done-callback (any thread): complete ``waiter`` on its loop, which runs in ``thread``."""
    if get_ident() == thread:
        try:
            _copy_to_asyncio(future, waiter)
        except RuntimeError:
            if not loop.is_closed():
                raise  # else the loop closed meanwhile: nobody awaits any more
    else:
        try:
            loop.call_soon_threadsafe(_copy_to_asyncio, future, waiter)
        except RuntimeError:
            pass  # the loop is closed: nobody awaits any more


def _copy_to_asyncio(future: Any, waiter: Any) -> None:
    if waiter.done():
        return  # cancelled meanwhile
    try:
        value = future.result()  # done: it does not wait
    except BaseException as exc:
        if future.cancelled():
            waiter.cancel()
        else:
            waiter.set_exception(exc)
    else:
        waiter.set_result(value)


async def _await_in_trio(future: Any, trio: Any) -> Any:
    outcome = sys.modules["outcome"]  # trio's own dependency, loaded with it

    lowlevel = trio.lowlevel
    task = lowlevel.current_task()
    token = lowlevel.current_trio_token()
    waiting = True
    raise_cancel: Any = None

    def wake() -> None:  # on trio's thread
        nonlocal waiting
        if not waiting:
            return
        waiting = False
        if future.cancelled() and raise_cancel is not None:
            lowlevel.reschedule(task, outcome.capture(raise_cancel))
        else:  # done: result() does not wait
            lowlevel.reschedule(task, outcome.capture(future.result))

    def on_done(_: object) -> None:  # any thread
        try:
            token.run_sync_soon(wake)
        except trio.RunFinishedError:
            pass

    def abort(raise_cancel_fn: Any) -> Any:
        nonlocal raise_cancel
        raise_cancel = raise_cancel_fn
        future.cancel()  # a task cleans up first: we wake when it is done
        return lowlevel.Abort.FAILED

    future.add_done_callback(on_done)
    return await lowlevel.wait_task_rescheduled(abort)
