"""The policy layer of the HTTP/1.1 client protocol: one ``ClientConnection`` class around any parser backend.

What a backend parses, this module decides: framing, limits, EOF,
keep-alive, errors -- the same way for every backend. The public face (the
backend registry, ``create_client_connection``) is :mod:`._protocol`.
"""

# Theory of operation
# -------------------
# Parsing is done by a maintained parser (h11, or httptools/llhttp when it is
# installed) behind a small hook interface; this module is the policy around
# it, shared by both backends so that they behave the same:
#
# * The response head is delimited and checked as its bytes arrive by the
#   HeadScanner (``_head.py``), not by the backend, which is handed one
#   complete head: limits hold however the bytes are split.
# * Fast path, httptools: a final response to a request other than HEAD or
#   CONNECT goes through llhttp in one call, head and body together; the
#   policy below runs in the on_headers_complete callback, before the body.
# * Chunked bodies are decoded by the policy layer (``_chunked.py``), not by
#   the backends, which disagree on RFC 9112's edge cases.
# * Framing is decided here from the parsed head (RFC 9112 section 6.3):
#   HEAD, 1xx, 204 and 304 have no body; a 2xx to CONNECT switches protocols;
#   Transfer-Encoding: chunked; Content-Length; otherwise the body runs to EOF.
#   A response with both Content-Length and Transfer-Encoding is rejected
#   (request smuggling hazard; RFC 9112 6.3 allows a client to treat it as an
#   error), and so are repeated or malformed Content-Length fields and any
#   transfer coding other than "chunked".
# * Bytes after the end of a response are not an error for that response
#   (it is complete and correct) but they poison the connection:
#   ``can_reuse()`` turns False and ``start_next_cycle()`` raises
#   RemoteProtocolError. (With Content-Length framing the backend is fed
#   exactly the body's bytes; after a chunked body the chunked decoder says
#   where the body ended.)
# * EOF is handled here: it ends a close-delimited body and is an error
#   anywhere else in a response (truncated head, short body, unfinished
#   chunked body). EOF before any byte of a response is RemoteDisconnected,
#   which the client may retry on a fresh connection.
# * An error is raised at once; the events decoded before it in the same
#   ``feed()`` call are dropped with the failed exchange, and the connection
#   is left in state ERROR.
#
# Requests are serialised by the backend (h11 for h11; a few lines in the
# RequestSide mixin, ``_request_side.py``, for httptools, which only parses),
# after the checks there: CR, LF and NUL (or any other control character) in
# the method, target, header names or values raise LocalProtocolError before
# a byte is produced.

from __future__ import annotations

from typing import ClassVar

from .._exceptions import LocalProtocolError, ProtocolError, RemoteDisconnected, RemoteProtocolError
from ._chunked import ChunkedDecoder
from ._events import (
    CLOSED,
    DEFAULT_LIMITS,
    DONE,
    ERROR,
    IDLE,
    RECV_BODY,
    RECV_HEAD,
    SWITCHED,
    TRANSITIONS,
    EndOfMessage,
    Event,
    Header,
    InformationalResponse,
    Limits,
    Response,
    State,
)
from ._head import HeadScanner, check_reason, framing_fields
from ._request_side import (
    _CHUNKED,
    _LENGTH,
    _NONE,
    _REQ_DONE,
    _REQ_IDLE,
    _UNTIL_EOF,
    RequestSide,
    _tokens,
)

__all__ = ["ClientConnection"]

# TRANSITIONS for _move, several times a response: keyed by the state's value and
# searched by identity, since an Enum member's hash is a Python-level call.
_ALLOWED: dict[str, tuple[State, ...]] = {state._value_: tuple(moves) for state, moves in TRANSITIONS.items()}

_VERSIONS = {b"1.1": 11, b"1.0": 10}


class ClientConnection(RequestSide):
    """The client side of one HTTP/1.1 connection, without I/O; one request at a time.

    Do not instantiate directly: use :func:`._protocol.create_client_connection`, which
    picks a backend. Every backend passes the same tests and raises the same
    exception types; only error texts from the parsers differ.

    Attributes:
        state: the :class:`State` of the response side.
        limits: the :class:`Limits` in force.
    """

    #: "h11" or "httptools".
    backend: ClassVar[str] = ""
    #: Whether the parser rejects bare CR/LF, obs-fold and control characters in a head itself.
    _strict_parser: ClassVar[bool] = False

    def __init__(self, *, limits: Limits | None = None) -> None:
        self.limits = limits = limits or DEFAULT_LIMITS
        self._max_line = limits.max_line_size
        self._max_head = limits.max_header_size
        self._max_headers = limits.max_headers
        self._max_info = limits.max_informational
        self.state = IDLE
        self._events: list[Event] = []
        self._scanner = HeadScanner(limits, strict_parser=self._strict_parser)
        self._trailing = b""
        self._reset_cycle()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backend={self.backend} state={self.state.name}>"

    def _reset_cycle(self) -> None:
        # Request side.
        self._req = _REQ_IDLE
        self._method = b""
        self._req_framing = _NONE
        self._req_remaining = self._req_length = 0
        self._req_close = False
        self._upgrade = False
        # Response side.
        self._scanner.reset()
        self._n_info = 0
        self._framing = _NONE
        self._chunks: ChunkedDecoder | None = None
        self._remaining = 0
        self._length = 0
        self._keep_alive = False
        self._close_reason = ""
        self._extra = 0
        self._extra_sample = b""

    def _move(self, to: State) -> None:
        """Go to state ``to`` if TRANSITIONS allows it from the current one; else say which move was refused."""
        if to not in _ALLOWED[self.state._value_]:
            allowed = ", ".join(sorted(state.name for state in TRANSITIONS[self.state])) or "none"
            raise LocalProtocolError(
                f"the response side cannot go from {self.state.name} to {to.name} (from {self.state.name}: {allowed})"
            )
        self.state = to

    # -- response side -------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        """Take bytes received from the server; return the events they complete.

        An empty list means more bytes are needed. ``feed(b"")`` is
        :meth:`feed_eof` (as ``recv()`` returns ``b""`` at EOF).

        Args:
            data: the bytes read.

        Returns:
            The events, in order.

        Raises:
            RemoteProtocolError: the server broke the protocol or a limit; the
                connection is now in state ERROR and must be closed.
            LocalProtocolError: ``feed()`` was called after an error or after
                :meth:`feed_eof` (data before any request is the server's fault).
        """
        if not data:
            return self.feed_eof()
        if type(data) is not bytes:
            data = bytes(data)
        events: list[Event] = []
        self._events = events
        try:
            self._receive(data)
        except ProtocolError:
            self.state = ERROR
            self._scanner.reset()  # let a rejected head's buffer go now
            raise
        return events

    def _receive(self, data: bytes) -> None:
        while True:
            state = self.state
            if state is RECV_BODY:
                self._receive_body(data)
                return
            if state is RECV_HEAD:
                if type(data) is not bytes:
                    data = bytes(data)  # the rest of a piece after a 1xx head
                taken = self._scanner.take(data)
                if taken is None:
                    return
                rest = self._got_head(*taken)
                if not rest:
                    return
                data = rest
            elif state is DONE:
                self._note_extra(data)
                return
            elif state is SWITCHED:
                self._trailing += data
                return
            elif state is IDLE:
                raise RemoteProtocolError(f"the server sent {len(data)} bytes before any request: {data[:40]!r}")
            else:
                raise LocalProtocolError(f"feed() in state {state.name}: the connection is finished; close it")

    def _got_head(self, data: bytes, end: int) -> bytes | None:
        """``data[:end]`` is a complete head: parse it, apply the policy; return the bytes after it."""
        status, reason, headers = self._parse_head(data, end)
        self._head_parsed(data, status, reason, headers)
        return None if end == len(data) else memoryview(data)[end:]  # type: ignore[return-value]

    def _head_parsed(self, buf: bytes, status: int, reason: bytes, headers: list[Header]) -> None:
        """Check a parsed head (``buf`` starts with it), emit its event and choose the body's framing."""
        version = _VERSIONS.get(bytes(buf[5:8]))
        if version is None:
            raise RemoteProtocolError(
                f"unsupported protocol version {bytes(buf[:8])!r}: only HTTP/1.0 and HTTP/1.1 are spoken here"
            )
        if not 100 <= status <= 999:
            raise RemoteProtocolError(f"invalid status code {status}: it must be 100-999")
        check_reason(reason)
        if status < 200 and status != 101:
            if self._n_info >= self._max_info:
                raise RemoteProtocolError(
                    f"more than {self._max_info} informational (1xx) responses in a row (Limits.max_informational)"
                )
            self._n_info += 1
            framing_fields(headers)  # frame nothing, but must not contradict each other either
            self._events.append(InformationalResponse(status, reason, headers))
            return
        framing, length = self._decide_framing(status, version, headers)
        self._events.append(Response(status, reason, headers, version))
        if framing == _NONE:
            self._skip_body()
            self._end_message([])
        elif framing is None:
            self._move(SWITCHED)
            self._keep_alive = False
            self._close_reason = "it switched protocols"
        else:
            self._framing = framing
            self._remaining = self._length = length
            if framing == _CHUNKED:
                self._chunks = ChunkedDecoder(self.limits)
            self._move(RECV_BODY)

    def _decide_framing(self, status: int, version: int, headers: list[Header]) -> tuple[int | None, int]:
        cl, te, conn = framing_fields(headers)
        length = 0
        if cl is not None:
            if not cl.isdigit() or len(cl) > 18:
                raise RemoteProtocolError(f"invalid Content-Length {cl!r}")
            length = int(cl)
        # Keep-alive: HTTP/1.1 unless "close"; HTTP/1.0 only with "keep-alive" (RFC 9112 9.3).
        if conn is None:
            keep_alive = version == 11
        else:
            tokens = _tokens(conn)
            keep_alive = b"close" not in tokens and (version == 11 or b"keep-alive" in tokens)
        if not keep_alive:
            self._close_reason = "the server asked to close it" if version == 11 else "HTTP/1.0 without keep-alive"
        elif self._req_close:
            keep_alive = False
            self._close_reason = "the request said Connection: close"
        if status == 101:
            if not self._upgrade:
                raise RemoteProtocolError("101 Switching Protocols, but the request did not ask for an Upgrade")
            return None, 0
        self._keep_alive = keep_alive
        if self._method == b"HEAD" or status == 204 or status == 304:
            return _NONE, 0
        if self._method == b"CONNECT" and status < 300:
            return None, 0
        if te is not None:
            return _CHUNKED, 0
        if cl is not None:
            return (_LENGTH, length) if length else (_NONE, 0)
        self._keep_alive = False
        self._close_reason = "its body ended by closing the connection"
        return _UNTIL_EOF, 0

    def _receive_body(self, data: bytes) -> None:
        if self._chunks is not None:
            self._receive_chunked(data)
            return
        if self._framing == _LENGTH:
            remaining = self._remaining
            if len(data) < remaining:
                self._remaining = remaining - len(data)
                self._feed_body(data)
                return
            self._remaining = 0
            if len(data) == remaining:
                self._feed_body(data)
                return
            view = memoryview(data)
            self._feed_body(view[:remaining])  # type: ignore[arg-type]
            self._note_extra(data[remaining:])
            return
        self._feed_body(data)

    def _receive_chunked(self, data: bytes) -> None:
        if type(data) is not bytes:
            data = bytes(data)  # the rest of a piece after the head
        chunks = self._chunks
        assert chunks is not None
        end = chunks.feed(data, self._events)
        if end >= 0:
            self._chunks = None
            self._end_message(chunks.trailers)
            if end < len(data):
                self._note_extra(data[end:])

    def _end_message(self, trailers: list[Header]) -> None:
        """The message is complete (called by the backends and for bodiless responses)."""
        if trailers:
            if len(trailers) > self._max_headers:
                raise RemoteProtocolError(f"more than {self._max_headers} trailer fields (Limits.max_headers)")
            size = 2
            for name, value in trailers:
                line = len(name) + len(value) + 2
                if line > self._max_line:
                    raise RemoteProtocolError(f"trailer line longer than {self._max_line} bytes (Limits.max_line_size)")
                size += line + 2
            if size > self._max_head:
                raise RemoteProtocolError(
                    f"trailer section larger than {self._max_head} bytes (Limits.max_header_size)"
                )
        self._move(DONE)
        self._events.append(EndOfMessage(trailers))

    def _note_extra(self, data: bytes | bytearray | None, count: int = 0) -> None:
        """Bytes came after the end of the response: the connection is not reusable.

        ``data`` is None when the backend only knows that some came.
        """
        if data is not None:
            count = len(data)
            if not self._extra:
                self._extra_sample = bytes(data[:32])
        self._extra += count or 1

    def feed_eof(self) -> list[Event]:
        """The server closed its side: end a close-delimited body, or report a truncated response.

        Returns:
            ``[EndOfMessage()]`` when the body ran to EOF, else ``[]``.

        Raises:
            RemoteDisconnected: nothing of the response had arrived.
            RemoteProtocolError: the response was cut short (head, body or chunk).
        """
        state = self.state
        if state is RECV_BODY:
            if self._framing == _UNTIL_EOF:
                events: list[Event] = []
                self._events = events
                self._end_message([])
                self._move(CLOSED)
                return events
            self.state = ERROR
            if self._framing == _LENGTH:
                raise RemoteProtocolError(
                    f"the server closed the connection after {self._length - self._remaining} of "
                    f"{self._length} body bytes (Content-Length)"
                )
            raise RemoteProtocolError("the server closed the connection in the middle of a chunked body")
        if state is RECV_HEAD:
            self.state = ERROR
            if self._scanner.pending:
                raise RemoteProtocolError(
                    f"the server closed the connection in the middle of the response head "
                    f"(after {self._scanner.pending} bytes)"
                )
            if self._n_info:
                raise RemoteProtocolError("the server closed the connection after an informational (1xx) response")
            raise RemoteDisconnected("the server closed the connection without sending a response")
        if state is not ERROR and state is not CLOSED:
            self._move(CLOSED)
        return []

    # -- the body ---------------------------------------------------------------------------------

    @property
    def body_left(self) -> int | None:
        """Bytes of a Content-Length body still to come while it is received; None otherwise.

        None too for chunked and close-delimited bodies, and between messages.
        """
        if self.state is RECV_BODY and self._framing == _LENGTH:
            return self._remaining
        return None

    def take_body(self, count: int) -> list[Event]:
        """Count ``count`` bytes of a Content-Length body that the caller received into its own buffer.

        For a large body (while :attr:`body_left` is not None): its bytes
        need no parsing, and :meth:`feed` would make a ``bytes`` object of
        every piece. Bytes past the end of the body count as data after the
        response (the connection is then not reusable), as through ``feed``.
        The backend's parser never sees these bytes; the next exchange gets
        a fresh one.

        Returns:
            ``[EndOfMessage()]`` once the body is complete, else ``[]``.

        Raises:
            LocalProtocolError: no Content-Length body is being received.
        """
        if self.state is not RECV_BODY or self._framing != _LENGTH:
            raise LocalProtocolError(
                f"take_body() in state {self.state.name}: no Content-Length body is being received"
            )
        if count < 0:
            raise ValueError(f"take_body() needs count >= 0, got {count!r}")
        events: list[Event] = []
        self._events = events
        remaining = self._remaining
        if count < remaining:
            self._remaining = remaining - count
            return events
        self._remaining = 0
        if count > remaining:
            self._note_extra(None, count - remaining)
        self._end_message([])
        return events

    # -- keep-alive ----------------------------------------------------------------------------

    def can_reuse(self) -> bool:
        """Whether the exchange is over and the connection may carry the next request."""
        return self.state is DONE and self._req == _REQ_DONE and self._keep_alive and not self._extra

    @property
    def trailing_data(self) -> bytes:
        """After a protocol switch (CONNECT 2xx, 101): bytes received past the response head."""
        return bytes(self._trailing)

    def start_next_cycle(self) -> None:
        """Make a finished, reusable connection ready for the next request.

        Raises:
            RemoteProtocolError: the server sent bytes after the response.
            LocalProtocolError: the exchange is not finished, or the connection
                cannot be reused (``Connection: close``, HTTP/1.0, EOF...).
        """
        if self._extra:
            what = f"{self._extra} bytes (starting {self._extra_sample!r})" if self._extra_sample else "data"
            raise RemoteProtocolError(
                f"the server sent {what} after the end of the response: the connection cannot be reused"
            )
        if self.state is not DONE:
            if self.state is CLOSED:
                raise LocalProtocolError("the connection cannot be reused: the server closed it")
            raise LocalProtocolError(f"start_next_cycle() in state {self.state.name}: the response is not complete")
        if self._req != _REQ_DONE:
            raise LocalProtocolError("start_next_cycle() before the request is complete: call send_end()")
        if not self._keep_alive:
            raise LocalProtocolError(f"the connection cannot be reused: {self._close_reason}; check can_reuse() first")
        self._reset_cycle()
        self._next_cycle()
        self._move(IDLE)

    # -- backend hooks -------------------------------------------------------------------------

    def _parse_head(self, data: bytes, end: int) -> tuple[int, bytes, list[Header]]:
        """Parse the complete response head ``data[:end]``; return ``(status, reason, headers)``."""
        raise NotImplementedError

    def _skip_body(self) -> None:
        """The final response has no body (HEAD, 204, 304, Content-Length: 0): sync the parser."""

    def _feed_body(self, data: bytes) -> None:
        """Parse body bytes: append Data events; call ``_end_message()`` at the end of the body."""
        raise NotImplementedError

    def _next_cycle(self) -> None:
        """Reset the backend for the next exchange."""
