"""The resolver seam of ``open_connection``, and Happy Eyeballs timed exactly with ``tasklets.testing.FakeResolver``.

Resolution takes the fake's delay on the loop's clock; connects are real
(loopback): a dead address is a listener whose accept queue is full, so its
connect hangs without an answer and the staggering is an equality.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

import tasklets
from tasklets.net import SystemResolver
from tasklets.net._happy_eyeballs import DEFAULT_DELAY
from tasklets.testing import FakeResolver, VirtualClock

from ._support import run
from .test_connect import BlackHole, _closed_port


@pytest.fixture
def black_hole() -> Any:
    hole = BlackHole()
    yield hole
    hole.close()


def _serve_and_connect(resolver: FakeResolver, host: str, **options: Any) -> Any:
    """Serve "alive", connect to ``host`` through ``resolver``: (seconds taken, peer port, server port)."""

    def handler(stream: tasklets.Stream) -> Any:
        yield stream.write(b"alive")

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        resolver.names = {
            name: [(address, server.port if port == 0 else port) for address, port in entries]  # 0: the server
            for name, entries in resolver.names.items()
        }
        try:
            loop = tasklets.current_loop()
            started = loop.time()
            stream = yield tasklets.open_connection(host, 80, resolver=resolver, **options)
            took = loop.time() - started
            try:
                assert (yield stream.read_exactly(5)) == b"alive"
            finally:
                stream.close()
                yield stream.wait_closed()
            return took, stream.peername[1], server.port
        finally:
            server.close()
            yield server.wait_closed()

    return run(main, clock=VirtualClock())


def test_the_second_address_starts_exactly_the_default_delay_after_the_first(black_hole: BlackHole) -> None:
    resolver = FakeResolver({"two.test": [("127.0.0.1", black_hole.port), ("127.0.0.1", 0)]}, delay=0.125)
    took, peer, live = _serve_and_connect(resolver, "two.test", timeout=5.0)
    assert took == 0.125 + DEFAULT_DELAY  # resolved after 0.125 s; the dead first address held the next 0.25 s
    assert peer == live
    assert resolver.lookups == [(0.0, "two.test", 0)]


def test_each_dead_address_costs_exactly_one_delay(black_hole: BlackHole) -> None:
    dead = ("127.0.0.1", black_hole.port)
    resolver = FakeResolver({"three.test": [dead, dead, ("127.0.0.1", 0)]})
    took, peer, live = _serve_and_connect(resolver, "three.test", happy_eyeballs_delay=0.5, timeout=5.0)
    assert took == 1.0  # attempts started at 0, 0.5 and 1.0; the third connected at once
    assert peer == live


def test_a_refused_address_starts_the_next_at_once() -> None:
    resolver = FakeResolver({"two.test": [("127.0.0.1", _closed_port()), ("127.0.0.1", 0)]}, delay=0.25)
    took, peer, live = _serve_and_connect(resolver, "two.test", happy_eyeballs_delay=30.0)
    assert took == 0.25  # the resolver's time only: no wait for the 30 s delay
    assert peer == live


def test_the_connect_timeout_covers_resolution_exactly() -> None:
    resolver = FakeResolver({"slow.test": ["127.0.0.1"]}, delay=30.0)

    def main() -> Any:
        loop = tasklets.current_loop()
        with pytest.raises(tasklets.ConnectTimeout) as caught:
            yield tasklets.open_connection("slow.test", 8080, timeout=0.125, resolver=resolver)
        return loop.time(), caught.value

    # run's strict check: the abandoned lookup left no task or timer behind
    failed_at, error = run(main, clock=VirtualClock())
    assert failed_at == 0.125
    assert (error.host, error.port) == ("slow.test", 8080)


@pytest.mark.parametrize(
    ("names", "family", "expected"),
    [
        ({}, 0, "not in the FakeResolver's table"),
        ({"down.test": socket.gaierror(socket.EAI_AGAIN, "temporary failure")}, 0, "temporary failure"),
        ({"down.test": ["::1"]}, socket.AF_INET, "no address of family"),
    ],
    ids=["unknown name", "the resolver fails", "no address of the family"],
)
def test_a_failed_lookup_is_a_name_resolution_error(names: Any, family: int, expected: str) -> None:
    resolver = FakeResolver(names, delay=0.5)

    def main() -> Any:
        with pytest.raises(tasklets.NameResolutionError) as caught:
            yield tasklets.open_connection("down.test", 80, resolver=resolver, family=family)
        return tasklets.current_loop().time(), caught.value

    failed_at, error = run(main, clock=VirtualClock())
    assert failed_at == 0.5
    assert expected in str(error)
    assert (error.host, error.port) == ("down.test", 80)
    assert isinstance(error.__cause__, socket.gaierror)


def test_a_numeric_host_never_reaches_the_resolver() -> None:
    resolver = FakeResolver({})

    def main() -> Any:
        server = yield tasklets.start_server(lambda stream: stream.close(), "127.0.0.1", 0)
        try:
            stream = yield tasklets.open_connection("127.0.0.1", server.port, resolver=resolver)
            stream.close()
            yield stream.wait_closed()
        finally:
            server.close()
            yield server.wait_closed()

    run(main, clock=VirtualClock())
    assert resolver.lookups == []


def test_the_system_resolver_answers_getaddrinfo_in_a_worker_thread() -> None:
    def main() -> Any:
        return (yield SystemResolver().resolve("127.0.0.1", 80, socket.AF_INET))

    infos = run(main)
    assert infos[0][0] == socket.AF_INET and infos[0][4] == ("127.0.0.1", 80)


def test_a_fake_resolver_answers_only_with_numeric_addresses() -> None:
    resolver = FakeResolver({"named.test": ["localhost"]})  # connecting would resolve it for real, blocking

    def main() -> Any:
        with pytest.raises(ValueError, match="numeric addresses"):
            yield tasklets.open_connection("named.test", 80, resolver=resolver)

    run(main, clock=VirtualClock())
