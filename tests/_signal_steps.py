"""Raising a signal at a chosen step of a piece of code: to prove none is lost at any moment."""

from __future__ import annotations

import enum
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any


def signal_at_step(step: int, sig: int, action: Callable[[], object]) -> bool:
    """Run ``action()``, raising ``sig`` at its ``step``-th line; whether it got that far.

    Lines, not bytecodes, and none inside :mod:`enum` (the signal module's
    wrappers convert numbers to enums in thousands of steps that change
    nothing): what matters is which handler is installed between two
    statements, and a test that re-runs the action per step must stay short.
    """
    count = 0
    fired = False

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count, fired
        if frame.f_code.co_filename == enum.__file__:
            return None
        if event == "line":
            if count == step:
                fired = True
                signal.raise_signal(sig)
            count += 1
        return trace

    sys.settrace(trace)
    try:
        action()
    finally:
        sys.settrace(None)
    return fired
