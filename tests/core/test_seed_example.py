"""The seed's wait_first/as_completed example runs and handles pages as they finish."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "seed_as_completed.py"


def test_seed_example_handles_pages_in_completion_order() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TASKLETS_DEBUG": ""}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=30, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    # Requested slow, fast, missing, medium; they finish fast (0.05 s), missing
    # (0.10 s, a failure), medium (0.15 s), slow (0.30 s).
    assert lines[:5] == [
        "First to finish: 'http://example.test/fast'",
        "Loaded 1024 bytes from 'http://example.test/fast'",
        "Something broke for 'http://example.test/missing' (LookupError: 404 Not Found: http://example.test/missing)",
        "Loaded 8192 bytes from 'http://example.test/medium'",
        "Loaded 51200 bytes from 'http://example.test/slow'",
    ]
    assert len(lines) == 6 and lines[5].startswith("All pages handled in ")
