"""Bodies however the server cuts them: compressed streams split anywhere, framing that trickles in.

Two defects of issue 12 are pinned here. A compressed body's first piece
that decoded to nothing yet was decoded a second time (the same done read
pumped again); and a chunked body whose non-data bytes came in many small
reads chained one future per read until a RecursionError, swallowed in a
done-callback, left ``read()`` hanging.
"""

from __future__ import annotations

import socket
import sys
import urllib.error
from collections.abc import Iterator

import pytest
from _asgi_app import text
from _encodings import ENCODINGS, encode
from _servers import ExternalServer, RawConnection, RawServer, fetch, pattern, run

from tasklets._exceptions import DecodingError, HTTPError
from tasklets.http import Client, Timeout

BACKENDS = ("h11", "httptools")
#: Split points tried within the first bytes of each compressed stream (its header and first block).
SPLITS = range(1, 17)
BODY = text(20_000, seed=7)


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    with Client(proxies=None, timeout=Timeout(connect=5, read=5, total=20), parser=request.param) as made:
        yield made


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _split_script(conn: RawConnection) -> None:
    """Serve ``/ENCODING/FRAMING/SPLIT``: the encoded body's first SPLIT bytes in the same send as the head.

    Chunked: those bytes are a chunk of their own, as a streaming encoder
    that flushes its header first sends them. Content-Length: the rest of the
    body follows in a second send.
    """
    while True:
        head, _ = conn.recv_request()
        if not head:
            return
        encoding, framing, split = head.split(b" ")[1].decode().strip("/").split("/")
        encoded = encode(encoding, BODY)
        first, rest = encoded[: int(split)], encoded[int(split) :]
        start = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\n" % encoding.encode()
        if framing == "chunked":
            conn.send(start + b"Transfer-Encoding: chunked\r\n\r\n" + _chunk(first))
            conn.send(_chunk(rest) + b"0\r\n\r\n")
        else:
            conn.send(start + b"Content-Length: %d\r\n\r\n" % len(encoded) + first)
            conn.send(rest)


@pytest.fixture(scope="module")
def split_server() -> Iterator[RawServer]:
    with RawServer(_split_script) as server:
        yield server


@pytest.mark.parametrize("framing", ["chunked", "length"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_compressed_body_split_anywhere_in_its_first_bytes(
    client: Client, split_server: RawServer, encoding: str, framing: str
) -> None:
    def main() -> list[int]:
        wrong = []
        for split in SPLITS:
            _, body = yield from fetch(client, f"{split_server.url}/{encoding}/{framing}/{split}")
            if body != BODY:
                wrong.append(split)
        return wrong

    assert run(main) == [], "bodies decoded wrongly after these split points"


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_compressed_body_in_one_byte_chunks_all_in_one_read(client: Client, encoding: str) -> None:
    """Thousands of chunks that decode to nothing arrive at once: decoded in a loop, no recursion."""
    encoded = encode(encoding, BODY)
    chunks = b"".join(_chunk(encoded[i : i + 1]) for i in range(len(encoded)))
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % encoding.encode()
    assert len(encoded) > sys.getrecursionlimit()

    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.send(head + chunks + b"0\r\n\r\n")

    with RawServer(script) as server:
        _, body = run(fetch, client, server.url)
    assert body == BODY


def test_corrupt_error_body_is_not_passed_off_as_empty(client: Client) -> None:
    """A 500 whose gzip body is corrupt: HTTPError, and reading its body raises the DecodingError."""
    corrupt = b"\x1f\x8b\x08\x00garbage-not-deflate"

    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.send(b"HTTP/1.1 500 Oops\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(corrupt))
            conn.send(corrupt)

    def main() -> HTTPError:
        try:
            yield client.urlopen(server.url)
        except HTTPError as exc:
            return exc
        raise AssertionError("no HTTPError")

    with RawServer(script) as server:
        error = run(main)
    assert error.code == 500
    with pytest.raises(DecodingError, match="gzip") as caught:
        error.read()
    assert isinstance(caught.value, urllib.error.URLError)
    assert server.url in str(caught.value)


# -- real servers, real compressed responses ------------------------------------------------------------------


@pytest.fixture(params=["uvicorn-h11", "uvicorn-httptools", "hypercorn"])
def server(request: pytest.FixtureRequest, external_servers: dict[tuple[str, str], ExternalServer]) -> ExternalServer:
    return external_servers[request.param, "http"]


@pytest.mark.parametrize("stream", ["0", "1"])
@pytest.mark.parametrize("size", [100_000, 1_000_000])
@pytest.mark.parametrize("encoding", ["zstd", "br", "gzip"])
def test_real_compressed_responses(
    client: Client, server: ExternalServer, encoding: str, size: int, stream: str
) -> None:
    """Text-like data (about 3 to 1), so that a zstd block runs far past the bytes read with the head."""
    url = f"{server.url}/{encoding}/{size}?text=3&stream={stream}"
    response, body = run(fetch, client, url)
    assert response.headers["Content-Encoding"] == encoding
    assert len(body) == size
    assert body == text(size, 3)


def test_text_is_not_a_pattern() -> None:
    # The real-server test relies on data that does not compress to almost nothing.
    assert len(encode("zstd", text(100_000, 3))) > 20_000 > len(encode("zstd", pattern(100_000)))


# -- framing bytes that trickle in ------------------------------------------------------------------------------

TRICKLES = {
    "60 trailer fields": (
        b"5\r\nhello\r\n0\r\n" + b"".join(b"X-Trailer-%d: value\r\n" % i for i in range(60)) + b"\r\n"
    ),
    "padded chunk-size lines": b"0" * 600 + b"5\r\nhello\r\n" + b"0" * 600 + b"\r\n\r\n",
    "a long chunk extension": b"5;" + b";".join(b"name%d=value" % i for i in range(100)) + b"\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("name", TRICKLES)
def test_chunked_framing_one_byte_per_send(client: Client, name: str) -> None:
    """Hundreds of reads that complete no piece of the body: bounded, no chain of futures, no hang."""
    framing = TRICKLES[name]

    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            conn.trickle(framing, 0.0005)  # a pace, so that the client's reads take a byte or few each
            conn.hold()

    with RawServer(script) as server:
        _, body = run(fetch, client, server.url, limit=30)
    assert body == b"hello"
