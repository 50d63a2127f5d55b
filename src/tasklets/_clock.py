"""The one place that reads the time.

A loop asks its clock for the time and for how long it may really sleep
before its next timer is due. :class:`SystemClock` is the monotonic clock;
``tasklets.testing.VirtualClock`` jumps to the next deadline instead of
sleeping, so tests of long timeouts take no real time.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What a loop needs from a clock."""

    def time(self) -> float:
        """Seconds on this clock (only differences mean anything)."""

    def sleep_time(self, timeout: float | None) -> float | None:
        """Real seconds to block in the poller for ``timeout`` clock seconds (None: forever)."""

    def idle(self, deadline: float | None) -> None:
        """The loop blocked for ``sleep_time`` and nothing happened; ``deadline`` is its next timer."""


class SystemClock:
    """The monotonic clock of the operating system."""

    time = staticmethod(time.monotonic)

    @staticmethod
    def sleep_time(timeout: float | None) -> float | None:
        return timeout

    @staticmethod
    def idle(deadline: float | None) -> None:
        return None
