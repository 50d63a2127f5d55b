"""The seed's wait_first/as_completed example runs and handles pages as they finish."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "seed_as_completed.py"

#: Proxy settings the HTTP client honours; the example's pages are on 127.0.0.1.
PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def test_seed_example_handles_pages_in_completion_order() -> None:
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    env.update(PYTHONPATH=str(ROOT / "src"), TASKLETS_DEBUG="")
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=10, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    # The example serves its pages on 127.0.0.1 and a free port: learn the port from the first line.
    first = re.fullmatch(r"First to finish: '(http://127\.0\.0\.1:\d+)/fast'", lines[0]) if lines else None
    assert first, done.stdout
    base = first.group(1)
    # Requested slow, fast, missing, medium; the server answers them after 0.90, 0.05,
    # 0.30 (a 404) and 0.60 s, so they finish fast, missing, medium, slow.
    assert lines[:-1] == [
        f"First to finish: '{base}/fast'",
        f"Loaded 1024 bytes from '{base}/fast'",
        f"Something broke for '{base}/missing' (HTTPError: HTTP Error 404: Not Found ({base}/missing))",
        f"Loaded 8192 bytes from '{base}/medium'",
        f"Loaded 51200 bytes from '{base}/slow'",
    ]
    timing = re.fullmatch(r"All pages handled in (\d+\.\d\d) s \(one at a time would take 1\.85 s\)", lines[-1])
    assert timing, lines[-1]
    # No sooner than the slowest page, and in parallel: well short of the delays' sum.
    assert 0.90 <= float(timing.group(1)) < 1.85
