"""The workloads of ``bench/core.py``, measures 1-5: one function per contender and measure.

Each returns what one sample measured (seconds per operation, or per run),
timed inside the running loop from just before the workload to just after
it, so that creating and closing loops is not counted. ``core.py`` runs them
interleaved and judges them; under ``--baseline`` it runs the tasklets ones
in fresh interpreters through :data:`SAMPLES`, so they use only the API
every copy of tasklets has. ``child_memory`` runs in a fresh interpreter of
its own (``core.py --child-memory``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import queue
import random
import threading
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from typing import Any

import tasklets
from _harness import rss_bytes

try:
    import uvloop
except ImportError:  # pragma: no cover - the bench extra installs it
    uvloop = None

#: The clock of every sample; ``core.py --cpu-time`` swaps in ``time.process_time``.
perf_counter = time.perf_counter

ASYNCIO_KINDS = ("asyncio", "uvloop") if uvloop is not None else ("asyncio",)


def run_asyncio(kind: str, main: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
    """Run ``main(*args)`` on a fresh asyncio loop of ``kind`` ("asyncio" or "uvloop")."""
    factory = uvloop.new_event_loop if kind == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main(*args))


def _nothing() -> int:
    return 1


# -- 1. task switch ------------------------------------------------------------------------------


def tasklets_switch(switches: int, tasks: int) -> float:
    """Seconds per ``yield None``, with ``tasks`` tasks switching ``switches`` times in all."""

    def worker(count: int) -> Any:
        for _ in range(count):
            yield None

    def main() -> Any:
        started = perf_counter()
        workers = [tasklets.spawn(worker, switches // tasks) for _ in range(tasks)]
        yield tasklets.gather(workers)
        return (perf_counter() - started) / switches

    return tasklets.run(main)


def asyncio_switch(kind: str, switches: int, tasks: int) -> float:
    """Seconds per ``await asyncio.sleep(0)``, with ``tasks`` tasks switching ``switches`` times."""

    async def worker(count: int) -> None:
        sleep = asyncio.sleep
        for _ in range(count):
            await sleep(0)

    async def main() -> float:
        started = perf_counter()
        workers = [asyncio.create_task(worker(switches // tasks)) for _ in range(tasks)]
        await asyncio.gather(*workers)
        return (perf_counter() - started) / switches

    return run_asyncio(kind, main)


# -- 2. future round trip --------------------------------------------------------------------------


def tasklets_round_trip(trips: int) -> float:
    """Seconds per wait on a fresh ``tasklets.Future`` that the loop resolves."""

    def main() -> Any:
        loop = tasklets.current_loop()
        future_type = tasklets.Future
        call_soon = loop.call_soon
        started = perf_counter()
        for _ in range(trips):
            f = future_type()
            call_soon(f.set_result, 1)
            yield f
        return (perf_counter() - started) / trips

    return tasklets.run(main)


def asyncio_round_trip(kind: str, trips: int) -> float:
    """Seconds per await on a fresh ``loop.create_future()`` that the loop resolves."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        create_future = loop.create_future
        call_soon = loop.call_soon
        started = perf_counter()
        for _ in range(trips):
            f = create_future()
            call_soon(f.set_result, 1)
            await f
        return (perf_counter() - started) / trips

    return run_asyncio(kind, main)


# -- 3. spawning many tasks ------------------------------------------------------------------------


def _returns_at_once() -> Any:
    return 1
    yield  # a generator function: a task that finishes at its first step


async def _returns_at_once_async() -> int:
    return 1


def tasklets_spawn(count: int) -> float:
    """Seconds to spawn ``count`` tasks that return at once and wait for all of them."""

    def main() -> Any:
        spawn = tasklets.spawn
        started = perf_counter()
        tasks = [spawn(_returns_at_once) for _ in range(count)]
        yield tasklets.gather(tasks)
        return perf_counter() - started

    return tasklets.run(main)


def asyncio_spawn(kind: str, count: int) -> float:
    """Seconds to ``create_task`` ``count`` coroutines that return at once and gather them."""

    async def main() -> float:
        create_task = asyncio.create_task
        started = perf_counter()
        tasks = [create_task(_returns_at_once_async()) for _ in range(count)]
        await asyncio.gather(*tasks)
        return perf_counter() - started

    return run_asyncio(kind, main)


def _blocked(f: Any) -> Any:
    yield f


async def _blocked_async(f: asyncio.Future[Any]) -> None:
    await f


def child_memory(library: str, count: int, mode: str) -> dict[str, float]:
    """In a fresh interpreter: bytes per task while ``count`` tasks wait on one future.

    ``mode`` "tracemalloc" counts Python allocations (what the objects
    cost); "rss" reads the resident set size (what the process costs,
    including allocator slack). Both are measured between the moment before
    spawning and the moment every task has taken its first step and is
    blocked; the tasks are then released and run to completion.
    """
    traced = mode == "tracemalloc"

    def measure() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] if traced else rss_bytes()

    result: dict[str, float] = {}

    def tasklets_main(n: int) -> Any:
        blocker: tasklets.Future[None] = tasklets.Future()
        before = measure()
        if traced:
            tracemalloc.reset_peak()
        tasks = [tasklets.spawn(_blocked, blocker) for _ in range(n)]
        yield None  # every task takes its first step and blocks on ``blocker``
        after = measure()
        result["per_task"] = (after - before) / n
        if traced:
            result["peak_per_task"] = (tracemalloc.get_traced_memory()[1] - before) / n
        blocker.set_result(None)
        yield tasklets.gather(tasks)

    async def asyncio_main(n: int) -> None:
        blocker = asyncio.get_running_loop().create_future()
        before = measure()
        if traced:
            tracemalloc.reset_peak()
        tasks = [asyncio.create_task(_blocked_async(blocker)) for _ in range(n)]
        await asyncio.sleep(0)  # every task takes its first step and blocks on ``blocker``
        after = measure()
        result["per_task"] = (after - before) / n
        if traced:
            result["peak_per_task"] = (tracemalloc.get_traced_memory()[1] - before) / n
        blocker.set_result(None)
        await asyncio.gather(*tasks)

    def run_once(n: int) -> None:
        if library == "tasklets":
            tasklets.run(tasklets_main, n)
        else:
            run_asyncio(library, asyncio_main, n)

    if traced:
        tracemalloc.start()
    run_once(1000)  # warm up: lazy imports, caches, interned names
    run_once(count)
    return result


# -- 4. as_completed -----------------------------------------------------------------------------------


def tasklets_as_completed(size: int, repeats: int, seed: int) -> float:
    """Seconds per future to iterate ``tasklets.as_completed`` over ``size`` futures, ``repeats`` times.

    The loop completes the futures in a shuffled order (``call_soon`` of
    ``set_result``, queued before the iteration starts); the timed part is
    building the iterator and yielding every signal future, which includes
    the loop running those completions.
    """

    def main() -> Any:
        loop = tasklets.current_loop()
        rng = random.Random(seed)
        elapsed = 0.0
        for _ in range(repeats):
            futures = [tasklets.Future() for _ in range(size)]
            order = futures[:]
            rng.shuffle(order)
            for number, f in enumerate(order):
                loop.call_soon(f.set_result, number)
            started = perf_counter()
            for signal in tasklets.as_completed(futures):
                _ = yield signal  # not 'yield from': the task sends each result back in
            elapsed += perf_counter() - started
        return elapsed / (size * repeats)

    return tasklets.run(main)


def asyncio_as_completed(kind: str, size: int, repeats: int, seed: int) -> float:
    """Seconds per future for ``asyncio.as_completed`` over loop futures completed in shuffled order."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        rng = random.Random(seed)
        elapsed = 0.0
        for _ in range(repeats):
            futures = [loop.create_future() for _ in range(size)]
            order = futures[:]
            rng.shuffle(order)
            for number, f in enumerate(order):
                loop.call_soon(f.set_result, number)
            started = perf_counter()
            for next_done in asyncio.as_completed(futures):
                await next_done
            elapsed += perf_counter() - started
        return elapsed / (size * repeats)

    return run_asyncio(kind, main)


class Completer:
    """A thread that completes batches of ``concurrent.futures`` futures in the order given."""

    def __init__(self) -> None:
        self._batches: queue.SimpleQueue[list[concurrent.futures.Future[int]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="completer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._batches.get()) is not None:
            for number, f in enumerate(batch):
                f.set_result(number)

    def complete(self, batch: list[concurrent.futures.Future[int]]) -> None:
        """Hand ``batch`` over; the thread completes its futures in list order."""
        self._batches.put(batch)

    def close(self) -> None:
        """Stop the thread once it has completed what it was given."""
        self._batches.put(None)
        self._thread.join()


def cf_as_completed(completer: Completer, size: int, repeats: int, seed: int) -> float:
    """Seconds per future for ``concurrent.futures.as_completed`` while a thread completes them.

    The thread completes the futures in a shuffled order; the timed part
    starts with the hand-over to that thread and ends when the main thread
    has taken every result, so it includes the completions, as for the loops.
    """
    rng = random.Random(seed)
    elapsed = 0.0
    for _ in range(repeats):
        futures: list[concurrent.futures.Future[int]] = [concurrent.futures.Future() for _ in range(size)]
        order = futures[:]
        rng.shuffle(order)
        started = perf_counter()
        completer.complete(order)
        for f in concurrent.futures.as_completed(futures):
            f.result()
        elapsed += perf_counter() - started
    return elapsed / (size * repeats)


# -- 5. cross-thread completion -----------------------------------------------------------------------


def tasklets_cross_thread(pool: concurrent.futures.Executor, count: int, tasks: int) -> float:
    """Seconds per ``yield pool.submit(fn)``, ``tasks`` tasks waiting ``count`` times in all."""

    def worker(times: int) -> Any:
        submit = pool.submit
        for _ in range(times):
            yield submit(_nothing)

    def main() -> Any:
        started = perf_counter()
        workers = [tasklets.spawn(worker, count // tasks) for _ in range(tasks)]
        yield tasklets.gather(workers)
        return (perf_counter() - started) / count

    return tasklets.run(main)


def asyncio_cross_thread(kind: str, pool: concurrent.futures.Executor, count: int, tasks: int) -> float:
    """Seconds per ``await asyncio.wrap_future(pool.submit(fn))``, ``tasks`` tasks, ``count`` in all."""

    async def worker(times: int) -> None:
        submit = pool.submit
        wrap_future = asyncio.wrap_future
        for _ in range(times):
            await wrap_future(submit(_nothing))

    async def main() -> float:
        started = perf_counter()
        workers = [asyncio.create_task(worker(count // tasks)) for _ in range(tasks)]
        await asyncio.gather(*workers)
        return (perf_counter() - started) / count

    return run_asyncio(kind, main)


def _cross_thread_sample(count: int, tasks: int) -> float:
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return tasklets_cross_thread(pool, count, tasks)


#: The tasklets sample of each time measure, as ``--child-sample`` runs it (see ``_core_ab.py``).
SAMPLES: dict[str, Callable[..., float]] = {
    "switch": tasklets_switch,
    "round-trip": tasklets_round_trip,
    "spawn": tasklets_spawn,
    "as-completed": tasklets_as_completed,
    "cross-thread": _cross_thread_sample,
}
