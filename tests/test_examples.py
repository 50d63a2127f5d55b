"""Every script in examples/ runs to completion, fast, and prints what it promises.

The test is parametrised over ``examples/*.py``, so a new example is run as
soon as it exists. Each runs in a subprocess (as a reader would run it) with
a timeout, in development mode (``-X dev``: every warning shown, leaked
sockets an error); it must exit with status 0, print no traceback or warning
on stderr, and print the line ``EXPECTED`` lists for it (an example
that is not listed there must still print something). An example that needs
an optional package says so with a ``# requires: name`` line and is skipped
when that package is missing.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

#: Seconds an example may take (they aim for a few).
TIMEOUT = 30

#: A line (a regular expression, searched in stdout) each example must print.
EXPECTED = {
    "async_def.py": r"^stream: b'ping\\n'$",
    "crawler.py": r"^crawled 9 pages in [\d.]+ s$",
    "echo_server.py": r"^echoed 6 lines for 3 clients$",
    "fetch_many.py": r"^CLI: exit status 1 ",
    "mix_pools.py": r"^done: 4 files in [\d.]+ s$",
    "seed_as_completed.py": r"^Loaded 1024 bytes from 'http://127\.0\.0\.1:\d+/fast'$",
    "stream_download.py": r"^sha256 matches: True - file size: 16777216$",
    "sync_facade.py": r"^inside a task: slept$",
    "task_group.py": r"^parent cancelled: group.cancelled\(\) = True$",
    "timeouts_and_cancel.py": r"^stream read: ReadTimeout$",
    "tls_echo.py": r"^HTTPS: 200 b'hello over HTTPS'$",
    "virtual_clock.py": r"^test_silence_times_out_after_30_seconds: passed",
}


def _requirements(path: pathlib.Path) -> list[str]:
    return re.findall(r"^# requires: *(\S+)", path.read_text(), flags=re.M)


def test_examples_exist() -> None:
    assert EXAMPLES, "examples/ holds no script"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path: pathlib.Path) -> None:
    for module in _requirements(path):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{path.name} needs {module}, which is not installed")
    env = {**os.environ, "PYTHONWARNINGS": "error::ResourceWarning"}
    env.pop("TASKLETS_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-X", "dev", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    report = f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    assert done.returncode == 0, f"{path.name} exited with status {done.returncode}\n{report}"
    for trouble in ("Traceback", "Exception ignored", "Warning:"):
        assert trouble not in done.stderr, f"{path.name} printed {trouble!r} on stderr\n{report}"
    expected = EXPECTED.get(path.name)
    if expected is None:
        assert done.stdout.strip(), f"{path.name} printed nothing\n{report}"
    else:
        assert re.search(expected, done.stdout, flags=re.M), f"{path.name} did not print {expected!r}\n{report}"
