"""Measure 6 of bench/core.py: the tasklets loop as an asyncio loop (tasklets.asyncio.EventLoop).

a. tasklets tasks on the EventLoop (what run() uses) against a plain Loop:
   task switch and future round trip, for information: what a task pays to
   be asyncio's current_task() and for asyncio's call_soon. (The targets
   against asyncio and uvloop are measures 1 and 2, which run on EventLoop.)
b. asyncio code on the tasklets loop against stock asyncio and uvloop:
   ``await asyncio.sleep(0)`` switch, ``loop.create_future()`` round trip and
   an echo over loopback with asyncio protocols; <= 1.0x asyncio, and the
   echo <= 1.6x uvloop's time (restated from 1.25x: see bench/README.md).
c. ``await tasklets_future`` from an asyncio task against awaiting an
   asyncio future, on stock asyncio; <= 2x.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from time import perf_counter
from typing import Any

import tasklets
import tasklets._where
import tasklets.asyncio
from _harness import Report, interleave, median, ratio_of

try:
    import uvloop
except ImportError:  # pragma: no cover - the bench extra installs it
    uvloop = None

FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "tasklets": tasklets.asyncio.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}
if uvloop is not None:
    FACTORIES["uvloop"] = uvloop.new_event_loop


def _run_on(kind: str, main: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
    with asyncio.Runner(loop_factory=FACTORIES[kind]) as runner:
        return runner.run(main(*args))


def _run_tasklets(plain: bool, main: Callable[[], Any]) -> Any:
    saved = tasklets._where.LOOP_FACTORY
    tasklets._where.LOOP_FACTORY = tasklets.Loop if plain else saved
    try:
        return tasklets.run(main)
    finally:
        tasklets._where.LOOP_FACTORY = saved


# -- a. tasklets tasks ----------------------------------------------------------------------------


def tasklets_switch(plain: bool, switches: int) -> float:
    def main() -> Any:
        started = perf_counter()
        for _ in range(switches):
            yield None
        return (perf_counter() - started) / switches

    return float(_run_tasklets(plain, main))


def tasklets_round_trip(plain: bool, trips: int) -> float:
    def main() -> Any:
        loop = tasklets.current_loop()
        call_soon = loop.call_soon
        started = perf_counter()
        for _ in range(trips):
            f: tasklets.Future[int] = tasklets.Future()
            call_soon(f.set_result, 1)
            yield f
        return (perf_counter() - started) / trips

    return float(_run_tasklets(plain, main))


# -- b. asyncio code ------------------------------------------------------------------------------


def asyncio_switch(kind: str, switches: int) -> float:
    async def main() -> float:
        sleep = asyncio.sleep
        started = perf_counter()
        for _ in range(switches):
            await sleep(0)
        return (perf_counter() - started) / switches

    return float(_run_on(kind, main))


def asyncio_round_trip(kind: str, trips: int) -> float:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        create_future, call_soon = loop.create_future, loop.call_soon
        started = perf_counter()
        for _ in range(trips):
            f = create_future()
            call_soon(f.set_result, 1)
            await f
        return (perf_counter() - started) / trips

    return float(_run_on(kind, main))


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class _Client(asyncio.Protocol):
    def __init__(self, trips: int, done: asyncio.Future[float]) -> None:
        self.left, self.done = trips, done

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.started = perf_counter()
        transport.write(b"x" * 64)

    def data_received(self, data: bytes) -> None:
        self.left -= 1
        if self.left:
            self.transport.write(data)
        elif not self.done.done():
            self.done.set_result((perf_counter() - self.started) / self.trips)

    trips = 1


def asyncio_echo(kind: str, trips: int) -> float:
    """Seconds per 64-byte round trip between asyncio protocols over loopback TCP."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        done: asyncio.Future[float] = loop.create_future()
        client = _Client(trips, done)
        client.trips = trips
        transport, _ = await loop.create_connection(lambda: client, "127.0.0.1", port)
        try:
            return await done
        finally:
            transport.close()
            server.close()
            await server.wait_closed()

    return float(_run_on(kind, main))


# -- c. awaiting a tasklets future from asyncio -----------------------------------------------------


def await_from_asyncio(which: str, trips: int) -> float:
    """Seconds per await, on stock asyncio, of a fresh future of ``which`` kind that the loop resolves."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        make: Callable[[], Any] = tasklets.Future if which == "tasklets" else loop.create_future
        call_soon = loop.call_soon
        started = perf_counter()
        for _ in range(trips):
            f = make()
            call_soon(f.set_result, 1)
            await f
        return (perf_counter() - started) / trips

    return float(_run_on("asyncio", main))


def bench_asyncio_loop(report: Report, rounds: int, n: int, progress: Callable[[str], None]) -> None:
    """Measure 6: see the module docstring."""
    kinds = list(FACTORIES)
    report.section(
        "6a. tasklets tasks on the asyncio-enabled loop (us)",
        f"{n:,} 'yield None' switches, {n:,} future round trips; run() on EventLoop vs a plain Loop.",
    )
    for name, measure in (("switch", tasklets_switch), ("round trip", tasklets_round_trip)):
        figures = interleave(
            [("EventLoop", lambda m=measure: m(False, n)), ("Loop", lambda m=measure: m(True, n))],
            rounds,
            progress=progress,
        )
        report.figure(f"{name}: EventLoop", median(figures["EventLoop"]) * 1e6, "us")
        report.figure(
            f"{name}: plain Loop",
            median(figures["Loop"]) * 1e6,
            "us",
            ratio_of(figures["EventLoop"], figures["Loop"]),
        )
    for title, measure, count, targets in (
        ("6b. asyncio 'await sleep(0)' switch (us)", asyncio_switch, n, {"asyncio": 1.0}),
        ("6b. asyncio future round trip (us)", asyncio_round_trip, n, {"asyncio": 1.0}),
        ("6b. asyncio protocol echo, 64 B over loopback (us per round trip)", asyncio_echo, n // 10,
         {"asyncio": 1.0, "uvloop": 1.6}),
    ):
        report.section(title, "the same asyncio code on each loop; ratio: tasklets loop / this loop.")
        figures = interleave([(k, lambda k=k, m=measure, c=count: m(k, c)) for k in kinds], rounds, progress=progress)
        ours = figures["tasklets"]
        report.figure("tasklets", median(ours) * 1e6, "us")
        for kind in kinds[1:]:
            report.figure(kind, median(figures[kind]) * 1e6, "us", ratio_of(ours, figures[kind]), targets.get(kind))
    report.section(
        "6c. await from an asyncio task (us per await)",
        f"{n:,} awaits on stock asyncio of a fresh future the loop resolves: tasklets.Future vs loop.create_future().",
    )
    figures = interleave(
        [(w, lambda w=w: await_from_asyncio(w, n)) for w in ("tasklets", "asyncio")], rounds, progress=progress
    )
    report.figure("tasklets.Future", median(figures["tasklets"]) * 1e6, "us")
    report.figure(
        "asyncio future", median(figures["asyncio"]) * 1e6, "us", ratio_of(figures["tasklets"], figures["asyncio"]), 2.0
    )
