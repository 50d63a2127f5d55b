"""Fault injection: a hostile peer, a plain blocking socket driven byte by byte from a thread."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import pytest

import tasklets
from tasklets import Future
from tasklets.testing import VirtualClock

from ._support import RawPeer, read_all, recv_exactly, run


def with_peer(
    script: Callable[[socket.socket], Any],
    body: Callable[[tasklets.Stream, RawPeer], Any],
    *,
    clock: Any = None,
    **options: Any,
) -> Any:
    """Connect a stream (with ``open_connection`` ``options``) to a raw peer running ``script``; run ``body``."""
    peer = RawPeer().serve(script)

    def main() -> Any:
        stream = yield tasklets.open_connection("127.0.0.1", peer.port, **options)
        try:
            return (yield from body(stream, peer))
        finally:
            stream.close()
            yield stream.wait_closed()

    try:
        return run(main, clock=clock)
    finally:
        peer.close()


def _reset(conn: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends a reset instead of a FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_reset_in_the_middle_of_a_read() -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"partial")
        assert recv_exactly(conn, 3) == b"ack"
        _reset(conn)

    def body(stream: tasklets.Stream, peer: RawPeer) -> Any:
        assert (yield stream.read_exactly(7)) == b"partial"
        waiting = stream.read_exactly(100)
        yield stream.write(b"ack")
        with pytest.raises(tasklets.StreamReset) as caught:
            yield waiting
        assert isinstance(caught.value, ConnectionResetError)
        assert caught.value.port == peer.port
        assert isinstance(caught.value.__cause__, ConnectionResetError)
        yield peer.done
        # Every later read reports the same error.
        with pytest.raises(tasklets.StreamReset):
            yield stream.read()

    with_peer(script, body)


def test_write_to_a_reset_peer_fails_the_write() -> None:
    def script(conn: socket.socket) -> None:
        conn.recv(1)  # resetting before that could fail the connect itself, a different test
        _reset(conn)

    def body(stream: tasklets.Stream, peer: RawPeer) -> Any:
        yield stream.write(b"!")
        yield peer.done
        with pytest.raises(tasklets.StreamReset):
            while True:  # the first write may still be accepted by the kernel
                yield stream.write(b"x" * 1000)
                yield tasklets.sleep(0.001)

    with_peer(script, body)


def test_half_close_by_the_peer() -> None:
    def script(conn: socket.socket) -> bytes:
        conn.sendall(b"question")
        conn.shutdown(socket.SHUT_WR)
        return recv_exactly(conn, 6)

    def body(stream: tasklets.Stream, peer: RawPeer) -> Any:
        assert (yield from read_all(stream)) == b"question"
        yield stream.write(b"answer")  # our side is still open
        assert (yield peer.done) == b"answer"

    with_peer(script, body)


def test_peer_that_never_reads_gets_back_pressure_with_bounded_memory() -> None:
    start_reading: Future[None] = Future()

    def script(conn: socket.socket) -> str:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        start_reading.result(20)
        digest = hashlib.sha256()
        while True:
            chunk = conn.recv(1 << 16)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)

    def body(stream: tasklets.Stream, peer: RawPeer) -> Any:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        chunk = os.urandom(16 * 1024)
        sent = hashlib.sha256()
        accepted = 0
        # Write without waiting while writes resolve at once...
        while True:
            future = stream.write(chunk)
            sent.update(chunk)
            accepted += len(chunk)
            if not future.done():
                break
            assert accepted < 64 * 1024 * 1024, "writes never stopped resolving"
        # ...they stop resolving, the queue is bounded, and ignoring that is refused.
        assert len(stream._wbuf) <= stream._high_water + len(chunk)
        with pytest.raises(tasklets.WriteBufferFull):
            stream.write(chunk)
        assert len(stream._wbuf) <= stream._high_water + len(chunk)
        assert not future.done()
        start_reading.set_result(None)
        yield future  # resolves once the peer reads
        yield stream.drain()
        stream.close()
        yield stream.wait_closed()
        assert (yield peer.done) == sent.hexdigest()

    with_peer(script, body)


def test_write_timeout_when_the_peer_stalls() -> None:
    stop: Future[None] = Future()

    def script(conn: socket.socket) -> None:
        stop.result(20)

    def body(stream: tasklets.Stream, peer: RawPeer) -> Any:
        stream.timeout = 0.05
        chunk = b"z" * (1 << 20)
        with pytest.raises(tasklets.WriteTimeout) as caught:
            while True:
                yield stream.write(chunk)
        assert isinstance(caught.value, tasklets.TimeoutError)
        assert (caught.value.host, caught.value.port) == ("127.0.0.1", peer.port)
        stream.abort()
        stop.set_result(None)
        yield peer.done

    with_peer(script, body)


def test_cancelling_a_write_wait_leaves_nothing_behind() -> None:
    stop: Future[None] = Future()

    def script(conn: socket.socket) -> None:
        stop.result(20)

    def writer(stream: tasklets.Stream) -> Any:
        while True:
            yield stream.write(b"w" * (1 << 20))

    def body(stream: tasklets.Stream, peer: RawPeer) -> Any:
        task = tasklets.spawn(writer, stream)
        while stream._drain_waiter is None:
            yield None
        task.cancel()
        with pytest.raises(tasklets.CancelledError):
            yield task
        stream.abort()  # the peer will never read: drop the queue
        stop.set_result(None)
        yield peer.done

    with_peer(script, body)


def test_peer_trickling_one_byte_at_a_time() -> None:
    message = b"first line\nsecond\n" + b"0123456789"

    def script(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in message:
            conn.send(bytes([byte]))
            time.sleep(0.0005)  # the peer's pace, not a wait for us

    def body(stream: tasklets.Stream, peer: RawPeer) -> Any:
        assert (yield stream.read_until(b"\n")) == b"first line\n"
        assert (yield stream.read_until(b"\n")) == b"second\n"
        assert (yield stream.read_exactly(10)) == b"0123456789"
        assert (yield stream.read()) == b""
        yield peer.done

    with_peer(script, body)


def test_partial_writes_to_a_slow_reader_arrive_intact() -> None:
    payload = os.urandom(2 * 1024 * 1024)

    def script(conn: socket.socket) -> str:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        digest = hashlib.sha256()
        while True:
            chunk = conn.recv(3000)  # small, odd-sized reads: our sends come back partial
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)

    def body(stream: tasklets.Stream, peer: RawPeer) -> Any:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        first = stream.write(payload)
        assert stream._wbuf, "the kernel took everything: no partial write happened"
        yield first
        yield stream.drain()
        stream.close()
        yield stream.wait_closed()
        assert (yield peer.done) == hashlib.sha256(payload).hexdigest()

    with_peer(script, body)


def test_eof_during_read_exactly() -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"12345")

    def body(stream: tasklets.Stream, peer: RawPeer) -> Any:
        with pytest.raises(tasklets.IncompleteReadError) as caught:
            yield stream.read_exactly(10)
        assert (caught.value.partial, caught.value.expected) == (b"12345", 10)
        yield peer.done

    with_peer(script, body)


def test_eof_during_read_until() -> None:
    def script(conn: socket.socket) -> None:
        for byte in b"no end":
            conn.send(bytes([byte]))

    def body(stream: tasklets.Stream, peer: RawPeer) -> Any:
        with pytest.raises(tasklets.IncompleteReadError) as caught:
            yield stream.read_until(b"\r\n")
        assert caught.value.partial == b"no end"
        yield peer.done

    with_peer(script, body)


def test_close_flushes_the_queue_before_closing() -> None:
    payload = os.urandom(8 * 1024 * 1024)
    go: Future[None] = Future()

    def script(conn: socket.socket) -> str:
        go.result(20)
        data = b""
        while chunk := conn.recv(1 << 16):
            data += chunk
        return hashlib.sha256(data).hexdigest()

    def body(stream: tasklets.Stream, peer: RawPeer) -> Any:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        stream.write(payload)  # queued: the peer is not reading yet
        closed = stream.close()
        assert not closed.done()
        go.set_result(None)
        yield closed
        assert (yield peer.done) == hashlib.sha256(payload).hexdigest()

    with_peer(script, body)


def test_server_survives_a_client_that_resets() -> None:
    handled: list[Any] = []

    def handler(stream: tasklets.Stream) -> Any:
        try:
            yield stream.read_exactly(1000)
        except tasklets.StreamError as exc:
            handled.append(exc)
            raise

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        peer = socket.create_connection(("127.0.0.1", server.port))
        peer.sendall(b"half")
        _reset(peer)
        peer.close()
        while not handled:
            yield tasklets.sleep(0.001)
        assert isinstance(handled[0], (tasklets.StreamReset, tasklets.IncompleteReadError))
        # Still serving.
        stream = yield tasklets.open_connection("127.0.0.1", server.port)
        yield stream.write(b"y" * 1000)
        stream.close()
        yield stream.wait_closed()
        server.close()
        yield server.wait_closed()

    run(main)


# -- the write timeout: between bytes, for write() and drain() alike ------------------------------------


#: More than the kernel buffers of a connection whose peer does not read hold (a few MiB on loopback).
_TOO_MUCH = 16 * 1024 * 1024


def _write_timers(stream: tasklets.Stream) -> list[Any]:
    timers = [entry[2] for entry in stream.loop._timers if not entry[2].cancelled()]
    return [timer for timer in timers if "_write_timed_out" in repr(timer)]


def _slow_but_steady_reader(conn: socket.socket) -> str:
    """The peer's script: read at most 64 KiB every 10 ms until end of stream; the digest of what came."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    digest = hashlib.sha256()
    for _ in range(6000):  # a minute at this pace
        chunk = conn.recv(1 << 16)
        if not chunk:
            return digest.hexdigest()
        digest.update(chunk)
        time.sleep(0.01)  # the peer's pace, not a wait for us
    raise AssertionError("the stream never ended")


def with_stalled_peer(body: Callable[[tasklets.Stream], Any], **options: Any) -> Any:
    """Run ``body(stream)`` against a peer that reads nothing; then drop the queue and let the peer go.

    The peer stays silent, so the run is on a virtual clock: timeouts fire at
    their exact deadlines, with no real waiting.
    """
    stop: Future[None] = Future()

    def script(conn: socket.socket) -> None:
        stop.result(20)

    def main(stream: tasklets.Stream, peer: RawPeer) -> Any:
        try:
            return (yield from body(stream))
        finally:
            stream.abort()  # the peer will never read: drop the queue
            stop.set_result(None)
            yield peer.done

    return with_peer(script, main, clock=VirtualClock(), **options)


def test_drain_times_out_when_the_peer_stalls() -> None:
    def body(stream: tasklets.Stream) -> Any:
        stream.timeout = 0.1
        assert stream.write(b"q" * _TOO_MUCH).done()  # under the (raised) high-water mark: only the drain waits
        assert stream._wbuf
        start = stream.loop.time()
        with pytest.raises(tasklets.WriteTimeout) as caught:
            yield tasklets.with_timeout(stream.drain(), 5)  # a TimeoutError, but no WriteTimeout, after 5 s
        assert stream.loop.time() - start == pytest.approx(0.1)
        assert isinstance(caught.value, tasklets.TimeoutError)
        assert stream._write_timer is None

    with_stalled_peer(body, high_water=2 * _TOO_MUCH)


def test_a_wait_on_the_queue_never_times_out_once_the_timeout_is_turned_off() -> None:
    def body(stream: tasklets.Stream) -> Any:
        stream.timeout = 0.1
        assert stream.write(b"q" * _TOO_MUCH).done()  # under the (raised) high-water mark: only the drain waits
        flushed = stream.drain()  # arms the write timer
        stream.timeout = None
        yield tasklets.sleep(0.3)
        assert not flushed.done()  # the timer fired and lapsed: no WriteTimeout
        flushed.cancel()

    with_stalled_peer(body, high_water=2 * _TOO_MUCH)


def test_a_drain_after_a_cancelled_one_gets_the_whole_timeout() -> None:
    def body(stream: tasklets.Stream) -> Any:
        stream.timeout = 0.4
        assert stream.write(b"q" * _TOO_MUCH).done()  # under the (raised) high-water mark: only the drain waits
        stream.drain().cancel()  # its timer stays armed, lazily...
        yield tasklets.sleep(0.3)
        start = stream.loop.time()
        with pytest.raises(tasklets.WriteTimeout):
            yield tasklets.with_timeout(stream.drain(), 5)
        assert stream.loop.time() - start == pytest.approx(0.4)  # ...but the new drain's count started afresh

    with_stalled_peer(body, high_water=2 * _TOO_MUCH)


@pytest.mark.parametrize("waiting_on", ["write", "drain"])
def test_a_peer_that_keeps_reading_slowly_never_times_out_the_wait(waiting_on: str) -> None:
    """The write timeout is between bytes: the queue may take longer than the timeout to drain."""
    payload = os.urandom(4 * 1024 * 1024)

    def body(stream: tasklets.Stream, peer: RawPeer) -> Any:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        stream.timeout = 0.2
        start = stream.loop.time()
        written = stream.write(payload)
        if waiting_on == "write":
            assert not written.done()
            yield written
        else:
            assert written.done()  # under the (raised) high-water mark: only the drain waits
            assert stream._wbuf
            yield stream.drain()
        # The peer took longer than the timeout to take it, but never paused for that long.
        assert stream.loop.time() - start > 2 * stream.timeout
        assert stream._write_timer is None
        stream.close()
        yield stream.wait_closed()
        assert (yield peer.done) == hashlib.sha256(payload).hexdigest()

    options = {"high_water": len(payload)} if waiting_on == "drain" else {}
    with_peer(_slow_but_steady_reader, body, **options)


def test_one_write_timer_serves_a_waiting_write_and_drain() -> None:
    def body(stream: tasklets.Stream) -> Any:
        stream.timeout = 0.1
        written = stream.write(b"w" * _TOO_MUCH)
        assert not written.done()
        drained = stream.drain()
        assert len(_write_timers(stream)) == 1
        with pytest.raises(tasklets.WriteTimeout):
            yield tasklets.with_timeout(drained, 5)
        assert isinstance(written.exception(0), tasklets.WriteTimeout)
        assert _write_timers(stream) == []

    with_stalled_peer(body)


def test_cancelling_the_write_wait_keeps_the_drain_timeout() -> None:
    def body(stream: tasklets.Stream) -> Any:
        stream.timeout = 0.1
        written = stream.write(b"w" * _TOO_MUCH)
        drained = stream.drain()
        written.cancel()
        assert len(_write_timers(stream)) == 1  # the drain still waits on the queue
        with pytest.raises(tasklets.WriteTimeout):
            yield tasklets.with_timeout(drained, 5)

    with_stalled_peer(body)
