"""What several tests of tasklets.asyncio share: the foreign loops they run on, and one anyio scenario."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest


def foreign_runners() -> list[object]:
    """``asyncio.run`` and, when installed, ``uvloop.run``: the hosts a test is parametrised over."""
    runners: list[object] = [pytest.param(asyncio.run, id="asyncio")]
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the test extra
        pass
    else:
        runners.append(pytest.param(uvloop.run, id="uvloop"))
    return runners


async def anyio_group_then_move_on_after(
    anyio: Any, sleep: Callable[[float], Awaitable[Any]]
) -> tuple[list[str], bool]:
    """Two children in an anyio task group, then ``sleep(3600)`` under ``move_on_after(0.01)``.

    Returns the children's names sorted (``["a", "b"]``) and whether the scope cancelled the sleep.
    """
    results: list[str] = []

    async def child(name: str, delay: float) -> None:
        await anyio.sleep(delay)
        results.append(name)

    async with anyio.create_task_group() as group:
        group.start_soon(child, "b", 0.002)
        group.start_soon(child, "a", 0.001)
    with anyio.move_on_after(0.01) as scope:
        await sleep(3600)
    return sorted(results), scope.cancelled_caught
