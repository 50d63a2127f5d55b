"""The seed's example: load pages in parallel, handle each the moment it arrives.

The 2012 sketch ("Tentative Python 3.4 async example") loads a few URLs at
once with ``urllib.urlopen_async(url)`` and prints each page as it finishes,
in the order they finish rather than the order requested. This is that code,
adapted only where the sketch cannot run as written:

* ``def load_url_async(url)`` lacked its colon, and ``return yield from
  conn.read()`` needs parentheses: ``return (yield from conn.read())``.
* urllib never grew an ``urlopen_async``; ``tasklets.urlopen_async`` is that
  call (a future of the response; ``conn.read()`` is the ordinary generator
  the sketch describes).
* The sketch's helpers ``wait_first`` and ``as_completed`` are tasklets' own,
  imported rather than redefined. The sketch defines ``wait_first`` but never
  calls it; here it reports the first page to finish, before ``as_completed``
  handles them all.
* Messages are f-strings naming the exception's class (``type(exc).__name__``
  rather than its ``<class ...>`` repr).
* The sketch names no URLs. To run anywhere without a network, the pages come
  from a small ``http.server`` this script starts on 127.0.0.1 (a free port)
  and stops at the end. Each page answers after its own delay, so they finish
  in a known order, and one page is missing: its 404 raises
  ``urllib.error.HTTPError``, which the example reports and carries on.

Run it:  python examples/seed_as_completed.py
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import tasklets
from tasklets import as_completed, task, wait_first

#: path -> (seconds the server takes to answer, size in bytes); None: 404 Not Found.
#: Requested in this order; they finish fast, missing, medium, slow.
PAGES = {
    "/slow": (0.90, 51_200),
    "/fast": (0.05, 1_024),
    "/missing": (0.30, None),
    "/medium": (0.60, 8_192),
}


class PageHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``PAGES``: each after its delay (a slow backend), the missing one as a 404."""

    def do_GET(self) -> None:
        delay, size = PAGES.get(self.path, (0.0, None))
        time.sleep(delay)
        if size is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.write(b"x" * size)

    def log_message(self, *args: object) -> None:
        pass  # no access log on stderr


class PageServer(http.server.ThreadingHTTPServer):
    daemon_threads = False  # so server_close() waits for every request's thread


@contextmanager
def local_pages() -> Iterator[str]:
    """Serve ``PAGES`` on 127.0.0.1 in a background thread; yield the base URL."""
    server = PageServer(("127.0.0.1", 0), PageHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()  # stops serve_forever
        thread.join()
        server.server_close()  # closes the listening socket, joins the request threads


@task
def load_url_async(url: str):
    """The seed's tasklet: open the URL, then read the whole page."""
    conn = yield tasklets.urlopen_async(url)
    return (yield from conn.read())


@task
def example(urls: list[str]):
    """The seed's example: handle each page as it arrives."""
    future_to_url = {load_url_async(url): url for url in urls}
    first = wait_first(future_to_url)
    try:
        yield first
    except Exception:
        pass  # the first page to finish may be a failure; as_completed reports it below
    print(f"First to finish: {future_to_url[first.completed]!r}")
    for wait_for_page in as_completed(future_to_url):
        try:
            data = yield wait_for_page
        except Exception as exc:
            url = future_to_url[wait_for_page.completed]
            print(f"Something broke for {url!r} ({type(exc).__name__}: {exc})")
        else:
            url = future_to_url[wait_for_page.completed]
            print(f"Loaded {len(data)} bytes from {url!r}")


def main() -> None:
    with local_pages() as base:
        started = time.perf_counter()
        tasklets.run(example, [base + path for path in PAGES])
        elapsed = time.perf_counter() - started
    one_at_a_time = sum(delay for delay, _ in PAGES.values())
    print(f"All pages handled in {elapsed:.2f} s (one at a time would take {one_at_a_time:.2f} s)")


if __name__ == "__main__":
    main()
