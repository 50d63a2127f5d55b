"""Cookies in a stdlib ``http.cookiejar.CookieJar``, so that urllib's and requests' jars work here too.

The jar's policy (domains, paths, ``Secure``, expiry) is the stdlib's own;
this module only shows it each request and response in the shapes it reads:
a ``urllib.request.Request`` and an object whose ``info()`` has ``get_all``.
"""

from __future__ import annotations

import http.cookiejar
import urllib.request
from collections.abc import Mapping

from ._headers import Headers

__all__ = ["cookie_header", "store_cookies"]


class _Answer:
    """What ``CookieJar.extract_cookies`` reads of a response: its headers, through ``info()``."""

    __slots__ = ("_headers",)

    def __init__(self, headers: Headers) -> None:
        self._headers = headers

    def info(self) -> Headers:
        return self._headers


def cookie_header(jar: http.cookiejar.CookieJar | None, url: str, extra: Mapping[str, str] | None) -> str | None:
    """The ``Cookie`` value for a request to ``url``: the jar's cookies for it, then ``extra`` ones."""
    pairs: list[str] = []
    if jar is not None and len(jar):
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
