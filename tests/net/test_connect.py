"""Opening connections: errors, timeouts, Happy Eyeballs over real sockets, cancellation."""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import tasklets
from tasklets.net._connect import _connect_any
from tasklets.net._happy_eyeballs import DEFAULT_DELAY
from tasklets.testing import VirtualClock

from ._support import RawPeer, run, short_tmpdir


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


class BlackHole:
    """A listener whose accept queue is full: further connects hang (SYNs are dropped)."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        # With a backlog of 0 the accept queue is full once one connection
        # waits in it (Linux); a blocking connect returns once it is queued.
        self.fillers = [socket.create_connection(("127.0.0.1", self.port), timeout=5)]

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.listener.close()


@pytest.fixture
def black_hole() -> Any:
    hole = BlackHole()
    yield hole
    hole.close()


def test_refused_maps_to_a_precise_error() -> None:
    port = _closed_port()

    def main() -> Any:
        with pytest.raises(tasklets.ConnectionRefused) as caught:
            yield tasklets.open_connection("127.0.0.1", port)
        error = caught.value
        assert isinstance(error, ConnectionRefusedError)
        assert isinstance(error, tasklets.ConnectError)
        assert (error.host, error.port, error.errno) == ("127.0.0.1", port, errno.ECONNREFUSED)
        assert isinstance(error.__cause__, ConnectionRefusedError)
        assert f"127.0.0.1:{port}" in str(error)

    run(main)


def test_unix_refused_and_missing() -> None:
    directory = short_tmpdir()
    stale = os.path.join(directory, "stale.sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(stale)
    sock.close()  # the file stays, nobody listens

    def main() -> Any:
        with pytest.raises(tasklets.ConnectionRefused):
            yield tasklets.open_unix_connection(stale)
        with pytest.raises(tasklets.ConnectError) as caught:
            yield tasklets.open_unix_connection(os.path.join(directory, "missing.sock"))
        assert caught.value.errno == errno.ENOENT

    run(main)


def test_unresolvable_host() -> None:
    def main() -> Any:
        with pytest.raises(tasklets.NameResolutionError) as caught:
            yield tasklets.open_connection("no-such-host.invalid", 80)
        assert caught.value.host == "no-such-host.invalid"
        assert caught.value.__cause__ is not None

    run(main)


def test_names_are_resolved_in_the_thread_pool() -> None:
    def handler(stream: tasklets.Stream) -> Any:
        yield stream.write(b"hi")

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        stream = yield tasklets.open_connection("localhost", server.port, family=socket.AF_INET)
        assert (yield stream.read_exactly(2)) == b"hi"
        stream.close()
        server.close()
        yield server.wait_closed()

    run(main)


def test_connect_timeout_while_the_syn_goes_unanswered(black_hole: BlackHole) -> None:
    def main() -> Any:
        with pytest.raises(tasklets.ConnectTimeout) as caught:
            yield tasklets.open_connection("127.0.0.1", black_hole.port, timeout=0.1)
        assert isinstance(caught.value, tasklets.TimeoutError)
        assert isinstance(caught.value, TimeoutError)
        assert caught.value.port == black_hole.port

    run(main)


def test_connect_timeout_covers_the_tls_handshake(tls: Any) -> None:
    peer = RawPeer()
    silent: tasklets.Future[None] = tasklets.Future()
    peer.serve(lambda conn: silent.result(10))  # accepts, never answers the ClientHello

    def main() -> Any:
        try:
            with pytest.raises(tasklets.ConnectTimeout):
                yield tasklets.open_connection(
                    "127.0.0.1", peer.port, ssl=tls.client_context, server_hostname="localhost", timeout=0.1
                )
        finally:
            silent.set_result(None)
            yield peer.done

    try:
        run(main)
    finally:
        peer.close()


def test_cancelling_a_connect_leaves_nothing_behind(black_hole: BlackHole) -> None:
    def main() -> Any:
        connecting = tasklets.open_connection("127.0.0.1", black_hole.port)
        yield tasklets.sleep(0.01)
        assert not connecting.done()
        connecting.cancel()
        with pytest.raises(tasklets.CancelledError):
            yield connecting

    run(main)


def test_happy_eyeballs_moves_on_from_a_dead_address(black_hole: BlackHole) -> None:
    def handler(stream: tasklets.Stream) -> Any:
        yield stream.write(b"alive")

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        infos = [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", black_hole.port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", server.port)),
        ]
        loop = tasklets.current_loop()
        started = loop.time()
        sock, address = yield from _connect_any(loop, "test", 0, infos, None, 0.05)
        elapsed = loop.time() - started
        assert address == ("127.0.0.1", server.port)
        assert elapsed == pytest.approx(0.05)  # the second attempt started after the delay, not after a timeout
        stream = tasklets.Stream(sock, loop=loop)
        assert (yield stream.read_exactly(5)) == b"alive"
        stream.close()
        server.close()
        yield server.wait_closed()

    run(main, clock=VirtualClock())  # the dead address is silent: the delay is exact


def test_happy_eyeballs_starts_the_next_address_at_once_after_a_failure() -> None:
    refused = _closed_port()

    def handler(stream: tasklets.Stream) -> Any:
        yield stream.write(b"ok")

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        infos = [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", refused)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", server.port)),
        ]
        loop = tasklets.current_loop()
        started = loop.time()
        sock, _ = yield from _connect_any(loop, "test", 0, infos, None, 30.0)
        assert loop.time() - started == 0.0  # not a moment of the 30 s delay: a refusal moves on at once
        sock.close()
        server.close()
        yield server.wait_closed()

    run(main, clock=VirtualClock())


def test_every_address_failing_reports_them_all() -> None:
    ports = [_closed_port(), _closed_port()]

    def main() -> Any:
        infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p)) for p in ports]
        loop = tasklets.current_loop()
        with pytest.raises(tasklets.ConnectionRefused) as caught:
            yield from _connect_any(loop, "many", 80, infos, None, 0.25)
        assert len(caught.value.errors) == 2

    run(main)


def test_local_addr() -> None:
    def handler(stream: tasklets.Stream) -> Any:
        yield stream.write(repr(stream.peername).encode())

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        stream = yield tasklets.open_connection("127.0.0.1", server.port, local_addr=("127.0.0.1", 0))
        assert stream.sockname[0] == "127.0.0.1"
        stream.close()
        server.close()
        yield server.wait_closed()

    run(main)


def _fake_resolver(monkeypatch: pytest.MonkeyPatch, name: str, resolve: Callable[..., list[Any]]) -> None:
    """Make ``socket.getaddrinfo`` answer ``resolve(host, port, ...)`` for ``name``; other names resolve for real."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host == name:
            return resolve(host, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_happy_eyeballs_through_open_connection_with_the_default_delay(
    black_hole: BlackHole, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert DEFAULT_DELAY == 0.25  # RFC 8305's recommended value; the window below is built around it
    ports: dict[str, int] = {}
    _fake_resolver(
        monkeypatch,
        "two.test",
        lambda host, port, *rest: [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", black_hole.port)),
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", ports["live"])),
        ],
    )

    def handler(stream: tasklets.Stream) -> Any:
        yield stream.write(b"alive")

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        ports["live"] = server.port
        try:
            loop = tasklets.current_loop()
            started = loop.time()
            # No happy_eyeballs_delay: the default applies. The timeout only bounds a broken run.
            stream = yield tasklets.open_connection("two.test", server.port, timeout=5.0)
            elapsed = loop.time() - started
            try:
                assert stream.peername == ("127.0.0.1", server.port)
                assert stream.socket.getpeername() == ("127.0.0.1", server.port)
                # The second attempt waited the default delay: the dead address did not fail, it hung.
                assert elapsed == pytest.approx(DEFAULT_DELAY), elapsed
                assert (yield stream.read_exactly(5)) == b"alive"
            finally:
                stream.close()
                yield stream.wait_closed()
        finally:
            server.close()
            yield server.wait_closed()

    run(main, clock=VirtualClock())  # the resolver's thread holds the clock; the dead address is silent


def test_resolution_runs_off_the_loop_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    resolved_on: list[tuple[int, str]] = []

    def resolve(host: Any, port: Any, *rest: Any) -> list[Any]:
        resolved_on.append((threading.get_ident(), threading.current_thread().name))
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]

    _fake_resolver(monkeypatch, "pool.test", resolve)

    def handler(stream: tasklets.Stream) -> Any:
        yield stream.write(b"hi")

    def main() -> Any:
        loop_thread = threading.get_ident()
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        try:
            stream = yield tasklets.open_connection("pool.test", server.port, timeout=5.0)
            try:
                assert (yield stream.read_exactly(2)) == b"hi"
            finally:
                stream.close()
                yield stream.wait_closed()
        finally:
            server.close()
            yield server.wait_closed()
        return loop_thread

    loop_thread = run(main)
    assert len(resolved_on) == 1
    ident, name = resolved_on[0]
    assert ident != loop_thread
    assert name.startswith("tasklets-worker")  # the default thread pool's workers


def test_connect_timeout_covers_name_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    entered = threading.Event()
    release = threading.Event()
    left = threading.Event()

    def resolve(host: Any, port: Any, *rest: Any) -> list[Any]:
        entered.set()
        try:
            release.wait(5)  # a resolver that hangs (bounded, and released by the test)
            raise socket.gaierror(socket.EAI_AGAIN, "the test's resolver gave up")
        finally:
            left.set()

    _fake_resolver(monkeypatch, "slow.test", resolve)

    def main() -> Any:
        started = time.monotonic()
        with pytest.raises(tasklets.ConnectTimeout) as caught:
            yield tasklets.open_connection("slow.test", 8080, timeout=0.1)
        elapsed = time.monotonic() - started
        assert entered.is_set()  # it timed out while resolving
        assert not left.is_set()  # ...and the resolver was still stuck
        assert 0.1 <= elapsed < 2.0, elapsed
        error = caught.value
        assert isinstance(error, TimeoutError)
        assert isinstance(error, tasklets.TimeoutError)
        assert isinstance(error, tasklets.ConnectError)
        assert (error.host, error.port) == ("slow.test", 8080)

    try:
        run(main)
    finally:
        release.set()
        freed = left.wait(10)
    assert freed  # the pool thread is free again
