"""Transports of a :class:`~tasklets.Stream`: what turns its bytes into the socket's, and back.

Theory of operation
-------------------
A stream reads and writes through a *transport*, and owns everything else:
the socket's registration with the loop, the read buffer, the send queue,
back-pressure, timeouts. A transport is only the transformation of the
bytes, with the few calls the two sides need (:class:`Transport`):

* reading: ``recv(n)`` / ``recv_into(view)``, as the socket's, raising
  ``BlockingIOError`` when nothing is there yet; and ``buffered()``, whether
  bytes wait where socket readiness cannot see them;
* writing: ``encrypt(data)``, the bytes to put on the wire for ``data``; and
  ``send``, which puts wire bytes in the socket (always the socket's own);
* closing: ``close_notify()``, the bytes that end the session cleanly.

:class:`PlainTransport` is the socket as a transport: its ``recv``,
``recv_into`` and ``send`` *are* the socket's bound methods. It is what the
first TLS transport stacks on; a plain stream needs no object for it (it
caches the same bound methods and calls the socket with no layer between).

:class:`TLSTransport` is an ``ssl.SSLObject`` over memory BIOs, on top of
another transport (as asyncio's ``sslproto`` does, rather than an
``ssl.SSLSocket``). Why:

* one I/O path: the stream keeps its one queue, back-pressure and readiness
  callbacks; TLS only decrypts after ``recv`` and encrypts before the queue.
  An ``SSLSocket`` would need a TLS-shaped copy of the whole write path (a
  non-blocking ``SSLSocket.send`` that raised ``SSLWantWriteError`` must be
  retried with *the same* buffer);
* ``start_tls`` on an open stream is "install a transport over the current
  one": no socket is re-wrapped, and bytes already read ahead are fed in;
* it stacks: the transport below may itself be TLS, so a stream tunnelled
  through a TLS connection (HTTPS through an ``https://`` proxy) upgrades
  again. Its ciphertext is the plaintext of the transport below: received
  through the lower ``recv``, and encrypted again by the lower ``encrypt``
  on the way out.

The catch of memory BIOs is that plaintext may wait *inside* an SSL object
(of this layer or of one below), where socket readiness cannot see it;
before a read waits for readiness the stream asks ``buffered()`` and, if
bytes are there, reads them at once.

Reading can make records to send (a TLS 1.3 KeyUpdate answer, a client
certificate asked for after the handshake): they go to the stream's queue
through the ``emit`` callable the stream gives, past the high-water mark
(they are small, and dropping one would break the session).

Shutdown: ``close_notify()`` gives our close_notify (``unwrap``, for every
TLS layer, innermost first) and does not wait for the peer's. Reading the
peer's close_notify ends the stream cleanly (``b""``); an EOF without one
(an unclean shutdown, common with HTTP servers) ends it too, and sets
``unclean_eof``, because protocols that delimit their messages
(``Content-Length``) detect truncation themselves.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Generator
from typing import Any, Protocol

from .._exceptions import StreamError, WriteBufferFull
from .._future import Future
from ._errors import handshake_error

__all__ = ["Transport", "PlainTransport", "TLSTransport", "make_context"]

_SSLWantReadError = ssl.SSLWantReadError
_SSLZeroReturnError = ssl.SSLZeroReturnError
_SSLEOFError = ssl.SSLEOFError
#: The most ciphertext one TLS ``recv`` takes from the transport below.
RECV_SIZE = 256 * 1024


class Transport(Protocol):
    """What a stream reads and writes through (see the module's theory of operation)."""

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS session of this layer, or None."""
        ...

    @property
    def unclean_eof(self) -> bool:
        """True once the peer closed without a close_notify (TLS only)."""
        ...

    def recv(self, n: int, /) -> bytes:
        """Up to ``n`` bytes; ``b""`` at end of stream; BlockingIOError when none are there yet."""
        ...

    def recv_into(self, view: memoryview, /) -> int:
        """``recv`` into a buffer: how many bytes were put there."""
        ...

    def send(self, data: Any, /) -> int:
        """Put wire bytes into the socket: how many it took."""
        ...

    def buffered(self) -> bool:
        """Whether received bytes wait where socket readiness cannot see them."""
        ...

    def encrypt(self, data: Any) -> bytes:
        """The wire bytes that carry ``data``."""
        ...

    def close_notify(self) -> bytes:
        """The wire bytes that end the session cleanly (empty when there is none)."""
        ...


class PlainTransport:
    """The socket's bytes as they are: the bottom of a stack of TLS transports."""

    __slots__ = ("recv", "recv_into", "send")

    #: No TLS here.
    ssl_object = None
    unclean_eof = False

    def __init__(self, sock: socket.socket) -> None:
        # The socket's own bound methods: a plain stream calls them directly.
        self.recv: Callable[[int], bytes] = sock.recv
        self.recv_into: Callable[[memoryview], int] = sock.recv_into
        self.send: Callable[[Any], int] = sock.send

    def __repr__(self) -> str:
        return "<PlainTransport>"

    def buffered(self) -> bool:
        return False

    def encrypt(self, data: Any) -> bytes:
        return bytes(data)

    def close_notify(self) -> bytes:
        return b""


def make_context(ssl_arg: Any, *, server_side: bool) -> ssl.SSLContext:
    """The ``SSLContext`` to use for the ``ssl=`` argument: a context, or True for the defaults."""
    if isinstance(ssl_arg, ssl.SSLContext):
        return ssl_arg
    if ssl_arg is True:
        if server_side:
            raise ValueError("a TLS server needs an ssl.SSLContext with its certificate loaded, not ssl=True")
        return ssl.create_default_context()
    raise TypeError(f"ssl= takes an ssl.SSLContext or True, got {ssl_arg!r}")


class TLSTransport:
    """TLS over another transport: decrypts what is read from it, encrypts what is written to it.

    Made before the handshake (:meth:`feed` it the bytes read ahead, run
    :meth:`handshake` over the stream), then installed on the stream.

    Args:
        lower: the transport this one runs over (plain, or TLS).
        context: the TLS configuration.
        server_side: act as the TLS server.
        server_hostname: the name to verify and send as SNI (client side).
        emit: queues wire bytes on the stream (records that reading made).
    """

    __slots__ = (
        "ssl_object",
        "send",
        "unclean_eof",
        "_incoming",
        "_outgoing",
        "_lower",
        "_lower_recv",
        "_lower_tls",
        "_emit",
    )

    def __init__(
        self,
        lower: Transport,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None,
        emit: Callable[[bytes], None],
    ) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.ssl_object: ssl.SSLObject = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=None if server_side else server_hostname,
        )
        self._lower = lower
        self._lower_recv = lower.recv
        # The lower layer's encryption, None when the lower layer is the plain socket.
        self._lower_tls: Transport | None = None if lower.ssl_object is None else lower
        # Wire bytes go into the socket, whatever the depth: the bottom transport's send.
        self.send: Callable[[Any], int] = lower.send
        self._emit = emit
        #: True once the peer closed the connection without a close_notify.
        self.unclean_eof = False

    def __repr__(self) -> str:
        return f"<TLSTransport over {self._lower!r}>"

    @property
    def lower(self) -> Transport:
        """The transport this one runs over."""
        return self._lower

    # -- the handshake (driven by the stream) ---------------------------------------------------

    def feed(self, ciphertext: bytes) -> None:
        """Hand over ciphertext received before the transport is installed (``b""``: end of stream)."""
        if ciphertext:
            self._incoming.write(ciphertext)
        else:
            self._incoming.write_eof()

    def handshake(
        self,
        read: Callable[[int], Future[bytes]],
        write: Callable[[bytes], Future[None]],
        host: object,
        port: int | None,
    ) -> Generator[Any, Any, None]:
        """Run the handshake over ``read`` and ``write`` of the stream as it is (``yield from`` it in a task).

        Its records are plaintext of the transport below: they go through the
        stream before this transport is installed.

        Raises:
            TLSHandshakeError: the handshake failed (or TLSCertificateError);
                ``host`` and ``port`` name the peer in the message.
        """
        sslobj = self.ssl_object
        outgoing = self._outgoing
        while True:
            try:
                sslobj.do_handshake()
                finished = True
            except _SSLWantReadError:
                finished = False
            except ssl.SSLError as exc:
                alert = outgoing.read()
                if alert:  # tell the peer why, best effort
                    try:
                        write(alert)
                    except (StreamError, WriteBufferFull):
                        pass
                raise handshake_error(exc, host, port) from exc
            out = outgoing.read()
            try:
                if out:
                    yield write(out)
                if finished:
                    return
                data = yield read(RECV_SIZE)
            except StreamError as exc:
                raise handshake_error(exc, host, port) from exc
            self.feed(data)

    # -- reading ---------------------------------------------------------------------------------

    def buffered(self) -> bool:
        """Whether bytes wait inside this layer or one below, where socket readiness cannot see them."""
        if self._incoming.pending or self.ssl_object.pending():
            return True
        lower = self._lower_tls
        return lower is not None and lower.buffered()

    def recv_into(self, view: memoryview) -> int:
        """``recv`` into ``view``: the count of plaintext bytes put there (0 at end of stream)."""
        data = self.recv(len(view))
        view[: len(data)] = data
        return len(data)

    def recv(self, n: int) -> bytes:
        """Up to ``n`` plaintext bytes; ``b""`` at end of stream; BlockingIOError if none yet."""
        sslobj = self.ssl_object
        read = sslobj.read
        incoming = self._incoming
        if incoming.pending or sslobj.pending():
            try:
                data = read(n)
            except _SSLWantReadError:
                pass  # a partial record: more ciphertext is needed
            except _SSLZeroReturnError:
                return b""
            except _SSLEOFError:
                self.unclean_eof = True
                return b""
            else:
                if self._outgoing.pending:
                    self._flush()
                return data
        # (With nothing buffered, asking the SSL object first would only raise
        # SSLWantReadError: go to the transport below straight away.)
        lower_recv = self._lower_recv
        while True:
            ciphertext = lower_recv(RECV_SIZE)  # BlockingIOError: nothing to decrypt yet
            if ciphertext:
                incoming.write(ciphertext)
            else:
                incoming.write_eof()
            try:
                data = read(n)
            except _SSLWantReadError:
                if not ciphertext:
                    return b""
                continue  # a partial record: read on
            except _SSLZeroReturnError:
                return b""
            except _SSLEOFError:
                self.unclean_eof = True
                return b""
            if self._outgoing.pending:
                self._flush()
            return data

    def _flush(self) -> None:
        # Reading made records to send (a KeyUpdate or post-handshake auth answer).
        records = self._outgoing.read()
        lower = self._lower_tls
        self._emit(records if lower is None else lower.encrypt(records))

    # -- writing and closing ---------------------------------------------------------------------

    def encrypt(self, data: Any) -> bytes:
        """The wire bytes carrying ``data``: this layer's records, encrypted again by the layers below."""
        self.ssl_object.write(data)
        records = self._outgoing.read()
        lower = self._lower_tls
        return records if lower is None else lower.encrypt(records)

    def close_notify(self) -> bytes:
        """The wire bytes that close this TLS session, then those below (each layer's close_notify)."""
        try:
            self.ssl_object.unwrap()
        except ssl.SSLError:
            pass  # want-read: the peer's close_notify has not come; we do not wait for it
        records = self._outgoing.read()
        lower = self._lower_tls
        if lower is None:
            return records
        try:
            wire = lower.encrypt(records) if records else b""
        except ssl.SSLError:
            wire = b""  # the lower session is already shut down
        return wire + lower.close_notify()
