"""The ``--profile`` phase of ``bench/net_echo.py``: where one server's time goes, under two loads.

Two views of each load: ``cProfile`` of a server run with ``--profile``
(deterministic: calls per message, but its overhead inflates small
functions) and, when ``py-spy`` is installed, samples of an unprofiled
server by line (where the time really goes; a C call such as ``recv`` counts
against its calling line). Both come back as markdown sections.
"""

from __future__ import annotations

import dataclasses
import linecache
import os
import pstats
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _echo_config import Config
from _echo_procs import LAUNCH, Children, run_pingpong, start_server
from _echo_report import size_label


def profile_phase(
    kids: Children, cfg: Config, directory: str, kind: str = "tasklets",
    cells: Sequence[tuple[int, int]] = ((100, 100), (16384, 10)),
) -> str:  # fmt: skip
    """Profile the tasklets server under two loads; a markdown section with where the time goes.

    Two views of each load: ``cProfile`` (deterministic: calls per message,
    but its overhead inflates small functions) and, when ``py-spy`` is
    installed, sampling of an unprofiled server by line (where the time
    really goes; a C call such as ``recv`` counts against its calling line).
    """
    out: list[str] = []
    run_cfg = dataclasses.replace(cfg, duration=cfg.profile_seconds, warmup=0.2)
    for size, conns in cells:
        path = os.path.join(directory, f"{kind}-{size}-{conns}.prof")
        server = start_server(kids, kind, profile=path)
        outcome = run_pingpong(server, size, conns, run_cfg)
        kids.stop(server.child)
        if outcome.get("errors") or not os.path.exists(path):
            out.append(f"profile {size} B x {conns}: failed: {outcome.get('errors')}")
            continue
        out.append(_cprofile_section(path, outcome, size, conns, kind))
        if shutil.which("py-spy"):
            out.append(_pyspy_section(kids, directory, run_cfg, size, conns, kind))
    return "\n".join(out)


def _cprofile_section(path: str, outcome: dict[str, Any], size: int, conns: int, kind: str) -> str:
    stats = pstats.Stats(path)
    messages = max(1, outcome.get("total", outcome["messages"]))  # every message the server saw
    total = stats.total_tt  # type: ignore[attr-defined]
    out = [
        f"#### cProfile of the {kind} server, {size_label(size)} x {conns} connections\n\n"
        f"{messages:,} messages served ({outcome['rate']:,.0f}/s under the profiler); {total:.2f} s of the "
        f"loop thread's CPU time, {total / messages * 1e6:.1f} µs per message (profiler overhead included).\n",
        "| tottime µs/msg | share | calls/msg | function |\n|---:|---:|---:|---|",
    ]
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    for (filename, line, name), (_cc, ncalls, tottime, _ct, _callers) in rows[:20]:
        where = f"{Path(filename).name}:{line}" if line else filename
        out.append(
            f"| {tottime / messages * 1e6:.2f} | {tottime / total:.0%} | {ncalls / messages:.2f} | `{name}` ({where}) |"
        )
    return "\n".join(out) + "\n"


def _pyspy_section(kids: Children, directory: str, run_cfg: Config, size: int, conns: int, kind: str) -> str:
    """Sample an unprofiled server with py-spy (native frames) under the same load."""
    raw = os.path.join(directory, f"pyspy-{kind}-{size}-{conns}.txt")
    server = start_server(kids, kind)
    spy = None
    outcome: dict[str, Any] = {"errors": ["py-spy did not attach"]}
    try:
        for _attempt in range(3):  # py-spy sometimes fails to attach to a young process: retry
            time.sleep(0.5)
            spy = kids.start_command(
                ["py-spy", "record", "--pid", str(server.child.pid), "--duration", str(int(run_cfg.duration + 1)),
                 "--rate", "997", "--format", "raw", "--idle", "--threads", "--nonblocking", "-o", raw]
            )  # fmt: skip
            time.sleep(0.5)
            if spy.proc.poll() is None:
                break
            kids.stop(spy)
            spy = None
        if spy is not None:
            outcome = run_pingpong(server, size, conns, run_cfg)
            try:
                spy.proc.wait(run_cfg.duration + 30)
            except subprocess.TimeoutExpired:
                pass
    finally:
        if spy is not None:
            kids.stop(spy)
        kids.stop(server.child)
    if outcome.get("errors") or not os.path.exists(raw):
        return f"py-spy {size} B x {conns}: failed ({outcome.get('errors')})\n"
    self_samples: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    with open(raw) as f:
        for line in f:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            if not frames[0].startswith("thread ") or "MainThread" not in frames[0]:
                continue  # only the loop thread (the stdin waiter idles in another)
            frames = frames[1:]
            if not frames:
                continue
            leaf = frames[-1]  # full path and line, for the line's text
            frames = [_frame_name(frame) for frame in frames]
            total += count
            self_samples[leaf] = self_samples.get(leaf, 0) + count
            for name in set(frames):
                inclusive[name] = inclusive.get(name, 0) + count
    if not total:
        return f"py-spy {size} B x {conns}: no samples\n"
    # Samples blocked in the poller are the server waiting for the client: leave them out of the shares.
    idle = sum(count for name, count in self_samples.items() if name.split(" (")[0] in _POLL_FRAMES)
    busy = max(1, total - idle)
    out = [
        f"#### py-spy of the {kind} server, {size_label(size)} x {conns}\n\n"
        f"{outcome['rate']:,.0f} messages/s while sampled (py-spy takes CPU too); {total} samples of the loop "
        f"thread, {idle / total:.0%} of them waiting in the poller. Shares below are of the busy samples.\n",
        "| self share | leaf frame (a C call, e.g. `send`, counts against its line) | line |\n|---:|---|---|",
    ]
    for name, count in sorted(self_samples.items(), key=lambda kv: kv[1], reverse=True)[:16]:
        if name.split(" (")[0] in _POLL_FRAMES:
            continue
        out.append(f"| {count / busy:.1%} | `{_short(name)}` | `{_source_line(name)}` |")
    out += ["", "| inclusive share | function |", "|---:|---|"]
    top = max(inclusive.values())
    # Leave out the chain of wrappers every sample passes through (main, run, run_forever...).
    shown = [
        (name, count) for name, count in inclusive.items() if count < top and name.split(" (")[0] not in _POLL_FRAMES
    ]
    for name, count in sorted(shown, key=lambda kv: kv[1], reverse=True)[:20]:
        out.append(f"| {count / busy:.1%} | `{name}` |")
    return "\n".join(out) + "\n"


#: Frames in which a loop blocks waiting for readiness.
_POLL_FRAMES = {"EpollPoller.poll", "EpollSelector.select", "Loop._poll", "Loop._wait_for_events"}


def _short(frame: str) -> str:
    """``func (/a/b/file.py:12)`` → ``func (file.py:12)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.rstrip(')')).name})" if where else frame


def _source_line(frame: str) -> str:
    """The text of the line a py-spy frame points at (read now: it may have changed since)."""
    _, _, where = frame.partition(" (")
    path, _, line = where.rstrip(")").rpartition(":")
    if not line.isdigit():
        return ""
    if not os.path.isabs(path):
        # py-spy names files relative to sys.path: look where the servers imported from first.
        roots = [*((LAUNCH.child_env or {}).get("PYTHONPATH", "").split(os.pathsep)), *sys.path]
        path = next((os.path.join(r, path) for r in roots if r and os.path.exists(os.path.join(r, path))), path)
    text = linecache.getline(path, int(line)).strip()
    return text.replace("|", "\\|").replace("`", "'")[:70]


def _frame_name(frame: str) -> str:
    """``func (/path/file.py:12)`` → ``func (file.py)``: all samples of a function together."""
    name, _, where = frame.partition(" (")
    if not where:
        return frame
    return f"{name} ({Path(where.rstrip(')').rsplit(':', 1)[0]).name})"
