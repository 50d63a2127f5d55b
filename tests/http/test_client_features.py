"""Features of the client against http.server and scripted servers: framing, bodies, redirects, proxies, errors."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _encodings import ENCODINGS, encode
from _servers import ExternalServer, RawConnection, RawServer, StdlibServer, fetch, forward, pattern, run

import tasklets
import tasklets.http
from tasklets._exceptions import ConnectFailed, HTTPError, UnsupportedRedirect
from tasklets.http import Client, PoolLimits, Timeout

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(proxies=None, timeout=Timeout(connect=2, read=5, total=15)) as made:
        yield made


def _echoed(body: bytes) -> dict[str, Any]:
    document = json.loads(body)
    document["headers"] = {k.lower(): v for k, v in document["headers"]}
    return document


# -- framing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "reused"), [("bytes", True), ("chunked", True), ("close", False)], ids=["length", "chunked", "close"]
)
def test_body_framings(stdlib: StdlibServer, client: Client, route: str, reused: bool) -> None:
    def main() -> Any:
        first, body = yield from fetch(client, f"{stdlib.url}/{route}/123456")
        _, again = yield from fetch(client, f"{stdlib.url}/{route}/10")
        return first, body, again

    first, body, again = run(main)
    assert (body, again) == (pattern(123456), pattern(10))
    assert stdlib.counter.accepted == (1 if reused else 2)
    if route == "close":
        assert first.headers["Content-Length"] is None and first.headers["Transfer-Encoding"] is None


def test_head_has_no_body(stdlib: StdlibServer, client: Client) -> None:
    def main() -> Any:
        head, body = yield from fetch(client, f"{stdlib.url}/bytes/1000", method="HEAD")
        _, after = yield from fetch(client, f"{stdlib.url}/bytes/3")
        return head, body, after

    head, body, after = run(main)
    assert (head.headers["Content-Length"], body, after) == ("1000", b"", pattern(3))
    assert stdlib.counter.accepted == 1


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses(stdlib: StdlibServer, client: Client, status: int) -> None:
    response, body = run(fetch, client, f"{stdlib.url}/status/{status}")
    assert (response.status, body) == (status, b"")


@pytest.mark.parametrize(
    ("method", "status", "extra"),
    [
        ("HEAD", 200, b"Content-Length: 100\r\n"),
        ("HEAD", 200, b"Transfer-Encoding: chunked\r\n"),
        ("GET", 304, b"Content-Length: 100\r\n"),
        ("GET", 204, b""),
        ("GET", 200, b"Content-Length: 0\r\n"),
    ],
)
def test_no_body_is_awaited_where_none_may_come(client: Client, method: str, status: int, extra: bytes) -> None:
    """The declared length of a HEAD or 304 response is not a body to wait for; the connection stays good."""
    head = b"HTTP/1.1 %d X\r\n%s\r\n" % (status, extra)

    def script(conn: RawConnection) -> None:
        while conn.recv_request()[0]:
            conn.send(head)

    def main() -> Any:
        results = []
        for _ in range(3):
            response, body = yield from fetch(client, f"{server.url}/", method=method)
            results.append((response.status, body))
        return results

    with RawServer(script) as server:
        assert run(main) == [(status, b"")] * 3
    assert server.accepted == 1


def test_100_continue_from_http_server(stdlib: StdlibServer, client: Client) -> None:
    response, body = run(fetch, client, f"{stdlib.url}/echo", b"x" * 5000, headers={"Expect": "100-continue"})
    assert response.status == 200
    assert _echoed(body)["body"] == "x" * 5000


def test_informational_responses_are_skipped(client: Client) -> None:
    script_data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"
    )

    def script(conn: RawConnection) -> None:
        while conn.recv_request()[0]:
            conn.send(script_data)

    def main() -> Any:
        first = yield from fetch(client, f"{server.url}/", b"body")
        second = yield from fetch(client, f"{server.url}/")
        return first, second

    with RawServer(script) as server:
        (response, body), (_, again) = run(main)
    assert (response.status, response.headers["Content-Length"], body, again) == (200, "5", b"final", b"final")
    assert server.accepted == 1


# -- request bodies --------------------------------------------------------------------------------


def test_body_from_bytes(stdlib: StdlibServer, client: Client) -> None:
    _, body = run(fetch, client, f"{stdlib.url}/echo", b"abc", method="PATCH")
    document = _echoed(body)
    assert (document["method"], document["body"], document["headers"]["content-length"]) == ("PATCH", "abc", "3")


def test_body_from_a_file(stdlib: StdlibServer, client: Client, tmp_path: Path) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(pattern(200_000))
    with open(path, "rb") as file:
        _, body = run(fetch, client, f"{stdlib.url}/echo", file, method="PUT")
    document = _echoed(body)
    assert document["method"] == "PUT"
    assert document["body"].encode("latin-1") == pattern(200_000)
    assert document["headers"]["transfer-encoding"] == "chunked"


def test_body_from_a_generator(stdlib: StdlibServer, client: Client) -> None:
    def pieces() -> Iterator[bytes]:
        for i in range(100):
            yield b"%d," % i

    _, body = run(fetch, client, f"{stdlib.url}/echo", pieces())
    assert _echoed(body)["body"] == "".join(f"{i}," for i in range(100))


def test_a_str_body_is_refused(client: Client) -> None:
    with pytest.raises(TypeError, match="bytes"):
        client.urlopen("http://127.0.0.1:1/", "text")  # type: ignore[arg-type]


def test_urllib_request_object(stdlib: StdlibServer, client: Client) -> None:
    request = urllib.request.Request(
        f"{stdlib.url}/echo", data=b"form=1", headers={"X-Custom": "v", "Content-Type": "x/y"}, method="DELETE"
    )
    _, body = run(fetch, client, request)
    document = _echoed(body)
    assert (document["method"], document["body"]) == ("DELETE", "form=1")
    assert document["headers"]["x-custom"] == "v"
    assert document["headers"]["content-type"] == "x/y"


def test_default_headers(stdlib: StdlibServer, client: Client) -> None:
    _, body = run(fetch, client, f"{stdlib.url}/echo")
    headers = _echoed(body)["headers"]
    assert headers["host"] == f"127.0.0.1:{stdlib.port}"
    assert headers["user-agent"].startswith("tasklets/")
    assert headers["accept-encoding"] == "gzip, deflate, br, zstd"  # br and zstd: installed with the tests


# -- content encodings -----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [*ENCODINGS, "raw-deflate", "x-gzip"])
def test_content_encodings(client: Client, encoding: str) -> None:
    data = pattern(100_000) * 3
    encoded = encode(encoding, data)
    name = b"deflate" if encoding == "raw-deflate" else encoding.encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % name
    pieces = [encoded[i : i + 999] for i in range(0, len(encoded), 999)]
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)

    def script(conn: RawConnection) -> None:
        while conn.recv_request()[0]:
            conn.send(head + chunks + b"0\r\n\r\n")

    with RawServer(script) as server:
        _, body = run(fetch, client, f"{server.url}/")
    assert body == data


def test_decompress_off_leaves_the_body_alone(client: Client) -> None:
    encoded = zlib.compress(b"hello", 9)
    data = b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n%s" % (len(encoded), encoded)

    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.send(data)

    with RawServer(script) as server, Client(proxies=None, decompress=False, timeout=5) as plain:
        _, body = run(fetch, plain, f"{server.url}/")
    assert body == encoded
    assert b"accept-encoding" not in server.heads[0].lower()


def test_unknown_content_encoding_is_a_decoding_error(client: Client) -> None:
    from tasklets._exceptions import DecodingError

    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Encoding: rot13\r\nContent-Length: 5\r\n\r\nuryyb")
            conn.hold()

    def main() -> Any:
        try:
            yield from fetch(client, f"{server.url}/")
        except DecodingError as exc:
            return exc, client._pool(tasklets.current_loop()).open_connections

    with RawServer(script) as server:
        exc, open_connections = run(main)
        assert server.counter.wait_idle(5.0)
    assert "rot13" in str(exc) and open_connections == 0


# -- redirects -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "method", "expected"),
    [
        (301, "POST", "GET"),
        (302, "POST", "GET"),
        (303, "POST", "GET"),
        (303, "PUT", "GET"),
        (307, "POST", "POST"),
        (308, "PUT", "PUT"),
        (301, "HEAD", "HEAD"),
        (303, "HEAD", "HEAD"),
        (302, "DELETE", "GET"),
    ],
)
def test_redirect_method_rules(stdlib: StdlibServer, client: Client, status: int, method: str, expected: str) -> None:
    data = None if method == "HEAD" else b"payload"
    run(fetch, client, f"{stdlib.url}/redirect/{status}?to=/echo", data, method=method)
    sent_method, _, headers, body = stdlib.requests[-1]
    assert sent_method == expected
    if expected in ("POST", "PUT"):
        assert body == b"payload"
    else:
        assert body == b"" and "Content-Length" not in headers


def test_307_with_a_streamed_body_cannot_be_followed(stdlib: StdlibServer, client: Client) -> None:
    def main() -> Any:
        try:
            yield from fetch(client, f"{stdlib.url}/redirect/307?to=/echo", iter([b"a", b"b"]))
        except UnsupportedRedirect as exc:
            return exc, client._pool(tasklets.current_loop()).open_connections

    exc, open_connections = run(main)
    assert "stream" in str(exc)
    assert open_connections == 0  # the refused redirect's unread body ("moved") closed its connection


def test_max_redirects(stdlib: StdlibServer) -> None:
    from tasklets._exceptions import TooManyRedirects

    chain = f"{stdlib.url}/redirect/302?to=/redirect/302%3Fto=/redirect/302%253Fto=/bytes/5"
    with Client(proxies=None, max_redirects=2, timeout=5) as client, pytest.raises(TooManyRedirects):
        run(fetch, client, chain)
    with Client(proxies=None, max_redirects=3, timeout=5) as client:
        response, body = run(fetch, client, chain)
    assert (response.url, body) == (f"{stdlib.url}/bytes/5", pattern(5))


# -- errors, urllib-style --------------------------------------------------------------------------


def test_http_error_is_urllib_compatible(stdlib: StdlibServer, client: Client) -> None:
    def main() -> Any:
        try:
            yield client.urlopen(f"{stdlib.url}/status/418")
        except urllib.error.HTTPError as e:
            return e.code, e.reason, e.headers["Content-Length"], e.read(), e.geturl(), isinstance(e, HTTPError)

    assert run(main) == (418, "I'm a Teapot", "10", b"status 418", f"{stdlib.url}/status/418", True)


def test_http_error_leaves_the_connection_reusable(stdlib: StdlibServer, client: Client) -> None:
    def main() -> Any:
        for _ in range(3):
            try:
                yield client.urlopen(f"{stdlib.url}/status/404")
            except HTTPError:
                pass

    run(main)
    assert stdlib.counter.accepted == 1


def test_a_connection_is_reused_only_with_the_tls_context_that_verified_it(
    client: Client, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    def script(conn: RawConnection) -> None:
        while conn.recv_request()[0]:
            conn.send(OK)

    def main() -> Any:
        _, first = yield from fetch(client, f"{server.url}/", context=client_context)
        _, again = yield from fetch(client, f"{server.url}/", context=client_context)
        try:
            yield from fetch(client, f"{server.url}/")  # the default context does not trust the test CA
        except ConnectFailed as exc:
            return first, again, exc
        raise AssertionError("a connection verified with another context was reused")

    with RawServer(script, tls=server_context) as server:
        first, again, exc = run(main)
    assert (first, again) == (b"ok", b"ok")
    assert "verif" in str(exc)
    assert server.heads and len(server.heads) == 2


def test_connection_refused_is_a_url_error(client: Client) -> None:
    with RawServer(lambda conn: None) as server:
        port = server.port
    with pytest.raises(urllib.error.URLError) as caught:
        run(fetch, client, f"http://127.0.0.1:{port}/")
    assert isinstance(caught.value, ConnectFailed)
    assert isinstance(caught.value.reason, ConnectionRefusedError)


# -- entry points ----------------------------------------------------------------------------------


def test_urlopen_async_from_plain_code(stdlib: StdlibServer) -> None:
    response = tasklets.http.urlopen_async(f"{stdlib.url}/bytes/10", timeout=5).result(10)
    assert response.status == 200
    chunks = []
    for future in response.read():
        chunks.append(future.result(10))
    assert b"".join(chunks) == pattern(10)


def test_async_def_and_async_for(stdlib: StdlibServer, client: Client) -> None:
    async def main() -> bytes:
        response = await client.urlopen(f"{stdlib.url}/chunked/20000")
        parts = []
        async for chunk in response:
            parts.append(chunk)
        return b"".join(parts)

    assert tasklets.run(main) == pattern(20000)


def _serving(answer: bytes) -> Any:
    def script(conn: RawConnection) -> None:
        while conn.recv_request()[0]:
            conn.send(answer)

    return script


LARGE_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n" + pattern(200_000)


def test_a_response_left_by_with_closes_its_unread_body(client: Client) -> None:
    def main() -> Any:
        pool = client._pool(tasklets.current_loop())
        with (yield client.urlopen(f"{server.url}/1")) as response:
            for wait_for_chunk in response.read():
                first = yield wait_for_chunk
                break  # the rest is left unread
        left = (pool.open_connections, pool.idle_connections)
        _, again = yield from fetch(client, f"{server.url}/2")
        return first, left, again

    with RawServer(_serving(LARGE_ANSWER)) as server:
        first, left, again = run(main)
    assert first and pattern(200_000).startswith(first)
    assert left == (0, 0)  # closed on leaving the block: the unread rest would corrupt the next response
    assert again == pattern(200_000) and server.accepted == 2


def test_a_response_left_by_async_with_closes_its_unread_body(client: Client) -> None:
    async def main() -> Any:
        pool = client._pool(tasklets.current_loop())
        async with await client.urlopen(f"{server.url}/1") as response:
            first = await response.__anext__()  # one chunk, the rest left unread
        return first, (pool.open_connections, pool.idle_connections)

    with RawServer(_serving(LARGE_ANSWER)) as server:
        first, left = tasklets.run(main)
    assert first and pattern(200_000).startswith(first)
    assert left == (0, 0)


@pytest.mark.parametrize(
    ("status_line", "version", "reason"),
    [(b"HTTP/1.1 200 OK", "1.1", "OK"), (b"HTTP/1.0 203 Fine, Thanks", "1.0", "Fine, Thanks")],
)
def test_the_response_carries_its_version_and_reason(
    client: Client, status_line: bytes, version: str, reason: str
) -> None:
    with RawServer(_serving(status_line + b"\r\nContent-Length: 2\r\n\r\nok")) as server:
        response, body = run(fetch, client, f"{server.url}/")
    status = int(status_line.split()[1])
    assert (response.status, response.reason, response.version, body) == (status, reason, version, b"ok")


def test_timeout_as_a_number(client: Client) -> None:
    from tasklets._exceptions import HTTPReadTimeout

    def script(conn: RawConnection) -> None:
        conn.recv_request()
        conn.hold()

    with RawServer(script) as server, pytest.raises(HTTPReadTimeout):
        run(fetch, client, f"{server.url}/", timeout=0.2)


# -- proxies ---------------------------------------------------------------------------------------


def test_http_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with RawServer(lambda conn: [conn.send(OK) for _ in iter(lambda: conn.recv_request()[0], b"")]) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "direct.invalid")
        # One connection per host: the proxy's connection must be counted, and reused, as the proxy's.
        with Client(timeout=5, limits=PoolLimits(max_per_host=1)) as client:

            def main() -> Any:
                bodies = []
                for url in ("http://origin.invalid:8080/path?q=1", "http://other.invalid/x", "http://origin.invalid:8080/"):
                    _, body = yield from fetch(client, url)
                    bodies.append(body)
                return bodies

            assert run(main) == [b"ok"] * 3
    request_lines = [head.split(b"\r\n")[0] for head in proxy.heads]
    assert request_lines == [
        b"GET http://origin.invalid:8080/path?q=1 HTTP/1.1",
        b"GET http://other.invalid/x HTTP/1.1",
        b"GET http://origin.invalid:8080/ HTTP/1.1",
    ]
    assert b"host: origin.invalid:8080" in proxy.heads[0].lower()
    assert proxy.accepted == 1


def test_credentials_in_the_proxy_url_are_sent_to_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    with RawServer(lambda conn: [conn.send(OK) for _ in iter(lambda: conn.recv_request()[0], b"")]) as proxy:
        # Percent-encoded in the URL, sent decoded (as urllib does): user "us@er", password "p:ss".
        monkeypatch.setenv("HTTP_PROXY", f"http://us%40er:p%3Ass@127.0.0.1:{proxy.port}")
        with Client(timeout=5) as client:
            _, body = run(fetch, client, "http://origin.invalid/")
    assert body == b"ok"
    expected = base64.b64encode(b"us@er:p:ss")
    assert b"\r\nproxy-authorization: basic " + expected.lower() in proxy.heads[0].lower()


def test_no_proxy_bypasses_the_proxy(monkeypatch: pytest.MonkeyPatch, stdlib: StdlibServer) -> None:
    with RawServer(lambda conn: conn.hold()) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        with Client(timeout=5) as client:
            _, body = run(fetch, client, f"{stdlib.url}/bytes/7")
    assert body == pattern(7)
    assert proxy.accepted == 0


def test_no_proxy_bypasses_the_https_proxy_too(
    monkeypatch: pytest.MonkeyPatch,
    external_servers: dict[tuple[str, str], ExternalServer],
    client_context: ssl.SSLContext,
) -> None:
    target = external_servers["uvicorn-h11", "https"]
    with RawServer(lambda conn: conn.hold()) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "example.test, 127.0.0.1")
        with Client(timeout=5, context=client_context) as client:
            _, body = run(fetch, client, f"{target.url}/bytes/7")
    assert body == pattern(7)
    assert proxy.accepted == 0  # no CONNECT: straight to the server


def _connect_proxy(conn: RawConnection) -> None:
    """A CONNECT proxy: tunnel to the requested host and port, forwarding bytes both ways."""
    import socket

    head = conn.recv_head()
    if not head:
        return
    host, port = head.split(b" ")[1].decode().rsplit(":", 1)
    if port == "1":
        conn.send(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        return
    with socket.create_connection((host, int(port)), timeout=5) as upstream:
        conn.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
        forward(conn.sock, upstream, conn.server.stopping)


@pytest.mark.parametrize("credentials", [None, "user:secret"])
def test_https_through_a_connect_tunnel(
    monkeypatch: pytest.MonkeyPatch,
    external_servers: dict[tuple[str, str], ExternalServer],
    client_context: ssl.SSLContext,
    credentials: str | None,
) -> None:
    target = external_servers["uvicorn-h11", "https"]
    with RawServer(_connect_proxy) as proxy:
        userinfo = f"{credentials}@" if credentials else ""
        monkeypatch.setenv("HTTPS_PROXY", f"http://{userinfo}127.0.0.1:{proxy.port}")
        with Client(timeout=5, context=client_context) as client:

            def main() -> Any:
                _, first = yield from fetch(client, f"{target.url}/bytes/5000")
                _, second = yield from fetch(client, f"{target.url}/echo")
                return first, second

            first, second = run(main)
    assert first == pattern(5000)
    echoed = json.loads(second)
    assert echoed["method"] == "GET"
    connect = proxy.heads[0].split(b"\r\n")
    assert connect[0] == f"CONNECT 127.0.0.1:{target.port} HTTP/1.1".encode()
    assert proxy.accepted == 1, "the tunnel was not kept alive"
    authorization = [line for line in connect if line.lower().startswith(b"proxy-authorization:")]
    if credentials is None:
        assert authorization == []
    else:  # on the CONNECT only: inside the tunnel the origin must not see the proxy's credentials
        assert authorization == [b"Proxy-Authorization: Basic " + base64.b64encode(credentials.encode())]
        assert "proxy-authorization" not in {name.lower() for name, _ in echoed["headers"]}


def test_proxy_refusing_the_tunnel(monkeypatch: pytest.MonkeyPatch) -> None:
    with RawServer(_connect_proxy) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        with Client(timeout=5) as client, pytest.raises(ConnectFailed, match="403"):
            run(fetch, client, "https://127.0.0.1:1/")


def test_threads_share_nothing(stdlib: StdlibServer, client: Client) -> None:
    """Two threads, each running its own loop, use one client; each loop has its own pool."""
    results: list[bytes] = []

    def worker(n: int) -> None:
        _, body = run(fetch, client, f"{stdlib.url}/bytes/{n}")
        results.append(body)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(results, key=len) == [pattern(100), pattern(200)]
