"""The keep-alive pool, seen from the servers: limits, reuse, expiry, dead and abandoned connections."""

from __future__ import annotations

import socket
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import pytest
from _servers import RawConnection, RawServer, StdlibServer, fetch, pattern, run

import tasklets
from tasklets._exceptions import PoolTimeout
from tasklets.http import Client, PoolLimits, Timeout
from tasklets.http._pool import Open, Reuse, choose
from tasklets.http._url import Origin

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _client(**limits: Any) -> Client:
    return Client(proxies=None, limits=PoolLimits(**limits), timeout=Timeout(connect=2, read=5, total=15, pool=5))


@pytest.fixture
def client() -> Iterator[Client]:
    with _client() as made:
        yield made


def _pool(client: Client) -> Any:
    return client._pool(tasklets.current_loop())


def test_per_host_limit(stdlib: StdlibServer) -> None:
    stdlib.hold_until = 3  # each response waits until three connections are busy at once

    def main() -> Any:
        return (yield tasklets.gather([tasklets.Task(fetch(client, f"{stdlib.url}/hold")) for _ in range(8)]))

    with _client(max_per_host=3) as client:
        results = run(main)
    assert [(r.status, body) for r, body in results] == [(200, b"held")] * 8
    assert stdlib.counter.max_in_flight == 3
    assert stdlib.counter.max_active == 3
    assert stdlib.counter.accepted == 3, "connections were not reused"


def test_total_limit_across_hosts(stdlib: StdlibServer) -> None:
    stdlib.hold_until = 4
    other = f"http://localhost:{stdlib.port}"  # another origin, the same server

    def main() -> Any:
        urls = [f"{base}/hold" for base in (stdlib.url, other) for _ in range(5)]
        return (yield tasklets.gather([tasklets.Task(fetch(client, url)) for url in urls]))

    with _client(max_connections=4, max_per_host=10) as client:
        results = run(main)
    assert [(r.status, body) for r, body in results] == [(200, b"held")] * 10
    # Connections closed to make room for another origin may linger at the server for a moment:
    # count requests in flight, which cannot outnumber the client's busy connections.
    assert stdlib.counter.max_in_flight == 4


def test_pool_timeout_when_every_connection_is_busy() -> None:
    def script(conn: RawConnection) -> None:
        conn.recv_request()
        conn.hold()

    def main() -> Any:
        first = client.urlopen(f"{server.url}/1")
        yield tasklets.to_thread(server.counter.wait_for, lambda: len(server.heads) == 1, 5.0)
        try:
            yield client.urlopen(f"{server.url}/2", timeout=Timeout(connect=2, read=5, pool=0.2))
        except PoolTimeout as exc:
            first.cancel()
            return exc
        finally:
            first.cancel()

    with RawServer(script) as server, _client(max_per_host=1) as client:
        exc = run(main)
    assert "pool timeout" in str(exc)
    assert server.accepted == 1


def test_body_read_to_the_end_returns_the_connection(stdlib: StdlibServer, client: Client) -> None:
    def main() -> Any:
        response = yield client.urlopen(f"{stdlib.url}/bytes/300000")
        pool = _pool(client)
        during = (pool.open_connections, pool.idle_connections)
        body = yield from response.read()
        after = (pool.open_connections, pool.idle_connections)
        _, again = yield from fetch(client, f"{stdlib.url}/chunked/5000")
        return during, body, after, again

    during, body, after, again = run(main)
    assert (during, after) == ((1, 0), (1, 1))
    assert (body, again) == (pattern(300_000), pattern(5000))
    assert stdlib.counter.accepted == 1


def test_abandoned_body_closes_the_connection(stdlib: StdlibServer, client: Client) -> None:
    def main() -> Any:
        response = yield client.urlopen(f"{stdlib.url}/bytes/3000000")
        reader = response.read()
        first = yield next(reader)
        response.close()
        counts = (_pool(client).open_connections, _pool(client).idle_connections)
        _, again = yield from fetch(client, f"{stdlib.url}/bytes/10")
        return first, counts, again

    first, counts, again = run(main)
    assert first and counts == (0, 0) and again == pattern(10)
    assert stdlib.counter.accepted == 2


def test_cancelled_read_closes_the_connection(client: Client) -> None:
    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst")
            conn.hold()  # the rest never comes

    def reader(response: Any) -> Any:
        yield from response.read()

    def main() -> Any:
        response = yield client.urlopen(f"{server.url}/")
        task = tasklets.Task(reader(response))
        yield None  # let it start and wait for the second chunk
        yield None
        task.cancel()
        try:
            yield task
        except tasklets.CancelledError:
            pass
        # The server sees the close: its script returns.
        yield tasklets.to_thread(server.counter.wait_idle, 5.0)
        return server.counter.active, _pool(client).open_connections

    with RawServer(script) as server:
        assert run(main) == (0, 0)


def test_idle_connections_expire(client: Client) -> None:
    def script(conn: RawConnection) -> None:
        while conn.recv_request()[0]:
            conn.send(OK)

    def main() -> Any:
        yield from fetch(client, f"{server.url}/1")
        yield tasklets.sleep(0.3)  # past keepalive_expiry: what is under test is the passing of time
        yield from fetch(client, f"{server.url}/2")
        yield tasklets.to_thread(server.counter.wait_for, lambda: server.counter.active == 1, 5.0)
        return server.counter.active, _pool(client).open_connections

    with RawServer(script) as server, _client(keepalive_expiry=0.2) as client:
        assert run(main) == (1, 1)
    assert server.accepted == 2


@pytest.mark.parametrize("how", ["closed", "stray-bytes", "reset"])
def test_a_dead_idle_connection_is_never_handed_out(how: str) -> None:
    """The server drops (or spoils) the idle connection; a POST, never retried, must still succeed."""
    spoiled = tasklets.Future()

    def script(conn: RawConnection) -> None:
        first = conn.server.accepted == 1
        while conn.recv_request()[0]:
            conn.send(OK)
            if first:
                if how == "stray-bytes":
                    conn.send(b"HTTP/1.1 200 OK\r\n\r\n")
                elif how == "reset":
                    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                spoiled.set_result(None)
                if how == "stray-bytes":
                    conn.hold()
                return

    def main() -> Any:
        yield from fetch(client, f"{server.url}/1")
        yield spoiled  # set by the server's thread once it has spoiled the connection
        if how != "stray-bytes":
            yield tasklets.to_thread(server.counter.wait_for, lambda: server.counter.active == 0, 5.0)
        _, body = yield from fetch(client, f"{server.url}/2", b"data")
        return body

    with RawServer(script) as server, _client() as client:
        assert run(main) == b"ok"
    assert server.accepted == 2
    assert server.bodies == [b"", b"data"]


def test_http_1_0_connection_is_not_reused(client: Client) -> None:
    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.send(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def main() -> Any:
        yield from fetch(client, f"{server.url}/1")
        yield from fetch(client, f"{server.url}/2")
        return _pool(client).open_connections

    with RawServer(script) as server:
        assert run(main) == 0
    assert server.accepted == 2


def test_connection_close_is_honoured(client: Client) -> None:
    def script(conn: RawConnection) -> None:
        if conn.recv_request()[0]:
            conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
            conn.hold()  # the client must close it

    def main() -> Any:
        _, body = yield from fetch(client, f"{server.url}/1")
        return body, _pool(client).open_connections

    with RawServer(script) as server:
        assert run(main) == (b"ok", 0)
        assert server.counter.wait_idle(5.0)


def test_many_sequential_requests_use_one_connection(stdlib: StdlibServer, client: Client) -> None:
    def main() -> Any:
        for i in range(50):
            _, body = yield from fetch(client, f"{stdlib.url}/bytes/{i}")
            assert body == pattern(i)

    run(main)
    assert stdlib.counter.accepted == 1


def test_a_response_never_read_is_closed_with_its_loop(stdlib: StdlibServer, client: Client) -> None:
    def main() -> Any:
        response = yield client.urlopen(f"{stdlib.url}/bytes/500000")
        return response.status, _pool(client).open_connections

    assert run(main) == (200, 1)
    # tasklets.run closed its loop, and the loop its pool, busy connections included (the leak check agrees).
    assert stdlib.wait_idle(5.0)


# -- a new connection for a retry ----------------------------------------------------------------


def test_the_retry_after_a_stale_connection_takes_a_new_one() -> None:
    """Two idle connections, both closed by the server as a request arrives: the retry must not take the other."""
    numbers = iter(range(1, 100))
    lock = threading.Lock()

    def script(conn: RawConnection) -> None:
        with lock:
            number = next(numbers)
        answered = 0
        while conn.recv_request()[0]:
            if number <= 2 and answered == 1:
                return  # the first two connections: closed as their second request arrives
            conn.send(OK)
            answered += 1

    def main() -> Any:
        pool = _pool(client)
        both = yield [tasklets.spawn(fetch, client, f"{server.url}/{name}") for name in "ab"]
        assert [body for _, body in both] == [b"ok", b"ok"]
        assert (pool.open_connections, pool.idle_connections) == (2, 2)
        _, body = yield from fetch(client, f"{server.url}/c")
        return body, (pool.open_connections, pool.idle_connections)

    with RawServer(script) as server, _client(max_per_host=2) as client:
        body, counts = run(main)
    assert body == b"ok"
    assert server.accepted == 3  # the retry went on a new connection (the other idle one was stale too)
    assert [h.split(b" ")[1] for h in server.heads[2:]] == [b"/c", b"/c"]  # sent twice, no more
    assert counts == (2, 2)  # the new connection and the old idle one, both idle


def _idle(*connections: Any) -> OrderedDict[Any, None]:
    return OrderedDict((conn, None) for conn in connections)


HERE = Origin("http", "here.test", 80)
THERE = Origin("http", "there.test", 80)


class _Idle:
    """What choose() looks at of an idle connection."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.idle_since = 0.0


def _conn(origin: Origin) -> Any:
    return _Idle(origin)


def _choose(idle: OrderedDict[Any, None], total: int, for_origin: int, *, reuse: bool, **limits: Any) -> Any:
    return choose(HERE, idle, total, for_origin, PoolLimits(**limits), 1.0, lambda conn, now: False, reuse=reuse)


def test_choose_a_new_connection_when_reuse_is_off() -> None:
    old, older = _conn(HERE), _conn(HERE)
    assert _choose(_idle(older, old), 2, 2, reuse=True) == Reuse(old, ())
    # Room left: open one, leave the idle ones alone.
    assert _choose(_idle(older, old), 2, 2, reuse=False) == Open(())
    # The origin's limit reached: its least recently used idle connection makes way.
    assert _choose(_idle(older, old), 2, 2, reuse=False, max_per_host=2) == Open((older,))
    # The pool's limit reached: the least recently used idle connection, whatever its origin.
    assert _choose(_idle(older, old), 2, 2, reuse=False, max_connections=2) == Open((older,))
    # With reuse on, only another origin's idle connection is evicted for a new one.
    elsewhere = _conn(THERE)
    assert _choose(_idle(elsewhere), 1, 0, reuse=True, max_connections=1) == Open((elsewhere,))


# -- responses without a body -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "answer"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n"),
        ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ],
    ids=["HEAD", "204", "304", "empty"],
)
def test_a_response_without_a_body_frees_its_connection_at_once(method: str, answer: bytes) -> None:
    """Nothing to read, so nothing to wait for: the connection is back in the pool before any read()."""

    def script(conn: RawConnection) -> None:
        while conn.recv_request()[0]:
            conn.send(answer)

    def main() -> Any:
        pool = _pool(client)
        first = yield client.urlopen(f"{server.url}/1", method=method)  # never read
        counts = (pool.open_connections, pool.idle_connections)
        second = yield client.urlopen(f"{server.url}/2", method=method)  # the one connection allowed, again
        assert (yield from first.read()) == b"" and (yield from second.read()) == b""
        return counts, first.status

    with RawServer(script) as server, _client(max_per_host=1) as client:
        counts, status = run(main)
    assert counts == (1, 1)
    assert status == int(answer.split()[1])
    assert server.accepted == 1
