"""``body()`` takes what came with the response head at once, without a future per piece (its fast path).

A body that came whole is handed out in a future already done; one that
did not is gathered from what is at hand, then read (one buffer for a
large Content-Length body, a read per piece otherwise). Every case here is
read both ways, ``body()`` after ``client.get`` and ``read()`` after
``urlopen``, which must agree on the bytes and on what becomes of the
connection (reused for the next request, or closed). The server holds back
what follows the head's send until ``body()`` has been asked, so "at hand"
and "still to come" are known, never guessed.
"""

from __future__ import annotations

import gzip
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from _asgi_app import pattern, text
from _servers import RawConnection, RawServer, run

from tasklets import DecodingError
from tasklets.http import Client, Timeout

BACKENDS = ("h11", "httptools")


def _chunks(data: bytes, size: int) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size]) for i in range(0, len(data), size))


def _pieces(data: bytes, count: int) -> list[bytes]:
    step = -(-len(data) // count)
    return [data[i : i + step] for i in range(0, len(data), step)]


@dataclass
class Case:
    """A response: its head and what comes in the same send, what the server sends after, what must be read."""

    first: bytes
    later: list[bytes]
    body: bytes | type[Exception]
    reusable: bool
    at_once: bool  # body()'s future is done as it is asked (everything came with the head, or a decoding error)
    close: bool = False  # the server closes the connection after the last send


_SMALL = pattern(3000, seed=1)
_LARGE = pattern(300_000, seed=2)  # over 64 KiB still to come: body() reads the rest in one buffer
_TEXT = text(20_000, seed=3)  # compressed, it comes whole with the head
_ZIPPED = gzip.compress(_TEXT, mtime=0)
_BOMBLET = b"a" * 1_000_000  # decodes to several of the decoder's output pieces, all from one small read
_CORRUPT = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 20  # a gzip header, then an invalid block
_OK = b"HTTP/1.1 200 OK\r\n"


def _length(body: bytes, extra: bytes = b"") -> bytes:
    return _OK + extra + b"Content-Length: %d\r\n\r\n" % len(body)


CASES = {
    "length, whole with the head": Case(_length(_SMALL) + _SMALL, [], _SMALL, True, True),
    "length 0": Case(_length(b""), [], b"", True, True),
    "chunked, many chunks, whole with the head": Case(
        _OK + b"Transfer-Encoding: chunked\r\n\r\n" + _chunks(_SMALL, 17) + b"0\r\n\r\n", [], _SMALL, True, True
    ),
    "chunked, empty": Case(_OK + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [], b"", True, True),
    "chunked, empty, its end later": Case(
        _OK + b"Transfer-Encoding: chunked\r\n\r\n", [b"0\r\n\r\n"], b"", True, False
    ),
    "length, split over many reads": Case(
        _length(_SMALL) + _SMALL[:100], _pieces(_SMALL[100:], 12), _SMALL, True, False
    ),
    "length, nothing with the head": Case(_length(_SMALL), _pieces(_SMALL, 3), _SMALL, True, False),
    "length, large, split": Case(_length(_LARGE) + _LARGE[:5000], _pieces(_LARGE[5000:], 7), _LARGE, True, False),
    "chunked, split over many reads": Case(
        _OK + b"Transfer-Encoding: chunked\r\n\r\n" + _chunks(_SMALL[:500], 100),
        [*_pieces(_chunks(_SMALL[500:], 250), 9), b"0\r\n\r\n"],
        _SMALL,
        True,
        False,
    ),
    "until close": Case(
        _OK + b"Connection: close\r\n\r\n" + _SMALL[:700], [_SMALL[700:]], _SMALL, False, False, close=True
    ),
    "gzip, whole with the head": Case(
        _length(_ZIPPED, b"Content-Encoding: gzip\r\n") + _ZIPPED, [], _TEXT, True, True
    ),
    "gzip, split over many reads": Case(
        _length(_ZIPPED, b"Content-Encoding: gzip\r\n") + _ZIPPED[:10], _pieces(_ZIPPED[10:], 5), _TEXT, True, False
    ),
    "gzip, decoding to many pieces": Case(
        _length(gzip.compress(_BOMBLET, mtime=0), b"Content-Encoding: gzip\r\n") + gzip.compress(_BOMBLET, mtime=0),
        [],
        _BOMBLET,
        True,
        True,
    ),
    # The raw body is all read before the decoder finds it cut short: the connection is reused.
    "gzip, cut short": Case(
        _length(_ZIPPED[:-20], b"Content-Encoding: gzip\r\n") + _ZIPPED[:-20], [], DecodingError, True, True
    ),
    # Corrupt from its first piece, with the rest still to come: the connection is closed.
    "gzip, corrupt": Case(
        _length(_CORRUPT * 3, b"Content-Encoding: gzip\r\n") + _CORRUPT, [_CORRUPT * 2], DecodingError, False, True
    ),
}


class _Server:
    """Serves ``/case/NAME`` as ``CASES[NAME]`` says, holding back its later sends until ``go`` is set;
    anything else gets a small body that came whole. Counts the connections accepted."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.raw = RawServer(self._script)

    def _script(self, conn: RawConnection) -> None:
        while True:
            head, _ = conn.recv_request()
            if not head:
                return
            path = head.split(b" ")[1].decode()
            if not path.startswith("/case/"):
                conn.send(_length(b"next") + b"next")
                continue
            case = CASES[urllib.parse.unquote(path.removeprefix("/case/"))]
            conn.send(case.first)
            if case.later:
                self.go.wait(20)
            for piece in case.later:
                conn.send(piece)
                self.raw.stopping.wait(0.001)  # a pace, so that the pieces tend to come in reads of their own
            if case.close:
                return


@pytest.fixture
def server() -> Iterator[_Server]:
    made = _Server()
    with made.raw:
        yield made


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    with Client(proxy=None, timeout=Timeout(connect=5, read=10, total=30), parser=request.param) as made:
        yield made


def _read_case(client: Client, server: _Server, name: str, how: str) -> tuple[Any, bool | None, int]:
    """Read case ``name`` with ``body()`` or ``read()``: the body (or the exception class met), whether body()'s
    future was done at once (None for read()), and the connections the server accepted once one more request
    has followed."""
    url = f"{server.raw.url}/case/{urllib.parse.quote(name)}"

    def main() -> Any:
        at_once = None
        try:
            if how == "body":
                response = yield client.get(url)
                future = response.body()
                at_once = future.done()
                server.go.set()
            else:
                server.go.set()
                response = yield client.urlopen(url)
            try:
                body = (yield future) if how == "body" else (yield from response.read())
            except DecodingError as exc:
                assert url in str(exc)
                body = DecodingError
            # Read to its end or given up on, at once: a corrupt body's connection is not left to the GC.
            assert response.closed
        finally:
            server.go.set()
        after = yield client.get(f"{server.raw.url}/next")
        assert (yield after.body()) == b"next"
        return body, at_once

    body, at_once = run(main)
    return body, at_once, server.raw.accepted


@pytest.mark.parametrize("name", CASES)
def test_body_reads_what_read_reads(client: Client, server: _Server, name: str) -> None:
    case = CASES[name]
    body, at_once, connections = _read_case(client, server, name, "body")
    assert body == case.body
    assert connections == (1 if case.reusable else 2), "the connection was reused, or closed, wrongly"
    assert at_once is case.at_once


@pytest.mark.parametrize("name", CASES)
def test_read_agrees(client: Client, server: _Server, name: str) -> None:
    """The reference the fast path is held to: the same cases through ``urlopen`` and ``read()``."""
    case = CASES[name]
    body, _, connections = _read_case(client, server, name, "read")
    assert body == case.body
    assert connections == (1 if case.reusable else 2)


def test_a_body_taken_at_once_is_the_same_future_asked_again(client: Client, server: _Server) -> None:
    def main() -> Any:
        response = yield client.get(f"{server.raw.url}/case/{urllib.parse.quote('length, whole with the head')}")
        first = response.body()
        return first, response.body(), response.closed

    first, again, closed = run(main)
    assert first is again and first.result() == _SMALL and closed
