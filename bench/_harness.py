"""Shared machinery for the benchmarks: interleaved rounds, medians of ratios, tables, memory.

Why this shape
--------------
The benchmark machine has two cores shared with other work, and its speed
flips between two levels for seconds at a time. An absolute time measured
at one moment therefore says little about a time measured at another. What
survives is a *ratio of neighbours*: run every contender once per round, in
a fixed order (A B C, A B C, ...), so the members of a round see nearly the
same machine, take the ratio ours/theirs inside each round, and report the
median of those per-round ratios. A round that straddles a speed flip gives
one odd ratio, which the median ignores.

Absolute figures are printed too (the median over rounds), to give a sense
of scale, but verdicts are drawn from the median ratios only.

Memory is measured in a fresh interpreter per sample (see
:func:`run_child`), so that what one library allocated, cached or
fragmented cannot be charged to another.
"""

from __future__ import annotations

import faulthandler
import gc
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Ratio",
    "Report",
    "interleave",
    "median",
    "ratio_of",
    "rss_bytes",
    "run_child",
]


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (NaN for an empty sequence)."""
    return statistics.median(values) if values else float("nan")


def interleave(
    cases: Sequence[tuple[str, Callable[[], float]]],
    rounds: int,
    *,
    warmup: bool = True,
    progress: Callable[[str], None] | None = None,
    sample_timeout: float = 300.0,
) -> dict[str, list[float]]:
    """Run every case once per round, in order, for ``rounds`` rounds.

    Each case is a ``(name, sample)`` pair; ``sample()`` runs the workload
    once and returns the figure to record (say, seconds per operation). The
    garbage collector is run before every sample, so that no sample pays for
    the garbage of the one before it.

    Args:
        cases: the contenders, run in this order within every round.
        rounds: how many rounds to record.
        warmup: run one unrecorded round first (imports, caches, lazy set-up).
        progress: called with a short note after each round, if given.
        sample_timeout: a sample that takes longer than this many seconds is
            taken for a hang (a lost wake-up, say): every thread's traceback
            is printed and the process exits, rather than waiting forever.

    Returns:
        ``{name: [figure of round 0, figure of round 1, ...]}``.
    """
    figures: dict[str, list[float]] = {name: [] for name, _ in cases}

    def guarded(sample: Callable[[], float]) -> float:
        gc.collect()
        faulthandler.dump_traceback_later(sample_timeout, exit=True)
        try:
            return sample()
        finally:
            faulthandler.cancel_dump_traceback_later()

    if warmup:
        for _, sample in cases:
            guarded(sample)
    for number in range(rounds):
        for name, sample in cases:
            figures[name].append(guarded(sample))
        if progress is not None:
            progress(f"round {number + 1}/{rounds}")
    return figures


@dataclass
class Ratio:
    """The median and spread of per-round ratios ``ours / theirs``."""

    median: float
    low: float
    high: float
    values: list[float] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.median:.2f} [{self.low:.2f}-{self.high:.2f}]"


def ratio_of(ours: Sequence[float], theirs: Sequence[float]) -> Ratio:
    """Median of the per-round ratios ``ours[i] / theirs[i]``, with their range."""
    values = [a / b for a, b in zip(ours, theirs, strict=True) if b]
    if not values:
        return Ratio(float("nan"), float("nan"), float("nan"))
    return Ratio(median(values), min(values), max(values), values)


@dataclass
class _Row:
    measure: str
    contender: str
    figure: str
    ratio: str
    target: str
    verdict: str


class Report:
    """Collects figures, ratios and verdicts, and prints them as tables.

    Call :meth:`section` to start a measure, :meth:`figure` for every
    contender's figure (the first one is ours), and :meth:`check` to compare
    against a target. :meth:`summary` prints every target with its verdict.
    """

    def __init__(self) -> None:
        self._rows: list[_Row] = []
        self._checks: list[tuple[str, str, Ratio, float, bool]] = []
        self._measure = ""

    def section(self, title: str, note: str = "") -> None:
        """Start a new measure; print its title (and a note on the setup)."""
        self._measure = title.split(" (")[0]
        print(f"\n== {title}", flush=True)
        if note:
            for line in note.strip().splitlines():
                print(f"   {line}")

    def figure(
        self,
        contender: str,
        value: float,
        unit: str,
        ratio: Ratio | None = None,
        target: float | None = None,
        *,
        digits: int = 3,
    ) -> bool | None:
        """Print one contender's figure; with ``ratio`` and ``target``, judge it.

        ``ratio`` is ours / this contender; it passes when its median is at
        most ``target``. Returns the verdict (None when there is no target).
        """
        verdict: bool | None = None
        target_text = ""
        if ratio is not None and target is not None:
            verdict = ratio.median <= target
            target_text = f"<= {target:.2f}"
            self._checks.append((self._measure, contender, ratio, target, verdict))
        row = _Row(
            self._measure,
            contender,
            f"{value:.{digits}f} {unit}",
            "" if ratio is None else str(ratio),
            target_text,
            "" if verdict is None else ("PASS" if verdict else "MISS"),
        )
        self._rows.append(row)
        print(
            f"   {row.contender:<26} {row.figure:>18}   "
            f"{('ours/this ' + row.ratio) if row.ratio else '':<28} {row.target:<8} {row.verdict}",
            flush=True,
        )
        return verdict

    def check(self, what: str, ratio: Ratio, target: float) -> bool:
        """Record a target that is not a per-contender comparison (e.g. a growth factor)."""
        verdict = ratio.median <= target
        self._checks.append((self._measure, what, ratio, target, verdict))
        print(
            f"   {what:<26} {'':>18}   {'ratio ' + str(ratio):<28} {'<= ' + format(target, '.2f'):<8} "
            f"{'PASS' if verdict else 'MISS'}",
            flush=True,
        )
        return verdict

    def summary(self) -> int:
        """Print every target and its verdict; return how many missed."""
        print("\n== Summary (ratio = median of per-round ratios ours/theirs [min-max over rounds])")
        width = max((len(m) for m, *_ in self._checks), default=10)
        missed = 0
        for measure, contender, ratio, target, verdict in self._checks:
            missed += not verdict
            print(
                f"   {measure:<{width}}  vs {contender:<24} {ratio!s:<22} target <= {target:.2f}  "
                f"{'PASS' if verdict else 'MISS'}"
            )
        print(f"   {len(self._checks) - missed} PASS, {missed} MISS", flush=True)
        return missed


def rss_bytes(pid: int | None = None) -> int:
    """The resident set size of process ``pid`` (this one by default) now, in bytes (Linux ``/proc``).

    Raises:
        RuntimeError: the process has exited but is not reaped yet (a zombie has no memory).
        OSError: there is no process ``pid``.
    """
    with open(f"/proc/{'self' if pid is None else pid}/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    if not resident_pages:
        raise RuntimeError(f"no resident set for process {pid} (has it exited?)")
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def run_child(script: str, args: Sequence[str], timeout: float = 300.0) -> dict[str, float]:
    """Run ``python script *args`` in a fresh interpreter; return the JSON of its last line.

    The child prints one JSON object on its last line of output. A fresh
    interpreter per measurement keeps one library's memory (arenas, caches,
    lazily built state) from being counted against another.
    """
    done = subprocess.run(
        [sys.executable, script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])
