"""What a loop holds at one moment: the snapshot ``Loop.statistics()`` returns.

Tests read it to fail on what a finished test left behind (``tasklets.testing``);
monitoring reads it to see how busy a loop is.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._loop import Handle, TimerHandle
    from ._task import Task

__all__ = ["LoopStatistics"]


@dataclasses.dataclass(frozen=True)
class LoopStatistics:
    """A snapshot of what a loop holds (``Loop.statistics()``)."""

    #: Tasks on the loop not yet done.
    tasks: tuple[Task[Any], ...]
    #: Descriptor -> its reader and/or writer callbacks (the loop's own waker left out).
    registrations: dict[int, tuple[Handle, ...]]
    #: Timers armed and not cancelled.
    timers: tuple[TimerHandle, ...]
    #: Callbacks ready to run in the next iteration.
    ready: int

    def is_empty(self) -> bool:
        """No task, registration or armed timer: what a finished test should leave."""
        return not (self.tasks or self.registrations or self.timers)

    def describe(self) -> list[str]:
        """What is left, one phrase per kind (empty when ``is_empty()``)."""
        found = []
        if self.tasks:
            found.append(f"pending tasks: {list(self.tasks)!r}")
        if self.registrations:
            found.append(f"reader/writer registrations: {self.registrations!r}")
        if self.timers:
            found.append(f"armed timers: {list(self.timers)!r}")
        return found
