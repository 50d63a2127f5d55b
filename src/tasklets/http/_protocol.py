"""Sans-IO HTTP/1.1, client side: a request in, bytes out; bytes in, response events out.

One :class:`ClientConnection` per TCP connection, one exchange at a time (no
pipelining)::

    conn = create_client_connection()
    out = conn.send_request("GET", "/", [("Host", "example.com")])
    out += conn.send_end()
    ...write out, then for every piece of bytes read from the socket:
    for event in conn.feed(data):          # Response, Data..., EndOfMessage
        ...
    ...on EOF: conn.feed_eof()
    if conn.can_reuse():
        conn.start_next_cycle()            # the next request may go out

Events carry headers as a list of ``(name, value)`` **bytes** pairs, in the
order received, names in the case the server sent them, values with the
surrounding whitespace removed. Case-insensitive lookup, decoding (latin-1)
and joining repeated fields are the client layer's job: this layer keeps every
field as it came and creates no per-header object beyond the tuple.
"""

# Theory of operation
# -------------------
# Parsing is done by a maintained parser (h11, or httptools/llhttp when it is
# installed) behind a small hook interface; this module is the policy around
# it, shared by both backends so that they behave the same:
#
# * The response head is delimited here, not by the backend. Bytes are
#   collected until the blank line (CRLF CRLF) that ends the head, and the
#   backend is handed one complete head. That gives us (a) limits that hold
#   however the bytes are split -- one byte at a time included -- because we
#   count lines, line length and size ourselves as bytes arrive, and buffer at
#   most ``max_header_size`` bytes; (b) the exact offset where the body (or a
#   tunnel, after CONNECT) begins, which llhttp does not report; (c) early
#   rejection of bytes that are not HTTP at all (TLS, binary: on the first
#   byte that cannot start b"HTTP/"), of bare CR or LF, NUL and obs-fold,
#   which h11 would otherwise accept or only notice at the end. When a whole
#   head arrives in one piece and the parser is strict (llhttp rejects those
#   itself), only the limits are checked: the fast path.
# * Fast path, httptools: a final response to a request other than HEAD or
#   CONNECT goes through llhttp in one call, head and body together; the
#   policy below runs in the on_headers_complete callback, before the body.
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
#   exactly the body's bytes; after a chunked body the backend notices.)
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

import dataclasses
import re
from typing import Any, ClassVar

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
    Data,
    EndOfMessage,
    Event,
    Header,
    InformationalResponse,
    Limits,
    Response,
    State,
)
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
from ._request_side import _TOKEN_CHARS as _TOKEN_CHARS  # re-exported: the client checks methods with it

__all__ = [
    "ClientConnection",
    "Data",
    "EndOfMessage",
    "Event",
    "Header",
    "InformationalResponse",
    "Limits",
    "Response",
    "State",
    "available_backends",
    "create_client_connection",
]

_VERSIONS = {b"1.1": 11, b"1.0": 10}
# Control characters but HTAB, which a reason phrase may hold (RFC 9112 4).
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def _not_http(start: bytes) -> str:
    message = f"expected an HTTP/1.x response (b'HTTP/...'), got {start[:24]!r}"
    if start[:1] in (b"\x14", b"\x15", b"\x16", b"\x17") and start[1:2] in (b"", b"\x03"):
        message += "; this is TLS: did you mean https:// (or is the port a TLS port)?"
    elif start[:1] == b"\x00":
        message += "; this looks like HTTP/2 or a binary protocol: the server does not speak HTTP/1.1 here"
    return message


class ClientConnection(RequestSide):
    """The client side of one HTTP/1.1 connection, without I/O; one request at a time.

    Do not instantiate directly: use :func:`create_client_connection`, which
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
        self._head = bytearray()
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
        self._reset_head()
        self._n_info = 0
        self._framing = _NONE
        self._chunks: ChunkedDecoder | None = None
        self._remaining = 0
        self._length = 0
        self._keep_alive = False
        self._close_reason = ""
        self._extra = 0
        self._extra_sample = b""

    def _reset_head(self) -> None:
        if self._head:
            self._head.clear()
        self._lf = self._crlf = self._cr = 0
        self._line_start = 0

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
            self._head = bytearray()  # let a rejected head's buffer go now
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
                rest = self._receive_head(data)
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

    def _receive_head(self, data: bytes) -> bytes | None:
        """Delimit and check heads; return the bytes after a complete head, or None."""
        buf = self._head
        if not buf:
            # Fast path: the whole head in one piece (the usual case). No copy.
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                end += 4
                if self._strict_parser:
                    self._check_whole_head(data, end)
                else:
                    self._scan_head(data, 0, end, True)
                return self._got_head(data, end)
        old = len(buf)
        buf += data
        end = buf.find(b"\r\n\r\n", old - 3 if old > 3 else 0)
        if end < 0:
            self._scan_head(buf, old, len(buf), False)
            return None
        end += 4
        self._scan_head(buf, old, end, True)
        head = bytes(buf[:end])
        rest = data[end - old :]
        self._got_head(head, end)
        return rest

    def _check_whole_head(self, data: bytes, end: int) -> None:
        """The limits for a head that arrived in one piece, for a strict parser.

        llhttp itself rejects bare CR or LF, obs-fold, NUL and other control
        characters in a complete head, so only what it does not check is
        checked here (about 0.3 us instead of 1.7 us for ``_scan_head``).
        """
        if end > self._max_head or not data.startswith(b"HTTP/"):
            self._scan_head(data, 0, end, True)  # raises, with the right message
        if data.count(b"\n", 0, end) > self._max_headers + 2 or end > self._max_line:
            self._scan_head(data, 0, end, True)

    def _scan_head(self, buf: bytes | bytearray, start: int, stop: int, complete: bool) -> None:
        """Check the new bytes ``buf[start:stop]`` of the head being received (``buf[0]`` starts it).

        Counters carried from call to call make the checks independent of how
        the head was split; ``back`` reaches one byte into the previous piece
        so that a CRLF or an obs-fold straddling two pieces is seen.
        """
        if stop > self._max_head:
            raise RemoteProtocolError(
                f"response head larger than {self._max_head} bytes (Limits.max_header_size)"
                if complete
                else f"no end of the response head within {self._max_head} bytes (Limits.max_header_size)"
            )
        if start < 5:
            prefix = bytes(buf[:5])
            if not (prefix == b"HTTP/" if stop >= 5 else b"HTTP/".startswith(prefix)):
                raise RemoteProtocolError(_not_http(bytes(buf[:stop])))
        back = start - 1 if start else 0
        n_lf = buf.count(b"\n", start, stop)
        n_cr = buf.count(b"\r", start, stop)
        if n_lf or n_cr:
            self._lf = lf = self._lf + n_lf
            self._cr = cr = self._cr + n_cr
            self._crlf = crlf = self._crlf + buf.count(b"\r\n", back, stop)
            if lf != crlf:
                raise RemoteProtocolError("bare LF in the response head: lines must end with CRLF")
            # A CR may only wait for its LF at the very end of an incomplete head.
            if cr != crlf and (cr != crlf + 1 or complete or buf[stop - 1] != 13):
                raise RemoteProtocolError("bare CR in the response head: CR is only allowed before LF")
            if lf > self._max_headers + 2:
                raise RemoteProtocolError(f"more than {self._max_headers} header fields (Limits.max_headers)")
        if buf.find(b"\n ", back, stop) >= 0 or buf.find(b"\n\t", back, stop) >= 0:
            raise RemoteProtocolError(
                "obsolete line folding (a header line starting with a space or tab) is not accepted (RFC 9112 5.2)"
            )
        if buf.find(b"\0", start, stop) >= 0:
            raise RemoteProtocolError("NUL byte in the response head")
        max_line = self._max_line
        line_start = self._line_start
        if stop - line_start > max_line + 1:
            # Some line may be too long: walk the line ends in the new bytes.
            pos = buf.find(b"\n", start, stop)
            while pos >= 0:
                if pos - 1 - line_start > max_line:
                    break
                line_start = pos + 1
                pos = buf.find(b"\n", line_start, stop)
            if pos >= 0 or stop - line_start > max_line + 1:
                raise RemoteProtocolError(f"response head line longer than {max_line} bytes (Limits.max_line_size)")
            self._line_start = line_start
        elif n_lf and not complete:
            self._line_start = buf.rfind(b"\n", start, stop) + 1

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
        if reason and _CONTROL.search(reason) is not None:
            # (llhttp lets escapes pass in a reason phrase: one would reach a terminal through HTTPError.reason.)
            raise RemoteProtocolError(f"control character in the reason phrase {reason[:60]!r}")
        self._reset_head()
        if status < 200 and status != 101:
            if self._n_info >= self._max_info:
                raise RemoteProtocolError(
                    f"more than {self._max_info} informational (1xx) responses in a row (Limits.max_informational)"
                )
            self._n_info += 1
            _framing_fields(headers)  # frame nothing, but must not contradict each other either
            self._events.append(InformationalResponse(status, reason, headers))
            return
        framing, length = self._decide_framing(status, version, headers)
        self._events.append(Response(status, reason, headers, version))
        if framing == _NONE:
            self._skip_body()
            self._end_message([])
        elif framing is None:
            self.state = SWITCHED
            self._keep_alive = False
            self._close_reason = "it switched protocols"
        else:
            self._framing = framing
            self._remaining = self._length = length
            if framing == _CHUNKED:
                self._chunks = ChunkedDecoder(self.limits)
            self.state = RECV_BODY

    def _decide_framing(self, status: int, version: int, headers: list[Header]) -> tuple[int | None, int]:
        cl, te, conn = _framing_fields(headers)
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
        self.state = DONE
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
            self.state = ERROR
            if self._framing == _UNTIL_EOF:
                events: list[Event] = []
                self._events = events
                self._end_message([])
                self.state = CLOSED
                return events
            if self._framing == _LENGTH:
                raise RemoteProtocolError(
                    f"the server closed the connection after {self._length - self._remaining} of "
                    f"{self._length} body bytes (Content-Length)"
                )
            raise RemoteProtocolError("the server closed the connection in the middle of a chunked body")
        if state is RECV_HEAD:
            self.state = ERROR
            if self._head:
                raise RemoteProtocolError(
                    f"the server closed the connection in the middle of the response head "
                    f"(after {len(self._head)} bytes)"
                )
            if self._n_info:
                raise RemoteProtocolError("the server closed the connection after an informational (1xx) response")
            raise RemoteDisconnected("the server closed the connection without sending a response")
        if state is not ERROR:
            self.state = CLOSED
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
        self.state = IDLE

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


_CONTENT_LENGTH = b"content-length"
_TRANSFER_ENCODING = b"transfer-encoding"
_FRAMING_NAMES = {14: _CONTENT_LENGTH, 17: _TRANSFER_ENCODING, 10: b"connection"}


def _framing_fields(headers: list[Header]) -> tuple[bytes | None, bytes | None, bytes | None]:
    """Content-Length, Transfer-Encoding and Connection (repeated fields joined), checked against each other."""
    cl = te = conn = None
    framing_name = _FRAMING_NAMES.get  # by length: one dict look-up per field, lower() rarely
    for name, value in headers:
        key = framing_name(len(name))
        if key is None or name.lower() != key:
            continue
        if key is _CONTENT_LENGTH:
            if cl is not None:
                raise RemoteProtocolError("more than one Content-Length field: the body length is ambiguous")
            cl = value
        elif key is _TRANSFER_ENCODING:
            te = value if te is None else te + b"," + value
        else:
            conn = value if conn is None else conn + b"," + value
    if te is not None:
        if cl is not None:
            raise RemoteProtocolError(
                "both Content-Length and Transfer-Encoding: rejected as a request smuggling hazard (RFC 9112 6.3)"
            )
        if te.lower() != b"chunked":
            raise RemoteProtocolError(f"unsupported Transfer-Encoding {te!r}: only 'chunked' is supported")
    return cl, te, conn


# -- backend choice ----------------------------------------------------------------------------

_BACKENDS: dict[str, type[ClientConnection]] = {}


def _load(name: str) -> type[ClientConnection]:
    cls = _BACKENDS.get(name)
    if cls is not None:
        return cls
    if name == "h11":
        from ._h11_backend import H11ClientConnection

        cls = H11ClientConnection
    elif name == "httptools":
        from ._httptools_backend import HttptoolsClientConnection  # ImportError without httptools

        cls = HttptoolsClientConnection
    else:
        raise ValueError(f"unknown HTTP parser backend {name!r}: use 'auto', 'h11' or 'httptools'")
    _BACKENDS[name] = cls
    return cls


def available_backends() -> list[str]:
    """The parser backends that can be used here, fastest first."""
    names = []
    for name in ("httptools", "h11"):
        try:
            _load(name)
        except ImportError:
            continue
        names.append(name)
    return names


def create_client_connection(*, backend: str = "auto", limits: Limits | None = None, **kwargs: Any) -> ClientConnection:
    """Create the protocol state of a new client connection.

    Args:
        backend: ``"httptools"`` (fast, C), ``"h11"`` (pure Python), or
            ``"auto"``: httptools when it is installed, else h11.
        limits: bounds on heads and 1xx responses; :class:`Limits` defaults if None.
        **kwargs: fields of :class:`Limits`, as a shortcut (``max_headers=50``).

    Returns:
        A fresh :class:`ClientConnection` in state IDLE.

    Raises:
        ImportError: the backend named is not installed.
        ValueError: unknown backend name.
    """
    if kwargs:
        limits = dataclasses.replace(limits or DEFAULT_LIMITS, **kwargs)
    if backend == "auto":
        try:
            cls = _load("httptools")
        except ImportError:
            cls = _load("h11")
    else:
        cls = _load(backend)
    return cls(limits=limits)
