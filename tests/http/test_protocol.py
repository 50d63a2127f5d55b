"""The sans-IO HTTP/1.1 client protocol, with every backend, fed whole, byte by byte, and with trailing data."""

from __future__ import annotations

import sys
import urllib.error

import pytest

from tasklets._exceptions import LocalProtocolError, ProtocolError, RemoteDisconnected, RemoteProtocolError
from tasklets.http import Headers, _protocol, check_request
from tasklets.http._protocol import (
    ClientConnection,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Limits,
    Response,
    State,
    available_backends,
    create_client_connection,
)

BACKENDS = ["h11", "httptools"]
MODES = ["whole", "bytewise"]
GARBAGE = b"HTTP/1.1 200 OK\r\nX-Not-Asked-For: 1\r\n\r\n"


@pytest.fixture(autouse=True)
def no_leaked_fds() -> None:
    """Overrides the directory's descriptor-leak check: pure bytes here, and its gc.collect() costs 0.1 s a test."""


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param not in available_backends():
        pytest.skip(f"{request.param} is not installed")
    return request.param


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def connect(
    backend: str, method: str = "GET", headers: list[tuple[str, str]] | None = None, **limits: int
) -> ClientConnection:
    conn = create_client_connection(backend=backend, **limits)
    conn.send_request(method, "/", [("Host", "example.com"), *(headers or [])])
    conn.send_end()
    return conn


def feed(conn: ClientConnection, data: bytes, mode: str) -> list[Event]:
    """Feed ``data`` whole or one byte at a time; return the events with Data pieces merged."""
    events: list[Event] = []
    if mode == "whole":
        events += conn.feed(data)
    else:
        for i in range(len(data)):
            events += conn.feed(data[i : i + 1])
    return merge(events)


def merge(events: list[Event]) -> list[Event]:
    merged: list[Event] = []
    for event in events:
        if isinstance(event, Data) and merged and isinstance(merged[-1], Data):
            merged[-1] = Data(merged[-1].data + event.data)
        elif isinstance(event, Data) and not event.data:
            continue
        else:
            merged.append(event)
    return merged


def fails(
    conn: ClientConnection,
    data: bytes,
    mode: str,
    exc: type[Exception] = RemoteProtocolError,
    match: str | None = None,
) -> int:
    """Feed ``data`` and expect ``exc``, its message matching ``match``; return how many bytes had been fed then."""
    fed = 0
    with pytest.raises(exc, match=match) as info:
        if mode == "whole":
            fed = len(data)
            conn.feed(data)
        else:
            for i in range(len(data)):
                fed = i + 1
                conn.feed(data[i : i + 1])
        fed = -1
        conn.feed_eof()
    assert type(info.value) is exc  # not a subclass: every backend raises the same types
    assert conn.state is State.ERROR
    assert str(info.value)  # a message for people
    return fed


# -- good responses ----------------------------------------------------------------------------

CL_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
    b"5;name=value;flag\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 42\r\nX-Other:  two  \r\n\r\n"
)


def test_content_length(backend: str, mode: str) -> None:
    conn = connect(backend)
    assert feed(conn, CL_RESPONSE, mode) == [
        Response(200, b"OK", [(b"Content-Type", b"text/plain"), (b"Content-Length", b"5")], 11),
        Data(b"hello"),
        EndOfMessage(),
    ]
    assert conn.state is State.DONE and conn.can_reuse()


def test_chunked_with_extensions_and_trailers(backend: str, mode: str) -> None:
    conn = connect(backend)
    events = feed(conn, CHUNKED_RESPONSE, mode)
    assert events == [
        Response(200, b"OK", [(b"Transfer-Encoding", b"chunked"), (b"Trailer", b"X-Sum")], 11),
        Data(b"hello, world"),
        EndOfMessage([(b"X-Sum", b"42"), (b"X-Other", b"two")]),
    ]
    assert conn.can_reuse()


def test_close_delimited_body_ends_at_eof(backend: str, mode: str) -> None:
    conn = connect(backend)
    events = feed(conn, b"HTTP/1.1 200 OK\r\nServer: old\r\n\r\nuntil the ", mode)
    events = merge(events + feed(conn, b"end", mode))
    assert events == [Response(200, b"OK", [(b"Server", b"old")], 11), Data(b"until the end")]
    assert conn.feed_eof() == [EndOfMessage()]
    assert conn.state is State.CLOSED and not conn.can_reuse()
    with pytest.raises(LocalProtocolError, match="closed"):
        conn.start_next_cycle()


def test_head_response_has_no_body(backend: str, mode: str) -> None:
    conn = connect(backend, "HEAD")
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    assert feed(conn, head, mode) == [Response(200, b"OK", [(b"Content-Length", b"1234")], 11), EndOfMessage()]
    assert conn.can_reuse()
    conn.start_next_cycle()  # the parser must not wait for 1234 bytes now
    conn.send_request("GET", "/", [("Host", "example.com")])
    conn.send_end()
    assert feed(conn, CL_RESPONSE, mode)[1:] == [Data(b"hello"), EndOfMessage()]


def test_head_response_with_chunked_framing_has_no_body(backend: str, mode: str) -> None:
    conn = connect(backend, "HEAD")
    events = feed(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", mode)
    assert events[1:] == [EndOfMessage()]
    conn.start_next_cycle()
    conn.send_request("GET", "/", [("Host", "example.com")])
    conn.send_end()
    assert feed(conn, CHUNKED_RESPONSE, mode)[1] == Data(b"hello, world")


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 204 No Content\r\nDate: today\r\n\r\n",
        b'HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: "x"\r\n\r\n',
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ],
)
def test_responses_without_body(backend: str, mode: str, head: bytes) -> None:
    conn = connect(backend)
    events = feed(conn, head, mode)
    assert isinstance(events[0], Response) and events[1:] == [EndOfMessage()]
    conn.start_next_cycle()
    conn.send_request("GET", "/", [("Host", "example.com")])
    conn.send_end()
    assert feed(conn, CL_RESPONSE, mode)[1:] == [Data(b"hello"), EndOfMessage()]


def test_100_continue_then_final_response(backend: str, mode: str) -> None:
    conn = create_client_connection(backend=backend)
    conn.send_request("PUT", "/up", [("Host", "h"), ("Expect", "100-continue"), ("Content-Length", "3")])
    events = feed(conn, b"HTTP/1.1 100 Continue\r\n\r\n", mode)
    assert events == [InformationalResponse(100, b"Continue", [])]
    conn.send_body(b"abc")
    conn.send_end()
    events = feed(conn, b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n" + CL_RESPONSE, mode)
    assert events == [
        InformationalResponse(103, b"Early Hints", [(b"Link", b"</s.css>")]),
        Response(200, b"OK", [(b"Content-Type", b"text/plain"), (b"Content-Length", b"5")], 11),
        Data(b"hello"),
        EndOfMessage(),
    ]
    assert conn.can_reuse()


def test_informational_and_final_in_one_piece(backend: str, mode: str) -> None:
    conn = connect(backend)
    events = feed(conn, b"HTTP/1.1 100 Continue\r\n\r\n" * 10 + CL_RESPONSE, mode)
    assert [type(e) for e in events] == [InformationalResponse] * 10 + [Response, Data, EndOfMessage]


def test_repeated_headers_keep_order_and_case(backend: str, mode: str) -> None:
    conn = connect(backend)
    head = (
        b"HTTP/1.1 200 Fine\r\nSet-Cookie: a=1\r\nx-lower: v\r\nSet-Cookie: b=2\r\nVary: A\r\n"
        b"VARY: B\r\nX-Empty:\r\nX-Space:   padded value \t\r\nContent-Length: 0\r\n\r\n"
    )
    assert feed(conn, head, mode)[0] == Response(
        200,
        b"Fine",
        [
            (b"Set-Cookie", b"a=1"),
            (b"x-lower", b"v"),
            (b"Set-Cookie", b"b=2"),
            (b"Vary", b"A"),
            (b"VARY", b"B"),
            (b"X-Empty", b""),
            (b"X-Space", b"padded value"),
            (b"Content-Length", b"0"),
        ],
        11,
    )


def test_status_line_without_reason(backend: str, mode: str) -> None:
    conn = connect(backend)
    assert feed(conn, b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", mode)[0] == Response(
        200, b"", [(b"Content-Length", b"0")], 11
    )


@pytest.mark.parametrize(
    ("head", "reusable"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", True),
    ],
)
def test_keep_alive_rules(backend: str, mode: str, head: bytes, reusable: bool) -> None:
    conn = connect(backend)
    event = feed(conn, head, mode)[0]
    assert isinstance(event, Response) and event.version == int(head[5:8].replace(b".", b""))
    assert conn.can_reuse() is reusable
    if not reusable:
        with pytest.raises(LocalProtocolError, match="cannot be reused"):
            conn.start_next_cycle()


def test_request_connection_close_is_not_reused(backend: str) -> None:
    conn = connect(backend, headers=[("Connection", "close")])
    conn.feed(CL_RESPONSE)
    assert not conn.can_reuse()


def test_many_exchanges_on_one_connection(backend: str) -> None:
    conn = create_client_connection(backend=backend)
    for i in range(5):
        conn.send_request("GET", f"/{i}", [("Host", "h")])
        conn.send_end()
        response = CL_RESPONSE if i % 2 else CHUNKED_RESPONSE
        events = feed(conn, response[: 7 * i + 1], "whole") + feed(conn, response[7 * i + 1 :], "whole")
        assert isinstance(events[-1], EndOfMessage)
        assert conn.can_reuse()
        conn.start_next_cycle()
        assert conn.state is State.IDLE


def test_request_not_finished_is_not_reusable(backend: str) -> None:
    conn = create_client_connection(backend=backend)
    conn.send_request("POST", "/", [("Host", "h")], has_body=True)
    conn.feed(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")
    assert not conn.can_reuse()
    with pytest.raises(LocalProtocolError, match="send_end"):
        conn.start_next_cycle()


def test_connect_2xx_switches_protocols(backend: str, mode: str) -> None:
    conn = create_client_connection(backend=backend)
    conn.send_request("CONNECT", "example.com:443", [("Host", "example.com:443")])
    conn.send_end()
    data = b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01tls bytes"
    events = feed(conn, data, mode)
    assert events == [Response(200, b"Connection established", [], 11)]
    assert conn.state is State.SWITCHED and not conn.can_reuse()
    assert conn.trailing_data == b"\x16\x03\x01tls bytes"


def test_connect_refused_has_a_body(backend: str, mode: str) -> None:
    conn = create_client_connection(backend=backend)
    conn.send_request("CONNECT", "example.com:443", [("Host", "example.com:443")])
    conn.send_end()
    events = feed(conn, b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\nno", mode)
    assert events[1:] == [Data(b"no"), EndOfMessage()]


def test_101_switches_only_when_asked(backend: str, mode: str) -> None:
    data = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframes"
    conn = connect(backend, headers=[("Upgrade", "websocket"), ("Connection", "Upgrade")])
    assert feed(conn, data, mode)[0].status == 101  # type: ignore[union-attr]
    assert conn.state is State.SWITCHED and conn.trailing_data == b"frames"
    fails(connect(backend), data, mode)


# -- bad input ---------------------------------------------------------------------------------

MALFORMED_STATUS_LINES = [
    b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.x 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    b"http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"ICE/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"\r\n\r\n",
]


@pytest.mark.parametrize("data", MALFORMED_STATUS_LINES)
@pytest.mark.parametrize("trailing", [b"", b"hello" + GARBAGE])
def test_malformed_status_line(backend: str, mode: str, data: bytes, trailing: bytes) -> None:
    fails(connect(backend), data + trailing, mode)


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)), "TLS"),
        (b"\x15\x03\x03\x00\x02\x02\x46", "TLS"),
        (b"\x00\x00\x12\x04\x00\x00\x00\x00\x00", "HTTP/2"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "HTTP/1.x"),
        (bytes(range(255, 0, -1)), "HTTP/1.x"),
    ],
)
def test_binary_or_tls_where_http_was_expected(backend: str, mode: str, data: bytes, hint: str) -> None:
    conn = connect(backend)
    with pytest.raises(RemoteProtocolError, match=hint):
        feed(conn, data + GARBAGE, mode)
    # Rejected on the first byte that cannot start "HTTP/", not after buffering.
    assert fails(connect(backend), data, "bytewise") <= 5


def test_header_line_limit(backend: str, mode: str) -> None:
    ok = b"HTTP/1.1 200 OK\r\nX: " + b"a" * 97 + b"\r\nContent-Length: 0\r\n\r\n"  # a 100-byte line
    assert feed(connect(backend, max_line_size=100), ok, mode)[-1] == EndOfMessage()
    too_long = ok.replace(b"X: ", b"X:  ")
    fails(connect(backend, max_line_size=100), too_long + GARBAGE, mode)


def test_header_line_limit_without_end(backend: str) -> None:
    # One endless line, byte by byte: rejected as soon as it passes the limit.
    fed = fails(connect(backend, max_line_size=100), b"HTTP/1.1 200 OK\r\nX: " + b"a" * 10_000, "bytewise")
    assert fed <= len(b"HTTP/1.1 200 OK\r\n") + 102


def test_status_line_limit(backend: str, mode: str) -> None:
    fails(connect(backend, max_line_size=100), b"HTTP/1.1 200 " + b"O" * 100 + b"\r\n\r\n", mode)


def test_header_block_limit(backend: str, mode: str) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%02d: %s\r\n" % (i, b"v" * 40) for i in range(30)) + b"\r\n"
    assert len(head) > 1000
    fed = fails(connect(backend, max_header_size=1000), head + b"body" + GARBAGE, mode)
    if mode == "bytewise":
        assert fed == 1001  # buffering stopped at the limit
    exact = connect(backend, max_header_size=len(head))
    assert isinstance(feed(exact, head, mode)[0], Response)


def test_header_block_limit_without_end(backend: str) -> None:
    endless = b"HTTP/1.1 200 OK\r\n" + (b"X: " + b"y" * 1000 + b"\r\n") * 99
    assert fails(connect(backend), endless, "bytewise") == Limits().max_header_size + 1
    assert fails(connect(backend), endless, "whole") == len(endless)


def test_too_many_headers(backend: str, mode: str) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 9 + b"Content-Length: 0\r\n\r\n"
    assert feed(connect(backend, max_headers=10), head, mode)[-1] == EndOfMessage()
    fails(connect(backend, max_headers=10), head.replace(b"X: y\r\n", b"X: y\r\nZ: z\r\n", 1) + GARBAGE, mode)


def test_too_many_headers_default_limit(backend: str, mode: str) -> None:
    fails(connect(backend), b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", mode)


@pytest.mark.parametrize(
    "field",
    [b"X: a\x00b", b"X: a\rb", b"X: a\nb", b"X: a\r\rb", b"X\x00: a", b"X\r: a", b"X: \x7fa\x01"],
)
def test_control_characters_in_headers(backend: str, mode: str, field: bytes) -> None:
    fails(connect(backend), b"HTTP/1.1 200 OK\r\n" + field + b"\r\nContent-Length: 0\r\n\r\n" + GARBAGE, mode)


def test_bare_lf_line_endings(backend: str, mode: str) -> None:
    fails(connect(backend), b"HTTP/1.1 200 OK\nContent-Length: 0\n\n" + GARBAGE, mode)


@pytest.mark.parametrize("fold", [b"X: a\r\n b", b"X: a\r\n\tb", b" X: a"])
def test_obs_fold_is_rejected(backend: str, mode: str, fold: bytes) -> None:
    fails(connect(backend), b"HTTP/1.1 200 OK\r\n" + fold + b"\r\nContent-Length: 0\r\n\r\n" + GARBAGE, mode)


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: 5\r\nContent-Length: 6",
        b"Content-Length: 5, 6",
        b"Content-Length: 5\r\ncontent-length: 5",  # identical duplicates: rejected too (as llhttp does)
        b"Content-Length: 5, 5",
        b"cOnTeNt-LeNgTh: 5\r\nCONTENT-length: 5",  # names in any case
        b"cOnTeNt-LeNgTh: 5, 5",
        b"Content-Length: -5",
        b"Content-Length: +5",
        b"Content-Length: 0x5",
        b"Content-Length: 5 5",
        b"Content-Length: 99999999999999999999999",
    ],
)
def test_bad_content_length(backend: str, mode: str, fields: bytes) -> None:
    fails(connect(backend), b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n\r\nhello" + GARBAGE, mode)


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5",
    ],
)
def test_content_length_with_transfer_encoding_is_rejected(backend: str, mode: str, fields: bytes) -> None:
    # RFC 9112 6.3: a smuggling hazard; a client may treat it as an error, and we do.
    data = b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    fails(connect(backend), data + GARBAGE, mode)


@pytest.mark.parametrize("coding", [b"gzip", b"gzip, chunked", b"chunked, chunked", b"identity"])
def test_unsupported_transfer_encoding(backend: str, mode: str, coding: bytes) -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + coding + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    fails(connect(backend), data + GARBAGE, mode)


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "body",
    [
        b"xyz\r\nhello\r\n0\r\n\r\n",  # not hex
        b"-5\r\nhello\r\n0\r\n\r\n",  # negative
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"f" * 32 + b"\r\nhello\r\n0\r\n\r\n",  # overflow
        b"\r\nhello\r\n0\r\n\r\n",  # empty size
        b"5\r\nhelloXX0\r\n\r\n",  # bad terminator after the data
        b"5\r\nhello\n0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",  # bare LF after the size
        b"3\r\nhello\r\n0\r\n\r\n",  # data longer than the size
        b"5\r\nhello\r\n0\r\nX: a\x00b\r\n\r\n",  # bad trailers: NUL, other control characters
        b"5\r\nhello\r\n0\r\nX: a\x01b\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX: a\x7fb\r\n\r\n",
    ],
)
def test_bad_chunks(backend: str, mode: str, body: bytes) -> None:
    fails(connect(backend), CHUNKED_HEAD + body + GARBAGE, mode)


@pytest.mark.parametrize("fold", [b"X: a\r\n b", b"X: a\r\n\tb\r\nY: c", b"X: a\r\n \r\nY: c", b" X: a"])
def test_folded_trailer(backend: str, mode: str, fold: bytes) -> None:
    # h11 would unfold it (as RFC 9112 5.2 tells a user agent to): trailers are decoded by the policy layer, which
    # refuses it for both backends, with one message.
    data = CHUNKED_HEAD + b"5\r\nhello\r\n0\r\n" + fold + b"\r\n\r\n" + GARBAGE
    fed = fails(connect(backend), data, mode, match=r"^obsolete line folding \(a trailer field continued")
    assert 0 < fed <= (len(data) if mode == "whole" else len(data) - len(GARBAGE))  # not at EOF, nor after


def test_chunk_data_like_a_folded_line_is_data(backend: str, mode: str) -> None:
    # Only trailer lines are checked: the same bytes in a chunk are the body's.
    body = b"a\r\nX: a\r\n b\r\n\r\n"
    data = CHUNKED_HEAD + b"%x\r\n" % len(body) + body + b"\r\n0\r\nT: 1\r\n\r\n"
    assert feed(connect(backend), data, mode)[1:] == [Data(body), EndOfMessage([(b"T", b"1")])]


def test_too_many_trailers(backend: str, mode: str) -> None:
    body = b"0\r\n" + b"T: x\r\n" * 11 + b"\r\n"
    fails(connect(backend, max_headers=10), CHUNKED_HEAD + body, mode)


def test_trailer_line_limit_byte_by_byte(backend: str) -> None:
    # An endless trailer field must not be buffered without bound.
    data = CHUNKED_HEAD + b"5\r\nhello\r\n0\r\nX: " + b"a" * 200_000
    fed = fails(connect(backend, max_line_size=1000, max_header_size=2000), data, "bytewise")
    assert fed < len(CHUNKED_HEAD) + 2100


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", RemoteDisconnected),
        (b"HTTP/1.1 200 OK\r\nContent-Len", RemoteProtocolError),
        (b"HTTP/1.1 100 Continue\r\n\r\n", RemoteProtocolError),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", RemoteProtocolError),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", RemoteProtocolError),
        (CHUNKED_HEAD + b"5\r\nhel", RemoteProtocolError),
        (CHUNKED_HEAD + b"5\r\nhello\r\n", RemoteProtocolError),
        (CHUNKED_HEAD + b"5\r\nhello\r\n0\r\n", RemoteProtocolError),
    ],
)
def test_eof_before_the_end(backend: str, mode: str, data: bytes, expected: type[Exception]) -> None:
    conn = connect(backend)
    if data:
        feed(conn, data, mode)
    with pytest.raises(expected) as info:
        conn.feed_eof()
    assert type(info.value) is expected
    assert conn.state is State.ERROR


def test_short_body_message_says_how_short(backend: str) -> None:
    conn = connect(backend)
    conn.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
    with pytest.raises(RemoteProtocolError, match="after 5 of 10 body bytes"):
        conn.feed(b"")


@pytest.mark.parametrize(
    ("method", "response"),
    [
        ("GET", CL_RESPONSE),
        ("GET", CHUNKED_RESPONSE),
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
    ],
)
@pytest.mark.parametrize("extra", [GARBAGE, b"hello", b"\x00"])
def test_extra_bytes_after_a_response(backend: str, mode: str, method: str, response: bytes, extra: bytes) -> None:
    conn = connect(backend, method)
    clean = feed(connect(backend, method), response, mode)
    # The response itself is complete and correct...
    assert feed(conn, response + extra, mode) == clean
    # ...but the connection carries garbage: never reuse it.
    assert not conn.can_reuse()
    with pytest.raises(RemoteProtocolError, match="after the end of the response") as info:
        conn.start_next_cycle()
    if "chunked" not in response.decode():
        assert f"{len(extra)} bytes" in str(info.value)


def test_stray_crlf_after_a_response(backend: str, mode: str) -> None:
    conn = connect(backend)
    feed(conn, CL_RESPONSE + b"\r\n", mode)
    assert not conn.can_reuse()


def test_extra_bytes_arriving_later(backend: str) -> None:
    conn = connect(backend)
    conn.feed(CL_RESPONSE)
    assert conn.can_reuse()
    assert conn.feed(b"surprise") == []
    assert not conn.can_reuse()
    with pytest.raises(RemoteProtocolError):
        conn.start_next_cycle()


def test_endless_informational_responses(backend: str, mode: str) -> None:
    conn = connect(backend, max_informational=10)
    events = feed(conn, b"HTTP/1.1 100 Continue\r\n\r\n" * 10, mode)
    assert len(events) == 10
    with pytest.raises(RemoteProtocolError, match="informational"):
        feed(conn, b"HTTP/1.1 102 Processing\r\n\r\n" + CL_RESPONSE, mode)
    fails(connect(backend), b"HTTP/1.1 103 Early Hints\r\nLink: <x>\r\n\r\n" * 1000, mode)


def test_data_before_a_request(backend: str) -> None:
    conn = create_client_connection(backend=backend)
    with pytest.raises(RemoteProtocolError, match="before any request"):
        conn.feed(CL_RESPONSE)


def test_feed_after_an_error_is_refused(backend: str) -> None:
    conn = connect(backend)
    with pytest.raises(RemoteProtocolError):
        conn.feed(b"\x16\x03\x01")
    with pytest.raises(LocalProtocolError, match="ERROR"):
        conn.feed(CL_RESPONSE)


# -- requests ----------------------------------------------------------------------------------


def test_request_bytes(backend: str) -> None:
    conn = create_client_connection(backend=backend)
    head = conn.send_request("GET", "/a?b=c", [("Host", "example.com"), (b"Accept", b"*/*"), ("X-Pad", "  v  ")])
    assert head == b"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Pad: v\r\n\r\n"
    assert conn.send_end() == b""
    with pytest.raises(LocalProtocolError, match="one request at a time"):
        conn.send_request("GET", "/", [("Host", "h")])


def test_request_with_content_length(backend: str) -> None:
    conn = create_client_connection(backend=backend)
    conn.send_request("POST", "/", [("Host", "h"), ("Content-Length", "5")])
    assert conn.send_body(b"hel") == b"hel"
    with pytest.raises(LocalProtocolError, match="too much body"):
        conn.send_body(b"world")
    with pytest.raises(LocalProtocolError, match="too short"):
        conn.send_end()
    assert conn.send_body(b"lo") + conn.send_end() == b"lo"


def test_request_chunked_when_no_length(backend: str) -> None:
    conn = create_client_connection(backend=backend)
    head = conn.send_request("POST", "/", [("Host", "h")], has_body=True)
    assert head.endswith(b"Transfer-Encoding: chunked\r\n\r\n")
    assert conn.send_body(b"") == b""
    assert conn.send_body(b"hello world, 16!") == b"10\r\nhello world, 16!\r\n"
    assert conn.send_end([("X-Sum", "1")]) == b"0\r\nX-Sum: 1\r\n\r\n"


def test_request_without_body_refuses_data(backend: str) -> None:
    conn = create_client_connection(backend=backend)
    conn.send_request("GET", "/", [("Host", "h")])
    with pytest.raises(LocalProtocolError, match="has_body"):
        conn.send_body(b"x")
    with pytest.raises(LocalProtocolError, match="chunked"):
        conn.send_end([("X", "y")])


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        ("GET\r\nX: y", "/", [("Host", "h")]),
        ("GET /", "/", [("Host", "h")]),
        ("GET", "/ HTTP/1.1\r\nX-Injected: 1", [("Host", "h")]),
        ("GET", "/a b", [("Host", "h")]),
        ("GET", "/\x00", [("Host", "h")]),
        ("GET", "/caf\u00e9", [("Host", "h")]),
        ("GET", "", [("Host", "h")]),
        ("GET", "/", [("Host", "h"), ("X-A\r\nX-B", "v")]),
        ("GET", "/", [("Host", "h"), ("X-A: b", "v")]),
        ("GET", "/", [("Host", "h"), ("", "v")]),
        ("GET", "/", [("Host", "h"), ("X", "a\r\nSet-Cookie: evil")]),
        ("GET", "/", [("Host", "h"), ("X", "a\nb")]),
        ("GET", "/", [("Host", "h"), ("X", "a\rb")]),
        ("GET", "/", [("Host", "h"), ("X", "a\x00b")]),
        ("GET", "/", [("Host", "h"), ("X", "\u20ac")]),
        ("GET", "/", [("Host", "h\r\nX: y")]),
        ("GET", "/", []),
        ("GET", "/", [("Host", "h"), ("Host", "i")]),
        ("POST", "/", [("Host", "h"), ("Content-Length", "5"), ("Transfer-Encoding", "chunked")]),
        ("POST", "/", [("Host", "h"), ("Content-Length", "5"), ("Content-Length", "5")]),
        ("POST", "/", [("Host", "h"), ("Content-Length", "-1")]),
        ("POST", "/", [("Host", "h"), ("Transfer-Encoding", "gzip")]),
    ],
)
def test_bad_requests_are_refused_before_any_byte(
    backend: str, method: str, target: str, headers: list[tuple[str, str]]
) -> None:
    conn = create_client_connection(backend=backend)
    with pytest.raises(LocalProtocolError):
        conn.send_request(method, target, headers)
    # Nothing was produced and the connection is still usable.
    assert conn.state is State.IDLE
    assert conn.send_request("GET", "/", [("Host", "h")]).startswith(b"GET / HTTP/1.1\r\n")


def test_headers_may_be_any_iterable(backend: str) -> None:
    conn = create_client_connection(backend=backend)
    with pytest.raises(LocalProtocolError, match="control character"):
        conn.send_request("GET", "/", iter([("Host", "h"), ("X", "a\nb")]))
    assert conn.send_request("GET", "/", (pair for pair in [("Host", "h")])) == b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"


def test_bad_trailers_are_refused(backend: str) -> None:
    conn = create_client_connection(backend=backend)
    conn.send_request("POST", "/", [("Host", "h")], has_body=True)
    with pytest.raises(LocalProtocolError):
        conn.send_end([("X", "a\r\nb")])


# -- errors and backends -----------------------------------------------------------------------


def test_error_classes() -> None:
    assert issubclass(RemoteProtocolError, ProtocolError) and issubclass(LocalProtocolError, ProtocolError)
    assert issubclass(ProtocolError, urllib.error.URLError)
    assert issubclass(LocalProtocolError, ValueError)  # as http.client raises for a bad header
    assert issubclass(RemoteDisconnected, RemoteProtocolError)
    error = RemoteProtocolError("bad chunk")
    assert str(error) == "bad chunk" and error.reason == "bad chunk"


def test_auto_backend_prefers_httptools_and_falls_back_to_h11(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = "httptools" if "httptools" in available_backends() else "h11"
    assert create_client_connection().backend == expected
    monkeypatch.setattr(_protocol, "_BACKENDS", {})
    monkeypatch.setitem(sys.modules, "httptools", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "tasklets.http._httptools_backend", raising=False)
    assert create_client_connection().backend == "h11"
    assert available_backends() == ["h11"]
    with pytest.raises(ImportError):
        create_client_connection(backend="httptools")


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown HTTP parser backend"):
        create_client_connection(backend="picohttpparser")


def test_limits_by_keyword() -> None:
    conn = create_client_connection(backend="h11", max_headers=7)
    assert conn.limits == Limits(max_headers=7)


# -- any split, either backend: the same events --------------------------------------------------

CORPUS = [
    ("GET", CL_RESPONSE),
    ("GET", CHUNKED_RESPONSE),
    ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
    ("GET", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Hints\r\nLink: x\r\n\r\n" + CL_RESPONSE),
    ("GET", b"HTTP/1.1 204 No Content\r\nX: 1\r\n\r\n"),
    ("GET", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc"),
    ("GET", b"HTTP/1.1 200 OK\r\n\r\n" + bytes(range(256)) * 4),
    ("GET", CHUNKED_HEAD + b"1\r\na\r\n10\r\n" + b"b" * 16 + b"\r\n0\r\n\r\n"),
]


def exchange(backend: str, method: str, data: bytes, cuts: list[int]) -> tuple[list[Event], bool]:
    conn = connect(backend, method)
    events: list[Event] = []
    for start, stop in zip([0, *cuts], [*cuts, len(data)]):
        events += conn.feed(data[start:stop])
    if conn.state is State.RECV_BODY:
        events += conn.feed_eof()
    return merge(events), conn.can_reuse()


@pytest.mark.parametrize(("method", "data"), CORPUS)
def test_any_split_gives_the_same_events(method: str, data: bytes) -> None:
    import random

    rng = random.Random(data)
    expected = exchange("h11", method, data, [])
    for backend in available_backends():
        assert exchange(backend, method, data, []) == expected, backend
        for _ in range(20):
            cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6))))
            assert exchange(backend, method, data, cuts) == expected, (backend, cuts)


# -- body_left ------------------------------------------------------------------------------------------------


def test_body_left_counts_down_a_content_length_body(backend: str) -> None:
    conn = create_client_connection(backend=backend)
    assert conn.body_left is None
    conn.send_request("GET", "/", [("Host", "h")])
    conn.send_end()
    conn.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert conn.body_left == 7
    conn.feed(b"defg")
    assert conn.body_left == 3
    conn.feed(b"hij")
    assert conn.body_left is None  # complete


def test_body_left_is_none_for_a_chunked_body(backend: str) -> None:
    conn = create_client_connection(backend=backend)
    conn.send_request("GET", "/", [("Host", "h")])
    conn.send_end()
    conn.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert conn.body_left is None


def _receiving_a_body(backend: str, head: bytes) -> ClientConnection:
    conn = create_client_connection(backend=backend)
    conn.send_request("GET", "/", [("Host", "h")])
    conn.send_end()
    conn.feed(head)
    return conn


def test_take_body_counts_bytes_received_elsewhere_and_the_next_exchange_parses_afresh(backend: str) -> None:
    conn = _receiving_a_body(backend, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert conn.take_body(4) == []
    assert conn.body_left == 3
    assert conn.take_body(3) == [EndOfMessage()]
    assert conn.body_left is None and conn.can_reuse()
    conn.start_next_cycle()
    # The backend's parser never saw those 7 bytes: the next response must still parse.
    conn.send_request("GET", "/2", [("Host", "h")])
    conn.send_end()
    assert merge(conn.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) == [
        Response(200, b"OK", [(b"Content-Length", b"2")], 11),
        Data(b"ok"),
        EndOfMessage(),
    ]


def test_take_body_past_the_end_makes_the_connection_unusable(backend: str) -> None:
    conn = _receiving_a_body(backend, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    assert conn.take_body(11) == [EndOfMessage()]
    assert not conn.can_reuse()


@pytest.mark.parametrize(
    "head", [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"]
)
def test_take_body_is_only_for_a_content_length_body(backend: str, head: bytes) -> None:
    conn = _receiving_a_body(backend, head)
    with pytest.raises(LocalProtocolError, match="no Content-Length body"):
        conn.take_body(1)


def test_take_body_refuses_a_negative_count(backend: str) -> None:
    conn = _receiving_a_body(backend, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    with pytest.raises(ValueError, match="count >= 0"):
        conn.take_body(-1)


def test_check_request_is_public_and_refuses_what_the_client_would() -> None:
    """The CLI checks its --header options with the client's own check: one rule, one place."""
    check_request("GET", Headers([("X-Ok", "fine")]))
    with pytest.raises(LocalProtocolError, match="invalid method"):
        check_request("GE T", Headers())
    with pytest.raises(LocalProtocolError):
        check_request("GET", Headers([("X-Bad", "a\r\nInjected: yes")]))
