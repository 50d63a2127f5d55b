"""Micro-benchmark: one keep-alive exchange with a typical 1 KiB response, per parser.

Prints microseconds per response for our protocol layer over each backend
(request bytes + parse + start_next_cycle), the parse alone (feed +
start_next_cycle) and, for reference, raw h11 doing the same cycle, raw
httptools parsing alone (the floor: no request, no framing policy, no
keep-alive bookkeeping) and aiohttp's C response parser (what its client
spends on the same response).

    python bench/http_parse.py [N]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from tasklets.http._protocol import available_backends, create_client_connection

BODY = b"x" * 1024
RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Date: Wed, 25 Nov 2026 18:00:00 GMT\r\n"
    b"Server: nginx/1.27.0\r\n"
    b"Content-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: 1024\r\n"
    b"Connection: keep-alive\r\n"
    b"Cache-Control: no-cache\r\n"
    b'ETag: "5f3c-1a2b3c4d"\r\n'
    b"X-Request-Id: 0b7c1f2e-4d5a-4e6f-9a8b-1c2d3e4f5a6b\r\n"
    b"\r\n" + BODY
)
HEADERS = [("Host", "example.com"), ("User-Agent", "tasklets/0.1"), ("Accept", "*/*"), ("Accept-Encoding", "gzip")]


def ours(backend: str) -> Callable[[], None]:
    conn = create_client_connection(backend=backend)

    def exchange() -> None:
        conn.send_request("GET", "/api/item", HEADERS)
        conn.send_end()
        events = conn.feed(RESPONSE)
        assert len(events) == 3, events
        conn.start_next_cycle()

    return exchange


def ours_parse(backend: str, n: int) -> float:
    """Seconds spent in feed() + start_next_cycle() alone over n exchanges (requests not counted)."""
    conn = create_client_connection(backend=backend)
    clock = time.perf_counter
    total = 0.0
    for _ in range(n):
        conn.send_request("GET", "/api/item", HEADERS)
        conn.send_end()
        start = clock()
        conn.feed(RESPONSE)
        conn.start_next_cycle()
        total += clock() - start
    empty = 0.0
    for _ in range(n):  # the cost of reading the clock twice
        start = clock()
        empty += clock() - start
    return total - empty


def raw_h11() -> Callable[[], None]:
    import h11

    conn = h11.Connection(h11.CLIENT)

    def exchange() -> None:
        conn.send(h11.Request(method="GET", target="/api/item", headers=HEADERS))
        conn.send(h11.EndOfMessage())
        conn.receive_data(RESPONSE)
        events = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                break
            events.append(event)
            if type(event) is h11.EndOfMessage:
                break
        assert len(events) == 3, events
        conn.start_next_cycle()

    return exchange


def raw_httptools() -> Callable[[], None]:
    import httptools

    class Callbacks:
        def __init__(self) -> None:
            self.headers: list[tuple[bytes, bytes]] = []
            self.body: list[bytes] = []
            self.done = False

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers.append((name, value))

        def on_body(self, body: bytes) -> None:
            self.body.append(body)

        def on_message_complete(self) -> None:
            self.done = True

    callbacks = Callbacks()
    parser = httptools.HttpResponseParser(callbacks)

    def exchange() -> None:
        callbacks.headers = []
        callbacks.body = []
        callbacks.done = False
        parser.feed_data(RESPONSE)
        assert callbacks.done

    return exchange


def raw_aiohttp() -> Callable[[], None] | None:
    """aiohttp's own (C, llhttp) response parser, which its client uses: the parse to beat."""
    try:
        import asyncio

        from aiohttp._http_parser import HttpResponseParser  # type: ignore[import-not-found]
        from aiohttp.base_protocol import BaseProtocol
    except ImportError:
        return None
    loop = asyncio.new_event_loop()
    parser = HttpResponseParser(BaseProtocol(loop), loop, 2**16, timer=None, response_with_body=True)

    def parse() -> None:
        messages, _upgraded, _tail = parser.feed_data(RESPONSE)
        assert messages[0][0].code == 200

    return parse


def measure(fn: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rounds = 7
    backends = available_backends()
    cases: dict[str, Callable[[], float]] = {}
    for backend in ("h11", "httptools"):
        if backend in backends:
            exchange = ours(backend)
            cases[f"tasklets + {backend}: exchange"] = lambda exchange=exchange: measure(exchange, n)
            cases[f"tasklets + {backend}: parse"] = lambda backend=backend: ours_parse(backend, n)
    if "h11" in backends:
        cases["raw h11: exchange"] = lambda: measure(raw_h11(), n)
    if "httptools" in backends:
        cases["raw httptools: parse"] = lambda: measure(raw_httptools(), n)
    aiohttp_parse = raw_aiohttp()
    if aiohttp_parse is not None:
        cases["aiohttp's parser: parse"] = lambda: measure(aiohttp_parse, n)
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(rounds):  # interleaved, best of: the machine may be busy
        for name, case in cases.items():
            best[name] = min(best[name], case())
    print(f"{len(RESPONSE)}-byte response ({len(BODY)}-byte body), best of {rounds} x {n}")
    print("  exchange = request bytes + parse + start_next_cycle(); parse = feed() + start_next_cycle()")
    for name, seconds in best.items():
        print(f"  {name:34s} {seconds / n * 1e6:7.2f} us/response")


if __name__ == "__main__":
    main()
