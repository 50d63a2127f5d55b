"""Helpers for testing code built on tasklets.

:class:`VirtualClock` makes time pass only when the loop has nothing to do:
when every task is blocked and no I/O arrives within ``autojump_threshold``
real seconds, it jumps straight to the next timer. A test of a 30-second
timeout then takes milliseconds, and its outcome does not depend on how busy
the machine is::

    clock = VirtualClock()
    tasklets.run(main, clock=clock)

Work that completes on other threads (thread pools, sockets) is real: with a
threshold of 0 the clock may jump past a timeout while such work is still
under way, so give those tests a small positive threshold.
"""

from __future__ import annotations

__all__ = ["VirtualClock"]


class VirtualClock:
    """A clock that jumps to the next deadline whenever the loop is idle.

    Args:
        start: the clock's initial reading.
        autojump_threshold: real seconds the loop must be idle before the
            clock jumps (0: jump as soon as nothing is ready).
    """

    def __init__(self, start: float = 0.0, *, autojump_threshold: float = 0.0) -> None:
        self._now = float(start)
        self.autojump_threshold = autojump_threshold

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
        """Block for real only for the autojump threshold, never for virtual time."""
        if timeout is None:
            return None
        if timeout <= 0:
            return 0
        return self.autojump_threshold

    def idle(self, deadline: float | None) -> None:
        """Nothing happened while idle: jump to the next timer."""
        if deadline is not None and deadline > self._now:
            self._now = deadline
