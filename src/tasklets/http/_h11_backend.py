"""The h11 backend of the HTTP/1.1 client protocol: pure Python, the reference for correctness.

h11 serialises the request and parses each response head and body; the
policy around it (head delimiting, limits, framing checks, EOF, keep-alive)
is in :mod:`._protocol`, shared with the httptools backend. A fresh
``h11.Connection`` serves each exchange, so h11's own keep-alive rules (which
never reuse an HTTP/1.0 connection) do not override ours.
"""

from __future__ import annotations

import re

import h11

try:
    from h11._receivebuffer import ReceiveBuffer
except ImportError:  # pragma: no cover - an h11 whose internals moved: trailers go unchecked (see below)
    ReceiveBuffer = None  # type: ignore[assignment,misc]

from .._exceptions import LocalProtocolError, RemoteProtocolError
from ._events import DONE
from ._protocol import ClientConnection, Data, Header, Limits

__all__ = ["H11ClientConnection"]

# h11 folds repeated or comma-listed identical Content-Length fields into one;
# llhttp rejects them. The raw head is checked so both backends reject.
_CONTENT_LENGTH_RE = re.compile(rb"\ncontent-length[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
# h11 accepts control characters in field values and reason phrases; llhttp does
# not, and neither do we (NUL, CR and LF are refused before the head gets here).
_CONTROL_RE = re.compile(rb"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")


class _ReceiveBuffer(ReceiveBuffer or object):  # type: ignore[misc]
    """h11's receive buffer, refusing obs-fold and control characters in trailers.

    h11 unfolds obs-fold (a field line continued on the next line, which starts
    with a space or tab) in heads and trailers alike. Heads are checked in
    :mod:`._protocol` before h11 sees them; trailers are delimited by h11 alone,
    and their raw lines are only visible here, where h11 takes them out of its
    buffer. Body bytes never pass here: one call per head and per end of a
    chunked body, whatever the size or number of pieces of the body.
    (``ReceiveBuffer`` and ``Connection._receive_buffer`` are h11 internals,
    the same from 0.14 to 0.16. Should a later h11 move them, parsing still
    works, without this check, and test_folded_trailer fails to say so.)
    """

    def maybe_extract_lines(self) -> list[bytearray] | None:
        lines = ReceiveBuffer.maybe_extract_lines(self)
        # A head starts with its status line, and _protocol has checked it.
        if lines and lines[0][:5] != b"HTTP/":
            for line in lines:
                if line[:1] == b" " or line[:1] == b"\t":
                    raise RemoteProtocolError(
                        "obsolete line folding (a trailer field continued on the next line, which starts "
                        "with a space or tab) is not accepted (RFC 9112 5.2)"
                    )
                if _CONTROL_RE.search(line) is not None:  # as in heads (h11 would take them)
                    raise RemoteProtocolError("control character in a trailer field")
        return lines


class H11ClientConnection(ClientConnection):
    """:class:`~._protocol.ClientConnection` parsing with h11."""

    backend = "h11"

    def __init__(self, *, limits: Limits | None = None) -> None:
        super().__init__(limits=limits)
        self._h11 = self._new_h11()

    def _new_h11(self) -> h11.Connection:
        # Heads reach h11 whole (delimited and bounded by _protocol); this bound
        # covers what h11 buffers itself: chunk-size lines and trailers.
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=self._max_head)
        if ReceiveBuffer is not None and type(conn._receive_buffer) is ReceiveBuffer:
            conn._receive_buffer = _ReceiveBuffer()
        return conn

    def _send(self, event: h11.Request | h11.Data | h11.EndOfMessage) -> bytes:
        try:
            out = self._h11.send(event)
        except h11.LocalProtocolError as exc:
            # Our checks run first, so this is a disagreement with h11; h11 is
            # now in its ERROR state, so start afresh (nothing was produced).
            self._h11 = self._new_h11()
            raise LocalProtocolError(f"h11 refused the request: {exc}") from exc
        assert out is not None
        return out

    def _serialize_head(self, method: bytes, target: bytes, headers: list[Header]) -> bytes:
        try:
            request = h11.Request(method=method, target=target, headers=headers)
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(f"h11 refused the request: {exc}") from exc
        return self._send(request)

    def _serialize_data(self, data: bytes) -> bytes:
        return self._send(h11.Data(data=data))

    def _serialize_end(self, trailers: list[Header]) -> bytes:
        return self._send(h11.EndOfMessage(headers=trailers))

    def _next_event(self, where: str) -> object:
        try:
            return self._h11.next_event()
        except h11.RemoteProtocolError as exc:
            raise RemoteProtocolError(f"malformed response {where}: {exc}") from exc

    def _parse_head(self, data: bytes, end: int) -> tuple[int, bytes, list[Header]]:
        raw = data if end == len(data) else data[:end]
        self._h11.receive_data(raw)
        event = self._next_event("head")
        if type(event) is not h11.Response and type(event) is not h11.InformationalResponse:
            raise RemoteProtocolError(f"malformed response head: h11 returned {event!r}")
        if _CONTROL_RE.search(raw) is not None:
            raise RemoteProtocolError("control character in the response head")
        lengths = _CONTENT_LENGTH_RE.findall(raw)  # (case-insensitive, as field names are: cOnTeNt-LeNgTh too)
        if len(lengths) > 1:
            raise RemoteProtocolError("more than one Content-Length field: the body length is ambiguous")
        if lengths and not lengths[0].rstrip(b" \t").isdigit():
            raise RemoteProtocolError(f"invalid Content-Length {lengths[0]!r}")
        return event.status_code, event.reason, event.headers.raw_items()

    def _skip_body(self) -> None:
        event = self._next_event("end")
        if type(event) is not h11.EndOfMessage:  # pragma: no cover - h11 and we agree on bodiless responses
            raise RemoteProtocolError(f"h11 expected a body where none is allowed: {event!r}")

    def _feed_body(self, data: bytes) -> None:
        conn = self._h11
        conn.receive_data(data)
        events = self._events
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if self.state is DONE:  # garbage after the response (h11 saw it as "data after close")
                    self._note_extra(None, 1)
                    return
                raise RemoteProtocolError(f"malformed response body: {exc}") from exc
            if isinstance(event, h11.Data):
                events.append(Data(bytes(event.data)))
            elif event is h11.NEED_DATA:
                return
            elif isinstance(event, h11.EndOfMessage):
                self._end_message(event.headers.raw_items())
            elif event is h11.PAUSED:
                self._note_extra(conn.trailing_data[0])
                return
            else:  # pragma: no cover - h11 emits nothing else while a body is read
                raise RemoteProtocolError(f"unexpected {event!r} in a response body")

    def _next_cycle(self) -> None:
        self._h11 = self._new_h11()
