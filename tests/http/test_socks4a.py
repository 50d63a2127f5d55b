"""SOCKS4a (the proxy resolves the origin's name) and SOCKS4 against Twisted's SOCKS server, which we did not write.

pproxy (tests/http/test_client_proxies.py) speaks SOCKS4 but not 4a.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from _servers import StdlibServer, TwistedSocks, fetch, pattern, run

from tasklets.http import Client, Connector, Timeout
from tasklets.testing import FakeResolver

pytest.importorskip("twisted")


@pytest.fixture(scope="module")
def twisted_socks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwistedSocks]:
    server = TwistedSocks(log=str(tmp_path_factory.mktemp("twisted") / "socks.log"))
    try:
        server.wait_ready(time.monotonic() + 30.0)
        yield server
    finally:
        server.stop()


def _client(proxy_url: str, resolver: FakeResolver) -> Client:
    return Client(
        connector=Connector(resolver=resolver),
        proxies={"http": proxy_url, "https": proxy_url},
        timeout=Timeout(5, 10, total=30),
    )


def test_socks4a_sends_the_name_for_the_proxy_to_resolve(twisted_socks: TwistedSocks, stdlib: StdlibServer) -> None:
    resolver = FakeResolver({})  # resolves nothing here: the name must go to the proxy
    with _client(twisted_socks.proxy_url("socks4a"), resolver) as client:

        def main() -> Any:
            _, first = yield from fetch(client, f"http://localhost:{stdlib.port}/bytes/100000")
            _, second = yield from fetch(client, f"http://localhost:{stdlib.port}/echo")
            return first, second

        first, second = run(main)
    assert first == pattern(100000)
    assert b'"path": "/echo"' in second  # the origin's own target: not an HTTP proxy
    assert resolver.lookups == []
    assert stdlib.counter.accepted == 1  # one connection through the proxy, kept alive and reused


def test_socks4_resolves_the_name_here(twisted_socks: TwistedSocks, stdlib: StdlibServer) -> None:
    resolver = FakeResolver({"site.test": ["127.0.0.1"]})  # a name only this process knows
    with _client(twisted_socks.proxy_url("socks4"), resolver) as client:
        _, body = run(fetch, client, f"http://site.test:{stdlib.port}/echo")
    assert b'"path": "/echo"' in body
    assert [host for _, host, _ in resolver.lookups] == ["site.test"]
