"""Sans-IO HTTP/1.1, client side: a request in, bytes out; bytes in, response events out.

One :class:`ClientConnection` per TCP connection, one exchange at a time (no
pipelining)::

    conn = create_client_connection()
    out = conn.send_request("GET", "/", [("Host", "example.com")])
    out += conn.send_end()
    ...write out, then for every piece of bytes read from the socket:
    for event in conn.feed(data):          # Response, Data..., EndOfMessage
        ...
    ...on EOF: conn.feed_eof()
    if conn.can_reuse():
        conn.start_next_cycle()            # the next request may go out

Events carry headers as a list of ``(name, value)`` **bytes** pairs, in the
order received, names in the case the server sent them, values with the
surrounding whitespace removed. Case-insensitive lookup, decoding (latin-1)
and joining repeated fields are the client layer's job: this layer keeps every
field as it came and creates no per-header object beyond the tuple.
"""

# The policy shared by every backend is ClientConnection (``_policy.py``),
# with the head scanner (``_head.py``), the chunked decoder (``_chunked.py``)
# and the request side (``_request_side.py``); each backend subclasses it
# (``_h11_backend.py``, ``_httptools_backend.py``). This module chooses one.

from __future__ import annotations

import dataclasses
from typing import Any

from ._events import (
    CLOSED,
    DEFAULT_LIMITS,
    DONE,
    ERROR,
    IDLE,
    RECV_BODY,
    RECV_HEAD,
    SWITCHED,
    Data,
    EndOfMessage,
    Event,
    Header,
    InformationalResponse,
    Limits,
    Response,
    State,
)
from ._h11_backend import H11ClientConnection
from ._policy import ClientConnection
from ._request_side import _TOKEN_CHARS as _TOKEN_CHARS  # re-exported: the client checks methods with it

__all__ = [
    "CLOSED",
    "DONE",
    "ERROR",
    "IDLE",
    "RECV_BODY",
    "RECV_HEAD",
    "SWITCHED",
    "ClientConnection",
    "Data",
    "EndOfMessage",
    "Event",
    "Header",
    "InformationalResponse",
    "Limits",
    "Response",
    "State",
    "available_backends",
    "create_client_connection",
]


# -- backend choice ----------------------------------------------------------------------------

_BACKENDS: dict[str, type[ClientConnection]] = {}


def _load(name: str) -> type[ClientConnection]:
    cls = _BACKENDS.get(name)
    if cls is not None:
        return cls
    if name == "h11":
        cls = H11ClientConnection
    elif name == "httptools":
        # Imported when asked for: httptools is optional (ImportError without it).
        from ._httptools_backend import HttptoolsClientConnection

        cls = HttptoolsClientConnection
    else:
        raise ValueError(f"unknown HTTP parser backend {name!r}: use 'auto', 'h11' or 'httptools'")
    _BACKENDS[name] = cls
    return cls


def available_backends() -> list[str]:
    """The parser backends that can be used here, fastest first."""
    names = []
    for name in ("httptools", "h11"):
        try:
            _load(name)
        except ImportError:
            continue
        names.append(name)
    return names


def create_client_connection(*, backend: str = "auto", limits: Limits | None = None, **kwargs: Any) -> ClientConnection:
    """Create the protocol state of a new client connection.

    Args:
        backend: ``"httptools"`` (fast, C), ``"h11"`` (pure Python), or
            ``"auto"``: httptools when it is installed, else h11.
        limits: bounds on heads and 1xx responses; :class:`Limits` defaults if None.
        **kwargs: fields of :class:`Limits`, as a shortcut (``max_headers=50``).

    Returns:
        A fresh :class:`ClientConnection` in state IDLE.

    Raises:
        ImportError: the backend named is not installed.
        ValueError: unknown backend name.
    """
    if kwargs:
        limits = dataclasses.replace(limits or DEFAULT_LIMITS, **kwargs)
    if backend == "auto":
        try:
            cls = _load("httptools")
        except ImportError:
            cls = _load("h11")
    else:
        cls = _load(backend)
    return cls(limits=limits)
