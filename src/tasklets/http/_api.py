"""The module-level functions: ``urlopen_async`` and the verbs, on the default client.

The default client keeps no cookies (as urllib keeps none): pass a
``http.cookiejar.CookieJar`` as ``cookies=`` to keep them across calls.
"""

from __future__ import annotations

import ssl as _ssl
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from .._future import Future
from .._task import Task
from ._response import Response
from ._session import Client
from ._timeout import DEFAULT, Timeout

__all__ = ["default_client", "delete", "get", "head", "options", "patch", "post", "put", "request", "urlopen_async"]

_default_client: Client | None = None


def default_client() -> Client:
    """The client behind :func:`urlopen_async` and the module-level verbs (it keeps no cookies)."""
    global _default_client
    if _default_client is None:
        _default_client = Client(cookies=None)
    return _default_client


def urlopen_async(
    url: str | urllib.request.Request,
    data: bytes | Iterable[bytes] | Any = None,
    timeout: float | Timeout | None = DEFAULT,
    *,
    headers: Mapping[str, str] | None = None,
    method: str | None = None,
    context: _ssl.SSLContext | None = None,
) -> Future[Response]:
    """``urllib.request.urlopen``, asynchronous: a future of the :class:`Response`.

    See :meth:`Client.urlopen`; this uses the default client and its pool.
    """
    return default_client().urlopen(url, data, timeout, headers=headers, method=method, context=context)


def request(method: str, url: str, **kwargs: Any) -> Task[Response]:
    """:meth:`Client.request` on the default client: a future of the response, whatever its status."""
    return default_client().request(method, url, **kwargs)


def get(url: str, **kwargs: Any) -> Task[Response]:
    """``request("GET", url, ...)`` on the default client."""
    return default_client().request("GET", url, **kwargs)


def head(url: str, **kwargs: Any) -> Task[Response]:
    """``request("HEAD", url, ...)`` on the default client."""
    return default_client().request("HEAD", url, **kwargs)


def options(url: str, **kwargs: Any) -> Task[Response]:
    """``request("OPTIONS", url, ...)`` on the default client."""
    return default_client().request("OPTIONS", url, **kwargs)


def delete(url: str, **kwargs: Any) -> Task[Response]:
    """``request("DELETE", url, ...)`` on the default client."""
    return default_client().request("DELETE", url, **kwargs)


def post(url: str, data: Any = None, **kwargs: Any) -> Task[Response]:
    """``request("POST", url, data=data, ...)`` on the default client."""
    return default_client().request("POST", url, data=data, **kwargs)


def put(url: str, data: Any = None, **kwargs: Any) -> Task[Response]:
    """``request("PUT", url, data=data, ...)`` on the default client."""
    return default_client().request("PUT", url, data=data, **kwargs)


def patch(url: str, data: Any = None, **kwargs: Any) -> Task[Response]:
    """``request("PATCH", url, data=data, ...)`` on the default client."""
    return default_client().request("PATCH", url, data=data, **kwargs)
