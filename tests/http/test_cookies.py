"""The cookie jar's fast path: a client's own jar that has never held a cookie is not walked on every request.

``SessionCookieJar`` notes its first cookie in ``set_cookie``, the one way
into a stdlib jar; until then a request asks nothing of it. These tests
show that no way a cookie can enter the jar is missed (a response's
``Set-Cookie``, the user's ``set_cookie``, ``set_cookie_if_ok``), and that
jars the user gives are asked as before. Against httpbin, whose
``/cookies`` shows the cookies it was sent.
"""

from __future__ import annotations

import http.cookiejar
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from _servers import ExternalServer, run

from tasklets.http import Client, Timeout
from tasklets.http._cookies import SessionCookieJar, may_hold_cookies


def _cookie(name: str, value: str, domain: str = "127.0.0.1") -> http.cookiejar.Cookie:
    return http.cookiejar.Cookie(
        0, name, value, None, False, domain, False, False, "/", True, False, None, True, None, None, {}
    )


@pytest.fixture
def client(httpbin: ExternalServer) -> Iterator[Client]:
    with Client(httpbin.url, proxy=None, timeout=Timeout(connect=5, read=10, total=30)) as made:
        yield made


def _sent(client: Client, **kwargs: Any) -> dict[str, str]:
    """The cookies httpbin received with a request for its ``/cookies``."""

    def main() -> Any:
        response = yield client.get("/cookies", **kwargs)
        return (yield response.json())["cookies"]

    result: dict[str, str] = run(main)
    return result


# -- the jar itself, no sockets ---------------------------------------------------------------------------


def test_a_session_jar_is_a_stdlib_jar_that_knows_it_never_held_a_cookie() -> None:
    jar = SessionCookieJar()
    assert isinstance(jar, http.cookiejar.CookieJar)
    assert not may_hold_cookies(jar) and not may_hold_cookies(None)
    jar.set_cookie_if_ok(_cookie("a", "1"), urllib.request.Request("http://127.0.0.1/"))
    assert may_hold_cookies(jar) and [c.name for c in jar] == ["a"]
    jar.clear()
    assert not may_hold_cookies(jar)  # walked, as any jar once it has held one


def test_a_jar_the_user_gives_is_asked_whatever_its_class() -> None:
    jar = http.cookiejar.CookieJar()
    assert not may_hold_cookies(jar)
    jar.set_cookie(_cookie("a", "1"))
    assert may_hold_cookies(jar)


# -- every way in, through a real server --------------------------------------------------------------------------


def test_a_cookie_set_by_one_response_is_sent_with_the_next(client: Client) -> None:
    assert not may_hold_cookies(client.cookies)

    def main() -> Any:
        response = yield client.get("/cookies/set?a=1", follow_redirects=False)  # a 302 with Set-Cookie
        yield response.body()
        return response.status

    assert run(main) == 302
    assert _sent(client) == {"a": "1"}


def test_a_cookie_put_in_the_client_jar_by_hand_is_sent(client: Client) -> None:
    assert _sent(client) == {}  # the jar asked while empty: nothing sent, nothing noted
    client.cookies.set_cookie(_cookie("by_hand", "1"))
    assert _sent(client) == {"by_hand": "1"}
    client.cookies.clear()
    assert _sent(client) == {}


def test_a_jar_given_with_cookies_is_sent(httpbin: ExternalServer) -> None:
    jar = http.cookiejar.CookieJar()
    jar.set_cookie(_cookie("given", "1"))
    with Client(httpbin.url, proxy=None, cookies=jar) as client:
        assert _sent(client) == {"given": "1"}
        other = http.cookiejar.CookieJar()
        other.set_cookie(_cookie("per_request", "2"))
        assert _sent(client, cookies=other) == {"per_request": "2"}


def test_a_client_without_a_jar_sends_only_the_cookies_given(httpbin: ExternalServer) -> None:
    with Client(httpbin.url, proxy=None, cookies=None) as client:
        assert _sent(client) == {}
        assert _sent(client, cookies={"extra": "x"}) == {"extra": "x"}
