"""Sharded fetch benchmark (issue 6): ``tasklets fetch --dask`` with 2 workers vs a single-process fetch.

Usage::

    python bench/dask_fetch.py                 # 20,000 URLs, 3 rounds (a few minutes)
    python bench/dask_fetch.py --quick         # 5,000 URLs, 1 round
    python bench/dask_fetch.py --urls 50000 --rounds 5 --concurrency 32

What it measures
----------------
A private nginx (``_nginx.py``; or, without nginx, a standard-library
HTTP/1.1 server in a process of its own) serves one 1 KiB file on
127.0.0.1; the URLs are that file with ``?n=0``, ``?n=1``, ... so that every
one is distinct. Every round runs, in this order:

* **local**: ``tasklets fetch -i URLS --json -c C`` in a fresh interpreter:
  one process, one loop, C connections;
* **dask CLI**: ``tasklets fetch --dask local:2 -i URLS --json -c C`` in a
  fresh interpreter: it starts a ``LocalCluster`` of 2 worker processes
  (2 threads each), shards the URLs in batches of 128 and closes the
  cluster; each worker fetches with up to C connections;
* **dask warm**: the same sharded fetch on a cluster of 2 workers started
  once by this script (``run_dask_fetch`` on a connected client): the
  steady state of a long-lived cluster, without start-up.

For the CLI runs the figure is the fetch time the command's own summary
reports (from the first URL read until the last result printed; for
``--dask`` the clock starts once the cluster is up), and the wall time of
the whole command is shown next to it. Every sample must print one JSON
line per URL, all loaded, or the run stops: a broken run cannot look fast.

The overhead per URL is ``(sharded time - local time) / URLs``, per round,
and the median over rounds is shown. On a 2-core machine the workers, the
coordinator (which hosts the scheduler) and the server share the same two
cores, so sharding cannot win here: what this measures is the price of the
distribution (scheduling, pickling the batches and their results, the
hand-off through the coordinator), which is what a real cluster of many
machines pays to spread the fetching.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _harness import interleave, median
from _nginx import NginxUnavailable, nginx_server, pattern_bytes

_SUMMARY = re.compile(r"^(?:Interrupted: )?(\d+) URLs in ([\d.]+) s", re.MULTILINE)

_FALLBACK_SERVER = """
import http.server, socket, sys
BODY = bytes(range(256)) * 4
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@contextlib.contextmanager
def page_server() -> Iterator[tuple[str, str]]:
    """``(URL of a 1 KiB page, what serves it)``, nginx if there is one."""
    try:
        with nginx_server({"page.bin": pattern_bytes(1024)}) as nginx:
            yield nginx.url("page.bin"), f"nginx {nginx.version}"
            return
    except NginxUnavailable as exc:
        print(f"(no nginx: {exc}; using the standard library's server)", file=sys.stderr)
    process = subprocess.Popen([sys.executable, "-c", _FALLBACK_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass
        yield f"http://127.0.0.1:{port}/page.bin", "http.server (ThreadingHTTPServer, HTTP/1.1)"
    finally:
        process.terminate()
        process.wait(10)


def _check_output(stdout: str, count: int, what: str) -> None:
    lines = stdout.splitlines()
    failed = [line for line in lines if json.loads(line)["error"] is not None]
    if len(lines) != count or failed:
        raise SystemExit(f"{what}: {len(lines)} results for {count} URLs, {len(failed)} failed: {failed[:3]}")


def cli_sample(args: list[str], count: int, walls: list[float], what: str) -> float:
    """Run ``tasklets fetch ARGS``; the fetch time its summary reports (the wall time goes to ``walls``)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tasklets", "fetch", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    walls.append(time.perf_counter() - started)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    _check_output(done.stdout, count, what)
    summary = _SUMMARY.search(done.stderr)
    if summary is None or int(summary.group(1)) != count:
        raise SystemExit(f"{what}: no summary for {count} URLs in:\n{done.stderr[-2000:]}")
    return float(summary.group(2))


def warm_sample(client: Any, listing: Path, count: int, concurrency: int) -> float:
    """The sharded fetch on the already running cluster; its time."""
    from tasklets.cli._dask_fetch import run_dask_fetch
    from tasklets.cli._fetch import FetchOptions, UrlSource
    from tasklets.cli._report import PlainReporter, Summary

    out = io.StringIO()
    reporter = PlainReporter(Summary(), as_json=True, out=out, err=io.StringIO())
    source = UrlSource([], open(listing, encoding="utf-8"), close_input=True)
    started = time.perf_counter()
    status = run_dask_fetch(
        None,  # type: ignore[arg-type]
        source,
        FetchOptions(concurrency=concurrency, timeout=30.0),
        reporter,
        client=client,
    )
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"dask warm: exit status {status}")
    _check_output(out.getvalue(), count, "dask warm")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=20_000, help="URLs per sample (20000)")
    parser.add_argument("--rounds", type=int, default=3, help="recorded rounds (3)")
    parser.add_argument("--concurrency", type=int, default=64, help="-c: connections per process (64)")
    parser.add_argument("--quick", action="store_true", help="5,000 URLs, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.urls, args.rounds = 5_000, 1

    from distributed import Client, LocalCluster

    count, concurrency = args.urls, args.concurrency
    with (
        page_server() as (page, served_by),
        tempfile.TemporaryDirectory(prefix="tasklets-bench-dask-") as tmp,
    ):
        listing = Path(tmp) / "urls.txt"
        listing.write_text("".join(f"{page}?n={i}\n" for i in range(count)))
        print(f"{count} URLs of a 1 KiB page from {served_by}; -c {concurrency}; {os.cpu_count()} cores", flush=True)
        walls: dict[str, list[float]] = {"local": [], "dask CLI": []}
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1", dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            common = ["-i", str(listing), "--json", "--no-progress", "-c", str(concurrency)]
            cases = [
                ("local", lambda: cli_sample(common, count, walls["local"], "local")),
                (
                    "dask CLI",
                    lambda: cli_sample(["--dask", "local:2", *common], count, walls["dask CLI"], "dask CLI"),
                ),
                ("dask warm", lambda: warm_sample(client, listing, count, concurrency)),
            ]
            figures = interleave(
                cases, args.rounds, progress=lambda note: print(f"   ... {note}", file=sys.stderr, flush=True)
            )
        recorded = args.rounds
        print(f"\n{'contender':<12} {'fetch s':>9} {'URLs/s':>9} {'wall s':>8}   overhead vs local, per URL")
        local = figures["local"]
        for name, values in figures.items():
            wall = median(walls[name][-recorded:]) if name in walls else float("nan")
            overhead = "" if name == "local" else _overhead(values, local, count)
            print(f"{name:<12} {median(values):>9.2f} {count / median(values):>9.0f} {wall:>8.2f}   {overhead}")
    return 0


def _overhead(values: list[float], local: list[float], count: int) -> str:
    per_round = [(ours - theirs) / count * 1e6 for ours, theirs in zip(values, local, strict=True)]
    return f"{median(per_round):+.1f} us [{min(per_round):+.1f} .. {max(per_round):+.1f}]"


if __name__ == "__main__":
    sys.exit(main())
