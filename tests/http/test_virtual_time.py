"""The pool, the client and their timeouts on the virtual clock: exact times, whatever the machine's load.

Connections come from ``tasklets.testing.FakeConnector`` (stream pairs served
by a function of the test, connect delays on the loop's clock), so every
window below is an equality on ``loop.time()``, not a wall-clock bound.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

import tasklets
from tasklets import IncompleteReadError, StreamClosed, StreamError
from tasklets._exceptions import (
    ConnectFailed,
    HTTPConnectTimeout,
    HTTPReadTimeout,
    PoolTimeout,
    RemoteDisconnected,
    TotalTimeout,
)
from tasklets.http import Client, Connector, PoolLimits, Timeout
from tasklets.testing import FakeConnector, FakeResolver, VirtualClock, run_strict


def answering(*pieces: tuple[float, bytes], pause: float = 0.0) -> Callable[[tasklets.Stream], Any]:
    """A server function answering every request of its connection after ``pause``: each piece after its delay."""

    def serve(stream: tasklets.Stream) -> Generator[Any, Any, None]:
        while True:
            try:
                yield stream.read_until(b"\r\n\r\n")
            except (IncompleteReadError, StreamClosed):
                return  # the client closed the connection
            if pause:
                yield tasklets.sleep(pause)
            for delay, data in pieces:
                if delay:
                    yield tasklets.sleep(delay)
                try:
                    yield stream.write(data)
                except StreamError:
                    return  # the client has gone (a timeout closed the connection)

    return serve


OK = (0.0, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def run(main: Callable[[Client, FakeConnector], Any], connector: FakeConnector, **options: Any) -> Any:
    """``main(client, connector)`` on a virtual clock, strictly: the client and the servers closed after."""

    def body() -> Generator[Any, Any, Any]:
        client = Client(connector=connector, proxies=None, **options)
        try:
            return (yield from main(client, connector))
        finally:
            client.close()
            yield connector.close()

    return run_strict(body, clock=VirtualClock())


def _pool(client: Client) -> Any:
    return client._pool(tasklets.current_loop())


def fetch(client: Client, url: str, **options: Any) -> Generator[Any, Any, tuple[float, bytes]]:
    """GET ``url``; when its body was read (loop time) and the body."""
    response = yield client.get(url, **options)
    body = yield response.body()
    return tasklets.current_loop().time(), body


# -- the pool ----------------------------------------------------------------------------------------------


def test_a_request_waits_for_the_connection_in_use_then_reuses_it() -> None:
    def main(client: Client, connector: FakeConnector) -> Generator[Any, Any, Any]:
        first = tasklets.Task(fetch(client, "http://one.test/a"))
        second = tasklets.Task(fetch(client, "http://one.test/b"))
        return (yield tasklets.gather([first, second])), [when for when, _ in connector.connects]

    connector = FakeConnector(answering(OK, pause=2.0), delay=0.5)
    done, connects = run(main, connector, limits=PoolLimits(max_per_host=1))
    # connect 0.5 + 2 s for the first; the second waited for that connection and took 2 s more on it
    assert done == [(2.5, b"ok"), (4.5, b"ok")]
    assert connects == [0.0]


def test_the_pool_timeout_is_exact() -> None:
    def main(client: Client, connector: FakeConnector) -> Generator[Any, Any, Any]:
        loop = tasklets.current_loop()
        first = tasklets.Task(fetch(client, "http://one.test/a"))
        yield tasklets.sleep(0.25)
        with pytest.raises(PoolTimeout) as caught:
            yield client.get("http://one.test/b", timeout=Timeout(connect=5, read=5, pool=0.5))
        refused_at = loop.time()
        return refused_at, (yield first), _pool(client).open_connections, str(caught.value)

    connector = FakeConnector(answering(OK, pause=3.0))
    refused_at, first, open_connections, message = run(main, connector, limits=PoolLimits(max_per_host=1))
    assert refused_at == 0.75  # it waited its 0.5 s from 0.25, no more
    assert first == (3.0, b"ok")  # the request holding the connection was not disturbed
    assert open_connections == 1
    assert "within the pool timeout" in message


def test_an_idle_connection_is_reused_until_its_keepalive_expiry_and_not_after() -> None:
    def main(client: Client, connector: FakeConnector) -> Generator[Any, Any, Any]:
        yield from fetch(client, "http://one.test/")  # done at 0: the connection goes idle at 0
        yield tasklets.sleep(5.0)
        yield from fetch(client, "http://one.test/")  # idle exactly the expiry: still good
        yield tasklets.sleep(5.125)
        yield from fetch(client, "http://one.test/")  # idle past the expiry: a new connection
        return [when for when, _ in connector.connects]

    connector = FakeConnector(answering(OK))
    assert run(main, connector, limits=PoolLimits(keepalive_expiry=5.0)) == [0.0, 10.125]


def test_connections_to_other_origins_are_not_reused() -> None:
    def main(client: Client, connector: FakeConnector) -> Generator[Any, Any, Any]:
        yield from fetch(client, "http://one.test/")
        yield from fetch(client, "http://two.test/")
        yield from fetch(client, "http://one.test/")
        return [str(route.origin) for _, route in connector.connects]

    assert run(main, FakeConnector(answering(OK))) == ["http://one.test", "http://two.test"]


# -- connecting ----------------------------------------------------------------------------------------------


def test_the_connect_timeout_is_exact_and_frees_the_slot() -> None:
    def main(client: Client, connector: FakeConnector) -> Generator[Any, Any, Any]:
        loop = tasklets.current_loop()
        with pytest.raises(HTTPConnectTimeout) as caught:
            yield client.get("http://slow.test/", timeout=Timeout(connect=0.3, read=5))
        failed_at = loop.time()
        connector.delay = 0.1  # the next one connects: the slot of the failed one was given back
        done = yield from fetch(client, "http://slow.test/")
        return failed_at, str(caught.value), done, _pool(client).open_connections

    connector = FakeConnector(answering(OK), delay=10.0)
    failed_at, message, done, open_connections = run(main, connector, limits=PoolLimits(max_per_host=1))
    assert failed_at == 0.3
    assert "http://slow.test" in message and "0.3 s" in message
    assert done == (0.4, b"ok")
    assert open_connections == 1


def test_a_refused_connect_is_the_clients_connect_failed_after_its_delay() -> None:
    def main(client: Client, connector: FakeConnector) -> Generator[Any, Any, Any]:
        with pytest.raises(ConnectFailed) as caught:
            yield client.get("http://down.test/")
        return tasklets.current_loop().time(), caught.value, _pool(client).open_connections

    connector = FakeConnector(answering(OK), delay=0.2, error=ConnectionRefusedError(111, "Connection refused"))
    failed_at, error, open_connections = run(main, connector)
    assert failed_at == 0.2
    assert "cannot connect to http://down.test" in str(error) and "refused" in str(error)
    assert open_connections == 0


# -- reading ---------------------------------------------------------------------------------------------------


def test_the_read_timeout_runs_from_the_request_to_the_head() -> None:
    def main(client: Client, connector: FakeConnector) -> Generator[Any, Any, Any]:
        with pytest.raises(HTTPReadTimeout):
            yield client.get("http://one.test/", timeout=Timeout(connect=5, read=0.25))
        return tasklets.current_loop().time(), _pool(client).open_connections

    failed_at, open_connections = run(main, FakeConnector(answering(OK, pause=1.0), delay=0.5))
    assert failed_at == 0.75  # connected at 0.5, no head 0.25 s later
    assert open_connections == 0  # the connection was closed, not pooled


def test_the_read_timeout_is_between_bytes_not_over_the_whole_body() -> None:
    slow_body = (
        (0.0, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"),
        (0.25, b"a"),
        (0.25, b"b"),
        (0.25, b"c"),
        (0.25, b"d"),
    )

    def main(client: Client, connector: FakeConnector) -> Generator[Any, Any, Any]:
        return (yield from fetch(client, "http://one.test/", timeout=Timeout(connect=5, read=0.3)))

    # every gap 0.25 s < 0.3 s: the body of 1 s arrives whole
    assert run(main, FakeConnector(answering(*slow_body))) == (1.0, b"abcd")


def test_a_gap_longer_than_the_read_timeout_fails_the_body_read_exactly() -> None:
    stalling = (
        (0.0, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"),
        (0.25, b"ab"),
        (10.0, b"cd"),
    )

    def main(client: Client, connector: FakeConnector) -> Generator[Any, Any, Any]:
        response = yield client.get("http://one.test/", timeout=Timeout(connect=5, read=0.3))
        with pytest.raises(HTTPReadTimeout):
            yield response.body()
        return tasklets.current_loop().time()

    assert run(main, FakeConnector(answering(*stalling))) == 0.55  # the last byte at 0.25, then 0.3 s


def test_the_total_timeout_covers_connect_head_and_redirects_exactly() -> None:
    moved = (0.0, b"HTTP/1.1 302 Found\r\nLocation: http://two.test/\r\nContent-Length: 0\r\n\r\n")

    def serve(stream: tasklets.Stream) -> Generator[Any, Any, None]:
        while True:
            try:
                head = yield stream.read_until(b"\r\n\r\n")
            except (IncompleteReadError, StreamClosed):
                return
            if b"Host: one.test" in head:  # redirected after 0.5 s
                yield tasklets.sleep(0.5)
                yield stream.write(moved[1])
            else:  # answered after 5 s
                yield tasklets.sleep(5.0)
                yield stream.write(OK[1])

    def main(client: Client, connector: FakeConnector) -> Generator[Any, Any, Any]:
        with pytest.raises(TotalTimeout):
            yield client.get("http://one.test/", timeout=Timeout(connect=5, read=10, total=2.0))
        return tasklets.current_loop().time(), [str(route.origin) for _, route in connector.connects]

    failed_at, origins = run(main, FakeConnector(serve, delay=0.25))
    assert failed_at == 2.0  # neither read (10 s) nor any single step failed: the whole chain's 2 s did
    assert origins == ["http://one.test", "http://two.test"]  # the redirect was followed within the budget



@pytest.mark.parametrize("parser", ["httptools", "h11"])
@pytest.mark.parametrize("where", ["head", "body"])
def test_the_total_timeout_stops_a_server_trickling_a_byte_at_a_time(where: str, parser: str) -> None:
    """Every gap (0.125 s) is within the read timeout (0.5 s): the total (0.75 s) is what stops it, exactly."""
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100
    sent_at_once = 40 if where == "body" else 0
    trickle = ((0.0, response[:sent_at_once]), *((0.125, response[i : i + 1]) for i in range(sent_at_once, 140)))

    def main(client: Client, connector: FakeConnector) -> Generator[Any, Any, Any]:
        with pytest.raises(TotalTimeout) as caught:
            yield from fetch(client, "http://slow.test/", timeout=Timeout(connect=2, read=0.5, total=0.75))
        pool = _pool(client)
        return tasklets.current_loop().time(), (pool.open_connections, pool.idle_connections), str(caught.value)

    failed_at, counts, message = run(main, FakeConnector(answering(*trickle), parser=parser))
    assert failed_at == 0.75
    assert counts == (0, 0)  # the half-read connection was closed, not pooled
    assert "http://slow.test/" in message


# -- the seams themselves ------------------------------------------------------------------------------------


def test_an_error_of_the_server_function_fails_the_connectors_close() -> None:
    def serve(stream: tasklets.Stream) -> Generator[Any, Any, None]:
        yield stream.read_until(b"\r\n\r\n")
        raise ValueError("the test's server broke")

    def main() -> Generator[Any, Any, Any]:
        connector = FakeConnector(serve)
        with Client(connector=connector, proxies=None) as client:
            with pytest.raises(RemoteDisconnected):
                yield client.get("http://one.test/")
        with pytest.raises(ValueError, match="the test's server broke"):
            yield connector.close()
        return connector.serving

    assert run_strict(main, clock=VirtualClock()) == 0


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A port whose connects hang: its listener's accept queue is full (Linux drops the SYNs)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=5)
    yield port
    filler.close()
    listener.close()


def test_the_clients_connector_resolves_with_its_resolver_and_staggers_attempts(dead_port: int) -> None:
    """Happy Eyeballs under the client: the live address is tried exactly the default 0.25 s after the dead one."""

    def handler(stream: tasklets.Stream) -> Generator[Any, Any, None]:
        head = yield stream.read_until(b"\r\n\r\n")
        host = next(line for line in head.split(b"\r\n") if line.startswith(b"Host:"))
        yield stream.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(host), host))
        yield stream.read()  # until the client closes
        stream.close()

    def main() -> Generator[Any, Any, Any]:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        resolver = FakeResolver({"site.test": [("127.0.0.1", dead_port), "127.0.0.1"]}, delay=0.125)
        try:
            with Client(connector=Connector(resolver=resolver), proxies=None) as client:
                done = yield from fetch(client, f"http://site.test:{server.port}/")
        finally:
            server.close()
            yield server.wait_closed()
        return done, resolver.lookups

    (when, body), lookups = run_strict(main, clock=VirtualClock())
    assert when == 0.125 + 0.25
    assert body.startswith(b"Host: site.test:")
    assert lookups == [(0.0, "site.test", 0)]
