"""The writing half of :class:`~tasklets.Stream` (see ``_stream.py`` for the theory of operation).

A mixin: ``Stream`` declares the slots; the methods here own the send queue
(``_wbuf``), its high-water mark and the waiters on it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._context import thread_context
from .._exceptions import StreamClosed, StreamError, WriteBufferFull, WriteTimeout
from .._future import Future, done_future, failed_future
from .._loop import Loop
from ._errors import translate_stream_error

__all__ = ["WriteSide", "DEFAULT_HIGH_WATER"]

#: Default high-water mark of the write queue, in bytes.
DEFAULT_HIGH_WATER = 64 * 1024

#: The future of every write that needed no waiting. It is done, so sharing it
#: is safe: it cannot be cancelled or completed again, and callbacks run at once.
_WRITTEN = done_future(None)


class WriteSide:
    """``write``, ``drain``, ``write_eof`` and the send queue behind them."""

    if not TYPE_CHECKING:  # empty slots keep Stream dict-free; mypy would reject assigning Stream's slots here
        __slots__ = ()
    _hand_over: Callable[..., Future[Any]]
    _finish_close: Any
    _loop: Loop
    _send: Any
    _sock: socket.socket
    _wbuf: bytearray
    _writing: bool
    _write_error: BaseException | None
    _drain_waiter: Future[None] | None
    _flush_waiters: list[Future[None]] | None
    _write_timer: Any
    _write_progress: float
    _high_water: int
    _eof_pending: bool
    _eof_sent: bool
    _closing: bool
    _tls: Any
    _fd: int
    _host: Any
    _port: int | None
    _peername: Any
    timeout: float | None

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
        # This thread's running loop first (an attribute read): is_foreign_thread() is a call,
        # and this runs for every message.
        if self._loop is not thread_context.loop and self._loop.is_foreign_thread():
            return self._hand_over(self.write, data)
        if self._closing or self._eof_pending:
            raise StreamClosed(
                f"{self!r} is {'closed' if self._closing else 'shut down for writing'}; cannot write",
                host=self._host,
                port=self._port,
            )
        if self._write_error is not None:
            return failed_future(self._write_error)
        if not data:
            return _WRITTEN
        wbuf = self._wbuf
        if len(wbuf) > self._high_water:  # refused before TLS encrypts: refused bytes must not enter the session
            raise WriteBufferFull(
                f"{self!r} has {len(wbuf)} bytes queued, above its high-water mark of {self._high_water}: "
                "wait for the future of the previous write() before writing more",
                host=self._host,
                port=self._port,
            )
        if self._tls is not None:
            data = self._tls.encrypt(data)
        if not wbuf:
            try:
                sent = self._send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                return failed_future(self._writing_failed(exc))
            if sent == len(data):
                return _WRITTEN
            wbuf += memoryview(data)[sent:]
            self._loop.watch_writer(self._fd, self._on_writable)
            self._writing = True
        else:
            wbuf += data
        if len(wbuf) <= self._high_water:
            return _WRITTEN
        return self._drain_future()

    def writelines(self, lines: list[bytes]) -> Future[None]:
        """Write several byte strings as one (one system call)."""
        return self.write(b"".join(lines))

    def drain(self) -> Future[None]:
        """A future resolved once every queued byte has been handed to the kernel.

        It fails with :class:`WriteTimeout` when the peer takes none of the
        queued bytes for ``timeout`` seconds.
        """
        if self._loop is not thread_context.loop and self._loop.is_foreign_thread():
            return self._hand_over(self.drain)
        if self._write_error is not None:
            return failed_future(self._write_error)
        if not self._wbuf:
            return _WRITTEN
        self._arm_write_timer()
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
        if self._loop is not thread_context.loop and self._loop.is_foreign_thread():
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
        if waiter is None or waiter.done():
            self._arm_write_timer()
            waiter = self._drain_waiter = Future()
            if self.timeout is not None:
                waiter.add_done_callback(self._drain_waiter_done)
        return waiter

    def _arm_write_timer(self) -> None:
        """Start the write timeout for a new wait on the queue; one timer serves ``write()`` and ``drain()``.

        Called before the new wait is registered: when no other wait is
        pending, the count starts again now, even if the timer of a wait
        cancelled earlier is still armed.
        """
        if self.timeout is None:
            return
        if self._write_timer is None:
            self._write_progress = self._loop.time()
            self._write_timer = self._loop.call_later(self.timeout, self._write_timed_out)
        elif not self._anyone_waits_on_queue():
            self._write_progress = self._loop.time()

    def _disarm_write_timer(self) -> None:
        """Stop the write timeout once nothing waits on the queue any more."""
        if self._write_timer is not None and not self._anyone_waits_on_queue():
            self._write_timer.cancel()
            self._write_timer = None

    def _anyone_waits_on_queue(self) -> bool:
        """Whether a drain() or a write() future still waits for the queue (no list built: asked per write wait)."""
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            return True
        return any(not flush.done() for flush in self._flush_waiters or ())

    def _waiting_on_queue(self) -> list[Future[None]]:
        waiter = self._drain_waiter
        waiting = [waiter] if waiter is not None and not waiter.done() else []
        waiting.extend(flush for flush in self._flush_waiters or () if not flush.done())
        return waiting

    def _drain_waiter_done(self, waiter: Future[Any]) -> None:
        if waiter.cancelled() and self._drain_waiter is waiter:
            self._drain_waiter = None
            self._disarm_write_timer()

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
        if self._write_timer is not None and sent:
            self._write_progress = self._loop.time()  # the peer is reading: the write timeout starts again
        if len(wbuf) <= self._high_water:
            waiter = self._drain_waiter
            if waiter is not None:
                self._drain_waiter = None
                if not waiter.done():
                    waiter.set_result(None)
                self._disarm_write_timer()
        if not wbuf:
            self._loop.unwatch_writer(self._fd)
            self._writing = False
            waiters = self._flush_waiters
            if waiters:
                self._flush_waiters = None
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
                self._disarm_write_timer()
            if self._eof_pending:
                self._shutdown_write()
            if self._closing:
                self._finish_close()

    def _write_timed_out(self) -> None:
        self._write_timer = None
        waiting = self._waiting_on_queue()
        if not waiting or self.timeout is None:  # nothing waits, or the timeout was turned off since
            return
        # The timeout is between bytes, as for reads: a large queue that the
        # peer keeps taking may take longer than ``timeout`` to drain.
        # Compared as a deadline, the sum the timer was armed with: ``now - progress < timeout``
        # can hold at the very deadline (0.7 - 0.3 < 0.4 in floating point), re-arming the timer
        # for the same instant forever on a clock that does not move on its own (a virtual one).
        deadline = self._write_progress + self.timeout
        if self._loop.time() < deadline:
            self._write_timer = self._loop.call_at(deadline, self._write_timed_out)
            return
        self._drain_waiter = self._flush_waiters = None
        error = WriteTimeout(
            f"{self._peername!r} read none of {len(self._wbuf)} queued bytes for {self.timeout} s",
            host=self._host,
            port=self._port,
        )
        for waiter in waiting:
            waiter.set_exception(error)

    def _writing_failed(self, exc: OSError) -> BaseException:
        error = translate_stream_error(exc, self._host, self._port)
        self._write_error = error
        self._wbuf.clear()
        if self._writing:
            self._writing = False
            self._loop.unwatch_writer(self._fd)
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
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        waiters = self._flush_waiters
        self._flush_waiters = None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_exception(error)
