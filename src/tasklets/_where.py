"""Where work runs: the caller's loop or the default background loop, and the default thread pool.

Plain synchronous code that calls a task function outside any loop gets the
*default background loop*: a daemon thread started on first use, so that
``fetch(url).result()`` just works. Tasks, timers, streams and the HTTP
client all ask :func:`loop_for_caller` which loop to live on; blocking work
(``to_thread``, name resolution, a foreign future's ``cancel()``) goes to
:func:`default_executor`.

This module sits just above the loop and below everything that schedules
work, so that futures, timers, tasks and combinators can all reach the
defaults without importing ``run()`` above them.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from . import _context
from ._aio_loop import EventLoop
from ._clock import Clock
from ._exceptions import LoopError
from ._loop import Loop

__all__ = ["current_loop", "default_loop", "default_executor", "loop_for_caller", "new_loop", "work_in_threads"]

T = TypeVar("T")

_default_loop: Loop | None = None
_default_thread: threading.Thread | None = None
_default_lock = threading.Lock()
_default_executor: _CountingExecutor | None = None


class _CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The default thread pool, counting the work handed to it and not yet done.

    A virtual clock must not jump past a deadline while a thread is still
    working on what the loop waits for (a name lookup, a foreign future's
    cancel): ``work_in_threads()`` tells it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._count_lock = threading.Lock()
        self._in_flight = 0
        self._finished = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        with self._count_lock:
            self._in_flight += 1
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)
        return future

    def _done(self, _: object) -> None:
        with self._count_lock:
            self._in_flight -= 1
            self._finished += 1


def work_in_threads() -> tuple[int, int]:
    """``(in flight, finished so far)`` of the work handed to the default thread pool."""
    executor = _default_executor
    if executor is None:
        return 0, 0
    return executor._in_flight, executor._finished


#: What ``run()`` and the default loop are: a tasklets loop that is also an
#: asyncio loop, so asyncio libraries work inside any task (the cost, against
#: a plain Loop, is measure 6 of bench/core.py).
LOOP_FACTORY: Callable[..., Loop] = EventLoop


def new_loop(*, clock: Clock | None = None, debug: bool | None = None) -> Loop:
    """A loop of the kind ``run()`` and the default loop use."""
    return LOOP_FACTORY(clock=clock, debug=debug)


def current_loop() -> Loop:
    """The loop running in the calling thread.

    Raises:
        LoopError: no loop runs in this thread (plain code uses
            ``default_loop()``, or starts one with ``tasklets.run``).
    """
    loop = _context.thread_context.loop
    if loop is None:
        raise LoopError("no tasklets loop runs in this thread; start one with tasklets.run(main)")
    return loop


def loop_for_caller() -> Loop:
    """The loop of the calling thread if it runs one, else the default loop."""
    return _context.thread_context.loop or default_loop()


def default_loop() -> Loop:
    """The process's background loop, started in a daemon thread on first use."""
    global _default_loop, _default_thread
    loop = _default_loop
    if loop is not None:
        return loop
    with _default_lock:
        if _default_loop is None:
            loop = new_loop()
            thread = threading.Thread(target=_run_default_loop, args=(loop,), name="tasklets-default-loop", daemon=True)
            _default_loop, _default_thread = loop, thread
            thread.start()
        return _default_loop


def default_executor() -> _CountingExecutor:
    """The thread pool behind ``to_thread`` and name resolution, made on first use."""
    global _default_executor
    executor = _default_executor
    if executor is None:
        with _default_lock:
            if _default_executor is None:
                _default_executor = _CountingExecutor(
                    max_workers=min(64, (os.cpu_count() or 1) + 16), thread_name_prefix="tasklets-worker"
                )
            executor = _default_executor
    return executor


def _forget_defaults_after_fork() -> None:
    # The default loop's thread and the pool's workers do not exist in a
    # forked child; waiting on them would hang. The child makes its own on
    # first use (the parent's loop object is left alone: its fds are shared).
    global _default_loop, _default_thread, _default_executor, _default_lock
    _default_loop = _default_thread = _default_executor = None
    _default_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_defaults_after_fork)


def _run_default_loop(loop: Loop) -> None:
    try:
        loop.run_forever()
    finally:
        loop.close()


@atexit.register
def _stop_default_loop() -> None:
    global _default_loop, _default_thread
    with _default_lock:
        loop, thread = _default_loop, _default_thread
        _default_loop = _default_thread = None
    if loop is not None and thread is not None:
        loop.stop()
        thread.join(timeout=1.0)
