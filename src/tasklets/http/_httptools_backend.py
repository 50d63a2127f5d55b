"""The httptools backend of the HTTP/1.1 client protocol: llhttp (C) parsing, the fast path.

httptools only parses, and knows neither the request method nor EOF, so the
policy layer in :mod:`._protocol` hands it one complete head at a time and
exactly a Content-Length body's bytes, and decides HEAD, CONNECT and
close-delimited framing itself. What is left here:

* for the usual response (final status, request not HEAD or CONNECT) the
  head and the body bytes that came with it go through llhttp in one call,
  the policy running in ``on_headers_complete``;
* callbacks that append events directly to the list ``feed()`` returns, with
  no Python object per header beyond the ``(name, value)`` tuple, and body
  ``Data`` made from the bytes llhttp hands over (no further copy);
* after a head whose message llhttp still thinks has a body (the response to
  HEAD), the parser is dropped and a new one made for the next exchange;
* a bound on what httptools buffers in a chunked body: it accumulates
  trailer fields in Python until each is complete, so bytes fed without a
  single callback are counted and limited to ``max_header_size``;
* bytes after a chunked response: llhttp starts parsing a next message (or
  fails), which marks the connection as not reusable instead of failing the
  complete response.

llhttp runs in strict mode: it rejects what RFC 9112 forbids (obs-fold, bare
CR/LF, Content-Length with Transfer-Encoding, repeated Content-Length).
"""

from __future__ import annotations

from httptools import HttpParserCallbackError, HttpParserError, HttpParserUpgrade, HttpResponseParser

from .._exceptions import ProtocolError, RemoteProtocolError
from ._events import DONE, RECV_BODY
from ._protocol import ClientConnection, Data, Header, Limits
from ._request_side import _CHUNKED

__all__ = ["HttptoolsClientConnection"]


class _ExtraData(Exception):
    """Raised in a callback: llhttp started a new message after the response ended."""


class HttptoolsClientConnection(ClientConnection):
    """:class:`~._protocol.ClientConnection` parsing with httptools (llhttp)."""

    backend = "httptools"
    _strict_parser = True

    def __init__(self, *, limits: Limits | None = None) -> None:
        super().__init__(limits=limits)
        self._parser: HttpResponseParser | None = None
        self._reason = b""
        self._headers: list[Header] = []  # the list on_header appends to: the head's, then the trailers'
        self._trailers: list[Header] = []
        self._head_data = b""  # while a head and its body go through llhttp in one call
        self._strip = False
        self._headers_done = False
        self._parser_idle = True
        self._stall = 0

    # -- llhttp callbacks (public names: httptools looks them up) --------------------------------

    def on_message_begin(self) -> None:
        if self.state is DONE:
            raise _ExtraData

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        headers = self._headers
        self._headers = self._trailers = []
        if self._strip:
            # llhttp strips leading whitespace from values but not trailing.
            headers[:] = [(name, value.rstrip(b" \t")) for name, value in headers]
        if self._head_data:
            # Head and body in one llhttp call: apply the policy before the body is parsed.
            data, self._head_data = self._head_data, b""
            self._head_parsed(data, self._parser.get_status_code(), self._reason, headers)  # type: ignore[union-attr]

    def on_body(self, body: bytes) -> None:
        self._stall = 0
        self._events.append(Data(body))

    def on_chunk_header(self) -> None:
        self._stall = 0

    def on_chunk_complete(self) -> None:
        self._stall = 0

    def on_message_complete(self) -> None:
        self._parser_idle = True
        if self.state is RECV_BODY:
            trailers = self._trailers
            if trailers:
                trailers = [(name, value.rstrip(b" \t")) for name, value in trailers]
            self._end_message(trailers)

    # -- hooks ----------------------------------------------------------------------------------

    def _start_head(self, data: bytes, end: int) -> HttpResponseParser:
        parser = self._parser
        if parser is None:
            parser = self._parser = HttpResponseParser(self)
        self._reason = b""
        self._headers = []
        self._headers_done = self._parser_idle = False
        self._strip = data.find(b" \r\n", 0, end) >= 0 or data.find(b"\t\r\n", 0, end) >= 0
        return parser

    def _got_head(self, data: bytes, end: int) -> bytes | None:
        method = self._method
        if end == len(data) or data[9] == 49 or method == b"HEAD" or method == b"CONNECT":
            return super()._got_head(data, end)  # _parse_head(): the head alone
        # The usual case: a final response with (some of) its body, to a request
        # whose response llhttp can frame by itself. One call parses it all;
        # on_headers_complete applies the policy in between.
        parser = self._start_head(data, end)
        self._head_data = data
        self._stall = len(data) - end
        self._execute(parser, data)
        if not self._headers_done:
            raise RemoteProtocolError("malformed response head: the parser did not find its end")
        if self.state is RECV_BODY and self._remaining:  # Content-Length body to be continued
            self._remaining -= len(data) - end
        elif self.state is DONE and self._framing != _CHUNKED and len(data) > end + self._length:
            # Past the end of a Content-Length (or empty) body. llhttp noticed (and
            # counted 1) unless it was only CRLFs, which it skips: say what came.
            self._extra = 0
            self._note_extra(data[end + self._length :])
        return None

    def _parse_head(self, data: bytes, end: int) -> tuple[int, bytes, list[Header]]:
        parser = self._start_head(data, end)
        headers = self._headers
        try:
            parser.feed_data(data if end == len(data) else memoryview(data)[:end])
        except HttpParserUpgrade:
            self._parser = None  # paused after a 101; the connection changes protocol
        except HttpParserError as exc:
            if not self._headers_done:
                raise RemoteProtocolError(f"malformed response head: {exc}") from exc
            self._parser = None
        if not self._headers_done:  # pragma: no cover - _protocol only passes complete heads
            raise RemoteProtocolError("malformed response head: the parser did not find its end")
        return parser.get_status_code(), self._reason, headers

    def _feed_body(self, data: bytes) -> None:
        self._stall += len(data)
        self._execute(self._parser, data)  # type: ignore[arg-type]

    def _execute(self, parser: HttpResponseParser, data: bytes) -> None:
        try:
            parser.feed_data(data)
        except HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, ProtocolError):
                raise cause from None
            if self.state is DONE:
                self._note_extra(None, 1)
                return
            raise RemoteProtocolError(f"malformed response: {exc}") from exc
        except HttpParserError as exc:
            if self.state is DONE:  # e.g. "Data after `Connection: close`"
                self._note_extra(None, 1)
                return
            raise RemoteProtocolError(f"malformed response: {exc}") from exc
        if self._stall > self._max_head and self.state is RECV_BODY:
            raise RemoteProtocolError(
                f"more than {self._max_head} bytes of chunk-size lines or trailers (Limits.max_header_size)"
            )

    def _next_cycle(self) -> None:
        if not self._parser_idle:
            self._parser = None  # llhttp still expects a body (the response to HEAD): start afresh
