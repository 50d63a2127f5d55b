"""The stream conformance suite: every test runs over plain TCP, Unix sockets and TLS."""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import socket
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

import tasklets
from tasklets import Future
from tasklets.testing import VirtualClock

from ._support import TLSMaterial, open_pair, read_all, run

KINDS = ["tcp", "unix", "tls"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def with_pair(kind: str, tls: TLSMaterial, body: Any, *, clock: Any = None, **client_options: Any) -> Any:
    """Run ``body(pair)`` (a generator) between a connected client and server stream (both on one loop)."""

    def main() -> Any:
        pair = yield from open_pair(kind, tls, **client_options)
        try:
            return (yield from body(pair))
        finally:
            yield from pair.close()

    return run(main, clock=clock)


def test_echo_round_trip(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        yield pair.client.write(b"ping")
        assert (yield pair.server_side.read_exactly(4)) == b"ping"
        yield pair.server_side.write(b"pong!")
        return (yield pair.client.read_exactly(5))

    assert with_pair(kind, tls, body) == b"pong!"


def test_read_returns_what_is_there_up_to_max_bytes(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        yield pair.client.write(b"abcdef")
        got = yield pair.server_side.read_exactly(2)
        assert got == b"ab"
        rest = yield pair.server_side.read(3)
        assert rest == b"cde"
        # Buffered bytes come back in a future that is already done.
        buffered = pair.server_side.read(100)
        assert buffered.done()
        assert buffered.result() == b"f"

    with_pair(kind, tls, body)


def test_read_is_empty_at_eof_and_stays_so(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        yield pair.server_side.write(b"last words")
        pair.server_side.close()
        data = yield from read_all(pair.client)
        assert data == b"last words"
        assert (yield pair.client.read()) == b""
        assert (yield pair.client.read()) == b""
        assert pair.client.at_eof()

    with_pair(kind, tls, body)


def test_read_exactly_joins_small_writes(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        waiting = pair.server_side.read_exactly(10)
        for piece in (b"01", b"234", b"56789"):
            yield pair.client.write(piece)
        assert (yield waiting) == b"0123456789"
        assert (yield pair.server_side.read_exactly(0)) == b""

    with_pair(kind, tls, body)


def test_read_exactly_at_eof_carries_the_partial_data(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        yield pair.client.write(b"only7by")
        pair.client.close()
        with pytest.raises(tasklets.IncompleteReadError) as caught:
            yield pair.server_side.read_exactly(100)
        assert caught.value.partial == b"only7by"
        assert caught.value.expected == 100
        assert isinstance(caught.value, EOFError)

    with_pair(kind, tls, body)


def test_read_until_finds_separators_across_writes(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        line = pair.server_side.read_until(b"\r\n")
        for piece in (b"GET / HT", b"TP/1.1\r", b"\nHost: x\r\n\r\n"):
            yield pair.client.write(piece)
        assert (yield line) == b"GET / HTTP/1.1\r\n"
        assert (yield pair.server_side.read_until(b"\r\n")) == b"Host: x\r\n"
        assert (yield pair.server_side.read_until(b"\r\n")) == b"\r\n"

    with_pair(kind, tls, body)


def test_read_until_refuses_to_buffer_past_its_limit(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        yield pair.client.write(b"x" * 5000)
        with pytest.raises(tasklets.LimitOverrunError) as caught:
            yield pair.server_side.read_until(b"\n", limit=1000)
        assert caught.value.consumed == 1000
        # The bytes are still there, and the buffer did not grow unbounded.
        assert len(pair.server_side._buffer) < 1000 + 256 * 1024
        yield pair.client.write(b"\n")
        rest = b""
        while not rest.endswith(b"\n"):
            rest += yield pair.server_side.read()
        assert rest == b"x" * 5000 + b"\n"

    with_pair(kind, tls, body)


def test_read_until_at_eof_carries_the_partial_data(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        yield pair.client.write(b"no newline here")
        pair.client.close()
        with pytest.raises(tasklets.IncompleteReadError) as caught:
            yield pair.server_side.read_until(b"\n")
        assert caught.value.partial == b"no newline here"
        assert caught.value.expected is None

    with_pair(kind, tls, body)


def test_chunks_is_an_ordinary_generator_of_futures(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        payload = os.urandom(300_000)
        writer = tasklets.spawn(_write_and_close, pair.client, payload)
        received = []
        for wait_for_chunk in pair.server_side.chunks(10_000):
            chunk = yield wait_for_chunk
            assert len(chunk) <= 10_000
            received.append(chunk)
        yield writer
        assert received[-1] == b""
        assert b"".join(received) == payload

    with_pair(kind, tls, body)


def _write_and_close(stream: tasklets.Stream, payload: bytes) -> Any:
    view = memoryview(payload)
    for start in range(0, len(payload), 50_000):
        yield stream.write(view[start : start + 50_000])
    stream.close()
    yield stream.wait_closed()


def test_large_transfer_both_ways_with_back_pressure(kind: str, tls: TLSMaterial) -> None:
    size = 4 * 1024 * 1024
    up, down = os.urandom(size), os.urandom(size)

    def echo_upper(stream: tasklets.Stream, payload: bytes) -> Any:
        sender = tasklets.spawn(_send_all, stream, payload)
        received = bytearray()
        while len(received) < size:
            received += yield stream.read(1 << 16)
        yield sender
        return hashlib.sha256(received).hexdigest()

    def body(pair: Any) -> Any:
        a = tasklets.spawn(echo_upper, pair.client, up)
        b = tasklets.spawn(echo_upper, pair.server_side, down)
        got = yield [a, b]
        assert got == [hashlib.sha256(down).hexdigest(), hashlib.sha256(up).hexdigest()]

    with_pair(kind, tls, body)


def _send_all(stream: tasklets.Stream, payload: bytes) -> Any:
    view = memoryview(payload)
    for start in range(0, len(payload), 1 << 17):
        future = stream.write(view[start : start + (1 << 17)])
        assert len(stream._wbuf) <= stream._high_water + (1 << 17) + 1024
        yield future
    yield stream.drain()


def test_close_is_idempotent_and_later_use_fails_clearly(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        closed = pair.client.close()
        assert pair.client.close() is closed
        assert pair.client.is_closing()
        yield closed
        with pytest.raises(tasklets.StreamClosed):
            pair.client.write(b"late")
        with pytest.raises(tasklets.StreamClosed):
            pair.client.read()
        assert (yield pair.server_side.read()) == b""

    with_pair(kind, tls, body)


def test_close_fails_the_pending_read(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        waiting = pair.client.read()
        pair.client.close()
        with pytest.raises(tasklets.StreamClosed):
            yield waiting

    with_pair(kind, tls, body)


def test_one_read_at_a_time(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        first = pair.client.read()
        with pytest.raises(RuntimeError, match="already waiting"):
            pair.client.read()
        with pytest.raises(RuntimeError, match="already waiting"):
            pair.client.read_until(b"\n")
        yield pair.server_side.write(b"x")
        assert (yield first) == b"x"

    with_pair(kind, tls, body)


def test_cancelled_read_loses_no_data(kind: str, tls: TLSMaterial) -> None:
    def reader(stream: tasklets.Stream) -> Any:
        return (yield stream.read_exactly(5))

    def body(pair: Any) -> Any:
        waiting = tasklets.spawn(reader, pair.client)
        yield None  # let it start waiting
        yield None
        waiting.cancel()
        with pytest.raises(tasklets.CancelledError):
            yield waiting
        yield pair.server_side.write(b"hello")
        assert (yield pair.client.read_exactly(5)) == b"hello"

    with_pair(kind, tls, body)


def test_read_timeout(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        pair.client.timeout = 0.05
        with pytest.raises(tasklets.ReadTimeout) as caught:
            yield pair.client.read()
        assert isinstance(caught.value, tasklets.TimeoutError)
        if kind != "unix":  # (a Unix stream has its path for a host, and no port)
            assert (caught.value.host, caught.value.port) == ("127.0.0.1", pair.server.port)
        # The stream is still usable afterwards.
        pair.client.timeout = None
        yield pair.server_side.write(b"late")
        assert (yield pair.client.read_exactly(4)) == b"late"

    with_pair(kind, tls, body)


def test_context_manager_closes(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        with pair.client as stream:
            yield stream.write(b"bye")
        assert pair.client.is_closing()
        assert (yield from read_all(pair.server_side)) == b"bye"

    with_pair(kind, tls, body)


def test_async_def_tasks_use_async_for_and_async_with(kind: str, tls: TLSMaterial) -> None:
    async def consume(stream: tasklets.Stream) -> bytes:
        parts = []
        async with stream:
            async for chunk in stream:
                parts.append(chunk)
        return b"".join(parts)

    def body(pair: Any) -> Any:
        consumer = tasklets.spawn(consume, pair.server_side)
        yield pair.client.write(b"one ")
        yield pair.client.write(b"two")
        pair.client.close()
        return (yield consumer)

    assert with_pair(kind, tls, body) == b"one two"


def test_addresses(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        if kind == "unix":
            assert pair.client.peername.endswith("s.sock")
        else:
            assert pair.client.peername == ("127.0.0.1", pair.server.port)
            assert pair.server_side.sockname == ("127.0.0.1", pair.server.port)
            assert pair.server_side.peername == pair.client.sockname
        yield None

    with_pair(kind, tls, body)


def test_write_eof_half_closes(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        if kind == "tls":
            with pytest.raises(tasklets.StreamError):
                pair.client.write_eof()
            return
        yield pair.client.write(b"request")
        pair.client.write_eof()
        assert (yield from read_all(pair.server_side)) == b"request"
        yield pair.server_side.write(b"response")
        pair.server_side.close()
        assert (yield from read_all(pair.client)) == b"response"

    with_pair(kind, tls, body)


def test_tls_details(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        if kind == "tls":
            assert pair.client.ssl_object is not None
            assert pair.client.ssl_object.getpeercert()["subjectAltName"]
            assert pair.server_side.ssl_object.server_side
        else:
            assert pair.client.ssl_object is None
        yield None

    with_pair(kind, tls, body)


@contextlib.contextmanager
def _pair_on_the_default_loop() -> Iterator[tuple[tasklets.Stream, tasklets.Stream]]:
    """(client, server side) of a TCP connection on the default loop, driven from this (plain) thread."""
    accepted: Future[tasklets.Stream] = Future()
    release: Future[None] = Future()

    def handler(stream: tasklets.Stream) -> Any:
        accepted.set_result(stream)
        yield release

    server = tasklets.start_server(handler, "127.0.0.1", 0).result(10)
    client = tasklets.open_connection("127.0.0.1", server.port).result(10)
    server_side = accepted.result(10)
    try:
        yield client, server_side
    finally:
        client.close().result(10)
        release.set_result(None)
        server.close()
        server.wait_closed().result(10)
        server_side.wait_closed().result(10)


def test_streams_work_from_plain_code_on_another_thread(kind: str, tls: TLSMaterial) -> None:
    # Outside any loop, everything runs on the default loop; the futures are
    # waited on with .result() from this thread.
    if kind != "tcp":
        pytest.skip("one transport suffices: the hand-over is transport-independent")
    with _pair_on_the_default_loop() as (client, server_side):
        client.write(b"from a thread").result(10)
        assert server_side.read_exactly(13).result(10) == b"from a thread"
        server_side.write(b"back").result(10)
        assert client.read(10).result(10) == b"back"


def test_a_connected_socket_can_be_wrapped_by_tls_later(kind: str, tls: TLSMaterial) -> None:
    # Over "tls" the new session runs inside the first (TLS inside TLS).
    def body(pair: Any) -> Any:
        yield pair.client.write(b"STARTTLS\n")
        assert (yield pair.server_side.read_until(b"\n")) == b"STARTTLS\n"
        server_upgrade = pair.server_side.start_tls(tls.server_context, server_side=True)
        client_upgrade = pair.client.start_tls(tls.client_context, server_hostname="localhost")
        yield [server_upgrade, client_upgrade]
        assert pair.client.ssl_object is not None
        yield pair.client.write(b"secret")
        assert (yield pair.server_side.read_exactly(6)) == b"secret"

    with_pair(kind, tls, body)


def test_socket_options(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        if kind != "unix":
            assert pair.client.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert pair.server_side.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert not pair.client.socket.getblocking()
        yield None

    with_pair(kind, tls, body)


def test_cancelled_timed_reads_share_one_timer_that_lapses_harmlessly(kind: str, tls: TLSMaterial) -> None:
    def reader(stream: tasklets.Stream) -> Any:
        return (yield stream.read())

    def body(pair: Any) -> Any:
        pair.client.timeout = 30.0
        for _ in range(3):
            waiting = tasklets.spawn(reader, pair.client)
            while pair.client._waiter is None:
                yield None
            waiting.cancel()
            with pytest.raises(tasklets.CancelledError):
                yield waiting
        timer = pair.client._read_timer
        loop = tasklets.current_loop()
        armed = [entry[2] for entry in loop._timers if not entry[2].cancelled()]
        reads = [handle for handle in armed if "_read_deadline_passed" in repr(handle)]
        assert reads == [timer]  # one timer for the three reads
        # When it fires (taken off the loop here, and its callback run), no read is waiting:
        # it fails nothing and lapses.
        timer.cancel()
        pair.client._read_deadline_passed()
        assert pair.client._read_timer is None
        yield pair.server_side.write(b"next")
        assert (yield pair.client.read_exactly(4)) == b"next"

    with_pair(kind, tls, body)


def test_each_read_gets_its_own_timeout(kind: str, tls: TLSMaterial) -> None:
    """A read that parks after an earlier one finished gets the full timeout, not what was left of it."""

    def body(pair: Any) -> Any:
        pair.client.timeout = 0.3
        first = pair.client.read()  # waits (nothing sent yet): arms the stream's timer for 0.3 s from now
        yield pair.server_side.write(b"a")
        assert (yield first) == b"a"
        yield tasklets.sleep(0.2)
        loop = tasklets.current_loop()
        start = loop.time()
        with pytest.raises(tasklets.ReadTimeout):
            yield pair.client.read()
        assert loop.time() - start == pytest.approx(0.3)  # its own 0.3 s, not what was left of the first's

    with_pair(kind, tls, body, clock=VirtualClock())


def test_a_read_after_the_timeout_is_turned_off_never_times_out(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        pair.client.timeout = 0.1
        first = pair.client.read()  # waits (nothing sent yet): arms the stream's timer
        yield pair.server_side.write(b"a")
        assert (yield first) == b"a"
        pair.client.timeout = None
        second = pair.client.read()  # no timeout: the timer still armed for the first read must not fail it
        yield tasklets.sleep(0.3)
        assert not second.done()
        yield pair.server_side.write(b"b")
        assert (yield second) == b"b"

    with_pair(kind, tls, body, clock=VirtualClock())


def test_a_shorter_timeout_takes_effect_at_the_next_read(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        pair.client.timeout = 30.0
        first = pair.client.read()  # waits (nothing sent yet): arms the stream's timer 30 s out
        yield pair.server_side.write(b"a")
        assert (yield first) == b"a"
        pair.client.timeout = 0.05
        loop = tasklets.current_loop()
        start = loop.time()
        with pytest.raises(tasklets.ReadTimeout):
            yield pair.client.read()
        assert loop.time() - start == pytest.approx(0.05)  # not the 30 s the armed timer was for

    with_pair(kind, tls, body, clock=VirtualClock())


def test_fast_paths_complete_without_waiting(kind: str, tls: TLSMaterial) -> None:
    if kind == "tls":
        pytest.skip("TLS 1.3 session tickets make the socket readable before the data: not a fast-path case")

    def body(pair: Any) -> Any:
        yield pair.server_side.write(b"ready")
        select.select([pair.client.socket], [], [], 5)  # the bytes are in the kernel now
        read = pair.client.read()
        assert read.done() and read.result() == b"ready"  # recv'd at once, no reader registered
        written = pair.client.write(b"small")
        assert written.done() and not pair.client._writing  # sent at once, no writer registered
        assert (yield pair.server_side.read_exactly(5)) == b"small"

    with_pair(kind, tls, body)


# -- read-ahead ---------------------------------------------------------------------------------------


def _stops_watching(stream: tasklets.Stream) -> Future[None]:
    """A future that resolves when the stream next removes its socket's reader (it stopped reading)."""
    loop = stream.loop
    stopped: Future[None] = Future()
    unwatch_reader = loop.unwatch_reader

    def spy(fd: int) -> Any:
        result = unwatch_reader(fd)
        if fd == stream.socket.fileno() and not stopped.done():
            del loop.unwatch_reader  # the instance attribute goes: the class's method is back
            stopped.set_result(None)
        return result

    loop.unwatch_reader = spy  # type: ignore[method-assign]
    return stopped


def _reading_with_no_read_waiting(pair: Any) -> Generator[Any, Any, None]:
    """Leave the client's reader registered and no read waiting: one read waits, then gets its byte."""
    first = pair.client.read()
    assert not first.done()  # it waits: the reader is registered
    yield pair.server_side.write(b"<")
    assert (yield first) == b"<"


def test_bytes_arriving_with_no_read_waiting_are_read_ahead_up_to_read_ahead(kind: str, tls: TLSMaterial) -> None:
    limit = 100_000
    data = os.urandom(300_000)

    def body(pair: Any) -> Any:
        pair.client.read_ahead = limit
        yield from _reading_with_no_read_waiting(pair)
        stopped = _stops_watching(pair.client)
        sent = pair.server_side.write(data)  # more than the read-ahead and the kernel's buffers hold
        yield stopped
        # The stream read ahead until it held read_ahead bytes, one chunk at a time, then stopped.
        assert limit <= pair.client.buffered < limit + 64 * 1024
        assert (yield pair.client.read_exactly(len(data))) == data
        yield sent

    with_pair(kind, tls, body)


def test_read_ahead_zero_leaves_the_bytes_in_the_kernel_until_a_read_asks(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        pair.client.read_ahead = 0
        yield from _reading_with_no_read_waiting(pair)
        stopped = _stops_watching(pair.client)
        yield pair.server_side.write(b"waiting")
        yield stopped  # the bytes made the socket readable with no read waiting: the stream stopped watching
        assert pair.client.buffered == 0  # and read none of them ahead
        read = pair.client.read()
        if kind != "tls":  # (a TLS read may find a whole record not yet there: it waits)
            assert read.done()  # received at once, from the kernel
        assert (yield read) == b"waiting"
        buffer = bytearray(8)
        yield pair.server_side.write(b"more")
        count = yield pair.client.read_into(buffer)  # the reader comes back for the next read that waits
        assert buffer[:count] == b"more"[:count] and count > 0

    with_pair(kind, tls, body)


def test_read_ahead_cannot_be_negative() -> None:
    def main() -> Any:
        a, b = socket.socketpair()
        with a, b, pytest.raises(ValueError, match="read_ahead must be >= 0"):
            tasklets.Stream(a, loop=tasklets.current_loop(), read_ahead=-1)
        yield tasklets.sleep(0)

    run(main)


# -- read_into ----------------------------------------------------------------------------------------


def _read_ahead(pair: Any, data: bytes) -> Generator[Any, Any, None]:
    """Leave ``data`` read ahead in the client's buffer: send a byte more and read that one."""
    yield pair.server_side.write(b"<" + data)
    assert (yield pair.client.read_exactly(1)) == b"<"
    assert pair.client.buffered == len(data)  # one small write arrives whole on loopback


def _fill(stream: tasklets.Stream, view: memoryview) -> Generator[Any, Any, None]:
    """``read_into`` until ``view`` is full."""
    got = 0
    while got < len(view):  # bounded: a read puts at least one byte (0 means EOF: fail)
        count = yield stream.read_into(view[got:])
        assert 0 < count <= len(view) - got
        got += count


def _spy_on_receive(stream: tasklets.Stream, then: Callable[[], object] = lambda: None) -> Future[int]:
    """A future of the count of bytes the stream next receives from its socket, by ``recv`` or ``recv_into``.

    ``then()`` runs right after that receive, inside it, before the stream sees the bytes.
    """
    received: Future[int] = Future()
    recv, recv_into = stream._recv, stream._recv_into

    def done(count: int) -> None:
        stream._recv, stream._recv_into = recv, recv_into
        then()
        received.set_result(count)

    def spy_recv(n: int) -> bytes:
        data = recv(n)  # BlockingIOError goes through: no bytes yet, the spy stays
        done(len(data))
        return data

    def spy_recv_into(view: memoryview) -> int:
        count = recv_into(view)
        done(count)
        return count

    stream._recv, stream._recv_into = spy_recv, spy_recv_into
    return received


def test_read_into_fills_a_bytearray_or_a_slice_of_one(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        buffer = bytearray(b"." * 16)
        waiting = pair.client.read_into(memoryview(buffer)[2:12])  # nothing sent yet: it waits
        assert not waiting.done()
        yield pair.server_side.write(b"0123456789")
        count = yield waiting
        assert 0 < count <= 10
        yield from _fill(pair.client, memoryview(buffer)[2 + count : 12])  # the rest, if it came in pieces
        assert buffer == b"..0123456789...."
        buffer.extend(b"!")  # a bytearray with a view still exported cannot resize: the stream kept none
        whole = bytearray(3)  # a bytearray itself, not a view of it
        yield pair.server_side.write(b"xyz")
        count = yield pair.client.read_into(whole)
        assert 0 < count <= 3
        yield from _fill(pair.client, memoryview(whole)[count:])
        assert whole == b"xyz"

    with_pair(kind, tls, body)


def test_read_into_receives_at_once_when_data_is_there(kind: str, tls: TLSMaterial) -> None:
    if kind == "tls":
        pytest.skip("TLS 1.3 session tickets make the socket readable before the data: not a fast-path case")

    def body(pair: Any) -> Any:
        yield pair.server_side.write(b"ready")
        select.select([pair.client.socket], [], [], 5)  # the bytes are in the kernel now
        buffer = bytearray(8)
        read = pair.client.read_into(buffer)
        assert read.done() and read.result() == 5  # received at once, no reader registered
        assert not pair.client._reading
        assert buffer[:5] == b"ready"

    with_pair(kind, tls, body)


def test_read_into_takes_read_ahead_bytes_first(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        yield from _read_ahead(pair, b"abcdefgh")
        small = bytearray(3)
        first = pair.client.read_into(small)
        assert first.done() and first.result() == 3  # more buffered than it holds: it is filled at once
        assert small == b"abc"
        assert pair.client.buffered == 5  # the rest stays for the next read
        yield pair.server_side.write(b"NEW")
        large = bytearray(100)
        rest = pair.client.read_into(large)
        assert rest.done() and rest.result() == 5  # what was buffered, before any newer bytes
        assert large[:5] == b"defgh"
        newer = bytearray(3)
        yield from _fill(pair.client, memoryview(newer))
        assert newer == b"NEW"

    with_pair(kind, tls, body)


def test_read_into_is_zero_at_eof_and_stays_so(kind: str, tls: TLSMaterial) -> None:
    message = b"last words"

    def body(pair: Any) -> Any:
        yield pair.server_side.write(message)
        pair.server_side.close()
        yield pair.server_side.wait_closed()  # the bytes and the end of stream are sent: the reads need not wait
        buffer = bytearray(64)
        got = 0
        for _ in range(len(message) + 1):  # each read gives at least one byte, or 0 at the end
            count = yield pair.client.read_into(memoryview(buffer)[got:])
            if not count:
                break
            got += count
        assert count == 0
        assert buffer[:got] == message
        assert pair.client.at_eof()
        again = pair.client.read_into(buffer)
        assert again.done() and again.result() == 0

    with_pair(kind, tls, body)


def test_read_into_waiting_when_the_peer_closes_gets_zero(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        waiting = pair.client.read_into(bytearray(8))
        assert not waiting.done()
        pair.server_side.close()
        assert (yield waiting) == 0
        assert pair.client.at_eof()
        again = pair.client.read_into(bytearray(8))
        assert again.done() and again.result() == 0

    with_pair(kind, tls, body)


def test_read_into_timeout(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        pair.client.timeout = 0.05
        buffer = bytearray(8)
        with pytest.raises(tasklets.ReadTimeout):
            yield tasklets.with_timeout(pair.client.read_into(buffer), 5)  # a TimeoutError, not ReadTimeout, at 5 s
        # The stream is still usable afterwards, and the read that timed out puts nothing in its buffer.
        pair.client.timeout = None
        yield pair.server_side.write(b"late")
        other = bytearray(4)
        yield from _fill(pair.client, memoryview(other))
        assert other == b"late"
        assert buffer == bytearray(8)
        buffer.extend(b"!")  # the stream let go of it

    with_pair(kind, tls, body)


def test_cancelled_read_into_loses_no_data_and_leaves_the_buffer_alone(kind: str, tls: TLSMaterial) -> None:
    def reader(stream: tasklets.Stream, buffer: bytearray) -> Any:
        return (yield stream.read_into(buffer))

    def body(pair: Any) -> Any:
        buffer = bytearray(16)
        waiting = tasklets.spawn(reader, pair.client, buffer)
        for _ in range(10):
            if pair.client._waiter is not None:
                break
            yield None  # let it start waiting
        assert pair.client._waiter is not None
        waiting.cancel()
        with pytest.raises(tasklets.CancelledError):
            yield waiting
        received = _spy_on_receive(pair.client)
        yield pair.server_side.write(b"hello")
        # The readiness callback finds the cancelled read_into: the bytes go to the stream's buffer...
        assert (yield received) > 0
        assert buffer == bytearray(16)  # ...not to the buffer of the read that was cancelled
        assert (yield pair.client.read_exactly(5)) == b"hello"
        assert buffer == bytearray(16)

    with_pair(kind, tls, body)


def test_read_into_cancelled_as_its_bytes_arrive_gives_them_back(kind: str, tls: TLSMaterial) -> None:
    """The race with a cancel() from another thread: the bytes received for a read just cancelled are kept."""

    def body(pair: Any) -> Any:
        waiting = pair.client.read_into(bytearray(16))
        assert not waiting.done()
        received = _spy_on_receive(pair.client, then=waiting.cancel)  # cancelled between recv and result
        yield pair.server_side.write(b"hello")
        count = yield received
        assert waiting.cancelled()
        assert count > 0 and pair.client.buffered == count  # back in the stream's buffer
        assert (yield pair.client.read_exactly(5)) == b"hello"

    with_pair(kind, tls, body)


def test_read_into_refuses_read_only_and_empty_buffers(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        yield from _read_ahead(pair, b"kept")
        with pytest.raises(TypeError, match="writable buffer"):
            pair.client.read_into(b"read-only")
        with pytest.raises(TypeError, match="writable buffer"):
            pair.client.read_into(memoryview(bytearray(4)).toreadonly())
        with pytest.raises(ValueError, match="non-empty buffer"):
            pair.client.read_into(bytearray())
        with pytest.raises(ValueError, match="non-empty buffer"):
            pair.client.read_into(memoryview(bytearray(8))[4:4])
        assert pair.client.buffered == 4  # refused before anything was taken
        buffer = bytearray(4)
        kept = pair.client.read_into(buffer)
        assert kept.done() and kept.result() == 4
        assert buffer == b"kept"

    with_pair(kind, tls, body)


def test_read_into_is_one_read_at_a_time(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        first = pair.client.read()
        with pytest.raises(RuntimeError, match="already waiting"):
            pair.client.read_into(bytearray(4))
        yield pair.server_side.write(b"x")
        assert (yield first) == b"x"
        buffer = bytearray(4)
        into = pair.client.read_into(buffer)
        assert not into.done()
        with pytest.raises(RuntimeError, match="already waiting"):
            pair.client.read_into(bytearray(4))
        with pytest.raises(RuntimeError, match="already waiting"):
            pair.client.read()
        with pytest.raises(RuntimeError, match="already waiting"):
            pair.client.read_exactly(1)
        yield pair.server_side.write(b"y")
        assert (yield into) == 1
        assert buffer == b"y\0\0\0"

    with_pair(kind, tls, body)


def test_a_cancelled_read_into_lets_go_of_the_buffer_at_once(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        buffer = bytearray(16)
        waiting = pair.client.read_into(buffer)
        assert not waiting.done()
        waiting.cancel()
        buffer.extend(b"more")  # BufferError if the stream still held a view of it
        yield pair.server_side.write(b"hello")
        assert (yield pair.client.read_exactly(5)) == b"hello"

    with_pair(kind, tls, body)


def test_buffered_bytes_of_a_pending_read_are_not_taken_by_another(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        pending = pair.client.read_exactly(10)
        yield pair.server_side.write(b"12345")
        while not pair.client.buffered:  # each turn a receive (TLS: a record may bring no data)
            yield tasklets.with_timeout(_spy_on_receive(pair.client), 5)
        assert pair.client.buffered == 5 and not pending.done()
        with pytest.raises(RuntimeError, match="already waiting"):
            pair.client.read_into(bytearray(10))
        with pytest.raises(RuntimeError, match="already waiting"):
            pair.client.read(10)
        with pytest.raises(RuntimeError, match="already waiting"):
            pair.client.read_exactly(3)
        with pytest.raises(RuntimeError, match="already waiting"):
            pair.client.read_until(b"3")
        assert pair.client.buffered == 5
        yield pair.server_side.write(b"abcdefghij")
        assert (yield pending) == b"12345abcde"

    with_pair(kind, tls, body)


def test_read_into_refuses_a_strided_view(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        yield from _read_ahead(pair, b"kept")
        with pytest.raises(TypeError, match="contiguous"):
            pair.client.read_into(memoryview(bytearray(8))[::2])
        assert pair.client.buffered == 4

    with_pair(kind, tls, body)


def test_large_transfer_read_into_one_buffer(kind: str, tls: TLSMaterial) -> None:
    size = 4 * 1024 * 1024
    payload = os.urandom(size)

    def body(pair: Any) -> Any:
        writer = tasklets.spawn(_write_and_close, pair.server_side, payload)
        received = bytearray(size)
        view = memoryview(received)
        got = 0
        slices = (1, 4096, 65536, 1 << 20)  # small and large, so the read-ahead buffer is split too
        for i in range(size):  # bounded: each read gives at least one byte
            if got == size:
                break
            count = yield pair.client.read_into(view[got : got + slices[i % len(slices)]])
            assert count > 0
            got += count
        assert (yield pair.client.read_into(bytearray(1))) == 0
        yield writer
        view.release()
        assert hashlib.sha256(received).hexdigest() == hashlib.sha256(payload).hexdigest()

    with_pair(kind, tls, body)


def test_read_into_from_plain_code_on_another_thread(kind: str, tls: TLSMaterial) -> None:
    if kind != "tcp":
        pytest.skip("one transport suffices: the hand-over is transport-independent")
    with _pair_on_the_default_loop() as (client, server_side):
        threads = []
        recv_into = client._recv_into

        def recording_recv_into(view: memoryview) -> int:
            threads.append(threading.get_ident())
            return recv_into(view)

        client._recv_into = recording_recv_into
        buffer = bytearray(13)
        waiting = client.read_into(buffer)
        server_side.write(b"from a thread").result(10)
        got = waiting.result(10)
        for _ in range(13):  # the rest, if it came in pieces
            if got == len(buffer):
                break
            got += client.read_into(memoryview(buffer)[got:]).result(10)
        assert buffer == b"from a thread"
        assert threads and set(threads) == {client.loop._thread_id}  # the socket was read on the loop's thread
        with pytest.raises(TypeError):
            client.read_into(b"read-only").result(10)


def test_read_refuses_a_max_bytes_that_is_not_positive(kind: str, tls: TLSMaterial) -> None:
    def body(pair: Any) -> Any:
        for max_bytes in (0, -1):  # with nothing buffered...
            with pytest.raises(ValueError, match="positive max_bytes"):
                pair.client.read(max_bytes)
        yield from _read_ahead(pair, b"abc")
        for max_bytes in (0, -1):  # ...and with bytes buffered: none taken
            with pytest.raises(ValueError, match="positive max_bytes"):
                pair.client.read(max_bytes)
        assert (yield pair.client.read_exactly(3)) == b"abc"

    with_pair(kind, tls, body)


def test_a_refused_write_leaves_the_stream_intact(kind: str, tls: TLSMaterial) -> None:
    """WriteBufferFull refuses the bytes before anything happens to them (TLS encrypts nothing)."""
    chunk = os.urandom(16 * 1024)

    def body(pair: Any) -> Any:
        pair.client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        accepted = hashlib.sha256()
        total = 0
        for _ in range(4096):  # bounded: 64 MiB at most
            written = pair.client.write(chunk)
            accepted.update(chunk)
            total += len(chunk)
            if not written.done():
                break
        else:
            raise AssertionError("writes never stopped resolving")
        with pytest.raises(tasklets.WriteBufferFull):
            pair.client.write(b"refused")
        received = yield pair.server_side.read_exactly(total)  # drains the queue as it reads
        assert hashlib.sha256(received).digest() == accepted.digest()
        yield written
        yield pair.client.write(b"and after")  # the session goes on (TLS: record numbers in step)
        assert (yield pair.server_side.read_exactly(9)) == b"and after"

    with_pair(kind, tls, body)
