"""Fetch many URLs at once: with the API (``Client`` + ``map_unordered``) and with ``tasklets fetch``.

A local ``http.server`` serves 20 pages of varied sizes and delays, and one
URL is missing. The API version keeps at most ``CONCURRENCY`` requests in
flight over a shared connection pool and reports each page the moment it
arrives; the command line does the same job, with a summary at the end.

Run it:  python examples/fetch_many.py
"""

from __future__ import annotations

import contextlib
import http.server
import subprocess
import sys
import threading
import time
import urllib.error
from collections.abc import Iterator

import tasklets
from tasklets.http import Client, PoolLimits

CONCURRENCY = 8


class Pages(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # buffer the head and body into one send (no Nagle/delayed-ACK stall)

    def do_GET(self) -> None:
        if not self.path.startswith("/page/"):
            self.send_error(404)
            return
        n = int(self.path.rsplit("/", 1)[1])
        time.sleep((n * 7 % 10) / 100)  # 0 to 90 ms
        body = b"x" * (1024 * (n + 1))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class LocalServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the default backlog of 5 makes concurrent connects wait 1 s


@contextlib.contextmanager
def serve() -> Iterator[str]:
    server = LocalServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def fetch_all(urls: list[str]):
    """Fetch every URL, at most CONCURRENCY at once; report each as it completes."""
    with Client(limits=PoolLimits(max_per_host=CONCURRENCY), timeout=10) as client:

        def fetch(url: str):  # a generator: map_unordered runs it as a task
            response = yield client.urlopen(url)
            return (yield from response.read())

        ok = failed = 0
        for signal in tasklets.map_unordered(fetch, urls, limit=CONCURRENCY):
            try:
                body = yield signal
            except urllib.error.URLError as exc:  # HTTPError, connection errors, timeouts
                failed += 1
                print(f"  failed: {signal.item} ({exc})")
            else:
                ok += 1
                print(f"  loaded {len(body)} bytes from {signal.item}")
    return ok, failed


def main() -> None:
    with serve() as base:
        urls = [f"{base}/page/{n}" for n in range(20)] + [f"{base}/missing"]

        print(f"API: {len(urls)} URLs, at most {CONCURRENCY} at once")
        started = time.perf_counter()
        ok, failed = tasklets.run(fetch_all, urls)
        print(f"API: {ok} loaded, {failed} failed in {time.perf_counter() - started:.2f} s")

        print("CLI: tasklets fetch")
        command = [sys.executable, "-m", "tasklets", "fetch", "--no-progress", "-c", str(CONCURRENCY), *urls]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        lines = done.stdout.splitlines() + done.stderr.splitlines()
        for line in [*lines[:3], "  ...", *lines[-3:]]:
            print("  " + line.strip())
        print(f"CLI: exit status {done.returncode} (1: some URL failed)")


if __name__ == "__main__":
    main()
