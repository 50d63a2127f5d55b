"""The h11 backend of the HTTP/1.1 client protocol: pure Python, the reference for correctness.

h11 serialises the request and parses each response head and each body but
a chunked one; the policy around it (head delimiting, chunked decoding,
limits, framing checks, EOF, keep-alive)
is in :mod:`._policy`, shared with the httptools backend. A fresh
``h11.Connection`` serves each exchange, so h11's own keep-alive rules (which
never reuse an HTTP/1.0 connection) do not override ours.
"""

from __future__ import annotations

import re

import h11

from .._exceptions import LocalProtocolError, RemoteProtocolError
from ._events import DONE, Data, Header, Limits
from ._policy import ClientConnection

__all__ = ["H11ClientConnection"]

# h11 folds repeated or comma-listed identical Content-Length fields into one;
# llhttp rejects them. The raw head is checked so both backends reject.
_CONTENT_LENGTH_RE = re.compile(rb"\ncontent-length[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
# h11 accepts control characters in field values; llhttp does not, and neither
# do we (NUL, CR and LF are refused before the head gets here).
_CONTROL_RE = re.compile(rb"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")


class H11ClientConnection(ClientConnection):
    """:class:`~._policy.ClientConnection` parsing with h11."""

    backend = "h11"

    def __init__(self, *, limits: Limits | None = None) -> None:
        super().__init__(limits=limits)
        self._h11 = self._new_h11()

    def _new_h11(self) -> h11.Connection:
        # Heads reach h11 whole (delimited and bounded by _head), and chunked
        # bodies never (_chunked decodes them), so h11 buffers nothing of its own.
        return h11.Connection(h11.CLIENT, max_incomplete_event_size=self._max_head)

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
