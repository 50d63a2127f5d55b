"""Smaller defects of issue 12, through the client: every error a URLError naming the URL, urllib's meanings kept.

* a lone surrogate in a URL, and a redirect to ``http://[::1``, raised
  UnicodeEncodeError and a bare ValueError: both are InvalidURL now;
* headers added with ``Request.add_unredirected_header`` were resent after a
  redirect;
* a status line whose reason phrase carries terminal escapes was accepted by
  the httptools backend, the escapes reaching ``HTTPError.reason``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from _servers import RawConnection, RawServer, StdlibServer, fetch, run
from test_client_hostile import _KEPT, _redirecting, expect_failure

from tasklets._exceptions import InvalidURL, RemoteProtocolError
from tasklets.http import Client, Timeout
from tasklets.http._url import parse_url


@pytest.fixture(params=["httptools", "h11"])
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    with Client(proxies=None, timeout=Timeout(connect=2, read=2, total=10), parser=request.param) as made:
        yield made


def _no_control_characters(text: str) -> bool:
    return not any(ord(c) < 32 or ord(c) == 127 for c in text)


@pytest.mark.parametrize("url", ["http://127.0.0.1/\udcff", "http://127.0.0.1/a?q=\ud800", "http://127.0.0.1/#\udfff"])
def test_lone_surrogate_in_a_url_is_invalid_url(client: Client, url: str) -> None:
    with pytest.raises(InvalidURL, match="lone surrogate") as caught:
        parse_url(url)
    assert isinstance(caught.value, urllib.error.URLError)
    assert repr(url) in str(caught.value)

    def main() -> InvalidURL:
        try:
            yield client.urlopen(url)
        except InvalidURL as exc:
            return exc
        raise AssertionError("no InvalidURL")

    assert repr(url) in str(run(main))


@pytest.mark.parametrize("location", [b"http://[::1", b"http://[::1/x", b"//[not-an-address]/"])
def test_redirect_to_an_unparsable_location_is_invalid_url(client: Client, location: bytes) -> None:
    with RawServer(_redirecting(lambda head: location)) as server:
        error = expect_failure(client, f"{server.url}/", InvalidURL, location.decode(), pool=_KEPT)
    assert isinstance(error, urllib.error.URLError)


def test_unredirected_headers_are_not_sent_after_a_redirect(client: Client, stdlib: StdlibServer) -> None:
    request = urllib.request.Request(f"{stdlib.url}/redirect/302?to=/echo")
    request.add_unredirected_header("Authorization", "Bearer first-hop-only")
    request.add_unredirected_header("X-Once", "1")
    request.add_header("X-Always", "2")
    _, body = run(fetch, client, request)
    sent_after = {name.lower(): value for name, value in json.loads(body)["headers"]}
    assert sent_after.get("x-always") == "2"
    assert "authorization" not in sent_after and "x-once" not in sent_after
    first = {name.lower(): value for name, value in stdlib.requests[0][2].items()}
    assert first["authorization"] == "Bearer first-hop-only" and first["x-once"] == "1"


ESCAPES = b"\x1b[2J\x1b[31mPWNED\x1b]0;title\x07"


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 500 " + ESCAPES + b"\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Note: " + ESCAPES + b"\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 302 Found\r\nLocation: /x" + ESCAPES + b"\r\nContent-Length: 0\r\n\r\n",
    ],
    ids=["reason", "field-value", "location"],
)
def test_control_characters_in_the_head_are_refused(client: Client, head: bytes) -> None:
    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.send(head)

    with RawServer(script) as server:
        error = expect_failure(client, f"{server.url}/", RemoteProtocolError)
    assert _no_control_characters(str(error)), repr(str(error))
    assert _no_control_characters(str(error.reason)), repr(error.reason)
