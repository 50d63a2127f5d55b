"""The HTTP/1.1 client: ``urlopen_async`` and ``Client``.

Built on ``tasklets.net`` streams and a sans-IO protocol layer (h11, or
httptools where installed). Every error is a ``urllib.error.URLError``;
``HTTPError`` is raised for a status of 400 or more, as urllib does.
"""

from __future__ import annotations

from ._client import Client, Timeout, check_request, default_client, urlopen_async
from ._headers import Headers
from ._pool import PoolLimits
from ._response import Response
from ._retry import Retry

__all__ = [
    "Client",
    "Headers",
    "PoolLimits",
    "Response",
    "Retry",
    "Timeout",
    "check_request",
    "default_client",
    "urlopen_async",
]
