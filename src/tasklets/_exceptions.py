"""Every exception tasklets raises, in one place.

Cancellation derives from :class:`BaseException` so that ``except Exception:``
in a task does not swallow it (the same choice asyncio made in Python 3.8,
bpo-32528). Timeouts share one base class, :class:`TimeoutError`, which is
also the builtin :class:`TimeoutError`, so code written against the standard
library catches ours unchanged.
"""

from __future__ import annotations

import asyncio  # first of anything that may load _asyncio (see tasklets.asyncio)
import builtins
import concurrent.futures
import urllib.error
from typing import Any

__all__ = [
    "Cancelled",
    "CancelledError",
    "InvalidStateError",
    "LoopError",
    "BlockingResultError",
    "BadYieldError",
    "TimeoutError",
    # network
    "NetworkError",
    "ConnectError",
    "ConnectionRefused",
    "ConnectTimeout",
    "NameResolutionError",
    "StreamError",
    "StreamClosed",
    "StreamReset",
    "ReadTimeout",
    "WriteTimeout",
    "IncompleteReadError",
    "LimitOverrunError",
    "WriteBufferFull",
    "TLSError",
    "TLSHandshakeError",
    "TLSCertificateError",
    # HTTP protocol
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "RemoteDisconnected",
]

#: Raised by ``result()`` of a cancelled future (the stdlib's own class).
CancelledError = concurrent.futures.CancelledError

#: Raised when a future is completed twice (the stdlib's own class).
InvalidStateError = concurrent.futures.InvalidStateError


#: Thrown into a task at its current ``yield`` when the task is cancelled.
#:
#: It is asyncio's own ``CancelledError`` (asyncio's ``timeout()`` and
#: ``TaskGroup`` test its identity, and asyncio code running in a task must
#: see its cancellation as its own), so it is a :class:`BaseException`:
#: ``except Exception:`` does not catch it. A task may catch it to clean up;
#: if it lets it escape, the task ends cancelled and its ``result()`` raises
#: :class:`concurrent.futures.CancelledError`.
Cancelled = asyncio.CancelledError


class TimeoutError(builtins.TimeoutError):
    """Base of every timeout tasklets raises; a subclass of the builtin one."""


class LoopError(RuntimeError):
    """The event loop was used in a way that cannot work (closed, wrong thread, ...)."""


class BlockingResultError(LoopError):
    """``result()`` was called on a pending future from a thread running a loop.

    Blocking there would stop the very loop that must complete the future, so
    the call could never return. The fix is to ``yield`` (or ``await``) the
    future inside a task instead.
    """


class BadYieldError(TypeError):
    """A task yielded something that is neither a future, a list of futures nor None."""


# -- network ---------------------------------------------------------------------------------
#
# Raised by ``tasklets.net``. Each one carries the ``host`` and ``port`` it is
# about (``host`` is the socket path for Unix sockets, ``port`` then None) and
# is raised ``from`` the lower-level exception it translates. Where a builtin
# names the same condition, ours subclasses it too, so code written against
# the standard library (``except ConnectionRefusedError:``) catches ours.


class NetworkError(OSError):
    """Base of every error of the networking layer; an :class:`OSError`.

    Args:
        message: what went wrong, for people.
        host: the host (or Unix socket path) concerned, if known.
        port: the port concerned, if known.
        errno: the OS error number behind it, if any.
    """

    def __init__(self, message: str, *, host: object = None, port: int | None = None, errno: int | None = None) -> None:
        if errno is None:
            super().__init__(message)
        else:
            super().__init__(errno, message)
        self.host = host
        self.port = port


class ConnectError(NetworkError):
    """No connection could be made; ``errors`` holds the failure of every address tried."""

    errors: list[BaseException] = []


class ConnectionRefused(ConnectError, builtins.ConnectionRefusedError):
    """Every address tried refused the connection (nothing listens there)."""


class ConnectTimeout(ConnectError, TimeoutError):
    """Resolving, connecting (and the TLS handshake) took longer than the connect timeout."""


class NameResolutionError(ConnectError):
    """``getaddrinfo`` could not resolve the host name."""


class StreamError(NetworkError):
    """An error on an open :class:`~tasklets.Stream`."""


class StreamClosed(StreamError):
    """The stream was used after ``close()`` (ours), or after a fatal error."""


class StreamReset(StreamError, builtins.ConnectionResetError):
    """The peer reset the connection (or it broke: a write to a closed peer, EPIPE)."""


class ReadTimeout(StreamError, TimeoutError):
    """A read waited longer than the stream's ``timeout``."""


class WriteTimeout(StreamError, TimeoutError):
    """A write (or ``drain()``) waited while the peer took none of the queued bytes for the stream's ``timeout``."""


class IncompleteReadError(StreamError, EOFError):
    """The peer closed its side before the expected bytes arrived.

    Attributes:
        partial: the bytes that did arrive (they are consumed from the stream).
        expected: how many bytes were asked for (``read_exactly``), or None
            when the read waited for a separator (``read_until``).
    """

    def __init__(self, partial: bytes, expected: int | None, **kwargs: object) -> None:
        wanted = f"{expected} bytes" if expected is not None else "the separator"
        super().__init__(f"end of stream after {len(partial)} bytes while waiting for {wanted}", **kwargs)  # type: ignore[arg-type]
        self.partial = partial
        self.expected = expected


class LimitOverrunError(StreamError):
    """``read_until`` saw ``limit`` bytes without finding its separator.

    The bytes stay in the stream's buffer; ``consumed`` is how many were
    searched. Read them with ``read()`` or close the stream.
    """

    def __init__(self, message: str, consumed: int, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.consumed = consumed


class WriteBufferFull(StreamError, BufferError):
    """``write()`` was called while the buffer was past its high-water mark.

    The future of the previous write had not resolved yet: a writer must wait
    for it (``yield stream.write(data)``) before writing more, or memory
    would grow without bound when the peer reads slowly.
    """


class TLSError(NetworkError):
    """The TLS layer failed (a protocol error, a bad record)."""


class TLSHandshakeError(TLSError, ConnectError):
    """The TLS handshake failed; the ``ssl`` exception is the ``__cause__``."""


class TLSCertificateError(TLSHandshakeError):
    """The peer's certificate did not verify (untrusted, expired, wrong host name)."""


# -- HTTP client: URLs and redirects ---------------------------------------------------------
#
# Every HTTP client error is a ``urllib.error.URLError``, so urllib-style
# handlers catch ours unchanged.


class InvalidURL(urllib.error.URLError, ValueError):
    """The URL cannot be requested: a control character, no host, a bad host or port."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.reason)


class UnsupportedScheme(InvalidURL):
    """The URL's scheme is not http or https."""


class UnsupportedRedirect(urllib.error.URLError):
    """A redirect that must not be followed: to a non-HTTP scheme, or one that would resend a stream."""

    def __str__(self) -> str:
        return str(self.reason)


class TooManyRedirects(urllib.error.URLError):
    """More redirects than allowed, or a redirect loop."""

    def __str__(self) -> str:
        return str(self.reason)


class DecodingError(urllib.error.URLError):
    """The body's Content-Encoding is unknown, or the compressed data is corrupt."""

    def __str__(self) -> str:
        return str(self.reason)


# -- HTTP client: the HTTP/1.1 protocol ------------------------------------------------------
#
# Raised by the sans-IO protocol layer (``tasklets.http._protocol``). They say
# who broke the rules: the server (RemoteProtocolError: close the connection,
# do not reuse it) or we did (LocalProtocolError: a bug, or bad input such as
# a CR/LF in a header value, caught before a byte was produced). Both are
# ``urllib.error.URLError`` like every HTTP client error; the message is in
# ``reason`` and is also what ``str()`` shows.


class ProtocolError(urllib.error.URLError):
    """Base of the HTTP/1.1 protocol errors; a :class:`urllib.error.URLError`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.reason)


class LocalProtocolError(ProtocolError, ValueError):
    """We were about to break HTTP/1.1: a bad method, target or header, or a wrong body length.

    It is also a :class:`ValueError`, as ``http.client`` raises for an invalid
    header value. Nothing was sent: the check runs before any byte is produced.
    """


class RemoteProtocolError(ProtocolError):
    """The server broke HTTP/1.1 (malformed or oversized response, bad framing, truncated body).

    The connection must be closed, never reused.
    """


class RemoteDisconnected(RemoteProtocolError):
    """The server closed the connection before sending any byte of the response.

    On a reused keep-alive connection this usually means the server timed the
    idle connection out just as we sent the request; an idempotent request can
    be retried on a new connection.
    """


# -- HTTP client: connections, timeouts, responses ------------------------------------------------
#
# The networking layer's errors are translated at the client's boundary into
# these, each still a ``urllib.error.URLError`` whose ``reason`` is the lower
# error (as urllib does). The timeouts are also the network layer's timeout
# classes, so ``except TimeoutError`` and ``except tasklets.ReadTimeout`` both
# catch them.


class _ClientError(urllib.error.URLError):
    """A URLError whose ``str()`` is its message and whose ``reason`` may be the lower error."""

    def __init__(self, message: str, reason: str | BaseException | None = None) -> None:
        urllib.error.URLError.__init__(self, reason if reason is not None else message)
        self.args = (message,)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConnectFailed(_ClientError):
    """No connection to the server (refused, unresolvable, TLS verification failed...); ``reason`` says why."""


class ConnectionBroken(_ClientError):
    """The connection failed in the middle of an exchange; ``reason`` is the stream error."""


class HTTPConnectTimeout(_ClientError, ConnectTimeout):
    """Connecting (resolution, TCP, TLS) took longer than the connect timeout."""


class HTTPReadTimeout(_ClientError, ReadTimeout):
    """The server sent nothing for longer than the read timeout."""


class PoolTimeout(_ClientError, TimeoutError):
    """No pooled connection became free within the pool timeout."""


class TotalTimeout(_ClientError, TimeoutError):
    """The whole request (redirects and body included) took longer than the total timeout."""


class AuthenticationError(_ClientError):
    """The server asked for authentication that cannot be given (a Digest algorithm we do not know, say)."""


class BodyTooLarge(_ClientError):
    """The response body is larger than the limit the reader set."""


class HTTPError(urllib.error.HTTPError):
    """A response with status >= 400, raised as urllib raises it, and a full response too.

    ``code``/``status``, ``reason``, ``headers`` and ``url`` are set; ``read()``
    returns the body (read up to a limit before raising), and ``response`` is
    the tasklets response it came from. ``body()``, ``text()`` and ``json()``
    are that response's futures (see ``tasklets.http.Response``);
    ``getheader()`` and ``getheaders()`` read its headers.
    """

    def __init__(self, url: str, code: int, msg: str, hdrs: object, fp: object, response: object = None) -> None:
        super().__init__(url, code, msg, hdrs, fp)  # type: ignore[arg-type]
        self.response = response

    def _response(self) -> Any:
        if self.response is None:
            raise AttributeError(f"{self!r} was made without a response: only read() has its body")
        return self.response

    def body(self) -> Any:
        """A future of the body (what was read of it before raising): ``err.body().result()``."""
        return self._response().body()

    def text(self) -> Any:
        """A future of the body as text."""
        return self._response().text()

    def json(self) -> Any:
        """A future of the body parsed as JSON."""
        return self._response().json()

    def getheader(self, name: str, default: str | None = None) -> str | None:
        """The value of header ``name`` (repeated values joined by ``", "``), or ``default``."""
        value: str | None = self._response().getheader(name, default)
        return value

    def getheaders(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` header pair, in order."""
        pairs: list[tuple[str, str]] = self._response().getheaders()
        return pairs

    def __str__(self) -> str:
        return f"HTTP Error {self.code}: {self.msg} ({self.url})"
