"""``run()`` for a program's main: the top of the core.

``tasklets.run(main)`` runs a fresh loop in the calling thread until ``main``
finishes; it is what a program's entry point uses. Plain synchronous code
that calls a task function outside any loop gets the default background loop
instead (``_where.py``).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ._clock import Clock
from ._combinators import wait
from ._future import Future, copy_outcome, is_future_like
from ._loop import Loop
from ._task import Task

__all__ = ["run"]

T = TypeVar("T")

logger = logging.getLogger("tasklets")

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
        leftovers = list(loop.statistics().tasks)
        if not leftovers:
            return
        for leftover in leftovers:
            leftover.cancel()
        loop.run_until_complete(Task(_wait_inside(leftovers, deadline - loop.time()), loop=loop))
    stubborn = loop.statistics().tasks
    if stubborn:
        logger.warning(
            "run(): %d task(s) still running after being cancelled, abandoned with the loop: %s",
            len(stubborn),
            ", ".join(repr(t) for t in stubborn[:10]),
        )
