"""``tasklets demo``: the seed's example, run against pages served on this machine.

A small HTTP server (the standard library's ``ThreadingHTTPServer``) starts
in this process on 127.0.0.1 and a free port, serving pages of varied sizes
that take varied times to answer, plus one missing page; one more URL points
at a port where nothing listens. The seed's example then loads them all with
tasklets, printing each page as it finishes loading, in that order and not
the order requested. The same job runs again with a
``concurrent.futures.ThreadPoolExecutor`` and ``urllib``, and both times are
shown. No network is needed; it takes a few seconds.

Both halves ignore ``http_proxy`` and its kin: the pages are on this machine,
and a proxy (one that cannot reach our loopback, or one that is not there)
would fail them all. The exit status is 1 when a page that should have
loaded did not, in either half.
"""

from __future__ import annotations

import concurrent.futures
import http.server
import socket
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
from ..http import Client

__all__ = ["run_demo", "demo_urls"]

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
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTPError: {exc.code} {exc.msg}"
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        return f"{type(exc.reason).__name__}: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


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
    """Run both versions against the local pages; return the exit status."""
    with demo_urls() as urls:
        print("Requesting, in this order:", file=out)
        for url in urls:
            print(f"  {url}", file=out)
        print("\ntasklets: each page is handled the moment it has loaded", file=out)
        started = time.perf_counter()
        client = Client(proxies=None)  # no proxy: see the module's docstring
        try:
            tasklets_loaded = run(example, client, urls, out)
        finally:
            client.close()
        tasklets_time = time.perf_counter() - started

        print("\nconcurrent.futures.ThreadPoolExecutor + urllib, the same job", file=out)
        started = time.perf_counter()
        threads_loaded = thread_pool_example(urls, out)
        threads_time = time.perf_counter() - started

    print(
        f"\ntasklets: {tasklets_time:.2f} s on one thread; thread pool: {threads_time:.2f} s on {len(urls)} threads.\n"
        "Both finish when the slowest page does; tasklets needs no thread per request.",
        file=out,
    )
    return _status(tasklets_loaded, threads_loaded)


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
