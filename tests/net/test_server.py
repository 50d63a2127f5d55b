"""Servers: handler kinds, failures, closing, Unix sockets, listening options."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import pytest

import tasklets
from tasklets import Future

from ._support import read_all, run, short_tmpdir


def _gen_handler(stream: tasklets.Stream) -> Any:
    data = yield stream.read_until(b"\n")
    yield stream.write(b"gen:" + data)


async def _async_handler(stream: tasklets.Stream) -> None:
    data = await stream.read_until(b"\n")
    await stream.write(b"async:" + data)


@tasklets.task
def _task_handler(stream: tasklets.Stream) -> Any:
    data = yield stream.read_until(b"\n")
    yield stream.write(b"task:" + data)


@pytest.mark.parametrize(
    ("handler", "prefix"), [(_gen_handler, b"gen:"), (_async_handler, b"async:"), (_task_handler, b"task:")]
)
def test_every_kind_of_handler(handler: Any, prefix: bytes) -> None:
    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        stream = yield tasklets.open_connection("127.0.0.1", server.port)
        yield stream.write(b"hello\n")
        assert (yield from read_all(stream)) == prefix + b"hello\n"  # the server closes after the handler
        stream.close()
        server.close()
        yield server.wait_closed()

    run(main)


def _handler_failures(main: Any, caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Run ``main``; return the records of handler failures the server logged."""
    with caplog.at_level(logging.ERROR, logger="tasklets"):
        run(main)
    return [r for r in caplog.records if "failed on the connection" in r.getMessage()]


def test_a_failing_handler_is_logged_and_closes_only_its_connection(caplog: pytest.LogCaptureFixture) -> None:
    def handler(stream: tasklets.Stream) -> Any:
        line = yield stream.read_until(b"\n")
        if line == b"boom\n":
            raise ValueError("the handler broke")
        yield stream.write(b"fine\n")
        yield stream.read()

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        good = yield tasklets.open_connection("127.0.0.1", server.port)
        bad = yield tasklets.open_connection("127.0.0.1", server.port)
        yield bad.write(b"boom\n")
        assert (yield bad.read()) == b""
        yield good.write(b"hi\n")
        assert (yield good.read_until(b"\n")) == b"fine\n"
        good.close()
        bad.close()
        server.close()
        yield server.wait_closed()

    failures = _handler_failures(main, caplog)
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert "the handler broke" in str(failures[0].exc_info[1])
    # Logged once, as the handler's failure, not again as a task nobody asked.
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_a_handler_that_cannot_take_the_stream_is_logged_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler() -> Any:  # forgot the stream parameter
        yield None

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        for _ in range(2):
            stream = yield tasklets.open_connection("127.0.0.1", server.port)
            try:
                assert (yield stream.read()) == b""
            except ConnectionResetError:
                pass  # aborted: the peer may see a reset rather than an end of file
            stream.close()
        assert server.connections == 0 and server.is_serving()
        server.close()
        yield server.wait_closed()

    failures = _handler_failures(main, caplog)
    assert len(failures) == 2
    assert all(r.exc_info is not None and isinstance(r.exc_info[1], TypeError) for r in failures)


def test_close_stops_accepting_and_wait_closed_waits_for_handlers() -> None:
    release: Future[None] = Future()
    started: Future[None] = Future()

    def handler(stream: tasklets.Stream) -> Any:
        started.set_result(None)
        yield release
        yield stream.write(b"done")

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        port = server.port
        stream = yield tasklets.open_connection("127.0.0.1", port)
        yield started
        server.close()
        assert not server.is_serving()
        with pytest.raises(tasklets.ConnectionRefused):
            yield tasklets.open_connection("127.0.0.1", port)
        closed = server.wait_closed()
        assert not closed.done()
        assert server.connections == 1
        release.set_result(None)
        assert (yield from read_all(stream)) == b"done"
        yield closed
        stream.close()

    run(main)


def test_close_can_cancel_the_handlers() -> None:
    started: Future[None] = Future()
    cleaned: list[str] = []

    def handler(stream: tasklets.Stream) -> Any:
        started.set_result(None)
        try:
            yield stream.read()
        finally:
            cleaned.append("yes")

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        stream = yield tasklets.open_connection("127.0.0.1", server.port)
        yield started
        server.close(cancel_handlers=True)
        yield server.wait_closed()
        assert cleaned == ["yes"]
        assert (yield stream.read()) == b""
        stream.close()

    run(main)


def test_unix_server_cleans_up_its_socket_file() -> None:
    path = os.path.join(short_tmpdir(), "srv.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)  # a stale file from an earlier run
    stale.close()

    def main() -> Any:
        server = yield tasklets.start_unix_server(_gen_handler, path)
        assert server.port is None
        assert server.addresses == [path]
        stream = yield tasklets.open_unix_connection(path)
        yield stream.write(b"unix\n")
        assert (yield from read_all(stream)) == b"gen:unix\n"
        stream.close()
        server.close()
        yield server.wait_closed()
        assert not os.path.exists(path)

    run(main)


def test_listening_on_a_given_socket_and_with_reuse_port() -> None:
    given = socket.socket()
    given.bind(("127.0.0.1", 0))

    def main() -> Any:
        first = yield tasklets.start_server(_gen_handler, sock=given)
        assert first.sockets == [given]
        second = yield tasklets.start_server(_gen_handler, "127.0.0.1", 0, reuse_port=True)
        third = yield tasklets.start_server(_gen_handler, "127.0.0.1", second.port, reuse_port=True)
        assert third.port == second.port
        for server in (first, second, third):
            server.close()
            yield server.wait_closed()
        assert given.fileno() == -1

    run(main)


def test_listening_on_several_hosts() -> None:
    def main() -> Any:
        server = yield tasklets.start_server(_gen_handler, ["127.0.0.1", "localhost"], 0)
        assert len(server.sockets) >= 1
        assert all(s.getsockname()[1] for s in server.sockets)
        server.close()
        yield server.wait_closed()

    run(main)


def test_server_as_async_context_manager() -> None:
    async def main() -> None:
        async with (await tasklets.start_server(_async_handler, "127.0.0.1", 0)) as server:
            async with (await tasklets.open_connection("127.0.0.1", server.port)) as stream:
                await stream.write(b"ctx\n")
                assert await stream.read_until(b"\n") == b"async:ctx\n"
        assert not server.is_serving()

    run(main)


def test_running_out_of_descriptors_pauses_accepting(caplog: pytest.LogCaptureFixture) -> None:
    import resource

    def handler(stream: tasklets.Stream) -> Any:
        yield stream.write(b"hi")

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        client = socket.socket()
        lowest_free = os.dup(0)
        os.close(lowest_free)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # no new descriptor from here on
        try:
            client.connect(("127.0.0.1", server.port))  # queued by the kernel; accept() fails
            while server._serving:
                yield tasklets.sleep(0.001)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        stream = tasklets.Stream(client, loop=tasklets.current_loop())
        assert (yield stream.read_exactly(2)) == b"hi"  # accepted once the pause is over
        stream.close()
        server.close()
        yield server.wait_closed()

    with caplog.at_level(logging.ERROR, logger="tasklets"):
        run(main)
    assert any("cannot accept" in r.getMessage() for r in caplog.records)
