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
from ._exceptions import CancelledError
from ._future import Future, copy_outcome, is_future_like
from ._loop import Loop, TimerHandle
from ._task import Task
from ._where import new_loop

__all__ = ["run"]

T = TypeVar("T")

logger = logging.getLogger("tasklets")


def run(fn: Callable[..., Any], /, *args: Any, clock: Clock | None = None, debug: bool | None = None) -> Any:
    """Run ``fn(*args)`` on a fresh loop in this thread and return its result.

    ``fn`` may be a generator function, an ``async def`` function or a
    ``@task`` function. Tasks still pending when the main task ends are
    cancelled and given up to ``LEFTOVER_GRACE`` seconds to clean up before
    the loop is closed.

    When ``run`` is called in the main thread, Ctrl-C (SIGINT) makes it raise
    :class:`KeyboardInterrupt`, whatever it is doing: while the main task
    runs, the task receives :class:`Cancelled` at its current ``yield`` and
    may clean up first; while leftover tasks clean up, they are given at most
    ``INTERRUPTED_GRACE`` seconds more. A second Ctrl-C stops waiting for any
    of that at once. A Ctrl-C while the loop is being made or closed is
    raised once it is closed, so no descriptor of the loop leaks.

    Args:
        fn: what to run.
        *args: its arguments.
        clock: a clock for the loop (tests pass ``tasklets.testing.VirtualClock``).
        debug: debug mode for the loop (default: ``TASKLETS_DEBUG``).

    Returns:
        What ``fn`` returned.
    """
    return _Run(fn, args).run(clock, debug)


#: Seconds ``run()`` gives leftover tasks to finish after cancelling them.
LEFTOVER_GRACE = 10.0
#: Seconds they are given once Ctrl-C was pressed.
INTERRUPTED_GRACE = 1.0

_STARTING, _MAIN, _CLEANUP, _CLOSING = "starting", "main", "cleanup", "closing"


class _Run:
    """One ``run()``: its loop, its main task, the leftovers, and Ctrl-C in every phase.

    Ctrl-C is never handed to Python's default handler while ``run()`` is
    busy: that raises :class:`KeyboardInterrupt` between any two bytecodes,
    halfway through making or closing the loop (leaking its socket pair and
    poller) or through a callback. From entry to exit SIGINT goes to
    :meth:`_on_signal`, which counts it and, while the loop is attached,
    forwards it to the loop's own handler: that wakes the loop's poll and
    enqueues :meth:`_on_loop`, which acts in the loop between two callbacks.
    Once the loop is closed and the default handler is back, ``run()`` raises
    :class:`KeyboardInterrupt` if any Ctrl-C was counted, so none is lost.
    """

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self.loop: Loop | None = None
        self.outcome: Future[Any] = Future()
        self.main: Task[Any] | None = None
        self.phase = _STARTING
        self.interrupts = 0  # Ctrl-Cs received
        self.acted = 0  # of them, how many the loop has acted on
        self.forward: Any = None  # the loop's handler, while the loop is attached
        self.deadline = 0.0  # of the leftovers' grace period
        self.give_up: TimerHandle | None = None
        self.waiting: Future[None] | None = None

    # -- the phases ---------------------------------------------------------------------

    def run(self, clock: Clock | None, debug: bool | None) -> Any:
        handles_sigint = (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        )
        if handles_sigint:
            signal.signal(signal.SIGINT, self._on_signal)
        value: Any = None
        error: BaseException | None = None
        try:
            try:
                loop = self.loop = new_loop(clock=clock, debug=debug)
            except BaseException as exc:
                error = exc
            else:
                try:
                    if handles_sigint:
                        self._attach(loop)
                    value = self._run_main(loop)
                except BaseException as exc:
                    error = exc
                finally:
                    try:
                        self._clean_up(loop)
                    except BaseException as exc:  # a second Ctrl-C cut the clean-up short
                        error = exc
                    finally:
                        self.phase = _CLOSING
                        self.forward = None
                        loop.close()  # also gives the Python-level SIGINT back to _on_signal
                        # Let go of the loop and its tasks while Ctrl-C still comes here:
                        # their finalizers run now, and Python drops a KeyboardInterrupt
                        # raised inside a finalizer ("Exception ignored in ...").
                        self.loop = self.main = self.waiting = self.give_up = None
                        del loop
        finally:
            if handles_sigint and signal.getsignal(signal.SIGINT) == self._on_signal:
                signal.signal(signal.SIGINT, signal.default_int_handler)
        if self.interrupts and not isinstance(error, KeyboardInterrupt):
            cause = None if error is None or isinstance(error, CancelledError) else error
            raise KeyboardInterrupt() from cause
        if error is not None:
            try:
                raise error
            finally:
                error = None  # no frame -> traceback -> frame cycle
        return value

    def _attach(self, loop: Loop) -> None:
        # The loop's handler wakes its poll (its waker is the signal wake-up fd)
        # and enqueues _on_loop; Python-level SIGINT stays with _on_signal,
        # which counts before it forwards, and which the loop gives back when
        # it closes.
        loop.add_signal_handler(signal.SIGINT, self._on_loop)
        self.forward = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._on_signal)

    def _run_main(self, loop: Loop) -> Any:
        self.phase = _MAIN
        if self.interrupts:  # Ctrl-C while the loop was being made: do not start main at all
            raise KeyboardInterrupt()
        loop.call_soon(self._start)
        return loop.run_until_complete(self.outcome)

    def _start(self) -> None:
        if self.outcome.done():  # Ctrl-C before main could start
            return
        outcome = self.outcome
        try:
            made = self.fn(*self.args)
        except BaseException as exc:
            outcome.set_exception(exc)
            return
        if isinstance(made, Task):
            main = made
        elif hasattr(made, "send") and hasattr(made, "throw"):
            main = Task(made, loop=self.loop)
        elif is_future_like(made):
            main = Task(_wait_for(made), loop=self.loop)
        else:
            outcome.set_result(made)
            return
        self.main = main
        main.add_done_callback(lambda done: copy_outcome(done, outcome))

    def _clean_up(self, loop: Loop) -> None:
        """Cancel what the main task left running and let it clean up, within a bounded time.

        A task that swallows its cancellation and keeps waiting would otherwise
        hold ``run()`` forever; after the grace period (on the loop's clock)
        such tasks are named in a warning and abandoned with the loop.
        """
        self.phase = _CLEANUP
        self.deadline = loop.time() + (INTERRUPTED_GRACE if self.interrupts else LEFTOVER_GRACE)
        for _ in range(3):
            leftovers = list(loop.statistics().tasks)
            if not leftovers:
                return
            for leftover in leftovers:
                leftover.cancel()
            self._wait_for(loop, leftovers)
        stubborn = loop.statistics().tasks
        if stubborn:
            logger.warning(
                "run(): %d task(s) still running after being cancelled, abandoned with the loop: %s",
                len(stubborn),
                ", ".join(repr(t) for t in stubborn[:10]),
            )

    def _wait_for(self, loop: Loop, tasks: list[Task[Any]]) -> None:
        """Run the loop until ``tasks`` are done or the grace period is over."""
        waiting = self.waiting = Future()
        left = len(tasks)

        def one_done(_: object) -> None:
            nonlocal left
            left -= 1
            if not left and not waiting.done():
                waiting.set_result(None)

        for leftover in tasks:
            leftover.add_done_callback(one_done)
        self.give_up = loop.call_at(self.deadline, self._stop_waiting)
        try:
            loop.run_until_complete(waiting)
        finally:
            self.give_up.cancel()
            for leftover in tasks:
                leftover.remove_done_callback(one_done)

    def _stop_waiting(self) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(None)

    # -- Ctrl-C -------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        """Python's SIGINT handler for the whole of ``run()``: runs between two bytecodes of the main thread."""
        self.interrupts += 1
        forward = self.forward
        if forward is None:
            return  # no loop to act: run() raises KeyboardInterrupt once its loop is closed
        if self.interrupts > 1 and self.loop is not None and self.loop.is_running():
            # A second Ctrl-C: stop at once, even if a callback is stuck (a
            # blocking call, an endless computation) and the loop could not act.
            raise KeyboardInterrupt()
        forward(signum, frame)

    def _on_loop(self) -> None:
        """A Ctrl-C, acted on in the loop between two callbacks.

        The first one asks politely: it cancels the main task (which may
        clean up), or cuts the leftovers' grace period to
        ``INTERRUPTED_GRACE``. Any later one stops waiting at once.
        """
        self.acted += 1
        self.interrupts = max(self.interrupts, self.acted)  # it may have reached the loop's handler directly
        if self.acted > 1:
            raise KeyboardInterrupt()
        if self.phase == _MAIN:
            if self.main is not None:
                self.main.cancel("KeyboardInterrupt")
            else:
                self.outcome.cancel()  # main has not started yet
        elif self.phase == _CLEANUP and self.loop is not None:
            deadline = self.loop.time() + INTERRUPTED_GRACE
            if deadline < self.deadline:
                self.deadline = deadline
                if self.give_up is not None:
                    self.give_up.cancel()
                    self.give_up = self.loop.call_at(deadline, self._stop_waiting)


def _wait_for(future: Any) -> Any:
    return (yield future)
