"""``tasklets demo`` end to end: a child process, its output read as a user reads it."""

from __future__ import annotations

import concurrent.futures
import re
import subprocess
import sys

import pytest

from tasklets.cli._demo import LOAD_DELAY, LOAD_PAGES, PAGES

from ._cli_support import BOUND, cli_env, first_line_then_hang_up, run_cli

LOADED = re.compile(r"^Loaded (\d+) bytes from 'http://127\.0\.0\.1:\d+(/page/\w+)'$")
BROKE = re.compile(r"^Something broke for 'http://127\.0\.0\.1:\d+(/page/\w+)' \((\w+): .*\)$")
#: The demo's bound: it runs three fresh interpreters, and the machine may be loaded.
DEMO_BOUND = BOUND * 6
TASKLETS = "tasklets: each page is handled the moment it has loaded"
THREADS = "concurrent.futures.ThreadPoolExecutor + urllib, the same job"


def _section(lines: list[str], title: str) -> list[str]:
    start = lines.index(title) + 1
    end = lines.index("", start)
    return lines[start:end]


@pytest.mark.parametrize("proxied", [False, True], ids=["no proxy", "a proxy in the environment"])
def test_demo_prints_pages_in_completion_order_in_both_sections(proxied: bool, refused_url: str) -> None:
    # A proxy that is not there (a refused port) must not matter: the pages are on 127.0.0.1.
    proxy = refused_url.removesuffix("/nowhere")
    env = {name: proxy for name in ("http_proxy", "HTTP_PROXY", "all_proxy")} | {"no_proxy": "", "NO_PROXY": ""}
    # About 5 s unloaded; a machine at a load average of 30 on 2 cores took 34 s.
    done = run_cli("demo", env=env if proxied else None, timeout=DEMO_BOUND)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Requesting, in this order:"
    requested = [line.strip() for line in lines[1 : lines.index("")]]
    assert [re.sub(r"^http://127\.0\.0\.1:\d+", "", url) for url in requested[:3]] == [p for p, _, _ in PAGES[:3]]

    by_delay = [path for path, _, _ in sorted(PAGES, key=lambda page: page[2])]  # the order they complete in
    sizes = {path: size for path, size, _ in PAGES}
    for title in (TASKLETS, THREADS):
        section = _section(lines, title)
        loaded = [m for line in section if (m := LOADED.match(line))]
        broke = {m[1]: m[2] for line in section if (m := BROKE.match(line))}
        assert len(loaded) + len(broke) == len(section) == len(PAGES) + 2, section
        assert [m[2] for m in loaded] == by_delay, title  # tiny, small, quick, medium, large, slow
        assert all(int(m[1]) == sizes[m[2]] for m in loaded)
        assert broke["/page/missing"] == "HTTPError"
        assert broke["/page/nowhere"] in ("ConnectionRefused", "ConnectionRefusedError")
        # The failures come back at once, before any page that is made to wait.
        first_delayed = min(i for i, line in enumerate(section) if "/page/tiny" not in line and LOADED.match(line))
        assert all(i < first_delayed for i, line in enumerate(section) if BROKE.match(line)), section
    rows = re.findall(r"^  (.+?)  +([\d.]+) s +(\d+) +([\d.]+) MiB$", done.stdout, re.M)
    workers = concurrent.futures.ThreadPoolExecutor()._max_workers
    assert [name for name, *_ in rows] == [
        "tasklets, one thread",
        f"thread pool, default size ({workers})",
        f"thread pool, a thread per page ({LOAD_PAGES})",
    ]
    threads = [int(count) for _, _, count, _ in rows]
    # The pools' threads and the main thread. A pool starts a thread per task only while none is idle:
    # on a loaded machine the per-page pool may reuse some before the last pages are submitted.
    assert threads[:2] == [1, workers + 1]
    assert 1 < threads[2] <= LOAD_PAGES + 1
    walls = [float(wall) for _, wall, _, _ in rows]
    # The default pool queues the pages: at least the pages' delay times the rounds it needs (a lower bound).
    assert walls[1] >= LOAD_DELAY * (LOAD_PAGES // workers) * 0.9
    assert all(float(memory) >= 0 for *_, memory in rows)


def test_demo_exits_1_when_pages_that_are_served_fail_to_load() -> None:
    # The demo, with its server answering 404 to every page: both halves fail them all.
    code = "import sys; from tasklets.cli import _demo, main; _demo._PageHandler.pages = {}; sys.exit(main(['demo']))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=DEMO_BOUND, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.count("Loaded ") == 0 and done.stdout.count("(HTTPError: 404 ") == 2 * (len(PAGES) + 1)
    assert done.stderr.splitlines() == [
        f"tasklets demo: only 0 of {len(PAGES)} pages loaded with tasklets, 0 with the thread pool"
    ]


def test_a_reader_that_stops_early_ends_the_demo_quietly() -> None:
    """``tasklets demo | head -1``: no traceback, no log of abandoned pages, exit 1 as fetch does."""
    line, status, stderr = first_line_then_hang_up("demo")
    assert line == b"Requesting, in this order:\n"
    assert status == 1
    assert stderr == "", stderr
