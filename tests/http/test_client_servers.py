"""The client against servers we did not write: uvicorn (h11, httptools) and hypercorn, plain and TLS.

Each server runs in its own process (``conftest.external_servers``) and
serves ``_asgi_app.app``; every test below runs against each of the six.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
from _encodings import ENCODINGS
from _servers import ExternalServer, fetch, pattern, run

from tasklets._exceptions import (
    ConnectFailed,
    ConnectionBroken,
    HTTPError,
    HTTPReadTimeout,
    RemoteDisconnected,
    TLSCertificateError,
)
from tasklets.http import Client, Timeout

SERVERS = [(kind, scheme) for kind in ("uvicorn-h11", "uvicorn-httptools", "hypercorn") for scheme in ("http", "https")]


@pytest.fixture(params=SERVERS, ids=[f"{kind}-{scheme}" for kind, scheme in SERVERS])
def server(request: pytest.FixtureRequest, external_servers: dict[tuple[str, str], ExternalServer]) -> ExternalServer:
    return external_servers[request.param]


@pytest.fixture
def other(server: ExternalServer, external_servers: dict[tuple[str, str], ExternalServer]) -> ExternalServer:
    """Another server (another origin) of the same scheme."""
    kind = "hypercorn" if server.kind != "hypercorn" else "uvicorn-h11"
    return external_servers[kind, server.scheme]


@pytest.fixture
def client(client_context: ssl.SSLContext) -> Iterator[Client]:
    with Client(context=client_context, proxies=None, timeout=Timeout(connect=5, read=5, total=20)) as made:
        yield made


def _echo(body: bytes) -> dict[str, Any]:
    return json.loads(body)


def _header(document: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in document["headers"] if k.lower() == name.lower()]


@pytest.mark.parametrize("size", [0, 1, 1000, 65536, 300_000, 2_000_000])
def test_fixed_bodies(server: ExternalServer, client: Client, size: int) -> None:
    response, body = run(fetch, client, f"{server.url}/bytes/{size}")
    assert response.status == 200
    assert response.headers["Content-Length"] == str(size)
    assert body == pattern(size)


def test_large_bodies_read_whole_in_a_row_on_one_connection(server: ExternalServer, client: Client) -> None:
    """Bodies read whole one after another, larger and smaller: each exactly its own bytes."""
    sizes = [2_000_000, 300_000, 1_000_000, 2_000_001]

    def main() -> Any:
        bodies = []
        for size in sizes:
            _, body = yield from fetch(client, f"{server.url}/bytes/{size}?seed={size}")
            bodies.append(body)
        return bodies

    bodies = run(main)
    assert [len(body) for body in bodies] == sizes
    assert all(body == pattern(size, seed=size) for body, size in zip(bodies, sizes, strict=True))


def test_chunked_body_read_chunk_by_chunk(server: ExternalServer, client: Client) -> None:
    def main() -> Any:
        response = yield client.urlopen(f"{server.url}/stream/300000?chunk=7000")
        assert response.headers.get("Content-Length") is None
        pieces = []
        for wait_for_chunk in response.read():
            pieces.append((yield wait_for_chunk))
        return response, pieces

    response, pieces = run(main)
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert b"".join(pieces) == pattern(300_000)
    assert len([p for p in pieces if p]) > 1


def test_keep_alive_reuses_the_connection(server: ExternalServer, client: Client) -> None:
    def main() -> Any:
        ports = []
        for _ in range(3):
            _, body = yield from fetch(client, f"{server.url}/echo")
            ports.append(_echo(body)["client"][1])
        return ports

    ports = run(main)
    assert len(set(ports)) == 1, ports


def test_head(server: ExternalServer, client: Client) -> None:
    response, body = run(fetch, client, f"{server.url}/bytes/5000", method="HEAD")
    assert response.status == 200
    assert response.headers["Content-Length"] == "5000"
    assert body == b""


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses(server: ExternalServer, client: Client, status: int) -> None:
    def main() -> Any:
        response, body = yield from fetch(client, f"{server.url}/status/{status}")
        # The connection is still good for the next request.
        _, after = yield from fetch(client, f"{server.url}/bytes/10")
        return response, body, after

    response, body, after = run(main)
    assert (response.status, body, after) == (status, b"", pattern(10))


@pytest.mark.parametrize("status", [404, 500])
def test_error_statuses_raise_http_error(server: ExternalServer, client: Client, status: int) -> None:
    with pytest.raises(HTTPError) as caught:
        run(fetch, client, f"{server.url}/status/{status}")
    error = caught.value
    assert isinstance(error, urllib.error.HTTPError)
    assert error.code == error.status == status
    assert error.headers["Content-Type"] == "text/plain"
    assert error.read() == f"status {status}".encode()
    assert error.url == f"{server.url}/status/{status}"


def test_echo_of_method_headers_and_body(server: ExternalServer, client: Client) -> None:
    _, body = run(
        fetch, client, f"{server.url}/echo?x=1", b"payload\x00\xff", method="PUT", headers={"X-Test": "yes"}
    )
    document = _echo(body)
    assert document["method"] == "PUT"
    assert document["query"] == "x=1"
    assert document["body"] == "payload\x00\xff"
    assert _header(document, "x-test") == ["yes"]
    assert _header(document, "content-length") == ["9"]
    assert _header(document, "host") == [server.url.split("://")[1]]


def test_request_body_from_a_generator_is_sent_chunked(server: ExternalServer, client: Client) -> None:
    def pieces() -> Iterator[bytes]:
        yield b"one,"
        yield b""
        yield b"two," * 10000

    _, body = run(fetch, client, f"{server.url}/echo", pieces())
    document = _echo(body)
    assert document["method"] == "POST"
    assert document["body"] == "one," + "two," * 10000
    assert _header(document, "transfer-encoding") == ["chunked"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_compressed_bodies_are_decoded(server: ExternalServer, client: Client, encoding: str) -> None:
    response, body = run(fetch, client, f"{server.url}/{encoding}/200000")
    assert response.headers["Content-Encoding"] == encoding
    assert body == pattern(200_000)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
def test_redirects(server: ExternalServer, client: Client, status: int, absolute: bool) -> None:
    target = f"{server.url}/echo" if absolute else "/echo"
    response, body = run(fetch, client, f"{server.url}/redirect/{status}?to={target}", b"data", method="POST")
    document = _echo(body)
    assert response.status == 200
    assert response.url == f"{server.url}/echo"
    if status in (307, 308):
        assert (document["method"], document["body"]) == ("POST", "data")
    else:
        assert (document["method"], document["body"]) == ("GET", "")
        assert _header(document, "content-length") == []


def test_cross_origin_redirect_drops_credentials(server: ExternalServer, other: ExternalServer, client: Client) -> None:
    secrets = {"Authorization": "Bearer secret", "Cookie": "session=1", "X-Kept": "yes"}

    def main() -> Any:
        _, same = yield from fetch(client, f"{server.url}/redirect/302?to=/echo", headers=secrets)
        response, cross = yield from fetch(client, f"{server.url}/redirect/302?to={other.url}/echo", headers=secrets)
        return _echo(same), response, _echo(cross)

    same, response, cross = run(main)
    assert _header(same, "authorization") == ["Bearer secret"]
    assert _header(same, "cookie") == ["session=1"]
    assert response.url == f"{other.url}/echo"
    assert _header(cross, "authorization") == []
    assert _header(cross, "cookie") == []
    assert _header(cross, "x-kept") == ["yes"]
    assert _header(cross, "host") == [other.url.split("://")[1]]


def test_slow_body_arrives_piece_by_piece(server: ExternalServer, client: Client) -> None:
    def main() -> Any:
        response = yield client.urlopen(f"{server.url}/slow?n=4&delay=0.05")
        pieces = []
        for wait_for_chunk in response.read():
            pieces.append((yield wait_for_chunk))
        return pieces

    pieces = run(main)
    assert b"".join(pieces) == b"xxxx"
    assert len([p for p in pieces if p]) >= 2


def test_read_timeout_on_a_slow_body(server: ExternalServer, client: Client) -> None:
    def main() -> Any:
        response = yield client.urlopen(f"{server.url}/slow?n=2&delay=0.5", timeout=Timeout(connect=5, read=0.1))
        yield from response.read()

    with pytest.raises(HTTPReadTimeout):
        run(main)


def test_https_verification_is_on_by_default(external_servers: dict[tuple[str, str], ExternalServer]) -> None:
    server = external_servers["uvicorn-h11", "https"]
    with Client(proxies=None, timeout=5) as client, pytest.raises(ConnectFailed) as caught:
        run(fetch, client, f"{server.url}/bytes/10")
    assert isinstance(caught.value, urllib.error.URLError)
    assert isinstance(caught.value.reason, TLSCertificateError)


def test_plain_http_to_a_tls_port_is_a_clear_error(external_servers: dict[tuple[str, str], ExternalServer]) -> None:
    server = external_servers["uvicorn-h11", "https"]
    with Client(proxies=None, timeout=5) as client, pytest.raises(urllib.error.URLError) as caught:
        run(fetch, client, f"http://127.0.0.1:{server.port}/bytes/10")
    # The TLS server hangs up on the plain request (a close, or a reset).
    assert isinstance(caught.value, (RemoteDisconnected, ConnectionBroken)), repr(caught.value)


@pytest.mark.parametrize("kind", ["uvicorn-h11", "uvicorn-httptools", "hypercorn"])
def test_the_h11_parser_too(
    external_servers: dict[tuple[str, str], ExternalServer], client_context: ssl.SSLContext, kind: str
) -> None:
    """The tests above use the default parser (httptools); the pure-Python one gets the same bytes."""
    server = external_servers[kind, "https"]

    def main() -> Any:
        results = []
        for route in ("bytes/100000", "stream/50000?chunk=999", "gzip/70000", "status/204", "redirect/303?to=/bytes/9"):
            response, body = yield from fetch(client, f"{server.url}/{route}")
            results.append((response.status, body))
        return results

    with Client(context=client_context, proxies=None, timeout=5, parser="h11") as client:
        assert run(main) == [
            (200, pattern(100_000)), (200, pattern(50_000)), (200, pattern(70_000)), (204, b""), (200, pattern(9))
        ]
