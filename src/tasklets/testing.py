"""Helpers for testing code built on tasklets.

:class:`VirtualClock` makes time pass only when the loop has nothing to do:
when every task is blocked and no I/O arrives within ``autojump_threshold``
real seconds, it jumps straight to the next timer. A test of a 30-second
timeout then takes milliseconds, and its outcome does not depend on how busy
the machine is::

    clock = VirtualClock()
    tasklets.run(main, clock=clock)

Work handed to the default thread pool (``to_thread``, name resolution, a
foreign future's ``cancel()``) is real: the clock does not jump while such
work is in flight, so a timeout cannot expire before a thread that is about
to answer gets to. (Work in a thread pool of your own is invisible to it.)

:func:`run_strict` runs a test's main task on a fresh loop and fails the test
if anything is left behind: a task, a timer, a reader or writer, a
descriptor. :func:`stream_pair` gives two connected streams without a server.
:class:`PollStepper` resumes a task after each poll of its loop, to cancel an
operation at each of its waits in turn.
"""

from __future__ import annotations

import math
import os
import socket
import threading
from collections.abc import Callable, Generator
from types import GeneratorType
from typing import Any

from ._clock import Clock, SystemClock
from ._future import Future, is_future_like
from ._loop import Loop
from ._loop_statistics import LoopStatistics
from ._task import Task
from ._where import work_in_threads
from .net import Stream

__all__ = ["VirtualClock", "LeftBehind", "PollStepper", "open_descriptors", "run_strict", "stream_pair"]

# How long the loop blocks for real at a time while threads work for it (it
# wakes at once when they hand something over).
_THREAD_POLL = 0.01


class VirtualClock:
    """A clock that jumps to the next deadline whenever the loop is idle.

    Args:
        start: the clock's initial reading.
        autojump_threshold: real seconds the loop must be idle before the
            clock jumps (0: jump as soon as nothing is ready).
        thread_grace: real seconds the clock holds still while work handed to
            the default thread pool is in flight and nothing else happens;
            past that it jumps anyway (a thread blocked for good must not
            hang the test).
    """

    def __init__(self, start: float = 0.0, *, autojump_threshold: float = 0.0, thread_grace: float = 10.0) -> None:
        self._now = float(start)
        self.autojump_threshold = autojump_threshold
        self.thread_grace = thread_grace
        self._real = SystemClock.time
        self._held_since: float | None = None
        self._held_for: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"<VirtualClock at {self._now:.6f}>"

    def time(self) -> float:
        """The virtual time."""
        return self._now

    def jump(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (the next loop iteration fires what is due)."""
        if seconds < 0:
            raise ValueError(f"time only moves forward; cannot jump by {seconds!r}")
        self._now += seconds

    def sleep_time(self, timeout: float | None) -> float | None:
        """Block for real only for the autojump threshold (longer while threads work), never for virtual time."""
        if timeout is None or timeout == math.inf:
            return None  # a timer at infinity never fires: block as a real clock would
        if timeout <= 0:
            return 0
        if work_in_threads()[0]:
            return max(self.autojump_threshold, _THREAD_POLL)
        return self.autojump_threshold

    def idle(self, deadline: float | None) -> None:
        """Nothing happened while idle: jump to the next timer, unless threads still work for the loop."""
        if deadline is None or deadline <= self._now or deadline == math.inf:
            return
        threads = work_in_threads()
        if threads[0]:
            now = self._real()
            if self._held_for != threads:  # new work, or some finished: count the grace from now
                self._held_for, self._held_since = threads, now
            assert self._held_since is not None
            if now - self._held_since < self.thread_grace:
                return
        self._held_for = self._held_since = None
        self._now = deadline


class LeftBehind(AssertionError):
    """A test's loop still held tasks, timers, registrations or descriptors when its main task ended."""


def open_descriptors() -> dict[int, str]:
    """The descriptors open in this process, with what they point at (empty where ``/proc`` is missing)."""
    found: dict[int, str] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # the listing's own descriptor, closed already
    return found


def run_strict(
    fn: Callable[..., Any],
    /,
    *args: Any,
    clock: Clock | None = None,
    timeout: float = 30.0,
    check_descriptors: bool = False,
) -> Any:
    """Run ``fn(*args)`` as the main task of a fresh loop; fail if it leaves anything behind.

    Unlike ``tasklets.run``, leftovers are not cancelled quietly: a task,
    still pending when the main task has finished (and the callbacks it
    enqueued have run), or a timer or reader/writer registration still there
    once the loop's close callbacks have released what lives as long as the
    loop (a client's pooled connections), fails the test with
    :class:`LeftBehind`, naming them; so does a descriptor opened during the
    run and still open, with ``check_descriptors`` (only where no other
    thread opens descriptors meanwhile). The leftovers are then cleaned up,
    so one failing test does not break the next.

    Args:
        fn: a generator function, ``async def`` or ``@task`` function: the main task.
        *args: its arguments.
        clock: the loop's clock (a :class:`VirtualClock`, say).
        timeout: real seconds after which the main task is cancelled (a
            hung test fails rather than hangs).
        check_descriptors: also fail on descriptors left open.

    Returns:
        What the main task returned.
    """
    before = open_descriptors() if check_descriptors else {}
    loop = Loop(clock=clock)
    holder: dict[str, Task[Any]] = {}

    def start() -> None:
        main = Task(_main(fn, args), loop=loop, name="test-main")
        holder["main"] = main
        main.add_done_callback(lambda _: loop.stop())

    def give_up() -> None:
        main = holder.get("main")
        if main is not None:
            main.cancel(f"the test took longer than {timeout} s")

    loop.call_soon(start)
    # Real seconds, not the loop's: a virtual clock would reach any deadline at once.
    watchdog = threading.Timer(timeout, loop.call_soon_threadsafe, (give_up,))
    watchdog.daemon = True
    watchdog.start()
    closed = False
    try:
        loop.run_forever()
        watchdog.cancel()
        result = holder["main"].result()
        # Let callbacks that the last step enqueued (a close finishing) run.
        for _ in range(3):
            if not loop.statistics().ready:
                break
            loop.call_soon(loop.stop)
            loop.run_forever()
        left = loop.statistics().describe() if loop.statistics().tasks else []
        if not left:
            # What is released with the loop (a client's pooled connections)
            # is released in its close callbacks: look after those.
            at_close: list[LoopStatistics] = []
            loop.add_close_callback(lambda: at_close.append(loop.statistics()))
            closed = True
            loop.close()
            left = at_close[0].describe()
        if left:
            raise LeftBehind("the test left behind " + "; ".join(left))
        return result
    finally:
        watchdog.cancel()
        if not closed:
            _clean_up(loop)
            loop.close()
        if check_descriptors:
            leaked = {fd: target for fd, target in open_descriptors().items() if fd not in before}
            if leaked:
                raise LeftBehind(f"the test left descriptors open: {leaked!r}")


def _main(fn: Callable[..., Any], args: tuple[Any, ...]) -> Generator[Any, Any, Any]:
    """``fn(*args)`` as a task's body, whatever it returns (as ``tasklets.run`` takes it)."""
    made = fn(*args)
    if hasattr(made, "send") and hasattr(made, "throw") and not is_future_like(made):
        return (yield from made) if isinstance(made, GeneratorType) else (yield Task(made))
    if is_future_like(made):
        return (yield made)
    return made


def _clean_up(loop: Loop) -> None:
    """Cancel what is left and let it run its cleanup; drop the registrations nobody removed."""
    for task in loop.statistics().tasks:
        task.cancel()
    for _ in range(5):
        if not loop.statistics().tasks:
            break
        loop.call_later(0.01, loop.stop)
        loop.run_forever()
    for fd in loop.statistics().registrations:
        loop.remove_reader(fd)
        loop.remove_writer(fd)


def stream_pair(*, loop: Loop, **options: Any) -> tuple[Stream, Stream]:
    """Two connected streams over a socket pair of this process: no server, no port, no network.

    Args:
        loop: the loop both streams live on (``tasklets.current_loop()`` in a task).
        **options: passed to both streams (``timeout``, ``high_water``...).

    Returns:
        ``(a, b)``: what is written to one is read from the other. Close both.
    """
    a, b = socket.socketpair()
    return Stream(a, loop=loop, **options), Stream(b, loop=loop, **options)


class PollStepper:
    """Resumes a task after each poll of its loop for I/O, to interrupt an operation at every one of its waits.

    ``yield stepper.step()`` resolves once the loop has polled once more (and
    run what that poll woke). An operation that waits on several things in
    turn (connect, handshake, tunnel) can then be cancelled after 0, 1, 2...
    polls, reaching each of its waits in turn, with no timing involved::

        with PollStepper(tasklets.current_loop()) as stepper:
            for polls in range(20):
                opening = open_connection(host, port)
                for _ in range(polls):
                    yield stepper.step()
                opening.cancel()

    It is a one-shot writer on a socket that is always writable, so each step
    costs one registration and no thread.
    """

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self._ours, self._other = socket.socketpair()

    def step(self) -> Future[None]:
        """A future resolved after the loop's next poll; use it from the loop's own thread."""
        fd = self._ours.fileno()
        stepped: Future[None] = Future()

        def writable() -> None:
            self.loop.remove_writer(fd)
            stepped.set_result(None)

        self.loop.add_writer(fd, writable)
        return stepped

    def close(self) -> None:
        self._ours.close()
        self._other.close()

    def __enter__(self) -> PollStepper:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
