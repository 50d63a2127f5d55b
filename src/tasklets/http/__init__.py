"""The HTTP/1.1 client: ``urlopen_async``, ``Client`` and the verbs.

Built on ``tasklets.net`` streams and a sans-IO protocol layer (h11, or
httptools where installed). Every error is a ``urllib.error.URLError``;
``urlopen_async`` raises ``HTTPError`` for a status of 400 or more, as urllib
does, while the verbs (``get``, ``post``...) return every response and
``raise_for_status()`` raises.
"""

from __future__ import annotations

from ._api import default_client, delete, get, head, options, patch, post, put, request, urlopen_async
from ._auth import DigestAuth
from ._client import check_request
from ._connector import Connector, Route
from ._headers import Headers
from ._pool import PoolLimits
from ._response import Response
from ._response_extras import SentRequest
from ._retry import Retry
from ._session import Client
from ._timeout import Timeout

__all__ = [
    "Client",
    "Connector",
    "DigestAuth",
    "Headers",
    "PoolLimits",
    "Response",
    "Retry",
    "Route",
    "SentRequest",
    "Timeout",
    "check_request",
    "default_client",
    "delete",
    "get",
    "head",
    "options",
    "patch",
    "post",
    "put",
    "request",
    "urlopen_async",
]
