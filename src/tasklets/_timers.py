"""Timers that may be armed and cancelled from any thread.

Combinators are used both inside tasks (on a loop thread) and from plain
code (any thread, no loop). A :class:`Timer` lives on the loop of the calling
thread when there is one, else on the default background loop, and hops to
that loop's thread for every operation that must happen there.
"""

from __future__ import annotations

from collections.abc import Callable

from ._loop import Loop, TimerHandle
from ._where import loop_for_caller


class Timer:
    """``callback()`` after ``delay`` seconds on the caller's loop (or the default one)."""

    __slots__ = ("_loop", "_handle", "_cancelled", "__weakref__")

    def __init__(self, delay: float, callback: Callable[[], object], loop: Loop | None = None) -> None:
        self._loop = loop = loop or loop_for_caller()
        self._cancelled = False
        self._handle: TimerHandle | None = None
        if loop.is_loop_thread():
            self._handle = loop.call_later(delay, callback)
        else:
            when = loop.time() + delay  # measured now, not when the loop gets to it
            loop.call_soon_threadsafe(self._arm, when, callback)

    def _arm(self, when: float, callback: Callable[[], object]) -> None:
        if not self._cancelled:
            self._handle = self._loop.call_at(when, callback)

    def cancel(self) -> None:
        """Stop the timer; harmless if it already fired. Callable from any thread."""
        self._cancelled = True
        loop = self._loop
        if not loop.is_foreign_thread():
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self.cancel)
