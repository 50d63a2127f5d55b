"""Fixtures shared by the core runtime tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tasklets
from tasklets.testing import VirtualClock


def _run_virtual(fn: Any, /, *args: Any) -> Any:
    return tasklets.run(fn, *args, clock=VirtualClock())


@pytest.fixture
def vrun() -> Callable[..., Any]:
    """``tasklets.run`` on a virtual clock: timers fire at once, in order."""
    return _run_virtual


@pytest.fixture
def loop() -> Iterator[tasklets.Loop]:
    """A fresh loop, closed after the test."""
    made = tasklets.Loop()
    yield made
    made.close()
