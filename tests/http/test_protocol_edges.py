"""RFC 9112 edge cases on which h11 and llhttp disagree: the policy layer decides, the same for every backend.

Each row is a response and what must come of it: the body and trailers, or a
RemoteProtocolError whose message says what was wrong. Every row runs with
every backend, fed whole and byte by byte. (Before the policy layer decided
these, the backends disagreed on 13 of them.) Also here: the response
side's state machine, a table of the moves it makes.
"""

from __future__ import annotations

import pytest
from test_protocol import BACKENDS, MODES, connect, fails, feed

from tasklets._exceptions import LocalProtocolError
from tasklets.http._events import TRANSITIONS
from tasklets.http._protocol import (
    Data,
    EndOfMessage,
    InformationalResponse,
    Response,
    State,
    available_backends,
    create_client_connection,
)

CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
FINAL = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

H = b"hello"
# name: (response, body, trailers)
ACCEPTED: dict[str, tuple[bytes, bytes, list[tuple[bytes, bytes]]]] = {
    # RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
    "BWS before ';'": (CHUNKED + b"5 ;a=b\r\nhello\r\n0\r\n\r\n", H, []),
    "BWS around ';' and '='": (CHUNKED + b"5\t; a = b ;c\r\nhello\r\n0 ; d\r\n\r\n", H, []),
    "quoted extension value": (CHUNKED + b'5;a="b; \\"c\\""\r\nhello\r\n0\r\n\r\n', H, []),
    # chunk-size = 1*HEXDIG: any number of leading zeros
    "last-chunk of 30 zeros": (CHUNKED + b"5\r\nhello\r\n" + b"0" * 30 + b"\r\n\r\n", H, []),
    "chunk-size padded with zeros": (CHUNKED + b"0" * 30 + b"5\r\nhello\r\n0\r\n\r\n", H, []),
    "hex digits in both cases": (
        CHUNKED + b"a\r\nhelloworld\r\n000A\r\nhelloworld\r\n0\r\n\r\n",
        H + b"world" + H + b"world",
        [],
    ),
    "trailers kept, OWS trimmed": (
        CHUNKED + b"5\r\nhello\r\n0\r\nX-A:  1 \r\nX-B:\t2\t\r\nX-C:\r\n\r\n",
        H,
        [(b"X-A", b"1"), (b"X-B", b"2"), (b"X-C", b"")],
    ),
    # 1xx responses frame nothing (RFC 9112 6.3): a Content-Length or chunked on one is no body
    "1xx with Content-Length": (b"HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\n" + FINAL, b"ok", []),
    "1xx with Transfer-Encoding": (
        b"HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\n\r\n" + FINAL,
        b"ok",
        [],
    ),
}

REFUSED: dict[str, tuple[bytes, str]] = {
    "whitespace after the size, no ';'": (CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n", "malformed chunk-size line"),
    "tab after the size, no ';'": (CHUNKED + b"5\t\r\nhello\r\n0\r\n\r\n", "malformed chunk-size line"),
    "';' without an extension name": (CHUNKED + b"5;\r\nhello\r\n0\r\n\r\n", "malformed chunk-size line"),
    "extension name with a space": (CHUNKED + b"5;a b\r\nhello\r\n0\r\n\r\n", "malformed chunk-size line"),
    "extension with '=' and no value": (CHUNKED + b"5;a=\r\nhello\r\n0\r\n\r\n", "malformed chunk-size line"),
    "unterminated quoted value": (CHUNKED + b'5;a="b\r\nhello\r\n0\r\n\r\n', "malformed chunk-size line"),
    "whitespace before the size": (CHUNKED + b" 5\r\nhello\r\n0\r\n\r\n", "malformed chunk-size line"),
    "0x prefix": (CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n", "malformed chunk-size line"),
    "size past 2**60": (CHUNKED + b"1" + b"0" * 15 + b"\r\n", "chunk size"),
    "bare LF after the size": (CHUNKED + b"5\nhello\r\n0\r\n\r\n", "malformed chunk-size line"),
    "bare LF after the data": (CHUNKED + b"5\r\nhello\n0\r\n\r\n", "expected CRLF after a chunk's data"),
    "bare LF after the last-chunk": (CHUNKED + b"5\r\nhello\r\n0\n\r\n", "malformed chunk-size line"),
    "bare LF in a trailer": (CHUNKED + b"5\r\nhello\r\n0\r\nX: y\n\r\n", "malformed trailer field"),
    "bare LF ending the trailers": (CHUNKED + b"5\r\nhello\r\n0\r\nX: y\r\n\n", "malformed trailer field"),
    "bare CR in a trailer": (CHUNKED + b"5\r\nhello\r\n0\r\nX: a\rb\r\n\r\n", "malformed trailer field"),
    "Content-Length in trailers": (
        CHUNKED + b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n",
        "Content-Length in the trailers",
    ),
    "Transfer-Encoding in trailers": (
        CHUNKED + b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "Transfer-Encoding in the trailers",
    ),
    "trailer without a colon": (CHUNKED + b"5\r\nhello\r\n0\r\nX-A\r\n\r\n", "malformed trailer field"),
    "trailer with space before the colon": (CHUNKED + b"5\r\nhello\r\n0\r\nX-A : 1\r\n\r\n", "malformed trailer field"),
    "escape in a trailer": (CHUNKED + b"5\r\nhello\r\n0\r\nX-A: \x1b[2J\r\n\r\n", "malformed trailer field"),
    "1xx with Content-Length and Transfer-Encoding": (
        b"HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + FINAL,
        "",
    ),
    "1xx with two Content-Lengths": (
        b"HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n" + FINAL,
        "",
    ),
    # Control characters anywhere in the head (defect 5: llhttp let them pass in the reason phrase).
    "escapes in the reason phrase": (
        b"HTTP/1.1 500 \x1b[2J\x1b[31mPWNED\x1b]0;title\x07\r\nContent-Length: 0\r\n\r\n",
        "",
    ),
    "DEL in the reason phrase": (b"HTTP/1.1 500 a\x7fb\r\nContent-Length: 0\r\n\r\n", ""),
    "escape in a field value": (b"HTTP/1.1 200 OK\r\nX-A: \x1b[2J\r\nContent-Length: 0\r\n\r\n", ""),
    "escape in a field name": (b"HTTP/1.1 200 OK\r\nX\x1b[2J: a\r\nContent-Length: 0\r\n\r\n", ""),
    "escape in a 1xx reason phrase": (b"HTTP/1.1 103 \x1b]0;x\x07\r\n\r\n" + FINAL, ""),
}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param not in available_backends():
        pytest.skip(f"{request.param} is not installed")
    return request.param


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted(backend: str, mode: str, name: str) -> None:
    data, body, trailers = ACCEPTED[name]
    events = feed(connect(backend), data, mode)
    events = [event for event in events if not isinstance(event, InformationalResponse)]
    assert isinstance(events[0], Response)
    assert events[1:] == [Data(body), EndOfMessage(trailers)]


@pytest.mark.parametrize("name", REFUSED)
def test_refused(backend: str, mode: str, name: str) -> None:
    data, message = REFUSED[name]
    fails(connect(backend), data, mode, match=message or None)


@pytest.mark.parametrize("name", REFUSED)
def test_refusal_messages_carry_no_control_characters(backend: str, name: str) -> None:
    """What a server sent reaches an error message escaped (repr), never raw: it may end up on a terminal."""
    data, _ = REFUSED[name]
    conn = connect(backend)
    with pytest.raises(Exception) as caught:
        conn.feed(data)
        conn.feed_eof()
    assert not any(ord(c) < 32 or ord(c) == 127 for c in str(caught.value)), repr(str(caught.value))


# -- the state machine, as data ----------------------------------------------------------------------------


def test_every_state_is_reachable_and_closed_is_final() -> None:
    seen, todo = {State.IDLE}, [State.IDLE]
    while todo:
        for nxt in TRANSITIONS[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen == set(State) - {State.ERROR}
    assert TRANSITIONS[State.CLOSED] == TRANSITIONS[State.ERROR] == frozenset()


def test_a_move_outside_the_table_is_refused_naming_both_states(backend: str) -> None:
    conn = create_client_connection(backend=backend)
    with pytest.raises(LocalProtocolError, match=r"cannot go from IDLE to DONE \(from IDLE: CLOSED, RECV_HEAD\)"):
        conn._move(State.DONE)
    assert conn.state is State.IDLE


@pytest.mark.parametrize(
    ("response", "method", "path"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET", ["RECV_HEAD", "RECV_BODY", "DONE", "IDLE"]),
        (b"HTTP/1.1 204 No Content\r\n\r\n", "GET", ["RECV_HEAD", "DONE", "IDLE"]),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nok", "GET", ["RECV_HEAD", "RECV_BODY", "DONE", "CLOSED"]),
        (b"HTTP/1.1 200 Connection Established\r\n\r\n", "CONNECT", ["RECV_HEAD", "SWITCHED", "CLOSED"]),
    ],
)
def test_exchanges_walk_the_table(backend: str, response: bytes, method: str, path: list[str]) -> None:
    conn = create_client_connection(backend=backend)
    walked = []
    move = conn._move

    def record(to: State) -> None:
        move(to)
        walked.append(to.name)

    conn._move = record  # type: ignore[method-assign]
    conn.send_request(method, "example.com:443" if method == "CONNECT" else "/", [("Host", "example.com")])
    conn.send_end()
    conn.feed(response)
    if conn.can_reuse():
        conn.start_next_cycle()
    else:
        conn.feed_eof()
    assert walked == path
