"""Translation of socket and ssl errors into the precise types of ``tasklets._exceptions``.

The functions return the new exception with ``__cause__`` set to the
original (what ``raise new from exc`` does), because most callers hand it to
a future rather than raise it.
"""

from __future__ import annotations

import errno
import sys

from .._exceptions import (
    ConnectError,
    ConnectionRefused,
    ConnectTimeout,
    NetworkError,
    StreamError,
    StreamReset,
    TLSCertificateError,
    TLSError,
    TLSHandshakeError,
)

__all__ = ["translate_stream_error", "connect_error", "handshake_error", "describe"]

_RESET = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def describe(host: object, port: int | None) -> str:
    """``host:port`` (or the bare path of a Unix socket), for messages."""
    if port is None:
        return repr(host)
    if isinstance(host, str) and ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def translate_stream_error(exc: OSError, host: object, port: int | None) -> NetworkError:
    """The error of an open stream, as a :class:`StreamError` (or :class:`TLSError`)."""
    if isinstance(exc, NetworkError):
        return exc
    where = describe(host, port)
    ssl = sys.modules.get("ssl")
    error: NetworkError
    if ssl is not None and isinstance(exc, ssl.SSLError):
        error = TLSError(f"TLS error on the connection with {where}: {exc}", host=host, port=port)
    elif isinstance(exc, _RESET):
        error = StreamReset(f"connection with {where} reset by peer", host=host, port=port, errno=exc.errno)
    else:
        error = StreamError(
            f"connection with {where} failed: {exc.strerror or exc}", host=host, port=port, errno=exc.errno
        )
    error.__cause__ = exc
    return error


def connect_error(errors: list[OSError], host: object, port: int | None) -> ConnectError:
    """One error for every failed attempt to connect to ``host``.

    Refused if all were refused; a timeout if all timed out in the kernel
    (``ETIMEDOUT``: the SYN went unanswered for the system's own limit,
    before ours), so that ``except TimeoutError`` catches it.
    """
    where = describe(host, port)
    error: ConnectError
    if errors and all(getattr(e, "errno", None) == errno.ECONNREFUSED for e in errors):
        error = ConnectionRefused(
            f"connection to {where} refused (nothing listens there?)", host=host, port=port, errno=errno.ECONNREFUSED
        )
    elif errors and all(getattr(e, "errno", None) == errno.ETIMEDOUT for e in errors):
        error = ConnectTimeout(
            f"connecting to {where} timed out (the system gave up waiting for an answer)",
            host=host,
            port=port,
            errno=errno.ETIMEDOUT,
        )
    elif len(errors) == 1:
        only = errors[0]
        error = ConnectError(
            f"cannot connect to {where}: {getattr(only, 'strerror', None) or only}",
            host=host,
            port=port,
            errno=getattr(only, "errno", None),
        )
    else:
        reasons = "; ".join(str(e) for e in errors)
        error = ConnectError(f"cannot connect to {where}: every address failed ({reasons})", host=host, port=port)
    error.errors = list(errors)
    error.__cause__ = errors[-1] if errors else None
    return error


def handshake_error(exc: BaseException, host: object, port: int | None) -> NetworkError:
    """A failed TLS handshake, as :class:`TLSCertificateError` or :class:`TLSHandshakeError`."""
    if isinstance(exc, NetworkError) and not isinstance(exc, StreamError):
        return exc
    where = describe(host, port)
    ssl = sys.modules.get("ssl")
    error: NetworkError
    if ssl is not None and isinstance(exc, ssl.SSLCertVerificationError):
        error = TLSCertificateError(
            f"the certificate of {where} did not verify: {exc.verify_message or exc}", host=host, port=port
        )
    else:
        error = TLSHandshakeError(f"TLS handshake with {where} failed: {exc}", host=host, port=port)
    error.__cause__ = exc
    return error
