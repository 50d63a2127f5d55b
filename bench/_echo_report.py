"""The report of ``bench/net_echo.py``: tables, ratios over rounds, and the issue's targets with verdicts.

Pure functions of the measurements (``Results``, as the phases collect them
or as ``--report-from`` loads them back): nothing here runs a process. A
ratio is the median of per-round ratios, counting only the rounds in which
both servers ran; its min-max over rounds is quoted beside it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from _echo_config import BASELINE, FLOOR, LABELS, TASK_FLOOR

#: Every run of a phase: ``{(size, conns): {kind: [outcome of round 0, ...]}}``, None for a failed run.
Results = dict[tuple[int, int], dict[str, list[dict[str, Any] | None]]]


def fmt_rate(outcome: dict[str, Any] | None) -> str:
    """One run's messages/s as the progress log shows it (``12.3k``), or ``fail``."""
    return "fail" if outcome is None else f"{outcome['rate'] / 1000:.1f}k"


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_ratio(runs: dict[str, list[dict[str, Any] | None]], a: str, b: str) -> float | None:
    """Median over rounds of rate(a)/rate(b), counting only rounds where both ran."""
    found = ratio_range(runs, a, b)
    return None if found is None else found[0]


def median_cpu_ratio(runs: dict[str, list[dict[str, Any] | None]], a: str, b: str) -> float | None:
    """Median over rounds of cpu_per_msg(b)/cpu_per_msg(a): like ``median_ratio``, >1 when ``a`` is cheaper."""
    ratios = _cpu_ratios(runs, b, a)
    return statistics.median(ratios) if ratios else None


def _cpu_ratios(runs: dict[str, list[dict[str, Any] | None]], a: str, b: str) -> list[float]:
    """Per round, ``a``'s server CPU per message over ``b``'s, counting only rounds where both ran and measured."""
    return [
        x["server_us_per_msg"] / y["server_us_per_msg"]
        for x, y in zip(runs.get(a, []), runs.get(b, []))
        if x and y and x.get("server_us_per_msg") and y.get("server_us_per_msg")
    ]


def size_label(size: int) -> str:
    """A message size as the tables print it: ``100 B``, ``16 KiB``."""
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def _cell_text(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def throughput_table(results: Results, kinds: Sequence[str], ratios: Sequence[tuple[str, str]]) -> str:
    """Messages/s (median), then server CPU µs/message, plus the requested ratios."""
    head = ["message", "conns", *(LABELS[k] for k in kinds), *(f"{LABELS[a]} / {LABELS[b]}" for a, b in ratios)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    compared = ("tasklets", TASK_FLOOR, "asyncio-protocols", "uvloop-streams")
    over = [k for k in compared if k in kinds] if FLOOR in kinds else []
    cpu_head = ["message", "conns", *(LABELS[k] for k in kinds), *(f"{LABELS[k]} over floor" for k in over)]
    cpu_lines = [
        "| " + " | ".join([*cpu_head, "client CPU (max)"]) + " |",
        "|" + "---|" * 2 + "---:|" * (len(cpu_head) - 1),
    ]
    for (size, conns), runs in results.items():
        rates = [_median([r["rate"] if r else None for r in runs[k]]) for k in kinds]
        row = [size_label(size), str(conns)]
        row += [_cell_text(v, ",.0f") for v in rates]
        row += [_cell_text(median_ratio(runs, a, b), ".2f") for a, b in ratios]
        lines.append("| " + " | ".join(row) + " |")
        cpu = [_median([r.get("server_us_per_msg") if r else None for r in runs[k]]) for k in kinds]
        client = max((r["client_cpu"] for k in kinds for r in runs[k] if r), default=None)
        by_kind = dict(zip(kinds, cpu))
        floor = by_kind.get(FLOOR)
        extra = [
            None if floor is None or by_kind[k] is None else by_kind[k] - floor  # type: ignore[operator]
            for k in over
        ]
        cpu_row = [size_label(size), str(conns), *(_cell_text(v, ".1f") for v in [*cpu, *extra])]
        cpu_row.append(_cell_text(client, ".0%"))
        cpu_lines.append("| " + " | ".join(cpu_row) + " |")
    return (
        "Messages per second (median of rounds; ratios are medians of per-round ratios):\n\n"
        + "\n".join(lines)
        + "\n\nServer CPU time per message, µs (median of rounds; lower is better), and the busiest client:\n\n"
        + "\n".join(cpu_lines)
    )


def memory_table(per_conn: dict[str, list[float | None]]) -> str:
    """Bytes of server RSS per idle connection."""
    head = "| server | bytes of RSS per idle connection (median) | all rounds |\n|---|---:|---|"
    rows = [
        f"| {LABELS[k]} | {_cell_text(_median(v), ',.0f')} | "
        + ", ".join("fail" if x is None else f"{x:,.0f}" for x in v)
        + " |"
        for k, v in per_conn.items()
    ]
    return head + "\n" + "\n".join(rows)


def _details(ratios: dict[tuple[int, int], float | None]) -> str:
    if not ratios:
        return "not run"
    return ", ".join(f"{size_label(s)} x {c}: {_cell_text(r, '.2f')}" for (s, c), r in ratios.items())


def ratio_range(runs: dict[str, list[dict[str, Any] | None]], a: str, b: str) -> tuple[float, float, float] | None:
    """Median, min and max over rounds of rate(a)/rate(b), counting only rounds where both ran."""
    if a not in runs or b not in runs:
        return None
    ratios = [x["rate"] / y["rate"] for x, y in zip(runs[a], runs[b]) if x is not None and y is not None]
    return (statistics.median(ratios), min(ratios), max(ratios)) if ratios else None


def _range_details(results: Results, a: str, b: str) -> str:
    """``a``/``b`` messages/s in every cell, median [min-max] over rounds."""
    if not results:
        return "not run"
    texts = []
    for (size, conns), runs in results.items():
        found = ratio_range(runs, a, b)
        value = "n/a" if found is None else f"{found[0]:.2f} [{found[1]:.2f}-{found[2]:.2f}]"
        texts.append(f"{size_label(size)} x {conns}: {value}")
    return ", ".join(texts)


def _cpu_range_details(results: Results, a: str, b: str) -> str:
    """``a``'s server CPU per message over ``b``'s in every cell, median [min-max] of rounds (< 1: ``a`` cheaper)."""
    texts = []
    for (size, conns), runs in results.items():
        ratios = _cpu_ratios(runs, a, b)
        value = f"{statistics.median(ratios):.3f} [{min(ratios):.3f}-{max(ratios):.3f}]" if ratios else "n/a"
        texts.append(f"{size_label(size)} x {conns}: {value}")
    return ", ".join(texts) or "not run"


def verdict(ok: bool | None) -> str:
    """PASS, MISS, or n/a when there was nothing to compare."""
    return "n/a " if ok is None else "PASS" if ok else "MISS"


def _ratio_target(results: Results, rival: str, cells: list[tuple[int, int]]) -> tuple[str, str]:
    """The verdict on messages/s ratios (what the issue asks), and the same on server CPU per message."""
    by_rate = {cell: median_ratio(results[cell], "tasklets", rival) for cell in cells}
    by_cpu = {cell: median_cpu_ratio(results[cell], "tasklets", rival) for cell in cells}
    verdicts = []
    for ratios in (by_rate, by_cpu):
        known = [r for r in ratios.values() if r is not None]
        ok = None if len(known) != len(ratios) or not known else all(r >= 1 for r in known)
        verdicts.append(ok)
    rates = _range_details({cell: results[cell] for cell in cells}, "tasklets", rival)
    text = f"messages/s: {rates}; by server CPU per message [{verdict(verdicts[1])}]: {_details(by_cpu)}"
    return verdict(verdicts[0]), text


def targets(plain: Results, tls: Results, memory: dict[str, list[float | None]]) -> list[str]:
    """The issue's targets, one line each: verdict on messages/s, the CPU-per-message view beside it.

    Issue 17: tasklets at least as fast as uvloop streams in every cell; the
    distances to asyncio protocols and to the task floor are quoted, without
    a target.
    """
    lines = []
    mark, text = _ratio_target(plain, "uvloop-streams", list(plain))
    lines.append(f"- [{mark}] tasklets ≥ uvloop streams in every cell ({text})")
    by_cpu = {cell: median_cpu_ratio(runs, "tasklets", "asyncio-protocols") for cell, runs in plain.items()}
    lines.append(
        f"- [info] tasklets / asyncio protocols, messages/s: {_range_details(plain, 'tasklets', 'asyncio-protocols')}"
        f"; by server CPU per message: {_details(by_cpu)}"
    )
    if any(TASK_FLOOR in runs for runs in plain.values()):
        lines.append(
            f"- [info] tasklets / the task floor, messages/s: {_range_details(plain, 'tasklets', TASK_FLOOR)}; "
            f"the task floor / asyncio protocols: {_range_details(plain, TASK_FLOOR, 'asyncio-protocols')}"
        )
    if any(BASELINE in runs for runs in plain.values()):
        lines.append(
            f"- [info] tasklets / its baseline, messages/s: {_range_details(plain, 'tasklets', BASELINE)}; "
            f"server CPU per message: {_cpu_range_details(plain, 'tasklets', BASELINE)}"
        )
    mark, text = _ratio_target(tls, "asyncio-streams", list(tls))
    lines.append(f"- [{mark}] TLS echo: tasklets ≥ asyncio streams with ssl ({text})")
    ours = _median(memory.get("tasklets", []))
    theirs = _median(memory.get("asyncio-streams", []))
    ok = None if ours is None or theirs is None else ours <= theirs
    lines.append(
        f"- [{verdict(ok)}] memory per idle connection ≤ asyncio streams' "
        f"({_cell_text(ours, ',.0f')} B vs {_cell_text(theirs, ',.0f')} B)"
    )
    return lines
