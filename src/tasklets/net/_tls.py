"""TLS for streams: ``ssl.SSLObject`` over memory BIOs, fed by the stream's own socket I/O.

Theory of operation
-------------------
Why memory BIOs (as asyncio's ``sslproto`` does) rather than an
``ssl.SSLSocket`` in non-blocking mode? Three reasons:

* one I/O path: the stream keeps doing plain ``recv``/``send`` on its own
  socket, with its own queue, back-pressure and readiness callbacks; TLS is
  only a transformation of the bytes (decrypt after ``recv``, encrypt before
  the queue). An ``SSLSocket`` would need a second, TLS-shaped copy of the
  whole write path, because a non-blocking ``SSLSocket.send`` that raised
  ``SSLWantWriteError`` must be retried with *the same* buffer;
* ``start_tls`` on an open stream is just "install the layer": no socket is
  re-wrapped, and bytes the stream already read ahead are fed to the BIO;
* the handshake is an ordinary loop over the stream's ``read``/``write``
  futures, so it can be cancelled and timed out like any other wait.

The catch of memory BIOs is that plaintext may wait *inside* the SSL object,
where socket readiness cannot see it; before a read waits for readiness the
stream asks the layer whether it holds bytes (``buffered()``) and, if so,
reads them at once.

Shutdown: ``close()`` queues our close_notify (``unwrap``) and does not wait
for the peer's. Reading the peer's close_notify ends the stream cleanly
(``b""``); an EOF without one (an unclean shutdown, common with HTTP
servers) ends it too, and sets ``unclean_eof`` on the layer, because
protocols that delimit their messages (``Content-Length``) detect truncation
themselves.
"""

from __future__ import annotations

import ssl
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .._exceptions import Cancelled, ConnectTimeout, StreamError, WriteBufferFull
from .._future import Future
from .._task import Task
from ._errors import describe, handshake_error

if TYPE_CHECKING:
    from ._stream import Stream

__all__ = ["TLSLayer", "make_context", "check_can_start_tls", "handshake", "start_tls"]

_SSLWantReadError = ssl.SSLWantReadError
_SSLZeroReturnError = ssl.SSLZeroReturnError
_SSLEOFError = ssl.SSLEOFError
_RECV_SIZE = 256 * 1024


def make_context(ssl_arg: Any, *, server_side: bool) -> ssl.SSLContext:
    """The ``SSLContext`` to use for the ``ssl=`` argument: a context, or True for the defaults."""
    if isinstance(ssl_arg, ssl.SSLContext):
        return ssl_arg
    if ssl_arg is True:
        if server_side:
            raise ValueError("a TLS server needs an ssl.SSLContext with its certificate loaded, not ssl=True")
        return ssl.create_default_context()
    raise TypeError(f"ssl= takes an ssl.SSLContext or True, got {ssl_arg!r}")


class TLSLayer:
    """Encrypts what a stream writes and decrypts what it reads."""

    __slots__ = ("sslobj", "_incoming", "_outgoing", "_sock_recv", "_stream", "unclean_eof")

    def __init__(self, sslobj: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, stream: Stream) -> None:
        self.sslobj = sslobj
        self._incoming = incoming
        self._outgoing = outgoing
        self._sock_recv = stream._sock.recv
        self._stream = stream
        #: True once the peer closed the connection without a close_notify.
        self.unclean_eof = False

    def buffered(self) -> bool:
        """Whether bytes wait inside the TLS layer, where socket readiness cannot see them."""
        return bool(self._incoming.pending or self.sslobj.pending())

    def recv_into(self, view: memoryview) -> int:
        """``recv`` into ``view``: the count of plaintext bytes put there (0 at end of stream)."""
        data = self.recv(len(view))
        view[: len(data)] = data
        return len(data)

    def recv(self, n: int) -> bytes:
        """Up to ``n`` plaintext bytes; ``b""`` at end of stream; BlockingIOError if none yet."""
        read = self.sslobj.read
        incoming = self._incoming
        if incoming.pending or self.sslobj.pending():
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
                self._flush()
                return data
        # (With nothing buffered, asking the SSL object first would only raise
        # SSLWantReadError: go to the socket straight away.)
        while True:
            ciphertext = self._sock_recv(_RECV_SIZE)  # BlockingIOError: nothing to decrypt yet
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
            self._flush()
            return data

    def _flush(self) -> None:
        # Reading may produce records to send (a TLS 1.3 KeyUpdate answer).
        if self._outgoing.pending:
            stream = self._stream
            stream._tls = None
            try:
                stream.write(self._outgoing.read())
            except (WriteBufferFull, StreamError):
                pass
            finally:
                stream._tls = self

    def encrypt(self, data: Any) -> bytes:
        """The TLS records carrying ``data``."""
        self.sslobj.write(data)
        return self._outgoing.read()

    def close_notify(self) -> bytes:
        """The records that close the TLS session (our close_notify)."""
        try:
            self.sslobj.unwrap()
        except ssl.SSLError:
            pass  # want-read: the peer's close_notify has not come; we do not wait for it
        return self._outgoing.read()


def check_can_start_tls(stream: Stream) -> None:
    """Raise RuntimeError if ``stream`` cannot start TLS: it already uses it, or a read waits on it."""
    waiter = stream._waiter
    if waiter is not None and not waiter.done():
        raise RuntimeError(f"cannot start TLS on {stream!r} while a read waits on it")
    if stream._tls is not None:
        raise RuntimeError(f"{stream!r} already uses TLS")


def handshake(
    stream: Stream,
    context: ssl.SSLContext,
    *,
    server_side: bool,
    server_hostname: str | None,
) -> Generator[Any, Any, Stream]:
    """Run the TLS handshake over ``stream`` and install the layer (``yield from`` it in a task).

    On failure the exception is a :class:`TLSHandshakeError` (or
    :class:`TLSCertificateError`); the caller closes the stream.
    """
    host, port = stream._host, stream._port
    check_can_start_tls(stream)
    incoming = ssl.MemoryBIO()
    outgoing = ssl.MemoryBIO()
    sslobj = context.wrap_bio(
        incoming, outgoing, server_side=server_side, server_hostname=None if server_side else server_hostname
    )
    if stream._buffer:  # ciphertext read ahead before the upgrade
        incoming.write(bytes(stream._buffer))
        stream._buffer.clear()
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
                    stream.write(alert)
                except (StreamError, WriteBufferFull):
                    pass
            raise handshake_error(exc, host, port) from exc
        out = outgoing.read()
        try:
            if out:
                yield stream.write(out)
            if finished:
                break
            data = yield stream.read(_RECV_SIZE)
        except StreamError as exc:
            raise handshake_error(exc, host, port) from exc
        if data:
            incoming.write(data)
        else:
            incoming.write_eof()
    layer = TLSLayer(sslobj, incoming, outgoing, stream)
    if stream._buffer:  # application data that came right behind the last handshake flight
        incoming.write(bytes(stream._buffer))
        stream._buffer.clear()
    stream._tls = layer
    stream._recv = layer.recv
    stream._recv_into = layer.recv_into
    return stream


def start_tls(
    stream: Stream,
    ssl_arg: Any,
    *,
    server_side: bool = False,
    server_hostname: str | None = None,
    timeout: float | None = None,
) -> Future[Stream]:
    """The body of :meth:`Stream.start_tls`: the handshake as a task, with a timeout.

    A failed, timed-out or cancelled handshake aborts the stream: its state is
    unknown (half a handshake on the wire), so it could not be used again.
    Misuse (TLS already, a read waiting) raises at once and costs nothing:
    not a byte has gone out.
    """
    check_can_start_tls(stream)
    context = make_context(ssl_arg, server_side=server_side)
    if server_hostname is None and not server_side and isinstance(stream._host, str):
        server_hostname = stream._host
    loop = stream._loop
    state = {"timed_out": False}

    def run() -> Generator[Any, Any, Stream]:
        try:
            yield from handshake(stream, context, server_side=server_side, server_hostname=server_hostname)
            # The handshake's last wait may have completed as the task was
            # cancelled (a task resumes with a completed wait first): the
            # cancellation lands here, and aborts the stream as promised.
            yield None
            return stream
        except Cancelled:
            stream.abort()
            if state["timed_out"]:
                raise ConnectTimeout(
                    f"TLS handshake with {describe(stream._host, stream._port)} took longer than {timeout} s",
                    host=stream._host,
                    port=stream._port,
                ) from None
            raise
        except BaseException:
            stream.abort()
            raise

    task: Task[Stream] = Task(run(), loop=loop, name=f"start_tls {describe(stream._host, stream._port)}")

    def aborted_if_cancelled(done: Future[Stream]) -> None:
        if done.cancelled():  # even before its first step, where run() could not see it
            stream.abort()

    task.add_done_callback(aborted_if_cancelled)
    if timeout is not None:

        def expire() -> None:
            state["timed_out"] = True
            task.cancel()

        timer = loop.call_later(timeout, expire)
        task.add_done_callback(lambda _: timer.cancel())
    return task
