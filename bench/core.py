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
just after it, so creating and closing loops is not counted. The workloads of
measures 1-5 are in ``_core_samples.py``, measure 6 is ``_asyncio_loop.py``,
and ``--baseline`` is ``_core_ab.py``; this file runs and judges them.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import sys
import time
from collections.abc import Callable

import tasklets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _core_ab
import _core_samples
from _core_samples import (
    ASYNCIO_KINDS,
    SAMPLES,
    Completer,
    asyncio_as_completed,
    asyncio_cross_thread,
    asyncio_round_trip,
    asyncio_spawn,
    asyncio_switch,
    cf_as_completed,
    child_memory,
    tasklets_as_completed,
    tasklets_cross_thread,
    tasklets_round_trip,
    tasklets_spawn,
    tasklets_switch,
)
from _harness import Report, interleave, median, ratio_of, run_child

try:
    import _asyncio_loop
except ImportError:  # a copy of tasklets from before tasklets.asyncio: a --baseline child
    _asyncio_loop = None  # type: ignore[assignment]
try:
    import uvloop
except ImportError:  # pragma: no cover - the bench extra installs it
    uvloop = None


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

    clock = time.process_time if args.cpu_time else time.perf_counter
    if args.cpu_time:
        # Every module of measures reads its own global clock at each sample: switch them all.
        _core_samples.perf_counter = time.process_time
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
    started = clock()
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
    print(f"   ({clock() - started:.0f} s)")
    return missed


if __name__ == "__main__":
    main()
