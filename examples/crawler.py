"""A small web crawler: ``map_unordered`` + ``urlopen_async``, against a local site.

An ``http.server`` serving a little generated site starts in this process on
127.0.0.1 (no network needed). The crawler fetches it level by level: every
page of a level is fetched with at most ``LIMIT`` requests in flight, each
page is handled the moment it arrives, and the links it holds make the next
level.

Run it:  python examples/crawler.py
"""

from __future__ import annotations

import contextlib
import http.server
import re
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator

import tasklets

LIMIT = 4  # requests in flight at once

#: The site: path -> links on that page. "/missing" is linked but absent.
SITE = {
    "/": ["/docs", "/blog", "/about"],
    "/docs": ["/docs/tutorial", "/docs/howto", "/docs/api"],
    "/blog": ["/blog/1", "/blog/2", "/missing"],
    "/about": ["/"],
    "/docs/tutorial": ["/docs"],
    "/docs/howto": ["/docs", "/docs/api"],
    "/docs/api": [],
    "/blog/1": ["/blog/2"],
    "/blog/2": ["/blog/1"],
}


class SiteHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the client's pool reuses connections
    wbufsize = -1  # buffer the head and body into one send (no Nagle/delayed-ACK stall)

    def do_GET(self) -> None:
        links = SITE.get(self.path)
        if links is None:
            self.send_error(404)
            return
        time.sleep(0.02 * (len(self.path) % 4))  # pages take varied times
        body = "".join(f'<a href="{link}">{link}</a>\n' for link in links).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the output to the crawler's


class LocalServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the default backlog of 5 makes concurrent connects wait 1 s


@contextlib.contextmanager
def serve_site() -> Iterator[str]:
    """Serve SITE on 127.0.0.1 and a free port; yield the base URL."""
    server = LocalServer(("127.0.0.1", 0), SiteHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@tasklets.task
def fetch(url: str):
    """Fetch one page: the response once its head arrives, then the whole body."""
    response = yield tasklets.urlopen_async(url, timeout=5)
    body = yield from response.read()
    return body.decode()


@tasklets.task
def crawl(root: str):
    seen = {root}
    level = [root]
    pages = 0
    while level:
        next_level = []
        for signal in tasklets.map_unordered(fetch, level, limit=LIMIT):
            try:
                html = yield signal
            except urllib.error.HTTPError as exc:  # tasklets' HTTPError is urllib's
                print(f"  {exc.code} {urllib.parse.urlsplit(signal.item).path}")
                continue
            pages += 1
            links = [urllib.parse.urljoin(signal.item, href) for href in re.findall(r'href="([^"]+)"', html)]
            print(f"  200 {urllib.parse.urlsplit(signal.item).path} ({len(links)} links)")
            for link in links:
                if link not in seen:
                    seen.add(link)
                    next_level.append(link)
        level = next_level
    return pages


def main() -> None:
    with serve_site() as root:
        print(f"crawling {root}/ with at most {LIMIT} requests in flight")
        started = time.perf_counter()
        pages = tasklets.run(crawl, root + "/")
        print(f"crawled {pages} pages in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
