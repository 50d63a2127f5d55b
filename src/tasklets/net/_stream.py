"""``Stream``: a connected socket read and written through futures.

Theory of operation
-------------------
A stream belongs to one loop and is driven by readiness callbacks registered
with the loop's public ``add_reader``/``add_writer``; nothing here lives in
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
is paused by TCP flow control) until a read needs more. A waiter whose task
was cancelled is dropped lazily: its data stays in the buffer.

Writing. ``write`` calls ``send`` at once when nothing is queued; only the
bytes the kernel did not take are queued (one ``bytearray``, whose deletes at
the front are amortised O(1)) and the writer is registered until the queue is
empty. The future returned resolves when the queue is at or below
``high_water``: a shared, already-done future in the common case, so a fast
write allocates nothing. Back-pressure is enforced, not advised: ``write``
called while the queue is above ``high_water`` (so the caller did not wait
for the previous future) raises :class:`WriteBufferFull`. The queue is thus
bounded by ``high_water`` plus one write.

TLS. A stream upgraded with ``start_tls`` swaps its raw ``recv`` for the TLS
layer's (``_tls.py``), which decrypts, and encrypts what ``write`` is given
before it enters the same queue; everything else is shared.

Closing. ``close()`` is idempotent. Queued bytes (and a TLS close_notify) are
still flushed in the background, up to ``close_timeout`` seconds, before the
socket is closed; ``wait_closed()`` resolves when it is. ``abort()`` closes
at once and drops what is queued.
"""

from __future__ import annotations

import functools
import logging
import socket
from collections.abc import Callable, Iterator
from concurrent.futures._base import FINISHED, PENDING
from typing import Any

from .._exceptions import (
    IncompleteReadError,
    InvalidStateError,
    LimitOverrunError,
    ReadTimeout,
    StreamClosed,
    StreamError,
    WriteBufferFull,
    WriteTimeout,
)
from .._future import Future
from .._loop import Loop, TimerHandle, _get_ident
from ._errors import translate_stream_error

__all__ = ["Stream", "DEFAULT_HIGH_WATER", "DEFAULT_LIMIT"]

logger = logging.getLogger("tasklets")

#: Default high-water mark of the write queue, in bytes.
DEFAULT_HIGH_WATER = 64 * 1024
#: Default ``limit`` of ``read_until``.
DEFAULT_LIMIT = 64 * 1024
#: Bytes read ahead (with no read waiting) before the stream stops reading.
DEFAULT_READ_AHEAD = 256 * 1024
#: Seconds ``close()`` keeps flushing queued bytes before it gives up.
DEFAULT_CLOSE_TIMEOUT = 30.0

_CHUNK = 64 * 1024

# What the parked waiter waits for.
_ANY, _EXACTLY, _UNTIL = 0, 1, 2


def _done(value: Any) -> Future[Any]:
    """A future born resolved; nobody else can see it yet, so no lock is needed."""
    future: Future[Any] = Future()
    future._result = value
    future._state = FINISHED
    return future


def _failed(exc: BaseException) -> Future[Any]:
    future: Future[Any] = Future()
    future._exception = exc
    future._state = FINISHED
    return future


#: The future of every write that needed no waiting. It is done, so sharing it
#: is safe: it cannot be cancelled or completed again, and callbacks run at once.
_WRITTEN = _done(None)


class Stream:
    """A bidirectional byte stream over a connected socket (TCP, Unix, TLS).

    Streams are made by :func:`open_connection`, :func:`open_unix_connection`
    and servers; each belongs to the loop that made it. Methods called from
    another thread are handed over to that loop.

    One read may be pending at a time. Every wait is a future: in a task,
    ``data = yield stream.read()``; in ``async def``, ``await``; from plain
    code, ``.result()``.

    Attributes:
        timeout: seconds a read or a write may wait before it fails with
            :class:`ReadTimeout` / :class:`WriteTimeout` (None: no limit).
        close_timeout: seconds ``close()`` keeps flushing queued bytes.
    """

    __slots__ = (
        "_sock",
        "_fd",
        "_loop",
        "_recv",
        "_send",
        "_buffer",
        "_eof",
        "_read_error",
        "_waiter",
        "_kind",
        "_arg",
        "_sep",
        "_searched",
        "_reading",
        "_read_ahead",
        "_read_timer",
        "_wbuf",
        "_writing",
        "_write_error",
        "_drain_waiter",
        "_flush_waiters",
        "_write_timer",
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
        self._recv: Callable[[int], bytes] = sock.recv
        self._send = sock.send
        self._buffer = bytearray()
        self._eof = False
        self._read_error: BaseException | None = None
        self._waiter: Future[Any] | None = None
        self._kind = _ANY
        self._arg = 0
        self._sep = b""
        self._searched = 0
        self._reading = False
        self._read_ahead = read_ahead
        self._read_timer: TimerHandle | None = None
        self._wbuf = bytearray()
        self._writing = False
        self._write_error: BaseException | None = None
        self._drain_waiter: Future[None] | None = None
        self._flush_waiters: list[Future[None]] | None = None
        self._write_timer: TimerHandle | None = None
        self._high_water = high_water
        self._eof_pending = False
        self._eof_sent = False
        self._closing = False
        self._closed = False
        self._closed_future: Future[None] | None = None
        self._close_timer: TimerHandle | None = None
        self._tls: Any = None
        self._host = host
        self._port = port
        self._peername = peername
        self._sockname: Any = None
        self.timeout = timeout
        self.close_timeout = DEFAULT_CLOSE_TIMEOUT

    def __repr__(self) -> str:
        state = "closed" if self._closed else "closing" if self._closing else "open"
        kind = "TLS " if self._tls is not None else ""
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
    def ssl_object(self) -> Any:
        """The ``ssl.SSLObject`` of a TLS stream (certificate, cipher, ALPN), else None."""
        return None if self._tls is None else self._tls.sslobj

    @property
    def alpn_protocol(self) -> str | None:
        """The ALPN protocol the TLS handshake selected, or None."""
        return None if self._tls is None else self._tls.sslobj.selected_alpn_protocol()

    def is_closing(self) -> bool:
        """Whether ``close()`` or ``abort()`` was called (or a fatal error closed the stream)."""
        return self._closing

    def at_eof(self) -> bool:
        """Whether the peer has finished sending and everything it sent has been read."""
        return self._eof and not self._buffer

    # -- reading --------------------------------------------------------------------------------

    def read(self, max_bytes: int = 65536) -> Future[bytes]:
        """Read up to ``max_bytes`` bytes, as soon as at least one is available.

        Args:
            max_bytes: the most bytes to return (positive).

        Returns:
            A future of the bytes read: ``b""`` once the peer has closed its
            side and the buffer is empty. It is already done when the data
            was buffered or arrived at once.

        Raises:
            StreamClosed: the stream was closed (raised at once).
            RuntimeError: another read is still pending (raised at once).
        """
        if self._loop._thread_id != _get_ident():
            return self._hand_over(self.read, max_bytes)
        buf = self._buffer
        if buf:
            if len(buf) <= max_bytes:
                data = bytes(buf)
                buf.clear()
            else:
                data = bytes(buf[:max_bytes])
                del buf[:max_bytes]
            return _done(data)
        if self._eof:
            return _done(b"")
        if (
            self._reading
            and self._waiter is None
            and self._tls is None
            and self._read_error is None
            and self.timeout is None
            and max_bytes > 0
        ):
            # The hot path of a stream being read: the reader is registered, so
            # wait for its callback instead of paying for a recv that fails.
            waiter: Future[bytes] = Future()
            self._waiter = waiter
            self._kind = _ANY
            self._arg = max_bytes
            return waiter
        self._check_can_read()
        if self._read_error is not None:
            return _failed(self._read_error)
        if max_bytes <= 0:
            raise ValueError(f"read() needs a positive max_bytes, got {max_bytes!r}")
        if not self._reading or self._tls is not None:
            # Nothing registered yet (or TLS, whose plaintext may be pending
            # inside the SSL object where readiness cannot see it): try now.
            try:
                data = self._recv(max_bytes)
            except BlockingIOError:
                pass
            except OSError as exc:
                return _failed(self._reading_failed(exc))
            else:
                if not data:
                    self._set_eof()
                return _done(data)
        return self._park(_ANY, max_bytes)

    def read_exactly(self, n: int) -> Future[bytes]:
        """Read exactly ``n`` bytes.

        Returns:
            A future of ``n`` bytes. It fails with :class:`IncompleteReadError`
            (carrying the ``partial`` bytes, which are consumed) when the peer
            closes its side first.
        """
        if self._loop._thread_id != _get_ident():
            return self._hand_over(self.read_exactly, n)
        if n < 0:
            raise ValueError(f"read_exactly() needs n >= 0, got {n!r}")
        buf = self._buffer
        if len(buf) >= n:
            data = bytes(buf[:n])
            del buf[:n]
            return _done(data)
        self._check_can_read()
        self._pull(n)
        self._kind, self._arg = _EXACTLY, n
        return self._settle_or_park()

    def read_until(self, separator: bytes = b"\n", limit: int = DEFAULT_LIMIT) -> Future[bytes]:
        """Read up to and including ``separator``.

        Args:
            separator: the bytes that end what is read (non-empty).
            limit: the most bytes the result (separator included) may have.

        Returns:
            A future of the bytes up to and including the separator. It fails
            with :class:`LimitOverrunError` when ``limit`` bytes arrived
            without a separator (they stay buffered), and with
            :class:`IncompleteReadError` when the peer closes its side first.
        """
        if self._loop._thread_id != _get_ident():
            return self._hand_over(self.read_until, separator, limit)
        if not separator:
            raise ValueError("read_until() needs a non-empty separator")
        if self._waiter is not None and self._waiter._state is PENDING:
            raise RuntimeError(f"another read is already waiting on {self!r}; wait for it first")
        self._sep = bytes(separator)
        self._searched = 0
        self._kind, self._arg = _UNTIL, limit
        if self._buffer:
            outcome = self._settle()
            if outcome is not None:
                return outcome
        self._check_can_read()
        self._pull(limit + 1)
        self._kind, self._arg = _UNTIL, limit
        return self._settle_or_park()

    def chunks(self, max_bytes: int = 65536) -> Iterator[Future[bytes]]:
        """An ordinary generator of read futures, one per chunk, ending at end of stream.

        ::

            for wait_for_chunk in stream.chunks():
                chunk = yield wait_for_chunk   # b"" for the last one, at EOF

        Wait for each future before asking for the next one.
        """
        while True:
            future = self.read(max_bytes)
            yield future
            if not future.done():
                raise RuntimeError(
                    f"the chunk future {future!r} was not awaited before the next one was asked for; "
                    "write 'chunk = yield future' in the loop body"
                )
            if future._state is FINISHED and future._exception is None and not future._result:
                return

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> bytes:
        data = await self.read()
        if not data:
            raise StopAsyncIteration
        return data

    # -- reading: internals ------------------------------------------------------------------------

    def _check_can_read(self) -> None:
        if self._closing:
            raise StreamClosed(f"{self!r} is closed; cannot read", host=self._host, port=self._port)
        waiter = self._waiter
        if waiter is not None:
            if waiter._state is PENDING:
                raise RuntimeError(f"another read is already waiting on {self!r}; wait for it first")
            self._drop_waiter()

    def _pull(self, target: int) -> None:
        """Read what is available now into the buffer, until it holds ``target`` bytes."""
        buf = self._buffer
        recv = self._recv
        while len(buf) < target and not self._eof and self._read_error is None:
            try:
                data = recv(max(_CHUNK, target - len(buf)))
            except BlockingIOError:
                return
            except OSError as exc:
                self._reading_failed(exc)
                return
            if data:
                buf += data
            else:
                self._set_eof()

    def _settle(self) -> Future[bytes] | None:
        """A done future if the current request (``_kind``/``_arg``) can be settled now, else None."""
        buf = self._buffer
        kind = self._kind
        if kind == _EXACTLY:
            n = self._arg
            if len(buf) >= n:
                data = bytes(buf[:n])
                del buf[:n]
                return _done(data)
            if self._read_error is not None:
                return _failed(self._read_error)
            if self._eof:
                partial = bytes(buf)
                buf.clear()
                return _failed(IncompleteReadError(partial, n, host=self._host, port=self._port))
            return None
        if kind == _UNTIL:
            sep = self._sep
            limit = self._arg
            start = max(0, self._searched - len(sep) + 1)
            index = buf.find(sep, start)
            if index >= 0 and index + len(sep) <= limit:
                end = index + len(sep)
                data = bytes(buf[:end])
                del buf[:end]
                return _done(data)
            if index >= 0 or len(buf) >= limit:
                return _failed(
                    LimitOverrunError(
                        f"no separator {sep!r} within the limit of {limit} bytes",
                        min(len(buf), limit),
                        host=self._host,
                        port=self._port,
                    )
                )
            self._searched = len(buf)
            if self._read_error is not None:
                return _failed(self._read_error)
            if self._eof:
                partial = bytes(buf)
                buf.clear()
                return _failed(IncompleteReadError(partial, None, host=self._host, port=self._port))
            return None
        # _ANY
        if buf:
            n = self._arg
            if len(buf) <= n:
                data = bytes(buf)
                buf.clear()
            else:
                data = bytes(buf[:n])
                del buf[:n]
            return _done(data)
        if self._read_error is not None:
            return _failed(self._read_error)
        if self._eof:
            return _done(b"")
        return None

    def _settle_or_park(self) -> Future[bytes]:
        outcome = self._settle()
        if outcome is not None:
            return outcome
        return self._park(self._kind, self._arg)

    def _park(self, kind: int, arg: int) -> Future[bytes]:
        if self._read_error is not None:
            return _failed(self._read_error)
        waiter: Future[bytes] = Future()
        self._waiter = waiter
        self._kind = kind
        self._arg = arg
        if not self._reading:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True
        if self.timeout is not None:
            self._read_timer = self._loop.call_later(self.timeout, self._read_timed_out, waiter)
        return waiter

    def _on_readable(self) -> None:
        waiter = self._waiter
        if waiter is not None and self._kind == _ANY and waiter._state is PENDING and not self._buffer:
            # The hot path: hand the bytes straight to the waiting read.
            try:
                data = self._recv(self._arg)
            except BlockingIOError:
                return
            except OSError as exc:
                self._reading_failed(exc)
                return
            if not data:
                self._set_eof()
            self._waiter = None
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None
            if not waiter._try_set_result(data):  # cancelled from another thread just now: keep the bytes
                self._buffer[:0] = data
            return
        if waiter is not None and waiter._state is not PENDING:
            self._drop_waiter()
            waiter = None
        if waiter is None:
            self._read_ahead_now()
            return
        self._pull(self._arg + 1 if self._kind == _UNTIL else self._arg)
        outcome = self._settle()
        if outcome is not None:
            self._resolve_waiter(outcome)

    def _read_ahead_now(self) -> None:
        buf = self._buffer
        try:
            data = self._recv(_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            self._reading_failed(exc)
            return
        if data:
            buf += data
            if self._tls is not None:
                self._pull(self._read_ahead)  # drain what the TLS layer holds: readiness cannot see it
            if len(buf) >= self._read_ahead and self._reading:
                self._loop.remove_reader(self._fd)  # pause; the next read that must wait resumes
                self._reading = False
        else:
            self._set_eof()

    def _resolve_waiter(self, outcome: Future[Any]) -> None:
        waiter = self._waiter
        self._waiter = None
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        if waiter is None or waiter._state is not PENDING:
            return
        try:
            if outcome._exception is not None:
                waiter.set_exception(outcome._exception)
            else:
                waiter.set_result(outcome._result)
        except InvalidStateError:
            if outcome._exception is None and outcome._result:
                self._buffer[:0] = outcome._result

    def _drop_waiter(self) -> None:
        self._waiter = None
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self, waiter: Future[Any]) -> None:
        self._read_timer = None
        if self._waiter is waiter:
            self._waiter = None
            if waiter._state is PENDING:
                waiter.set_exception(
                    ReadTimeout(
                        f"no data from {self._peername!r} within {self.timeout} s", host=self._host, port=self._port
                    )
                )

    def _set_eof(self) -> None:
        self._eof = True
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def _reading_failed(self, exc: OSError) -> BaseException:
        error = translate_stream_error(exc, self._host, self._port)
        self._read_error = error
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)
        waiter = self._waiter
        if waiter is not None:
            self._resolve_waiter(_failed(error))
        return error

    # -- writing --------------------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> Future[None]:
        """Send ``data``; the future resolves once the send queue is at or below its high-water mark.

        The bytes the kernel takes at once are sent at once; the rest is
        queued and sent as the peer reads. The future returned is already
        done unless the queue is now above the high-water mark, and then it
        resolves when it has drained back under it. A send error fails the
        future (and every later write).

        Raises:
            WriteBufferFull: the queue is above its high-water mark, i.e. the
                future of an earlier write has not resolved yet: wait for it.
            StreamClosed: the stream was closed.
        """
        if self._loop._thread_id != _get_ident():
            return self._hand_over(self.write, data)
        if self._closing or self._eof_pending:
            raise StreamClosed(
                f"{self!r} is {'closed' if self._closing else 'shut down for writing'}; cannot write",
                host=self._host,
                port=self._port,
            )
        if self._write_error is not None:
            return _failed(self._write_error)
        if not data:
            return _WRITTEN
        if self._tls is not None:
            data = self._tls.encrypt(data)
        wbuf = self._wbuf
        if not wbuf:
            try:
                sent = self._send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                return _failed(self._writing_failed(exc))
            if sent == len(data):
                return _WRITTEN
            wbuf += memoryview(data)[sent:]
            self._loop.add_writer(self._fd, self._on_writable)
            self._writing = True
        elif len(wbuf) > self._high_water:
            raise WriteBufferFull(
                f"{self!r} has {len(wbuf)} bytes queued, above its high-water mark of {self._high_water}: "
                "wait for the future of the previous write() before writing more",
                host=self._host,
                port=self._port,
            )
        else:
            wbuf += data
        if len(wbuf) <= self._high_water:
            return _WRITTEN
        return self._drain_future()

    def writelines(self, lines: list[bytes]) -> Future[None]:
        """Write several byte strings as one (one system call)."""
        return self.write(b"".join(lines))

    def drain(self) -> Future[None]:
        """A future resolved once every queued byte has been handed to the kernel."""
        if self._loop._thread_id != _get_ident():
            return self._hand_over(self.drain)
        if self._write_error is not None:
            return _failed(self._write_error)
        if not self._wbuf:
            return _WRITTEN
        waiter: Future[None] = Future()
        if self._flush_waiters is None:
            self._flush_waiters = []
        self._flush_waiters.append(waiter)
        return waiter

    def write_eof(self) -> None:
        """Close the sending side (``shutdown(SHUT_WR)``) once the queue is flushed; reading goes on.

        Raises:
            StreamError: on a TLS stream, which cannot half-close.
        """
        if self._loop._thread_id != _get_ident():
            self._hand_over(self.write_eof).result()
            return
        if self._tls is not None:
            raise StreamError("a TLS stream cannot half-close; use close()", host=self._host, port=self._port)
        if self._closing or self._eof_pending:
            return
        self._eof_pending = True
        if not self._wbuf:
            self._shutdown_write()

    def _shutdown_write(self) -> None:
        if not self._eof_sent:
            self._eof_sent = True
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # already disconnected: reads will say so

    def _drain_future(self) -> Future[None]:
        waiter = self._drain_waiter
        if waiter is None or waiter._state is not PENDING:
            waiter = self._drain_waiter = Future()
            if self.timeout is not None:
                if self._write_timer is not None:
                    self._write_timer.cancel()
                self._write_timer = self._loop.call_later(self.timeout, self._write_timed_out, waiter)
        return waiter

    def _on_writable(self) -> None:
        wbuf = self._wbuf
        try:
            sent = self._send(wbuf)
        except BlockingIOError:
            return
        except OSError as exc:
            self._writing_failed(exc)
            return
        del wbuf[:sent]
        if len(wbuf) <= self._high_water:
            waiter = self._drain_waiter
            if waiter is not None:
                self._drain_waiter = None
                if self._write_timer is not None:
                    self._write_timer.cancel()
                    self._write_timer = None
                if waiter._state is PENDING:
                    waiter.set_result(None)
        if not wbuf:
            self._loop.remove_writer(self._fd)
            self._writing = False
            waiters = self._flush_waiters
            if waiters:
                self._flush_waiters = None
                for waiter in waiters:
                    if waiter._state is PENDING:
                        waiter.set_result(None)
            if self._eof_pending:
                self._shutdown_write()
            if self._closing:
                self._finish_close()

    def _write_timed_out(self, waiter: Future[Any]) -> None:
        self._write_timer = None
        if self._drain_waiter is waiter:
            self._drain_waiter = None
            if waiter._state is PENDING:
                waiter.set_exception(
                    WriteTimeout(
                        f"{self._peername!r} did not read {len(self._wbuf)} queued bytes within {self.timeout} s",
                        host=self._host,
                        port=self._port,
                    )
                )

    def _writing_failed(self, exc: OSError) -> BaseException:
        error = translate_stream_error(exc, self._host, self._port)
        self._write_error = error
        self._wbuf.clear()
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)
        self._fail_write_waiters(error)
        if self._closing:
            self._finish_close()
        return error

    def _fail_write_waiters(self, error: BaseException) -> None:
        waiter = self._drain_waiter
        self._drain_waiter = None
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        if waiter is not None and waiter._state is PENDING:
            waiter.set_exception(error)
        waiters = self._flush_waiters
        self._flush_waiters = None
        for waiter in waiters or ():
            if waiter._state is PENDING:
                waiter.set_exception(error)

    # -- closing ----------------------------------------------------------------------------------------

    def close(self) -> Future[None]:
        """Close the stream; idempotent. Queued bytes are still flushed, then the socket closes.

        A pending read fails with :class:`StreamClosed`. A TLS stream sends
        its close_notify first (it does not wait for the peer's).

        Returns:
            The future of :meth:`wait_closed`.
        """
        if self._loop._thread_id != _get_ident() and self._loop._thread_id is not None:
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
                self._loop.add_writer(self._fd, self._on_writable)
                self._writing = True
            self._close_timer = self._loop.call_later(self.close_timeout, self.abort)
        else:
            self._finish_close()
        return closed

    def abort(self) -> None:
        """Close the socket at once, dropping queued bytes; pending waits fail with :class:`StreamClosed`."""
        if self._loop._thread_id != _get_ident() and self._loop._thread_id is not None:
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
            closed = self._closed_future = _done(None) if self._closed else Future()
        return closed

    def _stop_reading(self, error: BaseException) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)
        if self._read_error is None:
            self._read_error = error
        if self._waiter is not None:
            self._resolve_waiter(_failed(error))

    def _finish_close(self, graceful: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing = True
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)
        for timer in (self._read_timer, self._write_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._read_timer = self._write_timer = self._close_timer = None
        if self._waiter is not None:
            self._resolve_waiter(_failed(StreamClosed(f"{self!r} closed", host=self._host, port=self._port)))
        self._fail_write_waiters(
            StreamClosed(f"{self!r} closed before its queue drained", host=self._host, port=self._port)
        )
        if graceful and not self._eof:
            self._discard_unread()
        self._sock.close()
        closed = self._closed_future
        if closed is not None and closed._state is PENDING:
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
        before the handshake.

        Args:
            ssl: an ``ssl.SSLContext``, or True for ``ssl.create_default_context()``.
            server_side: act as the TLS server.
            server_hostname: the name to verify the certificate against and
                send as SNI (client side; defaults to the host connected to).
            timeout: seconds the handshake may take (None: no limit).

        Raises:
            TLSHandshakeError: the handshake failed (the future fails with it).
            TLSCertificateError: the peer's certificate did not verify.
        """
        from ._tls import start_tls

        if self._loop._thread_id != _get_ident():
            return self._hand_over(
                functools.partial(
                    self.start_tls, ssl, server_side=server_side, server_hostname=server_hostname, timeout=timeout
                )
            )
        return start_tls(self, ssl, server_side=server_side, server_hostname=server_hostname, timeout=timeout)

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
                outcome.add_done_callback(lambda f: _copy(f, result))
            else:
                result.set_result(outcome)

        self._loop.call_soon_threadsafe(run)
        return result


def _copy(source: Future[Any], target: Future[Any]) -> None:
    if source.cancelled():
        target.cancel()
    elif source._exception is not None:
        target.set_exception(source._exception)
    else:
        target.set_result(source._result)

