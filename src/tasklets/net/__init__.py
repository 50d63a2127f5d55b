"""Networking on the loop's public primitives: connections, streams, servers, TLS.

``open_connection``/``open_unix_connection`` and ``start_server``/
``start_unix_server`` return futures (tasks) of a :class:`Stream` and a
:class:`Server`; every read and write of a stream is a future too. The
errors they raise live in ``tasklets._exceptions`` (section "network") and
are re-exported here and from ``tasklets``.
"""

from __future__ import annotations

from .._exceptions import (
    ConnectError,
    ConnectionRefused,
    ConnectTimeout,
    IncompleteReadError,
    LimitOverrunError,
    NameResolutionError,
    NetworkError,
    ReadTimeout,
    StreamClosed,
    StreamError,
    StreamReset,
    TLSCertificateError,
    TLSError,
    TLSHandshakeError,
    WriteBufferFull,
    WriteTimeout,
)
from ._connect import open_connection, open_unix_connection
from ._resolver import Resolver, SystemResolver
from ._server import Server, start_server, start_unix_server
from ._stream import Stream

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "ConnectionRefused",
    "IncompleteReadError",
    "LimitOverrunError",
    "NameResolutionError",
    "NetworkError",
    "ReadTimeout",
    "Resolver",
    "Server",
    "Stream",
    "StreamClosed",
    "StreamError",
    "StreamReset",
    "SystemResolver",
    "TLSCertificateError",
    "TLSError",
    "TLSHandshakeError",
    "WriteBufferFull",
    "WriteTimeout",
    "open_connection",
    "open_unix_connection",
    "start_server",
    "start_unix_server",
]
