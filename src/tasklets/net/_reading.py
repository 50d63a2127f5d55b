"""The reading half of :class:`~tasklets.Stream` (see ``_stream.py`` for the theory of operation).

A mixin: ``Stream`` declares the slots; the methods here read and write the
read-side ones (``_buffer``, ``_waiter``, ``_reading``...).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .._context import thread_context
from .._exceptions import IncompleteReadError, InvalidStateError, LimitOverrunError, ReadTimeout, StreamClosed
from .._future import Future, done_future, failed_future, read_outcome
from .._loop import Loop
from ._errors import translate_stream_error

__all__ = ["ReadSide", "DEFAULT_LIMIT", "DEFAULT_READ_AHEAD"]

#: Default ``limit`` of ``read_until``.
DEFAULT_LIMIT = 64 * 1024
#: Bytes read ahead (with no read waiting) before the stream stops reading.
DEFAULT_READ_AHEAD = 256 * 1024

_CHUNK = 64 * 1024

# Bytes read ahead (no read waiting) go from the kernel into one scratch buffer
# per thread, then onto the stream's buffer: recv() would make a 64 KiB bytes
# object only to copy it there and free it, and such large short-lived
# allocations make the C allocator trim its heap and fault it back in (with an
# HTTP response body read ahead while its head was handled, a 1 MiB GET cost
# 0.82 of the CPU time this way; the HTTP client has since turned read-ahead
# off). A read with a waiter receives into new bytes: those are handed over,
# not copied.
_scratch = threading.local()


def _scratch_view() -> memoryview:
    """This thread's scratch buffer (only the loop's thread reads its streams, so one is enough)."""
    try:
        view: memoryview = _scratch.view
    except AttributeError:
        view = _scratch.view = memoryview(bytearray(_CHUNK))
    return view

# What the parked waiter waits for.
_ANY, _EXACTLY, _UNTIL, _INTO = 0, 1, 2, 3


def _take_into(buf: bytearray, view: memoryview) -> int:
    """Move the first bytes of ``buf`` into ``view``, as many as fit; return how many."""
    count = min(len(buf), len(view))
    view[:count] = memoryview(buf)[:count]
    del buf[:count]
    return count


def _take(buf: bytearray, n: int) -> bytes:
    """Remove and return the first ``n`` bytes of ``buf`` (all of it if shorter)."""
    if len(buf) <= n:
        data = bytes(buf)
        buf.clear()
    else:
        data = bytes(buf[:n])
        del buf[:n]
    return data


class ReadSide:
    """``read``, ``read_exactly``, ``read_until``, ``chunks`` and the machinery behind them."""

    if not TYPE_CHECKING:  # empty slots keep Stream dict-free; mypy would reject assigning Stream's slots here
        __slots__ = ()
    _hand_over: Callable[..., Future[Any]]
    _loop: Loop
    _recv: Any
    _recv_into: Any
    _into: memoryview | None
    _buffer: bytearray
    _eof: bool
    _read_error: BaseException | None
    _waiter: Future[Any] | None
    _kind: int
    _arg: int
    _sep: bytes
    _searched: int
    _reading: bool
    read_ahead: int
    _read_timer: Any
    _read_deadline: float
    _closing: bool
    _tls: Any
    _fd: int
    _host: Any
    _port: int | None
    _peername: Any
    timeout: float | None

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
            ValueError: ``max_bytes`` is not positive.
        """
        # This thread's running loop first (an attribute read): is_foreign_thread() is a call,
        # and this runs for every message.
        if self._loop is not thread_context.loop and self._loop.is_foreign_thread():
            return self._hand_over(self.read, max_bytes)
        if max_bytes <= 0:
            raise ValueError(f"read() needs a positive max_bytes, got {max_bytes!r}")
        buf = self._buffer
        if buf:
            if self._waiter is not None:
                self._check_no_read_waits()  # those bytes may be a pending read_exactly()'s
            # _take(buf, max_bytes), inlined: this is the hottest line of a stream.
            if len(buf) <= max_bytes:
                data = bytes(buf)
                buf.clear()
            else:
                data = bytes(buf[:max_bytes])
                del buf[:max_bytes]
            return done_future(data)
        if self._eof:
            return done_future(b"")
        if (
            self._reading
            and self._waiter is None
            and (self._tls is None or not self._tls.buffered())
            and self._read_error is None
        ):
            # The hot path of a stream being read: the reader is registered, so
            # wait for its callback instead of paying for a recv that fails.
            waiter: Future[bytes] = Future()
            self._waiter = waiter
            self._kind = _ANY
            self._arg = max_bytes
            if self.timeout is not None:
                self._arm_read_deadline()
            return waiter
        self._check_can_read()
        if self._read_error is not None:
            return failed_future(self._read_error)
        if not self._reading or (self._tls is not None and self._tls.buffered()):
            # Nothing registered yet (or TLS, whose plaintext may be pending
            # inside the SSL object where readiness cannot see it): try now.
            try:
                data = self._recv(max_bytes)
            except BlockingIOError:
                pass
            except OSError as exc:
                return failed_future(self._reading_failed(exc))
            else:
                if not data:
                    self._set_eof()
                return done_future(data)
        return self._park(_ANY, max_bytes)

    def read_into(self, buffer: bytearray | memoryview) -> Future[int]:
        """Read up to ``len(buffer)`` bytes into ``buffer``, as soon as at least one is available.

        :meth:`read` without a new ``bytes`` object per read: the kernel
        copies straight into the caller's buffer (say, a slice of one reused
        ``bytearray`` that collects a whole download; on a TLS stream the
        plaintext is decrypted first, then copied in). Made for bulk
        transfers, where data is usually waiting: it tries to receive at
        once rather than wait for readiness first.

        Args:
            buffer: a writable bytes-like object; leave it alone until the
                future is done.

        Returns:
            A future of how many bytes were put at the start of ``buffer``:
            0 once the peer has closed its side and nothing is buffered.

        Raises:
            StreamClosed: the stream was closed (raised at once).
            RuntimeError: another read is still pending (raised at once).
            TypeError, ValueError: a read-only or an empty buffer.
        """
        if self._loop is not thread_context.loop and self._loop.is_foreign_thread():
            return self._hand_over(self.read_into, buffer)
        view = memoryview(buffer)
        if view.readonly:
            raise TypeError(f"read_into() needs a writable buffer, got a read-only {type(buffer).__name__}")
        if not view.c_contiguous:
            raise TypeError("read_into() needs a contiguous buffer, not a strided view")
        if view.ndim != 1 or view.format != "B":
            view = view.cast("B")
        if not len(view):
            raise ValueError("read_into() needs a non-empty buffer")
        buf = self._buffer
        if buf:  # bytes read ahead come first (unless they wait for a pending read)
            self._check_no_read_waits()
            return done_future(_take_into(buf, view))
        if self._eof:
            return done_future(0)
        self._check_can_read()
        if self._read_error is not None:
            return failed_future(self._read_error)
        try:
            count = self._recv_into(view)
        except BlockingIOError:
            pass
        except OSError as exc:
            return failed_future(self._reading_failed(exc))
        else:
            if not count:
                self._set_eof()
            return done_future(count)
        self._into = view
        waiter = self._park(_INTO, len(view))
        if not waiter.done():
            waiter.add_done_callback(self._into_waiter_done)
        return waiter

    def _into_waiter_done(self, waiter: Future[Any]) -> None:
        # A cancelled read_into lets go of the caller's buffer now, so that it can be resized.
        if waiter.cancelled() and self._waiter is waiter:
            self._drop_waiter()

    def read_exactly(self, n: int) -> Future[bytes]:
        """Read exactly ``n`` bytes.

        Returns:
            A future of ``n`` bytes. It fails with :class:`IncompleteReadError`
            (carrying the ``partial`` bytes, which are consumed) when the peer
            closes its side first.
        """
        if self._loop is not thread_context.loop and self._loop.is_foreign_thread():
            return self._hand_over(self.read_exactly, n)
        if n < 0:
            raise ValueError(f"read_exactly() needs n >= 0, got {n!r}")
        buf = self._buffer
        if len(buf) >= n:
            if self._waiter is not None:
                self._check_no_read_waits()  # those bytes may be a pending read's
            return done_future(_take(buf, n))
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
        if self._loop is not thread_context.loop and self._loop.is_foreign_thread():
            return self._hand_over(self.read_until, separator, limit)
        if not separator:
            raise ValueError("read_until() needs a non-empty separator")
        self._check_no_read_waits()
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
            value, exc, _ = read_outcome(future)
            if exc is None and not value:
                return

    def __aiter__(self) -> Any:
        return self

    async def __anext__(self) -> bytes:
        data = await self.read()
        if not data:
            raise StopAsyncIteration
        return data

    # -- reading: internals ------------------------------------------------------------------------

    def _check_no_read_waits(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            raise RuntimeError(f"another read is already waiting on {self!r}; wait for it first")

    def _check_can_read(self) -> None:
        if self._closing:
            raise StreamClosed(f"{self!r} is closed; cannot read", host=self._host, port=self._port)
        self._check_no_read_waits()
        if self._waiter is not None:
            self._drop_waiter()  # a waiter whose read is over (cancelled, or timed out)

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

    def _settle(self) -> Future[Any] | None:
        """A done future if the current request (``_kind``/``_arg``) can be settled now, else None."""
        buf = self._buffer
        kind = self._kind
        if kind == _EXACTLY:
            n = self._arg
            if len(buf) >= n:
                return done_future(_take(buf, n))
            if self._read_error is not None:
                return failed_future(self._read_error)
            if self._eof:
                partial = _take(buf, len(buf))
                return failed_future(IncompleteReadError(partial, n, host=self._host, port=self._port))
            return None
        if kind == _UNTIL:
            sep = self._sep
            limit = self._arg
            start = max(0, self._searched - len(sep) + 1)
            index = buf.find(sep, start)
            if index >= 0 and index + len(sep) <= limit:
                return done_future(_take(buf, index + len(sep)))
            if index >= 0 or len(buf) >= limit:
                return failed_future(
                    LimitOverrunError(
                        f"no separator {sep!r} within the limit of {limit} bytes",
                        min(len(buf), limit),
                        host=self._host,
                        port=self._port,
                    )
                )
            self._searched = len(buf)
            if self._read_error is not None:
                return failed_future(self._read_error)
            if self._eof:
                partial = _take(buf, len(buf))
                return failed_future(IncompleteReadError(partial, None, host=self._host, port=self._port))
            return None
        if kind == _INTO:
            view = self._into
            assert view is not None
            if buf:
                return done_future(_take_into(buf, view))
            if self._read_error is not None:
                return failed_future(self._read_error)
            if self._eof:
                return done_future(0)
            return None
        # _ANY
        if buf:
            return done_future(_take(buf, self._arg))
        if self._read_error is not None:
            return failed_future(self._read_error)
        if self._eof:
            return done_future(b"")
        return None

    def _settle_or_park(self) -> Future[Any]:
        outcome = self._settle()
        if outcome is not None:
            return outcome
        return self._park(self._kind, self._arg)

    def _park(self, kind: int, arg: int) -> Future[Any]:
        if self._read_error is not None:
            return failed_future(self._read_error)
        waiter: Future[bytes] = Future()
        self._waiter = waiter
        self._kind = kind
        self._arg = arg
        if not self._reading:
            self._loop.watch_reader(self._fd, self._on_readable)
            self._reading = True
        if self.timeout is not None:
            self._arm_read_deadline()
        return waiter

    def _arm_read_deadline(self) -> None:
        """Fail the read just parked if no byte comes within ``timeout`` seconds.

        One timer per stream serves all its reads, lazily: a read that ends
        leaves the timer armed, and when it fires it fails the read waiting
        then only if that read's own deadline has passed, and otherwise
        re-arms for it. A stream read thousands of times a second so costs a
        timer per ``timeout`` period rather than one per read (scheduled and
        cancelled). A cancelled read needs nothing either: the timer finds
        no read waiting and lapses.
        """
        timeout = self.timeout
        assert timeout is not None, "only a timed read arms the deadline"
        deadline = self._read_deadline = self._loop.time() + timeout
        timer = self._read_timer
        if timer is None or timer.when > deadline:  # none armed, or armed too late (timeout shortened)
            if timer is not None:
                timer.cancel()
            self._read_timer = self._loop.call_at(deadline, self._read_deadline_passed)

    def _on_readable(self) -> None:
        waiter = self._waiter
        if waiter is not None and self._kind == _ANY and not waiter.done() and not self._buffer:
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
            if not waiter._try_set_result(data):  # cancelled from another thread just now: keep the bytes
                self._buffer[:0] = data
            return
        if waiter is not None and self._kind == _INTO and not waiter.done() and not self._buffer:
            view = self._into
            assert view is not None
            try:
                count = self._recv_into(view)
            except BlockingIOError:
                return
            except OSError as exc:
                self._reading_failed(exc)
                return
            if not count:
                self._set_eof()
            self._waiter = self._into = None
            if not waiter._try_set_result(count):  # cancelled from another thread just now: keep the bytes
                self._buffer[:0] = view[:count]
            return
        if waiter is not None and waiter.done():
            self._drop_waiter()
            waiter = None
        if waiter is None:
            self._read_ahead_now()
            return
        kind = self._kind
        self._pull(self._arg + 1 if kind == _UNTIL else 1 if kind == _INTO else self._arg)
        outcome = self._settle()
        if outcome is not None:
            self._resolve_waiter(outcome)

    def _read_ahead_now(self) -> None:
        buf = self._buffer
        if self.read_ahead <= 0:  # leave the bytes in the kernel until a read asks for them
            self._reading = False
            self._loop.unwatch_reader(self._fd)
            return
        try:
            if self._tls is None:
                scratch = _scratch_view()
                data: bytes | memoryview = scratch[: self._recv_into(scratch)]
            else:
                data = self._recv(_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            self._reading_failed(exc)
            return
        if data:
            buf += data
            if self._tls is not None and self._tls.buffered():
                self._pull(self.read_ahead)  # drain what the TLS layer holds: readiness cannot see it
            if len(buf) >= self.read_ahead and self._reading:
                self._loop.unwatch_reader(self._fd)  # pause; the next read that must wait resumes
                self._reading = False
        else:
            self._set_eof()

    def _resolve_waiter(self, outcome: Future[Any]) -> None:
        waiter = self._waiter
        into = self._into  # what read_into() filled, if that is what waited (its result is a count)
        self._waiter = self._into = None
        if waiter is None or waiter.done():
            return
        value, exc, _ = read_outcome(outcome)
        try:
            if exc is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(value)
        except InvalidStateError:  # cancelled from another thread just now: keep the bytes
            if exc is None and value:
                self._buffer[:0] = value if into is None else into[:value]

    def _drop_waiter(self) -> None:
        self._waiter = self._into = None

    def _read_deadline_passed(self) -> None:
        self._read_timer = None
        waiter = self._waiter
        if waiter is None or waiter.done() or self.timeout is None:
            return  # the read it was armed for is over (or timeouts were turned off); the next timed one arms again
        if self._loop.time() < self._read_deadline:  # a later read: its deadline is further on
            self._read_timer = self._loop.call_at(self._read_deadline, self._read_deadline_passed)
            return
        self._waiter = self._into = None
        waiter.set_exception(
            ReadTimeout(f"no data from {self._peername!r} within {self.timeout} s", host=self._host, port=self._port)
        )

    def _set_eof(self) -> None:
        self._eof = True
        if self._reading:
            self._reading = False
            self._loop.unwatch_reader(self._fd)

    def _reading_failed(self, exc: OSError) -> BaseException:
        error = translate_stream_error(exc, self._host, self._port)
        self._read_error = error
        if self._reading:
            self._reading = False
            self._loop.unwatch_reader(self._fd)
        waiter = self._waiter
        if waiter is not None:
            self._resolve_waiter(failed_future(error))
        return error
