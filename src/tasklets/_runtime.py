"""Where loops come from: ``run()`` for a program's main, and the default background loop.

``tasklets.run(main)`` runs a fresh loop in the calling thread until ``main``
finishes; it is what a program's entry point uses. Plain synchronous code
that calls a task function outside any loop gets the *default background
loop* instead: a daemon thread started on first use, so that
``fetch(url).result()`` just works.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from . import _context
from ._clock import Clock
from ._exceptions import LoopError
from ._future import Future, copy_outcome, is_future_like
from ._loop import Loop
from ._task import Task

__all__ = ["run", "current_loop", "default_loop", "default_executor"]

T = TypeVar("T")

logger = logging.getLogger("tasklets")

_default_loop: Loop | None = None
_default_thread: threading.Thread | None = None
_default_lock = threading.Lock()
_default_executor: concurrent.futures.ThreadPoolExecutor | None = None


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


def default_loop() -> Loop:
    """The process's background loop, started in a daemon thread on first use."""
    global _default_loop, _default_thread
    loop = _default_loop
    if loop is not None:
        return loop
    with _default_lock:
        if _default_loop is None:
            loop = Loop()
            thread = threading.Thread(target=_run_default_loop, args=(loop,), name="tasklets-default-loop", daemon=True)
            _default_loop, _default_thread = loop, thread
            thread.start()
        return _default_loop


def default_executor() -> concurrent.futures.ThreadPoolExecutor:
    """The thread pool behind ``to_thread`` and name resolution, made on first use."""
    global _default_executor
    executor = _default_executor
    if executor is None:
        with _default_lock:
            if _default_executor is None:
                _default_executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=min(64, (os.cpu_count() or 1) + 16), thread_name_prefix="tasklets-worker"
                )
            executor = _default_executor
    return executor


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


def in_loop_thread_or_default() -> Loop:
    """The loop of the calling thread if it runs one, else the default loop."""
    return _context.thread_context.loop or default_loop()


def run(fn: Callable[..., Any], /, *args: Any, clock: Clock | None = None, debug: bool | None = None) -> Any:
    """Run ``fn(*args)`` on a fresh loop in this thread and return its result.

    ``fn`` may be a generator function, an ``async def`` function or a
    ``@task`` function. When ``run`` is called in the main thread, Ctrl-C
    (SIGINT) cancels the main task: it receives :class:`Cancelled` at its
    current ``yield``, may clean up, and then ``run`` raises
    :class:`KeyboardInterrupt`. A second Ctrl-C interrupts at once. Tasks
    still pending when the main task ends are cancelled and given a chance to
    clean up before the loop is closed.

    Args:
        fn: what to run.
        *args: its arguments.
        clock: a clock for the loop (tests pass ``tasklets.testing.VirtualClock``).
        debug: debug mode for the loop (default: ``TASKLETS_DEBUG``).

    Returns:
        What ``fn`` returned.
    """
    loop = Loop(clock=clock, debug=debug)
    outcome: Future[Any] = Future()
    holder: dict[str, Any] = {}
    interrupted = False

    def start() -> None:
        try:
            made = fn(*args)
        except BaseException as exc:
            outcome.set_exception(exc)
            return
        if isinstance(made, Task):
            main = made
        elif hasattr(made, "send") and hasattr(made, "throw"):
            main = Task(made, loop=loop)
        elif is_future_like(made):
            main = Task(_wait_for(made), loop=loop)
        else:
            outcome.set_result(made)
            return
        holder["main"] = main
        main.add_done_callback(lambda done: copy_outcome(done, outcome))

    def on_interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C interrupts at once
        main = holder.get("main")
        if main is not None:
            main.cancel("KeyboardInterrupt")
        elif not outcome.done():
            outcome.cancel()

    handle_sigint = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    try:
        if handle_sigint:
            loop.add_signal_handler(signal.SIGINT, on_interrupt)
        loop.call_soon(start)
        try:
            loop.run_until_complete(outcome)
        except BaseException:
            if interrupted and outcome.cancelled():
                raise KeyboardInterrupt() from None
            raise
        if interrupted:
            raise KeyboardInterrupt()
        return outcome.result()
    finally:
        try:
            _cancel_leftover_tasks(loop)
        finally:
            loop.close()


def _wait_for(future: Any) -> Any:
    return (yield future)


def _wait_inside(tasks: list[Task[Any]], timeout: float) -> Any:
    """Wait for ``tasks`` from inside the loop, so the timeout runs on that loop's clock."""
    from ._combinators import wait  # combinators build on this module

    yield wait(tasks, timeout=max(0.0, timeout))


#: Seconds ``run()`` gives leftover tasks to finish after cancelling them.
LEFTOVER_GRACE = 10.0


def _cancel_leftover_tasks(loop: Loop) -> None:
    """Cancel what the main task left running and let it clean up, within a bounded time.

    A task that swallows its cancellation and keeps waiting would otherwise
    hold ``run()`` forever; after ``LEFTOVER_GRACE`` seconds (on the loop's
    clock) such tasks are named in a warning and abandoned with the loop.
    """
    deadline = loop.time() + LEFTOVER_GRACE
    for _ in range(3):
        leftovers = [t for t in loop._tasks if not t.done()]
        if not leftovers:
            return
        for leftover in leftovers:
            leftover.cancel()
        loop.run_until_complete(Task(_wait_inside(leftovers, deadline - loop.time()), loop=loop))
    stubborn = [t for t in loop._tasks if not t.done()]
    if stubborn:
        logger.warning(
            "run(): %d task(s) still running after being cancelled, abandoned with the loop: %s",
            len(stubborn),
            ", ".join(repr(t) for t in stubborn[:10]),
        )
