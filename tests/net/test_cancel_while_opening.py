"""Cancelling an operation that makes a resource (a connection, a TLS session, a server) at every step.

A task resumes with a wait that completed even when a cancellation arrived
meanwhile: the cancellation lands at its next wait. An operation whose last
wait completed just as it was cancelled must not then finish with what it
made, since whoever asked for it was told ``cancel()`` succeeded and has gone.
Each test below cancels the operation after 0, 1, 2... polls of the loop
(each step of the driver is one wait for readiness, so steps line up with
the sockets' events) and checks the contract: when ``cancel()`` returned
True the operation ends cancelled and closes what it made; when it returned
False the caller owns the result and closes it. The leak check of
``tests/net`` then finds no descriptor, task, timer or registration left.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Generator
from typing import Any

import pytest

import tasklets
from tasklets import Future
from tasklets.testing import PollStepper

from ._support import TLSMaterial, run

#: Polls before the cancel: enough to reach past the end of a TLS handshake on loopback.
STEPS = 14
#: Tries at each step (the order of events within one poll varies).
TRIES = 3


def _cancel_at_every_step(
    start: Callable[[], Any], on_result: Callable[[Any], Any], check_cancelled: Callable[[], None] | None = None
) -> Generator[Any, Any, int]:
    """Start, step the loop ``n`` times, cancel, for every ``n``; return how often cancel() said True."""
    stepper = PollStepper(tasklets.current_loop())
    said_cancelled = 0
    try:
        for steps in range(STEPS):
            for _ in range(TRIES):
                operation = start()
                for _ in range(steps):
                    yield stepper.step()
                if operation.cancel():
                    said_cancelled += 1
                    try:
                        made = yield operation
                    except tasklets.CancelledError:
                        if check_cancelled is not None:
                            check_cancelled()
                        continue
                    on_result(made)  # closes it, then the assertion fails
                    raise AssertionError(f"cancel() of {operation!r} returned True, yet it finished with {made!r}")
                on_result(operation.result())
    finally:
        stepper.close()
    return said_cancelled


def test_open_connection(tls: TLSMaterial) -> None:
    # The kernel completes the handshakes into the backlog: nothing needs to accept.
    listener = socket.create_server(("127.0.0.1", 0), backlog=STEPS * TRIES + 8)
    port = listener.getsockname()[1]

    def main() -> Any:
        return (yield from _cancel_at_every_step(lambda: tasklets.open_connection("127.0.0.1", port), _abort))

    try:
        assert run(main) > 0
    finally:
        listener.close()


def _read_to_end(stream: tasklets.Stream) -> Any:
    while (yield stream.read()):
        pass


def _with_tls_server(tls: TLSMaterial, body: Callable[[int], Generator[Any, Any, int]]) -> int:
    """Run ``body(port)`` with a TLS server on the same loop, so that the handshake's steps line up with polls."""

    def main() -> Any:
        server = yield tasklets.start_server(_read_to_end, "127.0.0.1", 0, ssl=tls.server_context)
        try:
            return (yield from body(server.port))
        finally:
            server.close(cancel_handlers=True)
            yield server.wait_closed()

    return run(main)


def test_open_connection_with_tls(tls: TLSMaterial) -> None:
    def body(port: int) -> Any:
        def connect() -> Any:
            return tasklets.open_connection("127.0.0.1", port, ssl=tls.client_context, server_hostname="localhost")

        return (yield from _cancel_at_every_step(connect, _abort))

    assert _with_tls_server(tls, body) > 0


def test_start_tls(tls: TLSMaterial) -> None:
    # The stream is the caller's; a cancelled handshake must still abort it, as documented.
    streams: list[tasklets.Stream] = []

    def check_cancelled() -> None:
        if streams:  # (the cancel may have come while it still connected)
            assert streams[-1].is_closing(), f"a cancelled start_tls left {streams[-1]!r} open"
        streams.clear()

    def body(port: int) -> Any:
        def start() -> Any:
            def upgrade() -> Any:
                stream = yield tasklets.open_connection("127.0.0.1", port)
                streams.append(stream)
                return (yield stream.start_tls(tls.client_context, server_hostname="localhost"))

            return tasklets.spawn(upgrade)

        return (yield from _cancel_at_every_step(start, _abort, check_cancelled))

    assert _with_tls_server(tls, body) > 0


def test_start_server() -> None:
    def start() -> Any:
        return tasklets.start_server(_never_called, "localhost", 0)

    def close(server: tasklets.Server) -> None:
        server.close()

    assert run(lambda: _cancel_at_every_step(start, close)) > 0


def _never_called(stream: tasklets.Stream) -> Any:
    raise AssertionError("no client connects")
    yield


def _abort(stream: tasklets.Stream) -> None:
    stream.abort()


def test_a_connection_cancelled_before_its_handler_started_is_closed() -> None:
    """The server closes (cancelling handlers) between accepting a connection and its task's first step."""
    handled = []

    def handler(stream: tasklets.Stream) -> Any:
        handled.append(stream)
        yield stream.read()

    def main() -> Any:
        loop = tasklets.current_loop()
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        ours, other = socket.socketpair()
        client = socket.socket()
        try:
            # Our socket turns readable before the listener does, so in the
            # poll that sees both, our callback runs first and this task is
            # stepped before the connection's task ever is.
            readable: Future[None] = Future()

            def on_readable() -> None:
                loop.remove_reader(ours.fileno())
                readable.set_result(None)

            loop.add_reader(ours.fileno(), on_readable)
            other.send(b"x")
            client.connect(("127.0.0.1", server.port))
            yield readable
            accepted = server.connections
            server.close(cancel_handlers=True)
            yield server.wait_closed()
            client.settimeout(10)
            assert client.recv(1) == b""  # the server's side was closed
            return accepted
        finally:
            client.close()
            ours.close()
            other.close()

    assert run(main) == 1
    assert handled == []


def test_open_connection_racing_two_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Happy Eyeballs with no delay: both attempts run at once, one wins, the loser's socket is closed."""
    first = socket.create_server(("127.0.0.1", 0), backlog=STEPS * TRIES + 8)
    port = first.getsockname()[1]
    try:
        second = socket.create_server(("127.0.0.2", port), backlog=STEPS * TRIES + 8)
    except OSError:
        first.close()
        pytest.skip("cannot listen on 127.0.0.2 here")
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "two.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ("127.0.0.1", "127.0.0.2")]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def connect() -> Any:
        return tasklets.open_connection("two.test", port, happy_eyeballs_delay=0.0)

    try:
        assert run(lambda: _cancel_at_every_step(connect, _abort)) > 0
    finally:
        first.close()
        second.close()


def test_start_tls_cancelled_before_its_first_step_aborts_the_stream(tls: TLSMaterial) -> None:
    # The cancellation is thrown into a generator that never started, past the code that aborts.
    def body(port: int) -> Any:
        stream = yield tasklets.open_connection("127.0.0.1", port)
        upgrading = stream.start_tls(tls.client_context, server_hostname="localhost")
        assert upgrading.cancel()
        try:
            yield upgrading
        except tasklets.CancelledError:
            pass
        assert stream.is_closing(), f"a cancelled start_tls left {stream!r} open"
        return 1

    assert _with_tls_server(tls, body) == 1
