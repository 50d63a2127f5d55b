"""``http_client.py --profile``: where the tasklets client's time goes, per request, by cProfile."""

from __future__ import annotations

import contextlib
import os
import pstats
import tempfile
from collections.abc import Callable

__all__ = ["profile_client"]


def profile_client(run_sample: Callable[[str], object], what: str, total: int) -> None:
    """Run one profiled sample (``run_sample(path)`` dumps its stats to ``path``); print the top functions.

    ``total``: the requests the sample made, warm-up included (the figures are per request).
    """
    with tempfile.NamedTemporaryFile(suffix=".prof", delete=False) as handle:
        path = handle.name
    try:
        run_sample(path)
        print(
            f"\n== cProfile of the tasklets client, {what}, {total:,} requests (first batch included); wall-clock "
            "times per request, inflated by the profiler\n   (socket.send includes being preempted by nginx, "
            "which its send wakes)"
        )
        stats = pstats.Stats(path)
        rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
        print(f"   {'tottime us/req':>14} {'cumtime us/req':>14} {'calls/req':>9}  function")
        for (filename, line, function), (_, ncalls, tottime, cumtime, _) in rows[:25]:
            print(
                f"   {tottime / total * 1e6:>14.2f} {cumtime / total * 1e6:>14.2f} {ncalls / total:>9.2f}  "
                f"{_short_path(filename)}:{line}({function})"
            )
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _short_path(filename: str) -> str:
    """``tasklets/http/_client.py`` for a file of the snapshot or of src/; stdlib and packages by name."""
    if "/tasklets/" in filename:
        return "tasklets/" + filename.rsplit("/tasklets/", 1)[1]
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename
