"""``tasklets demo``: the seed's example, run against pages served on this machine.

A small HTTP server (the standard library's ``ThreadingHTTPServer``) starts
in this process on 127.0.0.1 and a free port, serving pages of varied sizes
that take varied times to answer, plus one missing page; one more URL points
at a port where nothing listens. The seed's example then loads them all with
tasklets, printing each page as it finishes loading, in that order and not
the order requested. The same job runs again with a
``concurrent.futures.ThreadPoolExecutor`` and ``urllib``, and both times are
shown.

Then the comparison that makes the point: :data:`LOAD_PAGES` pages that each
take :data:`LOAD_DELAY` seconds to answer, fetched all at once by tasklets on
one thread, by a thread pool sized as a user sizes one (the default
``ThreadPoolExecutor()``), and by a pool with a thread per request. Each runs
in a fresh process of its own, which reports its wall time, the threads it
ran and its peak memory (RSS, above what the idle interpreter took), so
that one's memory does not hide in another's. No network is needed; it takes
a few seconds.

Both halves ignore ``http_proxy`` and its kin: the pages are on this machine,
and a proxy (one that cannot reach our loopback, or one that is not there)
would fail them all. The exit status is 1 when a page that should have
loaded did not, in either half.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.server
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from .._as_completed import as_completed
from .._runtime import run
from .._task import task
from ..http import Client, PoolLimits
from ._terminal import printable

__all__ = ["LOAD_DELAY", "LOAD_PAGES", "run_demo", "demo_urls"]

#: The comparison: this many pages, each answered after this many seconds, of this size.
LOAD_PAGES = 100
LOAD_DELAY = 0.1
LOAD_SIZE = 16 * 1024

#: (path, size in bytes, delay in seconds): the requests go out in this order.
PAGES = [
    ("/page/large", 512 * 1024, 0.9),
    ("/page/small", 2 * 1024, 0.1),
    ("/page/medium", 64 * 1024, 0.5),
    ("/page/tiny", 300, 0.0),
    ("/page/slow", 16 * 1024, 1.2),
    ("/page/quick", 8 * 1024, 0.3),
]


class _PageHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    pages = {path: (size, delay) for path, size, delay in PAGES}

    def do_GET(self) -> None:  # the standard library's name
        page = self.pages.get(self.path)
        if page is None and self.path.startswith("/load/"):
            page = (LOAD_SIZE, LOAD_DELAY)
        if page is None:
            body = b"no such page\n"
            self.send_response(404)
        else:
            size, delay = page
            time.sleep(delay)  # the server thread stands in for a slow backend
            body = (self.path.encode() + b" ") * (size // (len(self.path) + 1) + 1)
            body = body[:size]
            self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the standard library's name
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops SYNs of a burst (a 1 s retransmit)

    def handle_error(self, request: Any, client_address: Any) -> None:  # the standard library's name
        # A client that went away (the demo stopped early: ``| head``) is no error worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def demo_urls() -> Iterator[list[str]]:
    """Serve the demo pages; yield the URLs to load (pages, a missing one, a refused port)."""
    server = _Server(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, name="tasklets-demo-server", daemon=True)
    thread.start()
    with socket.socket() as probe:  # a port nothing listens on: bound, then closed
        probe.bind(("127.0.0.1", 0))
        refused_port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{server.server_address[1]}"
    urls = [base + path for path, _, _ in PAGES]
    urls.insert(3, base + "/page/missing")
    urls.append(f"http://127.0.0.1:{refused_port}/page/nowhere")
    try:
        yield urls
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@task
def load_url_async(client: Client, url: str) -> Generator[Any, Any, bytes]:
    """The seed's tasklet: open the URL, read the whole page."""
    response = yield client.urlopen(url, timeout=10)
    with response:
        body: bytes = yield from response.read()
        return body


@task
def example(client: Client, urls: list[str], out: TextIO) -> Generator[Any, Any, int]:
    """The seed's example, as written there (in today's syntax); the number of pages loaded."""
    loaded = 0
    future_to_url = {load_url_async(client, url): url for url in urls}
    for wait_for_page in as_completed(future_to_url):
        try:
            data = yield wait_for_page
        except Exception as exc:
            url = future_to_url[wait_for_page.completed]
            print(f"Something broke for {url!r} ({_describe(exc)})", file=out)
        else:
            url = future_to_url[wait_for_page.completed]
            print(f"Loaded {len(data)} bytes from {url!r}", file=out)
            loaded += 1
    return loaded


def _describe(exc: BaseException) -> str:
    """One line on what broke, escaped: a reason or message may carry what a server sent."""
    if isinstance(exc, urllib.error.HTTPError):
        text = f"HTTPError: {exc.code} {exc.msg}"
    elif isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        text = f"{type(exc.reason).__name__}: {exc.reason}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return printable(text)


def _load_url_blocking(opener: urllib.request.OpenerDirector, url: str) -> bytes:
    with opener.open(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def thread_pool_example(urls: list[str], out: TextIO) -> int:
    """The same job the concurrent.futures way (the seed's "real kicker"); the number of pages loaded."""
    loaded = 0
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy: see the module's docstring
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(urls)) as executor:
        future_to_url = {executor.submit(_load_url_blocking, opener, url): url for url in urls}
        for future in concurrent.futures.as_completed(future_to_url):
            url = future_to_url[future]
            try:
                data = future.result()
            except Exception as exc:
                print(f"Something broke for {url!r} ({_describe(exc)})", file=out)
            else:
                print(f"Loaded {len(data)} bytes from {url!r}", file=out)
                loaded += 1
    return loaded


def run_demo(out: TextIO) -> int:
    """Run both versions against the local pages, then the comparison; return the exit status."""
    default_workers = concurrent.futures.ThreadPoolExecutor()._max_workers  # what ThreadPoolExecutor() takes
    with demo_urls() as urls, contextlib.ExitStack() as children:
        base = urls[0].rsplit("/page/", 1)[0]
        load = [f"{base}/load/{n}" for n in range(LOAD_PAGES)]
        runs = [
            ("tasklets, one thread", "tasklets", 0),
            (f"thread pool, default size ({default_workers})", "threads", default_workers),
            (f"thread pool, a thread per page ({LOAD_PAGES})", "threads", LOAD_PAGES),
        ]
        print("Requesting, in this order:", file=out)
        for url in urls:
            print(f"  {url}", file=out)
        print("\ntasklets: each page is handled the moment it has loaded", file=out)
        client = Client(proxies=None)  # no proxy: see the module's docstring
        try:
            tasklets_loaded = run(example, client, urls, out)
        finally:
            client.close()

        print("\nconcurrent.futures.ThreadPoolExecutor + urllib, the same job", file=out)
        threads_loaded = thread_pool_example(urls, out)

        print(
            f"\nNow {LOAD_PAGES} pages that each take {LOAD_DELAY} s to answer, fetched by a fresh process each way:",
            file=out,
        )
        out.flush()
        # Started only now (the first parts' order of completion is the point there, and three interpreters
        # loading would skew it), together: they load at once, then each fetches alone, the others idle.
        started = [(name, _start_child(how, load, workers)) for name, how, workers in runs]
        for _, child in started:
            children.callback(_stop, child)
        for _, child in started:  # all three loaded before the first goes: no interpreter starts beside a run
            _wait_ready(child)
        rows = [(name, _measure(child, name)) for name, child in started]
    print(f"  {'':<38} {'wall':>8} {'threads':>8} {'memory':>10}", file=out)
    for name, figures in rows:
        print(
            f"  {name:<38} {figures['wall']:>6.2f} s {figures['threads']:>8} {figures['memory'] / 1024:>6.1f} MiB",
            file=out,
        )
    print(
        "  (memory: peak RSS above the idle interpreter's)\n"
        "A pool sized as usual queues the pages behind its few threads; one sized to the job\n"
        "needs a thread, and its stack, per request in flight. tasklets runs them all on one.",
        file=out,
    )
    failed = [name for name, figures in rows if figures["loaded"] != LOAD_PAGES]
    if failed:
        print(f"tasklets demo: not every page loaded in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return _status(tasklets_loaded, threads_loaded)


_CHILD = "import sys; from tasklets.cli._demo import _load_child; _load_child(sys.argv[1:])"


def _start_child(how: str, urls: list[str], workers: int) -> subprocess.Popen[str]:
    """Start :func:`_load_child` in a fresh interpreter; it imports, then waits for :func:`_measure` to say go."""
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, how, str(workers), *urls],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")},
    )


def _wait_ready(child: subprocess.Popen[str]) -> None:
    """Wait for ``child`` to have imported what it needs (it says ``ready``), or to have failed."""
    assert child.stdout is not None
    child.stdout.readline()  # "ready", or "" if it failed: _measure then reports its stderr


def _measure(child: subprocess.Popen[str], name: str) -> dict[str, Any]:
    """Let ``child`` go; its figures (wall, threads, memory in KiB, pages loaded)."""
    try:
        stdout, stderr = child.communicate("go\n", timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        child.kill()
        child.communicate()
        stdout, stderr = "", str(exc)
    try:
        return json.loads(stdout.splitlines()[-1])  # type: ignore[no-any-return]
    except (IndexError, ValueError):
        print(f"tasklets demo: the run of {name} failed: {stderr.strip()[-500:]}", file=sys.stderr)
        return {"wall": 0.0, "threads": 0, "memory": 0, "loaded": 0}


def _stop(child: subprocess.Popen[str]) -> None:
    """End a child that did not run (the demo stopped early: ``| head``, Ctrl-C)."""
    if child.poll() is None:
        child.kill()
    child.communicate()


def _peak_rss() -> int:
    """This process's peak resident memory in KiB.

    Linux's ``VmHWM`` belongs to this program's image; ``ru_maxrss`` would do
    elsewhere, but on Linux it survives ``exec`` and starts at the parent's.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _load_child(argv: list[str]) -> None:
    """In the child: fetch every URL the asked way; print the figures as one JSON line."""
    how, workers, urls = argv[0], int(argv[1]), argv[2:]
    print("ready", flush=True)
    if not sys.stdin.readline():  # the demo ended before our turn
        return
    idle = _peak_rss()
    peak_threads = [threading.active_count()]
    started = time.perf_counter()
    if how == "tasklets":
        client = Client(proxies=None, limits=PoolLimits(max_connections=len(urls), max_per_host=len(urls)))

        def fetch_all() -> Generator[Any, Any, int]:
            loaded = 0
            for done in as_completed([load_url_async(client, url) for url in urls]):
                try:
                    yield done
                    loaded += 1
                except Exception:
                    pass
            peak_threads[0] = max(peak_threads[0], threading.active_count())
            return loaded

        try:
            loaded = run(fetch_all)
        finally:
            client.close()
    else:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        loaded = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as executor:
            futures = [executor.submit(_load_url_blocking, opener, url) for url in urls]
            for future in concurrent.futures.as_completed(futures):
                peak_threads[0] = max(peak_threads[0], threading.active_count())
                if future.exception() is None:
                    loaded += 1
    wall = time.perf_counter() - started
    figures = {"wall": wall, "threads": peak_threads[0], "memory": _peak_rss() - idle, "loaded": loaded}
    print(json.dumps(figures))


def _status(tasklets_loaded: int, threads_loaded: int) -> int:
    """1, with a word on stderr, when pages that are served failed to load: the demo showed nothing then."""
    if tasklets_loaded == threads_loaded == len(PAGES):
        return 0
    print(
        f"tasklets demo: only {tasklets_loaded} of {len(PAGES)} pages loaded with tasklets, "
        f"{threads_loaded} with the thread pool",
        file=sys.stderr,
    )
    return 1
