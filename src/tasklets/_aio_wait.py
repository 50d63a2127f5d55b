"""A tasklets task yielding an asyncio future (or task): what it waits on instead.

A tasklets future completed by the asyncio future's done-callback,
registered on that future's own loop thread (asyncio futures are not
thread-safe), and whose cancellation cancels the asyncio future there. A
future of a loop that is not running could never complete, so yielding one
is a :class:`BadYieldError`. A cancelled asyncio future gives asyncio's
``CancelledError`` (tasklets' ``Cancelled``), as it would under asyncio.
"""

from __future__ import annotations

import functools
from typing import Any

from ._bridge import running_asyncio_loop
from ._exceptions import BadYieldError, InvalidStateError
from ._future import Future

__all__ = ["asyncio_outcome", "asyncio_proxy"]


def asyncio_proxy(awaited: Any, task_loop: Any, task_name: str) -> Any:
    """A tasklets future with the outcome of the asyncio future ``awaited``; its cancel cancels it.

    Raises:
        BadYieldError: ``awaited``'s loop is not running, so it could never complete.
    """
    loop = awaited.get_loop()
    proxy: Future[Any] = Future()
    copy = functools.partial(_copy_from_asyncio, proxy)
    if loop is task_loop:
        awaited.add_done_callback(copy)
        proxy.add_done_callback(functools.partial(_cancel_on_its_loop, awaited, None))
    elif loop.is_running() and not loop.is_closed():
        loop.call_soon_threadsafe(awaited.add_done_callback, copy)
        proxy.add_done_callback(functools.partial(_cancel_on_its_loop, awaited, loop))
    else:
        raise BadYieldError(
            f"task {task_name!r} yielded {awaited!r}, an asyncio future of {loop!r}, which is not "
            "running: nothing would ever complete it. Run that loop (in its own thread), create the "
            "future on the running loop, or run this task on it with tasklets.asyncio.EventLoop."
        )
    return proxy


def asyncio_outcome(awaited: Any) -> tuple[Any, BaseException | None]:
    """``(value, exception)`` of a done asyncio future; a cancelled one gives asyncio's CancelledError."""
    try:
        return awaited.result(), None
    except BaseException as exc:
        return None, exc


def _copy_from_asyncio(proxy: Any, awaited: Any) -> None:
    if proxy.done():
        return
    try:
        value = awaited.result()
    except BaseException as exc:  # asyncio's CancelledError included: the task sees what asyncio would
        try:
            proxy.set_exception(exc)
        except InvalidStateError:
            pass  # cancelled meanwhile
    else:
        try:
            proxy.set_result(value)
        except InvalidStateError:
            pass


def _cancel_on_its_loop(awaited: Any, loop: Any, proxy: Any) -> None:
    if not proxy.cancelled() or awaited.done():
        return
    if loop is None or running_asyncio_loop() is loop:
        awaited.cancel()
    else:
        try:
            loop.call_soon_threadsafe(awaited.cancel)
        except RuntimeError:
            pass  # its loop closed meanwhile
