"""Core benchmarks: tasklets against asyncio, uvloop and concurrent.futures, in one run.

Run ``python bench/core.py`` (about five minutes) or ``python bench/core.py
--quick`` (smaller N, 3 rounds, under a minute). Every measure runs its
contenders interleaved, one sample each per round, and judges tasklets by the
median of the per-round ratios ours/theirs (see ``bench/_harness.py`` and
``bench/README.md`` for why). On a machine loaded by other work, add
``--cpu-time``: samples then count the process's CPU time, not the time it
spent waiting for a core. The measures and their targets:

1. task switch: ``yield None`` vs ``await asyncio.sleep(0)``;
   <= 0.5x asyncio, <= 1.0x uvloop.
2. future round trip: wait on a fresh future the loop resolves; <= 0.6x asyncio,
   <= 1.5x uvloop (restated from 1.0x: see bench/README.md).
3. spawn 100,000 trivial tasks and wait for all; time <= asyncio, and memory
   per pending task <= asyncio (measured in fresh subprocesses).
4. as_completed over 1k/10k/100k futures completed in shuffled order; faster
   than asyncio's and concurrent.futures', and linear (per-future time at
   100k within 2x of 1k).
5. cross-thread completion: tasks wait on 100,000 ThreadPoolExecutor futures;
   time <= asyncio (which needs ``asyncio.wrap_future``).
6. the tasklets loop as an asyncio loop (``bench/_asyncio_loop.py``): tasks on
   it within 5 % of a plain Loop; asyncio code on it at least as fast as on
   stock asyncio, echo within 1.6x uvloop's time (restated from 1.25x); ``await tasklets_future``
   from an asyncio task <= 2x an asyncio future's round trip.

Times are measured inside the running loop, from just before the workload to
just after it, so creating and closing loops is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gc
import json
import os
import platform
import queue
import random
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from typing import Any

import tasklets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _core_ab
from _harness import Report, interleave, median, ratio_of, rss_bytes, run_child

try:
    import _asyncio_loop
except ImportError:  # a copy of tasklets from before tasklets.asyncio: a --baseline child
    _asyncio_loop = None  # type: ignore[assignment]
try:
    import uvloop
except ImportError:  # pragma: no cover - the bench extra installs it
    uvloop = None

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


# -- the run --------------------------------------------------------------------------------------------


def _progress(note: str) -> None:
    print(f"   .. {note}", file=sys.stderr, flush=True)


def bench_switch(report: Report, rounds: int, switches: int) -> None:
    """Measure 1: task switches, with 1 task and with 100 tasks."""
    for tasks in (1, 100):
        report.section(
            f"1. task switch, {tasks} task{'s' if tasks > 1 else ''} (us per switch)",
            f"{switches:,} switches in all; tasklets: 'yield None'; asyncio/uvloop: 'await asyncio.sleep(0)'.",
        )
        cases = _core_ab.cases("switch", [switches, tasks], lambda t=tasks: tasklets_switch(switches, t))
        cases += [(kind, lambda k=kind, t=tasks: asyncio_switch(k, switches, t)) for kind in ASYNCIO_KINDS]
        figures = interleave(cases, rounds, progress=_progress)
        ours = figures["tasklets"]
        report.figure("tasklets", median(ours) * 1e6, "us")
        _core_ab.report_baseline(report, figures, 1e6, "us")
        targets = {"asyncio": 0.5, "uvloop": 1.0}
        for kind in ASYNCIO_KINDS:
            report.figure(kind, median(figures[kind]) * 1e6, "us", ratio_of(ours, figures[kind]), targets[kind])


def bench_round_trip(report: Report, rounds: int, trips: int) -> None:
    """Measure 2: a task waits on a fresh future that the loop resolves."""
    report.section(
        "2. future round trip (us per trip)",
        f"{trips:,} trips: new future, loop.call_soon(f.set_result, 1), wait on it.",
    )
    cases = _core_ab.cases("round-trip", [trips], lambda: tasklets_round_trip(trips))
    cases += [(kind, lambda k=kind: asyncio_round_trip(k, trips)) for kind in ASYNCIO_KINDS]
    figures = interleave(cases, rounds, progress=_progress)
    ours = figures["tasklets"]
    report.figure("tasklets", median(ours) * 1e6, "us")
    _core_ab.report_baseline(report, figures, 1e6, "us")
    targets = {"asyncio": 0.6, "uvloop": 1.5}
    for kind in ASYNCIO_KINDS:
        report.figure(kind, median(figures[kind]) * 1e6, "us", ratio_of(ours, figures[kind]), targets[kind])


def bench_spawn(report: Report, rounds: int, count: int, memory_rounds: int) -> None:
    """Measure 3: spawn ``count`` tasks and wait for all; then memory per pending task."""
    report.section(
        f"3a. spawn {count:,} tasks that return at once, wait for all (ms)",
        "tasklets: spawn(gen_fn) x N + yield gather(tasks); asyncio/uvloop: create_task x N + gather.",
    )
    cases = _core_ab.cases("spawn", [count], lambda: tasklets_spawn(count))
    cases += [(kind, lambda k=kind: asyncio_spawn(k, count)) for kind in ASYNCIO_KINDS]
    figures = interleave(cases, rounds, progress=_progress)
    ours = figures["tasklets"]
    report.figure("tasklets", median(ours) * 1e3, "ms", digits=1)
    _core_ab.report_baseline(report, figures, 1e3, "ms", digits=1)
    targets = {"asyncio": 1.0, "uvloop": None}
    for kind in ASYNCIO_KINDS:
        report.figure(kind, median(figures[kind]) * 1e3, "ms", ratio_of(ours, figures[kind]), targets[kind], digits=1)

    libraries = ("tasklets", *ASYNCIO_KINDS)
    script = os.path.abspath(__file__)
    for mode, title in (
        ("tracemalloc", "Python allocations (tracemalloc)"),
        ("rss", "resident set size (RSS delta, no tracemalloc)"),
    ):
        report.section(
            f"3b. memory per pending task, {title} (bytes per task)",
            f"{count:,} tasks blocked on one future, measured in a fresh interpreter per sample.",
        )
        samples = {
            lib: (lambda lib=lib, mode=mode: run_child(script, ["--child-memory", lib, str(count), mode]))
            for lib in libraries
        }
        figures = interleave(list(samples.items()), memory_rounds, warmup=False, progress=_progress)
        per_task = {lib: [sample["per_task"] for sample in figures[lib]] for lib in libraries}
        ours = per_task["tasklets"]
        report.figure("tasklets", median(ours), "B", digits=0)
        for kind in ASYNCIO_KINDS:
            target = 1.0 if kind == "asyncio" and mode == "tracemalloc" else None
            report.figure(kind, median(per_task[kind]), "B", ratio_of(ours, per_task[kind]), target, digits=0)
        if mode == "tracemalloc":
            peaks = ", ".join(f"{lib} {median([s['peak_per_task'] for s in figures[lib]]):.0f} B" for lib in libraries)
            print(f"   peak while spawning, per task: {peaks}")


def bench_as_completed(report: Report, rounds: int, sizes: list[int], per_sample: int) -> None:
    """Measure 4: as_completed over futures completed in shuffled order, at several sizes."""
    report.section(
        "4. as_completed (us per future)",
        "Loops: futures completed by loop.call_soon(f.set_result) in shuffled order, queued before\n"
        "iterating; timed: building the iterator + waiting on every item (includes the completions).\n"
        "concurrent.futures: cf futures completed in shuffled order by a helper thread; timed from\n"
        f"the hand-over to the last result. Each sample covers {per_sample:,} futures (size x repeats).",
    )
    completer = Completer()
    cases: list[tuple[str, Callable[[], float]]] = []
    for size in sizes:
        repeats = max(1, per_sample // size)
        in_process = lambda s=size, r=repeats: tasklets_as_completed(s, r, s)  # noqa: E731
        cases += _core_ab.cases("as-completed", [size, repeats, size], in_process, f" {size}")
        cases += [
            (f"{kind} {size}", lambda k=kind, s=size, r=repeats: asyncio_as_completed(k, s, r, s))
            for kind in ASYNCIO_KINDS
        ]
        cases.append((f"cf {size}", lambda s=size, r=repeats: cf_as_completed(completer, s, r, s)))
    try:
        figures = interleave(cases, rounds, progress=_progress)
    finally:
        completer.close()
    for size in sizes:
        print(f"   -- {size:,} futures")
        ours = figures[f"tasklets {size}"]
        report.figure(f"tasklets {size:,}", median(ours) * 1e6, "us")
        _core_ab.report_baseline(report, figures, 1e6, "us", f" {size}", f"baseline {size:,}")
        for peer in (*ASYNCIO_KINDS, "cf"):
            target = 1.0 if peer in ("asyncio", "cf") else None
            theirs = figures[f"{peer} {size}"]
            report.figure(f"{peer} {size:,}", median(theirs) * 1e6, "us", ratio_of(ours, theirs), target)
    smallest, largest = min(sizes), max(sizes)
    print(f"   -- growth: per-future time at {largest:,} / at {smallest:,} (same round)")
    for lib in ("tasklets", *ASYNCIO_KINDS, "cf"):
        growth = ratio_of(figures[f"{lib} {largest}"], figures[f"{lib} {smallest}"])
        if lib == "tasklets":
            report.check(f"tasklets growth x{largest // smallest}", growth, 2.0)
        else:
            print(f"   {lib + ' growth':<26} {'':>18}   ratio {growth!s}")


def bench_cross_thread(report: Report, rounds: int, count: int, tasks: int) -> None:
    """Measure 5: tasks wait on futures that a thread pool completes."""
    workers = 4
    report.section(
        "5. cross-thread completion (us per future)",
        f"{count:,} ThreadPoolExecutor({workers}) futures of a trivial function, {tasks} tasks each waiting\n"
        "on its own in turn; tasklets yields pool.submit(fn), asyncio/uvloop await wrap_future(...).",
    )
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        cases = _core_ab.cases("cross-thread", [count, tasks], lambda: tasklets_cross_thread(pool, count, tasks))
        cases += [(kind, lambda k=kind: asyncio_cross_thread(k, pool, count, tasks)) for kind in ASYNCIO_KINDS]
        figures = interleave(cases, rounds, progress=_progress)
    ours = figures["tasklets"]
    report.figure("tasklets", median(ours) * 1e6, "us")
    _core_ab.report_baseline(report, figures, 1e6, "us")
    targets = {"asyncio": 1.0, "uvloop": None}
    for kind in ASYNCIO_KINDS:
        report.figure(kind, median(figures[kind]) * 1e6, "us", ratio_of(ours, figures[kind]), targets[kind])


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

MEASURES = ("switch", "round-trip", "spawn", "as-completed", "cross-thread", "asyncio-loop")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen measures; return the number of missed targets."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller N and 3 rounds (under a minute)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per measure (default 7, quick 3)")
    parser.add_argument("--only", choices=MEASURES, action="append", help="run only this measure (repeatable)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time samples by the process's CPU time, not the wall clock: on a machine loaded by other "
        "work, time spent descheduled is not counted (the memory measures are unchanged)",
    )
    parser.add_argument("--baseline", metavar="DIR",
                        help="A/B: also the tasklets imported from DIR (a src/ snapshot); every tasklets sample "
                        "of measures 1-5 then runs in a fresh interpreter (see _core_ab.py)")  # fmt: skip
    parser.add_argument("--tasklets-loop", choices=("default", "plain"), default="default",
                        help="run tasklets on run()'s default loop or on a plain Loop")  # fmt: skip
    parser.add_argument("--child-sample", nargs=2, metavar=("MEASURE", "ARGS"), help=argparse.SUPPRESS)
    parser.add_argument("--child-memory", nargs=3, metavar=("LIBRARY", "COUNT", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child_memory:
        library, count, mode = args.child_memory
        print(json.dumps(child_memory(library, int(count), mode)))
        return 0

    if args.cpu_time:
        global perf_counter
        perf_counter = time.process_time
        if _asyncio_loop is not None:
            _asyncio_loop.perf_counter = time.process_time
    if args.tasklets_loop == "plain" and _asyncio_loop is not None:  # else run() makes a plain Loop anyway
        tasklets._where.LOOP_FACTORY = tasklets.Loop
    if args.child_sample:
        name, sample_args = args.child_sample
        print(json.dumps({"value": SAMPLES[name](*json.loads(sample_args))}))
        return 0
    _core_ab.baseline = args.baseline
    _core_ab.child_flags = [*(["--cpu-time"] if args.cpu_time else []), "--tasklets-loop", args.tasklets_loop]
    quick = args.quick
    rounds = args.rounds or (3 if quick else 7)
    scale = 5 if quick else 1
    only = set(args.only or MEASURES)
    load = os.getloadavg()
    print(
        f"tasklets {tasklets.__version__} | Python {platform.python_version()} | "
        f"uvloop {getattr(uvloop, '__version__', 'missing')} | {os.cpu_count()} CPUs | "
        f"load {load[0]:.2f} {load[1]:.2f} | {time.strftime('%Y-%m-%d %H:%M:%S %Z')} | "
        f"{'quick, ' if quick else ''}{rounds} rounds, interleaved{', CPU time' if args.cpu_time else ''}"
    )
    print("Figures: median over rounds. Ratio: median [min-max] of per-round ratios ours/this (< 1: we are faster).")
    started = perf_counter()
    report = Report()
    if "switch" in only:
        bench_switch(report, rounds, 100_000 // scale)
    if "round-trip" in only:
        bench_round_trip(report, rounds, 100_000 // scale)
    if "spawn" in only:
        bench_spawn(report, rounds, 100_000 // scale, memory_rounds=rounds)
    if "as-completed" in only:
        sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
        bench_as_completed(report, rounds, sizes, per_sample=max(sizes))
    if "cross-thread" in only:
        bench_cross_thread(report, rounds, 100_000 // scale, tasks=100)
    if "asyncio-loop" in only:
        _asyncio_loop.bench_asyncio_loop(report, rounds, 100_000 // scale, _progress)
    missed = report.summary()
    print(f"   ({perf_counter() - started:.0f} s)")
    return missed


if __name__ == "__main__":
    main()
