"""``bench/core.py --baseline DIR``: another copy of tasklets measured in the same interleaved rounds.

Why: "within noise of the commit before the change" cannot be read off two
runs made minutes apart on a machine other work loads; it can from per-round
ratios of samples taken side by side. Under ``--baseline`` every tasklets
sample of the time measures (1, 2, 3a, 4, 5) runs in a fresh interpreter
(``core.py --child-sample``), ours with the work tree's tasklets, the
baseline's with ``DIR`` first on ``PYTHONPATH`` (say, ``git archive REF src``
unpacked in /tmp), so that neither copy is warmer than the other; the
report gives ``tasklets / baseline`` as the median [min-max] of per-round
ratios. The samples use only the API both copies have: ``run``, ``spawn``,
``gather``, ``Future``, ``current_loop`` and ``as_completed``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import Report, median, ratio_of

CORE = str(Path(__file__).resolve().parent / "core.py")

#: The baseline's directory (``--baseline``), None when there is no A/B.
baseline: str | None = None
#: What the children are told too: ``--cpu-time``, ``--tasklets-loop plain``.
child_flags: list[str] = []


def cases(
    sample: str, args: list[Any], in_process: Callable[[], float], suffix: str = ""
) -> list[tuple[str, Callable[[], float]]]:
    """The tasklets contenders of a measure: ours in process, or ours and the baseline's in children."""
    if baseline is None:
        return [(f"tasklets{suffix}", in_process)]
    return [
        (f"tasklets{suffix}", lambda: _child(sample, args, None)),
        (f"baseline{suffix}", lambda: _child(sample, args, baseline)),
    ]


def report_baseline(
    report: Report,
    figures: dict[str, list[float]],
    scale: float,
    unit: str,
    suffix: str = "",
    label: str = "",
    **how: Any,
) -> None:
    """The baseline's figure and ``tasklets / baseline`` (no target: an A/B, < 1 means we are faster)."""
    theirs = figures.get(f"baseline{suffix}")
    if theirs is not None:
        ours = figures[f"tasklets{suffix}"]
        report.figure(label or f"baseline{suffix}", median(theirs) * scale, unit, ratio_of(ours, theirs), None, **how)


def _child(sample: str, args: list[Any], path: str | None) -> float:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (path, env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, CORE, "--child-sample", sample, json.dumps(args), *child_flags],
        capture_output=True, text=True, timeout=600, check=False, env=env,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{sample} sample of {path or 'the work tree'} failed:\n{done.stderr[-2000:]}")
    value: float = json.loads(done.stdout.strip().splitlines()[-1])["value"]
    return value
