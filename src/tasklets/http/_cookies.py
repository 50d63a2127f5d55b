"""Cookies in a stdlib ``http.cookiejar.CookieJar``, so that urllib's and requests' jars work here too.

The jar's policy (domains, paths, ``Secure``, expiry) is the stdlib's own;
this module only shows it each request and response in the shapes it reads:
a ``urllib.request.Request`` and an object whose ``info()`` has ``get_all``.

Most sessions never receive a cookie, yet every request would ask the jar
for its cookies and every response would be shown to it. A stdlib jar can
say whether it is empty only by walking all its cookies (``len(jar)``), so
a client's own jar is a :class:`SessionCookieJar`, which notes when a cookie
first goes in: until then, a request costs no look at the jar at all. Every
way into a ``CookieJar`` (``extract_cookies``, ``set_cookie_if_ok``, a
``FileCookieJar``'s ``load``, a user's own ``set_cookie``) goes through
``set_cookie``, so the note cannot miss one. A jar the user gives is asked
with ``len()``, as before.
"""

from __future__ import annotations

import http.cookiejar
import urllib.request
from collections.abc import Mapping

from ._headers import Headers

__all__ = ["SessionCookieJar", "cookie_header", "may_hold_cookies", "store_cookies"]


class SessionCookieJar(http.cookiejar.CookieJar):
    """A stdlib ``CookieJar`` that knows, without walking its cookies, that it has never held one."""

    def __init__(self, policy: http.cookiejar.CookiePolicy | None = None) -> None:
        super().__init__(policy)
        self.ever_set = False  # never reset (a cleared jar is walked as any other): an answer that cannot be stale

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        # Noted first: a request on another thread that sees the cookie sees the note too.
        self.ever_set = True
        super().set_cookie(cookie)


def may_hold_cookies(jar: http.cookiejar.CookieJar | None) -> bool:
    """Whether ``jar`` may have cookies to send: False at once for a :class:`SessionCookieJar` never given one."""
    if jar is None:
        return False
    if isinstance(jar, SessionCookieJar) and not jar.ever_set:
        return False
    return bool(len(jar))


class _Answer:
    """What ``CookieJar.extract_cookies`` reads of a response: its headers, through ``info()``."""

    __slots__ = ("_headers",)

    def __init__(self, headers: Headers) -> None:
        self._headers = headers

    def info(self) -> Headers:
        return self._headers


def cookie_header(jar: http.cookiejar.CookieJar | None, url: str, extra: Mapping[str, str] | None) -> str | None:
    """The ``Cookie`` value for a request to ``url``: the jar's cookies for it, then ``extra`` ones.

    ``jar`` is None when :func:`may_hold_cookies` said it holds none (it is asked once per hop).
    """
    pairs: list[str] = []
    if jar is not None:
        request = urllib.request.Request(url)
        jar.add_cookie_header(request)
        value = request.get_header("Cookie")
        if value:
            pairs.append(value)
    if extra:
        pairs.extend(f"{name}={value}" for name, value in extra.items())
    return "; ".join(pairs) or None


def store_cookies(jar: http.cookiejar.CookieJar, url: str, headers: Headers) -> None:
    """Keep the cookies a response to ``url`` sets, as the jar's policy allows."""
    if "Set-Cookie" in headers or "Set-Cookie2" in headers:
        jar.extract_cookies(_Answer(headers), urllib.request.Request(url))  # type: ignore[arg-type]
