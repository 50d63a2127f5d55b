"""One HTTP/1.1 connection: a stream and a parser, one request at a time.

Theory of operation
-------------------
The parser (``_protocol``) turns bytes into events and requests into bytes;
this module moves bytes between it and a :class:`~tasklets.net.Stream`.
``send`` is a generator run inside the client's task: it writes the request
(and its body, honouring the stream's back-pressure) and reads until the
final response head arrives, skipping 1xx responses.

While a write waits for the server to take more of the body, the connection
also watches for an answer (RFC 9112, section 9.5: a client sending a body
should monitor the connection for an error response). A final response of
300 or more that arrives before the body is all sent (a 413, a 401, a
redirect...) stops the sending: it is returned at once, and the connection,
its request unfinished, is closed after it. A 2xx that arrives early is
kept until the body is all sent, since such a server is still reading.

The body is then pulled by ``next_chunk()``, which returns one future per
chunk. Whatever the parser already produced is handed out in an
already-done future; otherwise one ``stream.read()`` is chained through a
done-callback, so reading a body costs no task and no extra loop turn. When
the parser reports the end of the message the connection goes back to its
pool (or is closed if it cannot be reused); if the reader gives up early
(``abandon()``), the connection is closed, since the unread rest of the body
would corrupt the next response.

When the whole of a large Content-Length body is wanted, ``read_rest()``
reads it instead: the bytes go from the kernel straight into one buffer of
the body's size (``Stream.read_into`` into a ``BodyBuffer`` lent by the
pool, and given back for the next body once the read that completed it is
over) and past the parser, which only counts them, and are copied out once,
so a 1 MiB body costs the kernel's copy and one more rather than a ``bytes``
object per read, the parser's copy of each, and a join.
"""

from __future__ import annotations

import functools
import socket
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import Any
from urllib.error import URLError

from .._combinators import wait_first
from .._exceptions import (
    ConnectionBroken,
    DecodingError,
    HTTPReadTimeout,
    ProtocolError,
    ReadTimeout,
    RemoteProtocolError,
    StreamError,
    TimeoutError,
    TotalTimeout,
)
from .._future import Future, done_future
from ..net import Stream
from . import _protocol as protocol
from ._body_buffers import MAX_BODY_BUFFER, BodyBuffer, BodyBuffers
from ._url import Origin

__all__ = ["HTTPConnection", "ResponseHead"]


_READ_SIZE = 64 * 1024
# Reads for a response head are smaller: a head and a short body fit, and of a
# large body less arrives with the head, to go through the parser and be copied
# again, and more goes straight into read_rest()'s buffer (a 1 MiB GET: 0.93 of
# the CPU time with 64 KiB head reads).
_HEAD_READ_SIZE = 16 * 1024
# Body reads are sized to what Content-Length says is left, up to this: a
# 1 MiB body then takes 4 reads rather than 16 (each a future, a timer and a
# callback chain), while a small body never asks for a big buffer.
_MAX_BODY_READ = 256 * 1024
# An idle connection used again within this many seconds is not probed with
# a system call: a server closes idle connections after seconds, not within a
# millisecond of its answer, and an idempotent request that still finds the
# connection closed is retried.
_FRESH_IDLE = 0.001
_PEEK_FLAGS = int(socket.MSG_PEEK | socket.MSG_DONTWAIT)
# Content-Length bodies with at least this much still to come are read whole by
# read_rest(); for smaller ones the chunk path costs no more.
_READ_WHOLE_MIN = 64 * 1024


class ResponseHead:
    """Status line and headers of a final response.

    ``complete``: the response has no body (HEAD, 204, 304, Content-Length: 0),
    so the connection was released as the head arrived and must not be used.
    """

    __slots__ = ("status", "reason", "headers", "version", "complete")

    def __init__(
        self, status: int, reason: str, headers: list[tuple[str, str]], version: str, complete: bool = False
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.version = version
        self.complete = complete


class HTTPConnection:
    """A keep-alive HTTP/1.1 connection to one origin (through a proxy, maybe)."""

    def __init__(
        self,
        stream: Stream,
        origin: Origin,
        parser: protocol.ClientConnection,
        on_release: Callable[[HTTPConnection, bool], None],
    ) -> None:
        # No read-ahead: the connection reads only what it asks for, so bytes that
        # arrive before it asks (a body, while its head is handed out) wait in the
        # kernel and then go straight into the read that wants them. Read ahead,
        # they were copied twice more, through a scratch buffer and the stream's
        # own, and the stream's buffer, grown and freed for every response, made
        # the C heap shrink and fault back in: a 1 MiB GET took 1.28 times the CPU.
        stream.read_ahead = 0
        self.stream = stream
        self.origin = origin
        self.parser = parser
        self.requests = 0  # requests sent on this connection so far
        self.body_buffers: BodyBuffers | None = None  # lent by the pool: read_rest() needs them
        self._receiving: BodyBuffer | None = None  # the buffer read_rest() is filling
        self.idle_since = 0.0
        self._events: deque[Any] = deque()
        self._on_release = on_release
        self._in_body = False
        self._closed = False
        self._watch: Future[bytes] | None = None  # a read watching for an early answer while the body is sent
        self._watching = False
        self._body_cut_short = False  # the request was not all sent (the server answered first, or a write failed)
        self._answered_early = False  # a final response came while the request body was being sent

    def __repr__(self) -> str:
        state = "closed" if self._closed else "busy" if self._in_body else "ready"
        return f"<HTTPConnection {self.origin} {state} requests={self.requests}>"

    @property
    def is_reused(self) -> bool:
        """Whether an earlier request went over this connection (it may have been closed by now)."""
        return self.requests > 1

    def is_dead(self, now: float, *, trust_fresh: bool = False) -> bool:
        """Whether an idle connection was closed by the server or received unexpected bytes.

        Peeks at the socket without blocking: an idle keep-alive connection
        must have nothing to read. EOF, an error, or stray bytes all mean it
        must not carry the next request. With ``trust_fresh`` (a request that
        will be retried if the connection is closed after all), a connection
        idle for under a millisecond is trusted without the system call.
        """
        stream = self.stream
        if self._closed or stream.is_closing() or stream.at_eof() or stream.buffered:
            return True
        if trust_fresh and now - self.idle_since < _FRESH_IDLE:
            return False
        try:
            stream.socket.recv(1, _PEEK_FLAGS)
        except BlockingIOError:
            return False  # nothing to read: alive and quiet, as it should be
        except OSError:
            return True
        return True  # EOF or stray bytes

    # -- one exchange -----------------------------------------------------------------------------

    def send(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes | Iterable[bytes] | None
    ) -> Generator[Any, Any, ResponseHead]:
        """Write the request and read up to the final response head (``yield from`` it)."""
        self.requests += 1
        parser = self.parser
        head = parser.send_request(method, target, headers)
        self._watching = True
        self._body_cut_short = self._answered_early = False
        try:
            if isinstance(body, (bytes, bytearray, memoryview)):
                answered = yield from self._write(head + parser.send_body(bytes(body)) + parser.send_end())
            else:
                answered = yield from self._write(head)
                if body is not None and not answered:
                    for piece in body:
                        if isinstance(piece, Future):  # the next piece of an async iterable, still to come
                            piece = yield piece
                        if piece and (yield from self._write(parser.send_body(bytes(piece)))):
                            answered = True
                            break
                if not answered:
                    yield from self._write(parser.send_end())
            if self._answered_early and not answered:
                # A 2xx came early: hand it out once the whole request has left, not with
                # its tail still queued (should the loop end then, the tail would be lost).
                yield self.stream.drain()
            # Cut short, the request is unfinished however the parser saw it: never reuse the connection.
            self._body_cut_short = answered
        except StreamError as write_error:
            self._body_cut_short = True
            self._stop_watching()
            # The server stopped taking the request. It may have answered first (a
            # 413 Payload Too Large, a 401...) and closed: that answer, not the broken
            # pipe, is what the caller needs. (The connection is not reused: the
            # request never ended.)
            try:
                return (yield from self._response_head())
            except Exception:
                raise write_error from None
        finally:
            self._stop_watching()
        return (yield from self._response_head())

    def _write(self, data: bytes) -> Generator[Any, Any, bool]:
        """Write ``data``; True if the server refused the request (a final status >= 300) before it ended.

        While the write waits for the server to read, one read watches for
        its answer; the events it brings are kept for ``_response_head``.
        """
        written = self.stream.write(data)
        while not written.done():
            if not self._watching:
                yield written
                break
            watch = self._watch
            if watch is None:
                watch = self._watch = self.stream.read(_READ_SIZE)
            if not watch.done():
                try:
                    yield wait_first([written, watch])
                except Exception:  # the outcome of whichever finished first: looked at below
                    if not (written.done() or watch.done()):
                        raise  # the outcome of neither: not ours to swallow
            if watch.done():
                self._watch = None
                if self._take_early_answer(watch):
                    return True
        written.result()  # raises the StreamError of a failed write
        return False

    def _take_early_answer(self, watch: Future[bytes]) -> bool:
        """Parse what the watching read brought; whether it holds a final response of status >= 300."""
        try:
            data = watch.result()
        except ReadTimeout:
            return False  # the server is quiet while it reads the body: that is normal; watch again
        except StreamError:
            self._watching = False  # the stream failed: the write fails too, and send() handles that
            return False
        if not data:
            self._watching = False  # EOF: the write fails, or _response_head's read meets the EOF again
            return False
        self._events.extend(self.parser.feed(data))
        for event in self._events:
            if isinstance(event, protocol.Response):
                self._watching = False  # a final answer: nothing more to watch for
                self._answered_early = True
                return event.status >= 300
        return False

    def _stop_watching(self) -> None:
        """The request is sent (or failed): a watching read still waiting gives way to _response_head's."""
        self._watching = False
        watch, self._watch = self._watch, None
        if watch is not None and not watch.done():
            watch.cancel()

    def _response_head(self) -> Generator[Any, Any, ResponseHead]:
        """Read up to the final response head, skipping 1xx responses."""
        while True:
            event = yield from self._next_event()
            if isinstance(event, protocol.Response):
                self._in_body = True
                headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers]
                head = ResponseHead(
                    event.status, event.reason.decode("latin-1"), headers, "1.1" if event.version == 11 else "1.0"
                )
                events = self._events
                if events and isinstance(events[0], protocol.EndOfMessage):
                    # No body at all: the exchange is over now, not when (if ever) the caller
                    # reads the empty body. The connection goes back to its pool at once.
                    events.popleft()
                    self._message_complete()
                    head.complete = True
                return head
            if isinstance(event, protocol.InformationalResponse):
                continue
            raise RemoteProtocolError(f"expected a response from {self.origin}, got {event!r}")

    def _next_event(self) -> Generator[Any, Any, Any]:
        events = self._events
        while not events:
            data = yield self.stream.read(_HEAD_READ_SIZE)
            events.extend(self.parser.feed(data) if data else self.parser.feed_eof())
        return events.popleft()

    # -- the body -------------------------------------------------------------------------------------

    def next_chunk(self) -> Future[bytes]:
        """A future of the next piece of the body; ``b""`` once it has all arrived."""
        chunk = self.queued_chunk()
        if chunk is not None:
            return done_future(chunk)
        result: Future[bytes] = Future()
        self._read_body(self._body_read(), result)
        return result

    def queued_chunk(self) -> bytes | None:
        """The next piece of the body from the events already parsed (b"": the end); None if none is queued.

        It reads nothing: a reader that wants the body whole takes what came
        with the head this way, with no future per piece.
        """
        events = self._events
        while events:
            event = events.popleft()
            if isinstance(event, protocol.Data):
                if event.data:
                    return event.data
                continue
            if isinstance(event, protocol.EndOfMessage):
                self._message_complete()
                return b""
        if self._closed:
            return b""
        return None

    def _body_read(self) -> Future[bytes]:
        left = self.parser.body_left  # bytes still to come: nothing is queued when we read
        # One byte more than is left: bytes past the body's end arrive in the same read and are
        # detected (the connection is then not reused) rather than left for the next response.
        size = _READ_SIZE if left is None else max(4096, min(left + 1, _MAX_BODY_READ))
        return self.stream.read(size)

    def read_rest(self, parts: list[bytes]) -> Future[bytes] | None:
        """A future of the whole body: ``parts`` (what the reader took of it so far), then the rest.

        For a large Content-Length body whose queued events have all been
        taken, on a connection that its pool lent body buffers; otherwise
        None, and the reader goes on with ``next_chunk()``. Cancelling the
        future abandons the body: the connection is closed when the read
        under way ends (the Response closes it at once).
        """
        buffers = self.body_buffers
        left = self.parser.body_left
        if buffers is None or left is None or left < _READ_WHOLE_MIN or self._events or self._closed:
            return None
        start = sum(map(len, parts))
        end = start + left
        if end >= MAX_BODY_BUFFER:
            return None
        # One byte more than the body: a byte past its end is detected (the
        # connection is then not reused), as feed() would have detected it.
        self._receiving = buffers.make(end + 1)
        view = self._receiving.view
        position = 0
        for part in parts:
            view[position : position + len(part)] = part
            position += len(part)
        result: Future[bytes] = Future()
        self._read_into(view, position, end, result)
        return result

    def _read_into(self, view: memoryview, position: int, end: int, result: Future[bytes]) -> None:
        """Read into ``view[position:end + 1]`` until the body is complete, looping while reads finish at once."""
        while True:
            try:
                read = self.stream.read_into(view[position : end + 1])
            except Exception as exc:  # the stream was closed under us
                self.close()
                result.set_exception(exc)
                return
            if not read.done():
                read.add_done_callback(
                    functools.partial(self._on_read_into, view=view, position=position, end=end, result=result)
                )
                return
            position = self._count_read(read, view, position, end, result)
            if position < 0:
                return

    def _on_read_into(
        self, read: Future[int], view: memoryview, position: int, end: int, result: Future[bytes]
    ) -> None:
        if result.done():  # cancelled by the reader: the rest of the body is abandoned
            self.abandon()
            return
        position = self._count_read(read, view, position, end, result)
        if position >= 0:
            self._read_into(view, position, end, result)

    def _count_read(self, read: Future[int], view: memoryview, position: int, end: int, result: Future[bytes]) -> int:
        """Account for one finished read; the position after it, or -1 once ``result`` is settled."""
        try:
            count = read.result()
            if not count:
                self.parser.feed_eof()  # raises: the body is shorter than its Content-Length
                raise RemoteProtocolError(f"the body from {self.origin} ended early")  # pragma: no cover
            finished = self.parser.take_body(count)
        except BaseException as exc:
            self.close()
            self._receiving = None
            result.set_exception(exc)
            return -1
        if not finished:
            return position + count
        self._message_complete()
        receiving, self._receiving = self._receiving, None
        assert receiving is not None and self.body_buffers is not None
        body = receiving.take(end)
        # The read that filled it is over: the buffer can serve the next body. (One whose
        # body failed, above, is not given back: a read may still be writing into it.)
        self.body_buffers.give_back(receiving)
        result.set_result(body)
        return -1

    def _read_body(self, read: Future[bytes], result: Future[bytes]) -> None:
        """Settle ``result`` with the next piece of the body, reading while reads bring none.

        Reads that complete no piece (a chunk-size line, trailers, arriving a
        byte at a time) are looped over here, each waited for by a callback on
        that read alone: no future waits on another, so nothing grows with the
        number of reads.
        """
        while read.done():
            if result.cancelled():
                self.abandon()
                return
            try:
                data = read.result()
                self._events.extend(self.parser.feed(data) if data else self.parser.feed_eof())
            except BaseException as exc:
                self.close()
                result.set_exception(exc)
                return
            chunk = self.queued_chunk()
            if chunk is None and not data:
                chunk = b""  # EOF, and the parser had nothing to say: nothing more can come
            if chunk is not None:
                result.set_result(chunk)
                return
            read = self._body_read()
        read.add_done_callback(functools.partial(self._read_body, result=result))

    def _message_complete(self) -> None:
        self._in_body = False
        reusable = self.parser.can_reuse() and not self._body_cut_short and not self.stream.is_closing()
        if reusable:
            self.parser.start_next_cycle()
        self._release(reusable)

    def abandon(self) -> None:
        """The reader stopped before the end of the body: the connection cannot be reused."""
        if self._in_body:
            self._in_body = False
            self._release(False)

    def discard(self) -> None:
        """Close the connection and send it home to its pool as unusable (a request failed on it)."""
        self._release(False)

    def _release(self, reusable: bool) -> None:
        if not reusable:
            self.close()
        self._on_release(self, reusable)

    def close(self) -> None:
        """Close the stream at once (unread bytes make it unusable anyway)."""
        if not self._closed:
            self._closed = True
            self.stream.abort()


def name_the_url(exc: BaseException, where: str) -> None:
    """Prefix the message of a protocol or decoding error with ``where`` (the request or URL), once.

    The parser and the decoders know nothing of URLs; the client names the
    URL at its boundary, keeping the exception's class (and so every
    ``except`` that catches it) unchanged.
    """
    if isinstance(exc, (ProtocolError, DecodingError)) and not str(exc).startswith(where):
        exc.reason = f"{where}: {exc.reason}"
        exc.args = (exc.reason,)


def as_client_error(exc: BaseException, where: str) -> BaseException:
    """The HTTP client's error for an error met while ``where`` (a request or a URL) was under way.

    Network timeouts and breakages become ``urllib.error.URLError`` subclasses
    naming ``where``, their ``reason`` the stream error. A protocol or
    decoding error is returned itself, its message now naming ``where``;
    anything else (already a URLError, a cancellation) passes through unchanged.
    """
    if isinstance(exc, ReadTimeout):
        error: BaseException = HTTPReadTimeout(f"{where}: nothing received within the read timeout", reason=exc)
    elif isinstance(exc, StreamError):
        error = ConnectionBroken(f"{where}: the connection broke: {exc}", reason=exc)
    elif isinstance(exc, TimeoutError) and not isinstance(exc, URLError):  # with_timeout's: the total
        error = TotalTimeout(f"{where}: took longer than the total timeout", reason=exc)
    else:
        name_the_url(exc, where)
        return exc
    error.__cause__ = exc
    return error
