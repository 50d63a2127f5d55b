"""Behaviours that used to fail healthy programs (issue 14's traps), each against a real server."""

from __future__ import annotations

from typing import Any

from _servers import StdlibServer, pattern, run

import tasklets
import tasklets.http
from tasklets.http import Client, PoolLimits, Timeout
from tasklets.testing import VirtualClock

# -- a response dropped unread gives its connection back ---------------------------------------------------


def test_responses_dropped_unread_from_plain_code_give_their_slot_back(stdlib: StdlibServer) -> None:
    # The default client allows 20 connections per host: before, the 21st request waited for a slot
    # that the 20 dropped responses held for the life of the process.
    url = f"{stdlib.url}/bytes/100"
    for _ in range(1000):
        assert tasklets.urlopen_async(url, timeout=Timeout(connect=5, read=5, pool=5)).result(10).status == 200


def test_responses_dropped_unread_by_a_task_give_their_slot_back(stdlib: StdlibServer) -> None:
    def one(client: Client, url: str) -> Any:
        response = yield client.urlopen(url)
        return response.status  # the task ends without reading the body

    def main() -> Any:
        with Client(proxies=None, limits=PoolLimits(max_per_host=3), timeout=Timeout(5, 5, pool=5)) as client:
            statuses = []
            for _ in range(1000):
                statuses.append((yield tasklets.Task(one(client, f"{stdlib.url}/bytes/1000"))))
            return statuses

    assert run(main, limit=60) == [200] * 1000


def test_a_dropped_response_whose_body_was_read_keeps_its_connection(stdlib: StdlibServer) -> None:
    def main() -> Any:
        with Client(proxies=None) as client:
            for _ in range(3):
                response = yield client.urlopen(f"{stdlib.url}/bytes/10")
                assert (yield from response.read()) == pattern(10)
                del response

    run(main)
    assert stdlib.counter.accepted == 1


# -- a number as timeout does not bound the wait for a free connection ------------------------------------------


def test_a_number_as_timeout_leaves_the_wait_for_a_connection_unbounded(stdlib: StdlibServer) -> None:
    def main() -> Any:
        with Client(proxies=None, limits=PoolLimits(max_per_host=1)) as client:
            first = yield client.urlopen(f"{stdlib.url}/bytes/10", timeout=3)  # holds the only connection
            second = client.urlopen(f"{stdlib.url}/bytes/20", timeout=3)  # waits for it
            yield tasklets.sleep(30)  # virtual: ten times the timeout passes while the second one waits
            assert not second.done()
            assert (yield from first.read()) == pattern(10)
            response = yield second
            return (yield from response.read())

    # Real sockets: the clock jumps only once the loop has been idle for a (real) moment.
    assert tasklets.run(main, clock=VirtualClock(autojump_threshold=0.5)) == pattern(20)


def test_timeout_pool_still_bounds_the_wait(stdlib: StdlibServer) -> None:
    def main() -> Any:
        with Client(proxies=None, limits=PoolLimits(max_per_host=1)) as client:
            first = yield client.urlopen(f"{stdlib.url}/bytes/10")
            try:
                yield client.urlopen(f"{stdlib.url}/bytes/20", timeout=Timeout(connect=3, read=3, pool=3))
            except tasklets.PoolTimeout as exc:
                first.close()
                return exc
            raise AssertionError("no PoolTimeout")

    error = tasklets.run(main, clock=VirtualClock(autojump_threshold=0.5))
    assert "pool timeout" in str(error)


def test_timeout_as_a_number_is_connect_and_read_only() -> None:
    assert Timeout.of(3) == Timeout(connect=3, read=3, total=None, pool=None)
    assert Timeout().pool is None
