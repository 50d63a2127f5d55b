"""Hostile servers, scripted byte by byte: each misbehaviour gets a clear, specific error in bounded time.

Every test checks that the failed exchange left nothing behind: no
connection in the pool (``_idle_and_open``), and, through the autouse
fixture, no descriptor.
"""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc
import urllib.error
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _encodings import ENCODINGS, encode, zstd
from _servers import RawConnection, RawServer, fetch, pattern, run

import tasklets
from tasklets._exceptions import (
    BodyTooLarge,
    DecodingError,
    HTTPReadTimeout,
    InvalidURL,
    LocalProtocolError,
    RemoteDisconnected,
    RemoteProtocolError,
    TooManyRedirects,
    TotalTimeout,
    UnsupportedRedirect,
)
from tasklets.http import Client, Timeout
from tasklets.http._headers import Headers
from tasklets.http._response import MAX_DECODED_CHUNK, Response
from tasklets.testing import VirtualClock

#: Real seconds a hostile exchange may take before the test gives up on it (a hang guard, far
#: above any exchange's duration: whether a failure came in time is checked on the virtual clock).
BOUND = 5.0
HANG = 60.0
#: Real seconds of idleness before a virtual clock jumps: a scripted server thread answers well within it.
AUTOJUMP = 0.1


@pytest.fixture(params=["httptools", "h11"])
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    """A client with each parser backend."""
    with Client(proxies=None, timeout=Timeout(connect=2, read=2, total=10), parser=request.param) as made:
        yield made


def _pool_counts(client: Client) -> tuple[int, int]:
    """(open, idle) connections of the client's pool on the running loop."""
    pool = client._pool(tasklets.current_loop())
    return pool.open_connections, pool.idle_connections


def respond(data: bytes, *, then: str = "close") -> Callable[[RawConnection], None]:
    """A script: read the request, send ``data``, then close or hold the connection."""

    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.send(data)
            if then == "hold":
                conn.hold()

    return script


def expect_failure(
    client: Client,
    url: str,
    error: type[BaseException],
    match: str | None = None,
    *,
    pool: tuple[int, int] = (0, 0),
    at: float | None = None,
    **kw: Any,
) -> Any:
    """Request ``url``, read the body; assert ``error`` and ``pool`` (open, idle) after.

    An empty pool by default; (1, 1) where the failure came after a whole
    exchange whose healthy connection is kept for the next request. With
    ``at``, the exchange runs on a virtual clock and must fail exactly ``at``
    seconds into it (0: at once, before any timeout could have fired).
    """

    def main() -> Any:
        loop = tasklets.current_loop()
        started = loop.time()
        try:
            yield from fetch(client, url, **kw)
        except error as exc:
            return exc, _pool_counts(client), loop.time() - started
        raise AssertionError(f"{url} did not fail with {error.__name__}")

    clock = None if at is None else VirtualClock(autojump_threshold=AUTOJUMP)
    exc, counts, took = run(main, limit=HANG, clock=clock)
    if at is not None:
        assert took == pytest.approx(at), f"failed {took} s into the exchange, not {at} s"
    assert counts == pool, f"the failed exchange left (open, idle) connections {counts} in the pool, not {pool}"
    origin = "/".join(url.split("/", 3)[:3])
    assert origin in str(exc), f"the message does not name the URL: {exc}"
    if match is not None:
        assert match in str(exc), str(exc)
    return exc


# -- the response head ---------------------------------------------------------------------------------------

HEAD_CASES = {
    "malformed-status-line": (b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n", None),
    "no-status-code": (b"HTTP/1.1\r\n\r\n", None),
    "tls-bytes": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40), "this is TLS"),
    "binary": (b"\x00\x00\x12\x04\x00\x00\x00\x00\x00" + bytes(18), "binary protocol"),
    "not-http": (b"SSH-2.0-OpenSSH_9.0\r\n", "expected an HTTP/1.x response"),
    "http-2-version": (b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", None),
    "cr-in-value": (b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n", None),
    "lf-in-value": (b"HTTP/1.1 200 OK\r\nX-A: a\nb\r\nContent-Length: 0\r\n\r\n", None),
    "nul-in-value": (b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n", None),
    "control-in-value": (b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n", None),
    "obs-fold": (b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", None),
    "conflicting-content-length": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        "Content-Length",
    ),
    "content-length-list": (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello", "Content-Length"),
    "negative-content-length": (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
    "content-length-and-chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "Transfer-Encoding",
    ),
    "unknown-transfer-coding": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding"),
    "space-before-colon": (b"HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 0\r\n\r\n", None),
    "too-many-headers": (
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(150)) + b"\r\n",
        "header fields",
    ),
    "over-long-line": (b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 40_000 + b"\r\n\r\n", "longer than"),
    "over-long-block": (
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1500) for i in range(60)) + b"\r\n",
        "65536",
    ),
    "endless-head": (b"HTTP/1.1 200 OK\r\n" + b"X-A: v\r\n" * 20_000, None),
    "endless-1xx": (b"HTTP/1.1 100 Continue\r\n\r\n" * 50, "informational"),
    "eof-in-head": (b"HTTP/1.1 200 OK\r\nContent-Le", "middle of the response head"),
    "eof-after-1xx": (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", "informational"),
}


@pytest.mark.parametrize("case", list(HEAD_CASES))
def test_bad_response_head(client: Client, case: str) -> None:
    data, match = HEAD_CASES[case]
    with RawServer(respond(data)) as server:
        expect_failure(client, f"{server.url}/", RemoteProtocolError, match)


@pytest.mark.parametrize("case", ["over-long-line", "over-long-block", "obs-fold", "too-many-headers"])
def test_bad_response_head_trickled_one_byte_at_a_time(client: Client, case: str) -> None:
    data, match = HEAD_CASES[case]

    def script(conn: RawConnection) -> None:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if conn.recv_request()[0]:
            conn.trickle(data, 0)

    with RawServer(script) as server:
        expect_failure(client, f"{server.url}/", RemoteProtocolError, match)


def test_nothing_at_all_is_remote_disconnected(client: Client) -> None:
    with RawServer(respond(b"")) as server:
        expect_failure(client, f"{server.url}/", RemoteDisconnected, "without sending a response")


# -- the body ------------------------------------------------------------------------------------------------

BODY_CASES = {
    "bad-chunk-size": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", None),
    "negative-chunk-size": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", None),
    "huge-chunk-size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        None,
    ),
    "bad-chunk-terminator": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", None),
    "eof-in-chunked-body": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "chunked"),
    "body-shorter-than-declared": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", "5 of 10"),
    "too-many-trailers": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
        + b"".join(b"X-%d: v\r\n" % i for i in range(150))
        + b"\r\n",
        None,
    ),
    "endless-chunk-size-line": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"0" * 200_000, None),
}


@pytest.mark.parametrize("case", list(BODY_CASES))
def test_bad_response_body(client: Client, case: str) -> None:
    data, match = BODY_CASES[case]
    with RawServer(respond(data)) as server:
        expect_failure(client, f"{server.url}/", RemoteProtocolError, match)


def test_extra_bytes_after_a_kept_alive_response_poison_the_connection(client: Client) -> None:
    def script(conn: RawConnection) -> None:
        while conn.recv_request()[0]:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n\r\n")

    def main() -> Any:
        _, first = yield from fetch(client, f"{server.url}/1")
        _, second = yield from fetch(client, f"{server.url}/2")
        return first, second, _pool_counts(client)

    with RawServer(script) as server:
        first, second, counts = run(main)
    assert (first, second) == (b"hello", b"hello")
    assert server.accepted == 2, "the poisoned connection was reused"
    assert counts == (0, 0)


def test_never_ending_body_is_bounded_by_the_read_limit(client: Client) -> None:
    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            piece = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
            while not conn.server.stopping.is_set():
                conn.send(piece)

    def main() -> Any:
        response = yield client.urlopen(f"{server.url}/")
        try:
            yield from response.read(limit=1_000_000)
        except BodyTooLarge as exc:
            return exc, _pool_counts(client)

    with RawServer(script) as server:
        exc, counts = run(main)
    assert "1000000" in str(exc)
    assert counts == (0, 0)


def _bomb(encoding: str, size: int) -> bytes:
    return encode(encoding, bytes(size), level=9 if encoding in ("gzip", "deflate") else None)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_compression_bomb_is_decoded_in_bounded_chunks(client: Client, encoding: str) -> None:
    size = 32 * 1024 * 1024
    bomb = _bomb(encoding, size)
    assert len(bomb) < size // 500
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n" % (encoding.encode(), len(bomb))

    def main() -> Any:
        response = yield client.urlopen(f"{server.url}/")
        biggest = total = 0
        for wait_for_chunk in response.read():
            chunk = yield wait_for_chunk
            biggest = max(biggest, len(chunk))
            total += len(chunk)
        return biggest, total

    with RawServer(respond(head + bomb)) as server:
        tracemalloc.start()
        try:
            biggest, total = run(main, limit=30)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert total == size
    assert 0 < biggest <= MAX_DECODED_CHUNK
    assert peak < 8 * MAX_DECODED_CHUNK + 4 * len(bomb), f"peak {peak} bytes while decoding"


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_compression_bomb_stops_at_the_read_limit(client: Client, encoding: str) -> None:
    bomb = _bomb(encoding, 32 * 1024 * 1024)
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n" % (encoding.encode(), len(bomb))
    with RawServer(respond(head + bomb, then="hold")) as server:

        def main() -> Any:
            response = yield client.urlopen(f"{server.url}/")
            try:
                yield from response.read(limit=1_000_000)
            except BodyTooLarge:
                return _pool_counts(client)

        assert run(main) == (0, 0)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_corrupt_encoded_body_is_a_decoding_error(client: Client, encoding: str) -> None:
    body = b"not %s at all, just text" % encoding.encode()
    data = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        encoding.encode(), len(body), body
    )
    with RawServer(respond(data)) as server:
        expect_failure(client, f"{server.url}/", DecodingError, f"corrupt {encoding} body")


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_an_encoded_body_cut_short_is_a_decoding_error(client: Client, encoding: str) -> None:
    """The message ends where its Content-Length says, but the compressed stream inside it has not ended."""
    encoded = encode(encoding, pattern(200_000))[:-8]
    data = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        encoding.encode(), len(encoded), encoded
    )

    def main() -> Any:
        try:
            yield from fetch(client, f"{server.url}/")
        except DecodingError as exc:
            return exc, _pool_counts(client)
        raise AssertionError("a truncated body was accepted")

    with RawServer(respond(data, then="hold")) as server:
        exc, counts = run(main)
    assert f"{encoding} body ended before" in str(exc)
    # The HTTP message itself was whole: its connection went back to the pool, unharmed.
    assert counts == (1, 1)


def test_a_zstd_frame_needing_a_window_over_8_mib_is_refused(client: Client) -> None:
    """RFC 9659 forbids HTTP senders such frames: decoding one could take the window's memory."""
    # 12 MiB with a 16 MiB window: the frame says it needs 12 MiB (its content size) to decode.
    encoded = zstd.compress(bytes(12 << 20), options={zstd.CompressionParameter.window_log: 24})
    data = b"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: %d\r\n\r\n%s" % (len(encoded), encoded)
    with RawServer(respond(data)) as server:
        expect_failure(client, f"{server.url}/", DecodingError, "corrupt zstd body")


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
@pytest.mark.parametrize("framing", ["one-piece", "a-chunk-each"])
def test_a_body_of_several_gzip_members_or_zstd_frames_is_decoded_whole(
    client: Client, encoding: str, framing: str
) -> None:
    """Both codings allow concatenation; each member may also come in a read of its own."""
    parts = [pattern(MAX_DECODED_CHUNK, seed=1), b"the second member", pattern(100_000, seed=3)]
    members = [encode(encoding, part) for part in parts]
    if framing == "one-piece":
        encoded = b"".join(members)
        framed = b"Content-Length: %d\r\n\r\n%s" % (len(encoded), encoded)
    else:
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(member), member) for member in members)
        framed = b"Transfer-Encoding: chunked\r\n\r\n%s0\r\n\r\n" % chunks
    data = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\n%s" % (encoding.encode(), framed)

    def script(conn: RawConnection) -> None:
        while conn.recv_request()[0]:
            conn.send(data)

    with RawServer(script) as server:
        _, body = run(fetch, client, f"{server.url}/")
    assert body == b"".join(parts)


def test_a_decoder_that_stops_making_progress_is_an_error_not_a_hang() -> None:
    class Stuck:
        """Says it holds input, and never gives any output."""

        def feed(self, data: bytes, max_size: int) -> bytes:
            return b""

        def has_pending(self) -> bool:
            return True

        def finish(self) -> bytes:
            return b""

    def main() -> Any:
        headers = Headers({"Content-Encoding": "gzip"})
        response = Response(
            status=200, reason="OK", headers=headers, url="http://127.0.0.1/", version="1.1",
            connection=None, method="GET", loop=tasklets.current_loop(),
        )  # fmt: skip
        response._decoder, response._identity = Stuck(), False
        with pytest.raises(DecodingError, match=r"gzip decoder of http://127\.0\.0\.1/ is stuck"):
            response._decode(b"compressed bytes")
        yield tasklets.sleep(0)

    run(main)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_an_encoded_head_response_has_an_empty_body(client: Client, encoding: str) -> None:
    """A HEAD answer names the body's encoding but has no body: nothing to decode, no error."""
    data = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: 1234\r\n\r\n" % encoding.encode()

    def script(conn: RawConnection) -> None:
        while conn.recv_request()[0]:
            conn.send(data)

    with RawServer(script) as server:
        response, body = run(fetch, client, f"{server.url}/", method="HEAD")
    assert (response.status, body) == (200, b"")


# -- redirects --------------------------------------------------------------------------------------------------


# The redirects here have no body: each exchange ended with its head, and its
# connection went back to the pool, healthy, before the redirect was refused.
_KEPT = (1, 1)


def _redirecting(location: Callable[[bytes], bytes]) -> Callable[[RawConnection], None]:
    """A script answering every request with a 302 to ``location(request_head)``."""

    def script(conn: RawConnection) -> None:
        while True:
            head, _ = conn.recv_request()
            if not head:
                return
            conn.send(b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % location(head))

    return script


def test_redirect_loop(client: Client) -> None:
    def location(head: bytes) -> bytes:
        return b"/b" if head.startswith(b"GET /a ") else b"/a"

    with RawServer(_redirecting(location)) as server:
        expect_failure(client, f"{server.url}/a", TooManyRedirects, "loop", pool=_KEPT)


def test_redirect_limit(client: Client) -> None:
    def location(head: bytes) -> bytes:
        return b"/%d" % (int(head.split(b" ")[1][1:]) + 1)

    with RawServer(_redirecting(location)) as server:
        expect_failure(client, f"{server.url}/0", TooManyRedirects, "more than 10 redirects", pool=_KEPT)
    assert len(server.heads) == 11


@pytest.mark.parametrize("target", [b"file:///etc/passwd", b"ftp://127.0.0.1/x", b"javascript:alert(1)"])
def test_redirect_to_another_scheme_is_refused(client: Client, target: bytes) -> None:
    with RawServer(_redirecting(lambda head: target)) as server:
        expect_failure(client, f"{server.url}/", UnsupportedRedirect, target.decode(), pool=_KEPT)


def test_credentials_stay_behind_on_a_cross_origin_redirect(client: Client) -> None:
    secrets = {"Authorization": "Basic c2VjcmV0", "Cookie": "id=1", "Proxy-Authorization": "x", "X-Other": "kept"}
    with RawServer(respond(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) as target:
        with RawServer(_redirecting(lambda head: f"http://localhost:{target.port}/landed".encode())) as origin:
            _, body = run(fetch, client, f"{origin.url}/start", headers=secrets)
    assert body == b"ok"
    sent, received = origin.heads[0].lower(), target.heads[0].lower()
    for name in (b"authorization:", b"cookie:", b"proxy-authorization:"):
        assert name in sent
        assert name not in received
    assert b"x-other: kept" in received
    assert f"host: localhost:{target.port}".encode() in received


# -- what we refuse to send -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"path": "/a\r\nX-Injected: 1"},
        {"path": "/a b"},
        {"path": "/\x00"},
        {"method": "GET /x HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET"},
        {"method": "GE T"},
        {"headers": {"X-A": "v\r\nX-Injected: 1"}},
        {"headers": {"X-A": "v\nX-Injected: 1"}},
        {"headers": {"X-A": "v\x00"}},
        {"headers": {"X-A\r\nX-Injected": "1"}},
        {"headers": {"X A": "1"}},
    ],
    ids=lambda kwargs: repr(kwargs)[:40],
)
def test_injection_is_refused_before_connecting(client: Client, kwargs: dict[str, Any]) -> None:
    kwargs = dict(kwargs)  # the parameter is shared by both clients: do not pop from it
    # A bare listener, no accept thread: any connection the client made waits in its backlog.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        url = f"http://127.0.0.1:{port}{kwargs.pop('path', '/')}"

        def main() -> Any:
            try:
                yield from fetch(client, url, **kwargs)
            except (InvalidURL, LocalProtocolError) as exc:
                return exc
            raise AssertionError("the request was sent")

        error = run(main)
        assert isinstance(error, ValueError)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()[0].close()  # a connection here: the client connected before refusing


@pytest.mark.parametrize(
    "url",
    ["http://xn--/", "http://a..b/", "http://-a.example/", "http://\u05d0a.example/", "http://\ufffd.example/",
     "http://" + "a" * 64 + ".example/", "http://\udcff/"],
)
def test_invalid_idna_hosts_are_refused(client: Client, url: str) -> None:
    with pytest.raises(InvalidURL):
        run(fetch, client, url)


# -- stale connections and timeouts ----------------------------------------------------------------------------------


def _close_on_second_request(conn: RawConnection) -> None:
    """First connection: answer one request, close when the next one arrives; later ones: answer all."""
    first = conn.server.accepted == 1
    n = 0
    while True:
        head, _ = conn.recv_request()
        if not head:
            return
        n += 1
        if first and n == 2:
            return  # closed as the request arrived: as if the server timed the idle connection out
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_idempotent_request_is_retried_once_on_a_stale_connection(client: Client) -> None:
    def main() -> Any:
        _, first = yield from fetch(client, f"{server.url}/1")
        _, second = yield from fetch(client, f"{server.url}/2")
        return first, second

    with RawServer(_close_on_second_request) as server:
        assert run(main) == (b"ok", b"ok")
    assert server.accepted == 2
    assert [h.split(b"\r\n")[0] for h in server.heads] == [b"GET /1 HTTP/1.1", b"GET /2 HTTP/1.1", b"GET /2 HTTP/1.1"]


def test_post_is_never_retried(client: Client) -> None:
    def main() -> Any:
        _, first = yield from fetch(client, f"{server.url}/1")
        try:
            yield from fetch(client, f"{server.url}/2", b"body")
        except RemoteDisconnected as exc:
            return first, exc, _pool_counts(client)
        raise AssertionError("the POST did not fail")

    with RawServer(_close_on_second_request) as server:
        first, _, counts = run(main)
    assert first == b"ok"
    assert counts == (0, 0)
    assert server.accepted == 1


def test_a_fresh_connection_is_not_retried(client: Client) -> None:
    with RawServer(respond(b"")) as server:
        expect_failure(client, f"{server.url}/", RemoteDisconnected)
    assert server.accepted == 1


def test_read_timeout_when_the_server_never_answers(client: Client) -> None:
    def script(conn: RawConnection) -> None:
        conn.recv_request()
        conn.hold()

    with RawServer(script) as server:
        expect_failure(client, f"{server.url}/", HTTPReadTimeout, timeout=Timeout(connect=2, read=0.2), at=0.2)


def test_connect_timeout_when_the_tls_handshake_never_comes(client: Client) -> None:
    from tasklets._exceptions import HTTPConnectTimeout

    with RawServer(lambda conn: conn.hold()) as server:
        url = f"https://127.0.0.1:{server.port}/"
        expect_failure(client, url, HTTPConnectTimeout, timeout=Timeout(connect=0.2, read=5), at=0.2)


def test_a_server_that_never_reads_the_request_body(client: Client) -> None:
    from tasklets._exceptions import ConnectionBroken, WriteTimeout

    def script(conn: RawConnection) -> None:
        conn.recv_head()
        conn.server.stopping.wait(10)  # read nothing more: the client's writes back up

    with RawServer(script) as server:
        exc = expect_failure(
            client, f"{server.url}/", ConnectionBroken, data=b"x" * 30_000_000, method="PUT",
            timeout=Timeout(connect=2, read=0.3),
        )
    assert isinstance(exc.reason, WriteTimeout)


def test_connect_timeout_when_the_listener_backlog_is_full(client: Client) -> None:
    from tasklets._exceptions import HTTPConnectTimeout

    # A listener that never accepts, its backlog filled: the kernel drops further SYNs unanswered.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(4)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                try:
                    filler.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
            url = f"http://127.0.0.1:{port}/"
            exc = expect_failure(client, url, HTTPConnectTimeout, timeout=Timeout(connect=0.2), at=0.2)
            assert isinstance(exc, TimeoutError)
        finally:
            for filler in fillers:
                filler.close()


def test_read_timeout_on_a_server_trickling_one_byte_per_second(client: Client) -> None:
    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            conn.trickle(b"x" * 100, 1.0)

    with RawServer(script) as server:  # a byte a (real) second: the clock jumps to the read timeout meanwhile
        expect_failure(client, f"{server.url}/", HTTPReadTimeout, timeout=Timeout(connect=2, read=0.3), at=0.3)


# The total timeout against a server trickling bytes: test_virtual_time.py (exact, on the virtual clock).


def test_an_early_response_to_an_unfinished_request_body_is_returned(client: Client) -> None:
    """A server that answers 413 after the head and closes: the caller gets the 413, not the broken pipe."""

    def script(conn: RawConnection) -> None:
        conn.recv_head()
        conn.send(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!")
        conn.close()  # the unread body makes this a reset: the client's writes fail

    with RawServer(script) as server:
        exc = expect_failure(
            client, f"{server.url}/upload", urllib.error.HTTPError, data=b"x" * 30_000_000, method="PUT",
            timeout=Timeout(connect=2, read=5),
        )  # fmt: skip
    assert exc.code == 413
    assert exc.read() == b"too big!"


@pytest.mark.parametrize("body_kind", ["bytes", "generator"])
def test_an_early_refusal_stops_the_body_even_when_the_server_keeps_the_connection(
    client: Client, body_kind: str
) -> None:
    """A 413 sent after the head, the connection held open and never read: the 413 at once, not a write timeout."""
    pieces_sent = [0]

    def pieces() -> Iterator[bytes]:
        for _ in range(480):  # 30 MB, far more than the socket buffers take
            pieces_sent[0] += 1
            yield b"x" * 65536

    def script(conn: RawConnection) -> None:
        conn.recv_head()
        conn.send(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!")
        conn.server.stopping.wait(BOUND * 2)  # read nothing more, close nothing

    data: Any = b"x" * 30_000_000 if body_kind == "bytes" else pieces()
    with RawServer(script) as server:
        # Without watching for the answer, the client would wait for the write timeout (5 s).
        exc = expect_failure(
            client, f"{server.url}/upload", urllib.error.HTTPError, data=data, method="PUT",
            timeout=Timeout(connect=2, read=BOUND),
        )  # fmt: skip
    assert exc.code == 413
    assert exc.read() == b"too big!"
    if body_kind == "generator":
        assert pieces_sent[0] < 480, "the body went on being pulled after the refusal"


def test_an_early_2xx_lets_the_body_finish(client: Client) -> None:
    """A server that answers 200 at once and then reads the body: the whole body is sent, then the 200 read."""
    size = 8_000_000
    received: list[int] = []
    body_read = threading.Event()

    def script(conn: RawConnection) -> None:
        head = conn.recv_head()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        received.append(len(conn._take(length)))
        body_read.set()
        conn.hold()

    with RawServer(script) as server:
        response, body = run(fetch, client, f"{server.url}/echo", data=b"y" * size, method="PUT")
        assert body_read.wait(BOUND), "the server never received the whole body"
    assert (response.status, body) == (200, b"ok")
    assert received == [size]


def test_a_slow_upload_outlasts_the_read_timeout_while_the_server_reads(client: Client) -> None:
    """The server reads slowly and says nothing for twice the read timeout: neither a read nor a write timeout."""
    size = 32_000_000

    def script(conn: RawConnection) -> None:
        head = conn.recv_head()
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        left = length - len(conn._buffer)
        # 256 KiB every 10 ms: at most 10.5 MB in this time, and the socket buffers hold about as
        # much again, so the client's queue drains (and no answer comes) for 0.4 s.
        slow_until = time.monotonic() + 0.4
        while time.monotonic() < slow_until and not conn.server.stopping.wait(0.01):
            left -= len(conn.sock.recv(262144))
        while left > 0:  # the rest at once, and the answer right after it
            left -= len(conn.sock.recv(min(left, 1 << 20)))
        conn.send(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone")
        conn.hold()

    with RawServer(script) as server:
        response, body = run(
            fetch, client, f"{server.url}/slow", data=b"z" * size, method="PUT", timeout=Timeout(connect=2, read=0.2)
        )
    assert (response.status, body) == (201, b"done")


def test_a_refusal_after_a_quiet_spell_still_stops_the_body(client: Client) -> None:
    """Quiet for twice the read timeout, then a 413 while still draining: the client stops sending then."""
    size = 32_000_000
    received: list[int] = []
    drained = threading.Event()

    def script(conn: RawConnection) -> None:
        conn.recv_head()
        got = len(conn._buffer)
        slow_until = time.monotonic() + 0.4  # as above: the client's queue waits all this time
        while time.monotonic() < slow_until and not conn.server.stopping.wait(0.01):
            got += len(conn.sock.recv(262144))
        conn.send(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!")
        while data := conn.sock.recv(1 << 20):  # read on: only the client's stopping ends the body
            got += len(data)
        received.append(got)
        drained.set()

    with RawServer(script) as server:
        exc = expect_failure(
            client, f"{server.url}/upload", urllib.error.HTTPError, data=b"z" * size, method="PUT",
            timeout=Timeout(connect=2, read=0.2),
        )  # fmt: skip
        assert drained.wait(BOUND)
    assert exc.code == 413
    assert received[0] < size, "the whole body was sent after the refusal"


# -- large Content-Length bodies ------------------------------------------------------------------------------

LARGE = 1024 * 1024 + 17


def _large_head(length: int = LARGE) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length


def _large_body(length: int = LARGE) -> bytes:
    return bytes(range(256)) * (length // 256) + bytes(length % 256)


def test_a_large_body_read_whole_is_one_wait_into_the_bytes_returned(client: Client) -> None:
    """Under ``yield from read()``: the first chunk, then the whole rest in one future, received in place."""
    body = _large_body()

    def script(conn: RawConnection) -> None:
        while conn.recv_request()[0]:
            conn.send(_large_head() + body)

    def main() -> Any:
        waits = []
        for path in ("/1", "/2"):
            response = yield client.urlopen(f"{server.url}{path}")
            reading = response.read()
            future = next(reading)
            count = 1
            try:
                while True:
                    future = reading.send((yield future))
                    count += 1
            except StopIteration as stop:
                assert stop.value == body
            waits.append(count)
        return waits, _pool_counts(client)

    with RawServer(script) as server:
        waits, counts = run(main)
    # Chunk by chunk, a 1 MiB body takes many more waits.
    assert waits == [2, 2]
    assert server.accepted == 1, "the connection was not reused after a body read whole"
    assert counts == (1, 1)


def test_a_body_waits_in_the_kernel_until_it_is_read(client: Client) -> None:
    """The connection reads only what it asks for: no body bytes are read ahead into the stream."""
    body = _large_body()
    head_awaited = threading.Event()

    def script(conn: RawConnection) -> None:
        conn.recv_request()
        head_awaited.wait(10)  # answer once the client waits for readiness (so its reader is registered)
        conn.send(_large_head() + body)

    def main() -> Any:
        loop = tasklets.current_loop()
        stopped: tasklets.Future[int] = tasklets.Future()
        add_reader, remove_reader = loop.watch_reader, loop.unwatch_reader

        def on_add(fd: int, callback: Any) -> Any:
            head_awaited.set()
            return add_reader(fd, callback)

        def on_remove(fd: int) -> Any:
            result = remove_reader(fd)
            if not stopped.done():
                stopped.set_result(fd)
            return result

        loop.watch_reader, loop.unwatch_reader = on_add, on_remove  # type: ignore[method-assign]
        try:
            response = yield client.urlopen(f"{server.url}/")
            stream = response._connection.stream
            # The rest of the body made the socket readable while nobody read: the stream stopped watching...
            assert (yield stopped) == stream.socket.fileno()
        finally:
            del loop.watch_reader, loop.unwatch_reader  # the class's methods are back
        assert stream.buffered == 0  # ...and read none of it ahead (it used to take 256 KiB)
        assert (yield from response.read()) == body

    with RawServer(script) as server:
        run(main)


def test_a_large_body_shorter_than_declared(client: Client) -> None:
    data = _large_head() + _large_body()[: 300 * 1024]
    with RawServer(respond(data)) as server:
        expect_failure(client, f"{server.url}/", RemoteProtocolError, f"{300 * 1024} of {LARGE}")


@pytest.mark.parametrize("how", ["whole", "chunk by chunk"])
def test_extra_bytes_after_a_large_body_poison_the_connection(client: Client, how: str) -> None:
    def script(conn: RawConnection) -> None:
        while conn.recv_request()[0]:
            conn.send(_large_head() + _large_body() + b"HTTP/1.1 200 OK\r\n\r\n")

    def get(path: str) -> Any:
        response = yield client.urlopen(f"{server.url}{path}")
        if how == "whole":
            return (yield from response.read())
        chunks = []
        for future in response.read():
            chunks.append((yield future))
        return b"".join(chunks)

    def main() -> Any:
        first = yield from get("/1")
        second = yield from get("/2")
        return first, second, _pool_counts(client)

    with RawServer(script) as server:
        first, second, counts = run(main)
    assert first == second == _large_body()
    assert server.accepted == 2, "the poisoned connection was reused"
    assert counts == (0, 0)


def test_a_body_declared_over_the_read_limit_is_refused_before_it_is_read(client: Client) -> None:
    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.send(_large_head() + _large_body()[:1000])
            conn.hold()  # the rest never comes: the limit must not wait for it

    def main() -> Any:
        response = yield client.urlopen(f"{server.url}/")
        try:
            yield from response.read(limit=LARGE - 1)
        except BodyTooLarge as exc:
            return exc, _pool_counts(client), tasklets.current_loop().time()

    with RawServer(script) as server:
        exc, counts, when = run(main, clock=VirtualClock(autojump_threshold=AUTOJUMP))
    assert when == 0  # refused at once: no timeout had to fire first
    assert str(LARGE - 1) in str(exc)
    assert counts == (0, 0)


@pytest.mark.parametrize(("timeout", "error"), [
    (Timeout(connect=2, read=0.3), HTTPReadTimeout),
    (Timeout(connect=2, read=5, total=0.5), TotalTimeout),
])  # fmt: skip
def test_a_large_body_that_stalls_times_out(client: Client, timeout: Timeout, error: type[Exception]) -> None:
    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.send(_large_head() + _large_body()[:200_000])
            conn.hold()

    with RawServer(script) as server:  # the rest never comes: the clock jumps to the deadline
        expect_failure(client, f"{server.url}/", error, timeout=timeout, at=timeout.total or timeout.read)


def test_cancelling_a_task_reading_a_large_body_closes_the_connection(client: Client) -> None:
    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.send(_large_head() + _large_body()[:200_000])
            conn.hold()

    def reader(response: Any) -> Any:
        return (yield from response.read())

    def main() -> Any:
        response = yield client.urlopen(f"{server.url}/")
        task = tasklets.spawn(reader, response)
        for _ in range(1000):  # until it waits for the rest of the body (which never comes)
            yield None
            if task._waiting_on is not None and not task._waiting_on.done():
                break
        task.cancel()
        try:
            yield task
        except tasklets.CancelledError:
            pass
        return _pool_counts(client)

    with RawServer(script) as server:
        assert run(main) == (0, 0)
        assert server.wait_idle(), "the connection was left open"
