"""Fixtures shared by the core runtime tests."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tasklets
from tasklets.testing import VirtualClock, run_strict


def _run_virtual(fn: Any, /, *args: Any) -> Any:
    return run_strict(fn, *args, clock=VirtualClock())


@pytest.fixture
def vrun() -> Callable[..., Any]:
    """A strict run on a virtual clock: timers fire at once, in order; a test that leaves anything behind fails."""
    return _run_virtual


@pytest.fixture
def loop() -> Iterator[tasklets.Loop]:
    """A fresh loop, closed after the test."""
    made = tasklets.Loop()
    yield made
    made.close()


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Make the interpreter switch threads very often, so races get their chance."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)
