"""``Stream``: a connected socket read and written through futures.

Theory of operation
-------------------
A stream belongs to one loop and is driven by readiness callbacks registered
with the loop's public ``watch_reader``/``watch_writer``; nothing here lives in
the loop.

Reading. ``read`` serves from the buffer when it can, returning a future that
is already done. Otherwise it calls ``recv`` at once (non-blocking) and only
when that would block does it park a single *waiter* (a future plus what it
waits for: any bytes, exactly ``n``, up to a separator) and make sure the
socket's reader is registered. The reader then *stays* registered while the
stream is read: a ping-pong peer re-registering on every message would pay
two ``epoll_ctl`` calls per message, and once registered, a read that finds
nothing buffered waits for the readiness callback instead of paying for a
``recv`` that fails. When data arrives with no waiter it is read ahead into
the buffer, up to ``read_ahead`` bytes, then the reader is removed (the peer
is paused by TCP flow control) until a read needs more; with
``read_ahead=0`` the reader is removed at once and the bytes wait in the
kernel. A waiter whose task was cancelled is dropped lazily: its data stays
in the buffer. ``read_into`` is ``read`` into the caller's buffer: the kernel
copies straight there, with no ``bytes`` object per read, which saves a large
transfer (an HTTP body) an allocation and a copy per read.

Writing. ``write`` calls ``send`` at once when nothing is queued; only the
bytes the kernel did not take are queued (one ``bytearray``, whose deletes at
the front are amortised O(1)) and the writer is registered until the queue is
empty. The future returned resolves when the queue is at or below
``high_water``: a shared, already-done future in the common case, so a fast
write allocates nothing. Back-pressure is enforced, not advised: ``write``
called while the queue is above ``high_water`` (so the caller did not wait
for the previous future) raises :class:`WriteBufferFull`. The queue is thus
bounded by ``high_water`` plus one write.

Transports. The stream reads and writes through a transport
(``_transport.py``): the socket itself, until ``start_tls`` installs a TLS
transport over the current one (which may be TLS already: TLS inside TLS).
The TLS transport decrypts what ``recv`` returns and encrypts what
``write`` is given before it enters the same queue; everything else is
shared. The stream caches the transport's ``recv``, ``recv_into`` and
``send`` (the socket's own bound methods on a plain stream, so the hot paths
call the socket directly) and keeps the top TLS transport in ``_tls``, which
the read and write paths test. A plain stream holds no transport object (an
idle connection costs no more for the seam): a :class:`PlainTransport` wraps
the socket when the first TLS transport is stacked on it. The handshake is
an ordinary loop over the stream's ``read``/``write`` futures (at that point
still going through the transport below), so it can be cancelled and timed
out like any other wait.

The two halves live in their own modules, ``_reading.py`` and
``_writing.py`` (mixins of :class:`Stream`, which declares every slot);
this module holds what concerns the whole stream: identity, closing, the
TLS upgrade and hand-overs from other threads.

Closing. ``close()`` is idempotent. Queued bytes (and a TLS close_notify) are
still flushed in the background, up to ``close_timeout`` seconds, before the
socket is closed; ``wait_closed()`` resolves when it is. ``abort()`` closes
at once and drops what is queued.
"""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import Callable, Generator
from typing import Any

from .._exceptions import Cancelled, ConnectTimeout, StreamClosed
from .._future import Future, copy_outcome, done_future, failed_future
from .._loop import Loop, TimerHandle
from .._task import Task
from ._errors import describe
from ._reading import DEFAULT_LIMIT, DEFAULT_READ_AHEAD, ReadSide
from ._transport import PlainTransport, TLSTransport, Transport, make_context
from ._writing import DEFAULT_HIGH_WATER, WriteSide

__all__ = ["Stream", "DEFAULT_HIGH_WATER", "DEFAULT_LIMIT", "handshake"]

#: Seconds ``close()`` keeps flushing queued bytes before it gives up.
DEFAULT_CLOSE_TIMEOUT = 30.0
_CHUNK = 64 * 1024


class Stream(ReadSide, WriteSide):
    """A bidirectional byte stream over a connected socket (TCP, Unix, TLS).

    Streams are made by :func:`open_connection`, :func:`open_unix_connection`
    and servers; each belongs to the loop that made it. Methods called from
    another thread while that loop runs are handed over to it (their futures
    can be waited on with ``.result()``).

    One read may be pending at a time. Every wait is a future: in a task,
    ``data = yield stream.read()``; in ``async def``, ``await``; from plain
    code, ``.result()``.

    Attributes:
        timeout: seconds a read may wait for a byte, or a write for the peer
            to take any queued byte, before it fails with :class:`ReadTimeout`
            / :class:`WriteTimeout` (None: no limit).
        close_timeout: seconds ``close()`` keeps flushing queued bytes.
        read_ahead: how many bytes that arrive while no read waits are
            read into the buffer before the stream stops watching the
            socket (TCP flow control then pauses the peer). 0: none; the
            bytes stay in the kernel until a read asks for them, and go
            from there straight to that read (a protocol that always knows
            when it wants bytes, such as an HTTP/1.1 client, saves a copy
            and a buffer this way).
    """

    __slots__ = (
        "_sock",
        "_fd",
        "_loop",
        "_recv",
        "_recv_into",
        "_send",
        "_buffer",
        "_eof",
        "_read_error",
        "_waiter",
        "_kind",
        "_arg",
        "_sep",
        "_into",
        "_searched",
        "_reading",
        "read_ahead",
        "_read_timer",
        "_read_deadline",
        "_wbuf",
        "_writing",
        "_write_error",
        "_drain_waiter",
        "_flush_waiters",
        "_write_timer",
        "_write_progress",
        "_high_water",
        "_eof_pending",
        "_eof_sent",
        "_closing",
        "_closed",
        "_closed_future",
        "_close_timer",
        "_tls",
        "_host",
        "_port",
        "_peername",
        "_sockname",
        "timeout",
        "close_timeout",
        "__weakref__",
    )

    def __init__(
        self,
        sock: socket.socket,
        *,
        loop: Loop,
        host: object = None,
        port: int | None = None,
        peername: Any = None,
        high_water: int = DEFAULT_HIGH_WATER,
        read_ahead: int = DEFAULT_READ_AHEAD,
        timeout: float | None = None,
    ) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._fd = sock.fileno()
        self._loop = loop
        # The transport's calls, cached; until start_tls, the transport is the socket itself.
        self._recv: Callable[[int], bytes] = sock.recv
        self._recv_into: Callable[[memoryview], int] = sock.recv_into
        self._send: Callable[[Any], int] = sock.send
        self._tls: TLSTransport | None = None  # the transport when it is TLS (what the hot paths test)
        self._buffer = bytearray()
        self._eof = False
        self._read_error: BaseException | None = None
        self._waiter: Future[Any] | None = None
        self._kind = 0  # _reading._ANY
        self._arg = 0
        self._sep = b""
        self._into: memoryview | None = None  # the caller's buffer of a parked read_into()
        self._searched = 0
        self._reading = False
        if read_ahead < 0:
            raise ValueError(f"read_ahead must be >= 0, got {read_ahead!r}")
        self.read_ahead = read_ahead
        self._read_timer: TimerHandle | None = None
        self._read_deadline = 0.0  # loop time the parked read fails at (see _arm_read_deadline)
        self._wbuf = bytearray()
        self._writing = False
        self._write_error: BaseException | None = None
        self._drain_waiter: Future[None] | None = None
        self._flush_waiters: list[Future[None]] | None = None
        self._write_timer: TimerHandle | None = None
        self._write_progress = 0.0  # loop time the peer last took queued bytes, while a write waits
        self._high_water = high_water
        self._eof_pending = False
        self._eof_sent = False
        self._closing = False
        self._closed = False
        self._closed_future: Future[None] | None = None
        self._close_timer: TimerHandle | None = None
        self._host = host
        self._port = port
        self._peername = peername
        self._sockname: Any = None
        self.timeout = timeout
        self.close_timeout = DEFAULT_CLOSE_TIMEOUT

    def __repr__(self) -> str:
        state = "closed" if self._closed else "closing" if self._closing else "open"
        tls = self._tls
        kind = "" if tls is None else "TLS " if tls.lower.ssl_object is None else "TLS-in-TLS "
        return f"<tasklets.Stream {kind}{state} fd={self._fd} peer={self._peername!r}>"

    # -- identity -------------------------------------------------------------------------------

    @property
    def peername(self) -> Any:
        """The peer's address (``(host, port)`` for TCP, a path for Unix sockets)."""
        if self._peername is None and not self._closed:
            try:
                self._peername = self._sock.getpeername()
            except OSError:
                pass
        return self._peername

    @property
    def sockname(self) -> Any:
        """The local address of the socket."""
        if self._sockname is None and not self._closed:
            self._sockname = self._sock.getsockname()
        return self._sockname

    @property
    def socket(self) -> socket.socket:
        """The underlying socket (do not read or write it directly)."""
        return self._sock

    @property
    def loop(self) -> Loop:
        """The loop this stream belongs to."""
        return self._loop

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The ``ssl.SSLObject`` of a TLS stream (certificate, cipher, ALPN), else None.

        On a stream upgraded twice (TLS inside TLS), the innermost session's.
        """
        return None if self._tls is None else self._tls.ssl_object

    @property
    def alpn_protocol(self) -> str | None:
        """The ALPN protocol the TLS handshake selected, or None."""
        return None if self._tls is None else self._tls.ssl_object.selected_alpn_protocol()

    def is_closing(self) -> bool:
        """Whether ``close()`` or ``abort()`` was called (or a fatal error closed the stream)."""
        return self._closing

    @property
    def buffered(self) -> int:
        """How many received bytes wait in the buffer, not yet read."""
        return len(self._buffer)

    def at_eof(self) -> bool:
        """Whether the peer has finished sending and everything it sent has been read."""
        return self._eof and not self._buffer

    # -- closing ----------------------------------------------------------------------------------------

    def close(self) -> Future[None]:
        """Close the stream; idempotent. Queued bytes are still flushed, then the socket closes.

        A pending read fails with :class:`StreamClosed`. A TLS stream sends
        its close_notify first (it does not wait for the peer's).

        Returns:
            The future of :meth:`wait_closed`.
        """
        if self._loop.is_foreign_thread():
            return self._hand_over(self.close)
        closed = self.wait_closed()
        if self._closing:
            return closed
        self._closing = True
        self._stop_reading(StreamClosed(f"{self!r} was closed while a read waited", host=self._host, port=self._port))
        if self._tls is not None and self._write_error is None:
            try:
                self._wbuf += self._tls.close_notify()
            except OSError:
                pass
        if self._wbuf and self._write_error is None and not self._writing:
            try:  # usually the kernel takes it all (a close_notify is tiny): close now
                del self._wbuf[: self._send(self._wbuf)]
            except OSError:
                self._wbuf.clear()
        if self._wbuf and self._write_error is None:
            if not self._writing:
                self._loop.watch_writer(self._fd, self._on_writable)
                self._writing = True
            self._close_timer = self._loop.call_later(self.close_timeout, self.abort)
        else:
            self._finish_close()
        return closed

    def abort(self) -> None:
        """Close the socket at once, dropping queued bytes; pending waits fail with :class:`StreamClosed`."""
        if self._loop.is_foreign_thread():
            self._hand_over(self.abort)
            return
        if self._closed:
            return
        self._closing = True
        error = StreamClosed(f"{self!r} was aborted", host=self._host, port=self._port)
        self._stop_reading(error)
        self._wbuf.clear()
        if self._write_error is None:
            self._write_error = error
        self._fail_write_waiters(error)
        self._finish_close(graceful=False)

    def wait_closed(self) -> Future[None]:
        """A future resolved once the socket is closed."""
        closed = self._closed_future
        if closed is None:
            closed = self._closed_future = done_future(None) if self._closed else Future()
        return closed

    def _stop_reading(self, error: BaseException) -> None:
        if self._reading:
            self._reading = False
            self._loop.unwatch_reader(self._fd)
        if self._read_error is None:
            self._read_error = error
        if self._waiter is not None:
            self._resolve_waiter(failed_future(error))

    def _finish_close(self, graceful: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing = True
        if self._reading:
            self._reading = False
            self._loop.unwatch_reader(self._fd)
        if self._writing:
            self._writing = False
            self._loop.unwatch_writer(self._fd)
        for timer in (self._read_timer, self._write_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._read_timer = self._write_timer = self._close_timer = None
        if self._waiter is not None:
            self._resolve_waiter(failed_future(StreamClosed(f"{self!r} closed", host=self._host, port=self._port)))
        self._fail_write_waiters(
            StreamClosed(f"{self!r} closed before its queue drained", host=self._host, port=self._port)
        )
        if graceful and not self._eof:
            self._discard_unread()
        self._sock.close()
        closed = self._closed_future
        if closed is not None and not closed.done():
            closed.set_result(None)

    def _discard_unread(self) -> None:
        # Closing a TCP socket with unread bytes in its receive queue sends a
        # reset instead of a FIN, and a reset makes the peer's kernel drop what
        # *it* has not read yet: the last bytes we sent could be lost. Unread
        # bytes are common on TLS streams (session tickets the application
        # never asked for), so swallow what is there before closing.
        recv = self._sock.recv
        for _ in range(16):
            try:
                if not recv(_CHUNK):
                    return
            except OSError:
                return

    # -- context managers ----------------------------------------------------------------------------------

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    # -- TLS --------------------------------------------------------------------------------------------------

    def start_tls(
        self,
        ssl: Any,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> Future[Stream]:
        """Upgrade this stream to TLS in place; a future of the stream once the handshake is done.

        No read may be pending. Bytes already queued for writing go out
        before the handshake. A handshake that fails, times out or is
        cancelled aborts the stream. A stream that is TLS already gets a
        second session inside the first (TLS inside TLS: a tunnel through a
        TLS proxy), whose records travel as the outer session's data.

        Args:
            ssl: an ``ssl.SSLContext``, or True for ``ssl.create_default_context()``.
            server_side: act as the TLS server.
            server_hostname: the name to verify the certificate against and
                send as SNI (client side; defaults to the host connected to).
            timeout: seconds the handshake may take (None: no limit).

        Raises:
            RuntimeError: a read waits on the stream (raised at once; the
                stream is left as it was).
            TLSHandshakeError: the handshake failed (the future fails with it).
            TLSCertificateError: the peer's certificate did not verify.
            ConnectTimeout: the handshake took longer than ``timeout``.
        """
        if self._loop.is_foreign_thread():
            return self._hand_over(
                functools.partial(
                    self.start_tls, ssl, server_side=server_side, server_hostname=server_hostname, timeout=timeout
                )
            )
        return start_tls(self, ssl, server_side=server_side, server_hostname=server_hostname, timeout=timeout)

    def _install(self, transport: TLSTransport) -> None:
        """Read and write through ``transport`` from now on (its handshake is done)."""
        self._tls = transport
        self._recv = transport.recv
        self._recv_into = transport.recv_into
        self._send = transport.send

    def _queue_records(self, records: bytes) -> None:
        """Send wire bytes a transport made while reading (a TLS 1.3 KeyUpdate or post-handshake auth answer).

        They skip ``write``: they are encrypted already, and they go past
        the high-water mark, since dropping them would break the session.
        """
        if not records or self._closing or self._write_error is not None:
            return
        wbuf = self._wbuf
        if not wbuf:
            try:
                sent = self._send(records)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self._writing_failed(exc)
                return
            if sent == len(records):
                return
            wbuf += memoryview(records)[sent:]
            if not self._writing:
                self._loop.watch_writer(self._fd, self._on_writable)
                self._writing = True
        else:
            wbuf += records

    # -- threads ---------------------------------------------------------------------------------------------

    def _hand_over(self, method: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``method(*args)`` on the stream's loop; a future of its outcome."""
        result: Future[Any] = Future()

        def run() -> None:
            try:
                outcome = method(*args)
            except BaseException as exc:
                result.set_exception(exc)
                return
            if isinstance(outcome, Future):
                outcome.add_done_callback(lambda f: copy_outcome(f, result))
            else:
                result.set_result(outcome)

        self._loop.call_soon_threadsafe(run)
        return result


# -- the TLS upgrade -------------------------------------------------------------------------------


def check_can_start_tls(stream: Stream) -> None:
    """Raise RuntimeError if ``stream`` cannot start TLS now: a read waits on it."""
    waiter = stream._waiter
    if waiter is not None and not waiter.done():
        raise RuntimeError(f"cannot start TLS on {stream!r} while a read waits on it")


def handshake(
    stream: Stream,
    context: ssl.SSLContext,
    *,
    server_side: bool,
    server_hostname: str | None,
) -> Generator[Any, Any, Stream]:
    """Run the TLS handshake over ``stream`` and install its transport (``yield from`` it in a task).

    The handshake's records travel through the stream as it is (plain, or
    TLS already: then they are the outer session's data). On failure the
    exception is a :class:`TLSHandshakeError` (or
    :class:`TLSCertificateError`); the caller closes the stream.
    """
    check_can_start_tls(stream)
    lower: Transport = stream._tls or PlainTransport(stream._sock)
    transport = TLSTransport(
        lower, context, server_side=server_side, server_hostname=server_hostname, emit=stream._queue_records
    )
    buf = stream._buffer
    if buf:  # ciphertext read ahead before the upgrade
        transport.feed(bytes(buf))
        buf.clear()
    yield from transport.handshake(stream.read, stream.write, stream._host, stream._port)
    if buf:  # application data that came right behind the last handshake flight
        transport.feed(bytes(buf))
        buf.clear()
    stream._install(transport)
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
    Misuse (a read waiting) raises at once and costs nothing: not a byte has
    gone out.
    """
    check_can_start_tls(stream)
    context = make_context(ssl_arg, server_side=server_side)
    host, port = stream._host, stream._port
    if server_hostname is None and not server_side and isinstance(host, str):
        server_hostname = host
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
                    f"TLS handshake with {describe(host, port)} took longer than {timeout} s", host=host, port=port
                ) from None
            raise
        except BaseException:
            stream.abort()
            raise

    task: Task[Stream] = Task(run(), loop=loop, name=f"start_tls {describe(host, port)}")

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
