"""The protocol layer's vocabulary: response events, limits and connection states.

Split from ``_protocol`` (which re-exports every name here) so that the
state machine stays readable on its own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "CLOSED",
    "DEFAULT_LIMITS",
    "DONE",
    "ERROR",
    "IDLE",
    "RECV_BODY",
    "RECV_HEAD",
    "SWITCHED",
    "TRANSITIONS",
    "Data",
    "EndOfMessage",
    "Event",
    "Header",
    "InformationalResponse",
    "Limits",
    "Response",
    "State",
]

#: One header field: ``(name, value)`` as bytes, the name as the peer wrote it.
Header = tuple[bytes, bytes]


# -- events ------------------------------------------------------------------------------------
# Plain slotted records (not frozen: a frozen dataclass costs 3x more to build,
# and three are built per response). Treat them as read-only.


@dataclass(slots=True)
class InformationalResponse:
    """A 1xx response (``100 Continue``, ``103 Early Hints``); the final response follows."""

    status: int
    reason: bytes
    headers: list[Header]


@dataclass(slots=True)
class Response:
    """The final response's status line and headers.

    Attributes:
        status: the status code, 100-999 (101 only when the request asked for an Upgrade).
        reason: the reason phrase, possibly empty.
        headers: ``(name, value)`` bytes pairs in the order received.
        version: 11 for HTTP/1.1, 10 for HTTP/1.0 (as ``http.client`` counts).
    """

    status: int
    reason: bytes
    headers: list[Header]
    version: int


@dataclass(slots=True)
class Data:
    """A piece of the response body (transfer coding removed, content coding kept)."""

    data: bytes


@dataclass(slots=True)
class EndOfMessage:
    """The response body is complete; ``trailers`` holds the chunked trailer fields, if any."""

    trailers: list[Header] = field(default_factory=list)


Event = InformationalResponse | Response | Data | EndOfMessage


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a server may make us buffer or loop over.

    Each holds however the bytes are split, one byte at a time included.

    Attributes:
        max_line_size: longest status line, header or trailer line, CRLF excluded.
        max_header_size: largest response head (status line, headers and the
            blank line), and largest trailer section.
        max_headers: most header (or trailer) fields in one head.
        max_informational: most 1xx responses before the final one.
    """

    max_line_size: int = 32 * 1024
    max_header_size: int = 64 * 1024
    max_headers: int = 100
    max_informational: int = 10


DEFAULT_LIMITS = Limits()


class State(enum.Enum):
    """Where the response side of a :class:`ClientConnection` is."""

    IDLE = "IDLE"  #: no request in flight
    RECV_HEAD = "RECV_HEAD"  #: request sent; waiting for the (final) response head
    RECV_BODY = "RECV_BODY"  #: reading the response body
    DONE = "DONE"  #: the response is complete
    SWITCHED = "SWITCHED"  #: CONNECT 2xx or 101: the connection now carries another protocol
    CLOSED = "CLOSED"  #: the server closed its side (``feed_eof()``)
    ERROR = "ERROR"  #: a protocol error was raised; close the connection


IDLE = State.IDLE
RECV_HEAD = State.RECV_HEAD
RECV_BODY = State.RECV_BODY
DONE = State.DONE
SWITCHED = State.SWITCHED
CLOSED = State.CLOSED
ERROR = State.ERROR

#: The moves the response side makes, as data (h11's idea): one exchange at a
#: time, and nothing after CLOSED. ERROR, where any error leads, is not in it:
#: it is reached from anywhere and left for nowhere.
TRANSITIONS: dict[State, frozenset[State]] = {
    IDLE: frozenset({RECV_HEAD, CLOSED}),  # send_request(); EOF between exchanges
    RECV_HEAD: frozenset({RECV_BODY, DONE, SWITCHED}),  # a final head: a body, none, or another protocol
    RECV_BODY: frozenset({DONE}),  # the body's end
    DONE: frozenset({IDLE, CLOSED}),  # start_next_cycle(); EOF
    SWITCHED: frozenset({CLOSED}),
    CLOSED: frozenset(),
    ERROR: frozenset(),
}
