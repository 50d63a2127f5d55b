"""Proxies: SOCKS4/5/5h (with credentials) and https:// proxies (to http and https origins) against pproxy.

Also the environment's settings. SOCKS4a, which pproxy lacks, is tested in test_socks4a.py.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _servers import ExternalServer, PProxy, RawServer, StdlibServer, fetch, pattern, run

import tasklets
from tasklets._exceptions import ConnectFailed, UnsupportedScheme
from tasklets.http import Client, Connector, Timeout
from tasklets.testing import FakeResolver

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CREDENTIALS = "al:s3cr%40t"  # the password is "s3cr@t"


@pytest.fixture(scope="session")
def pproxies(
    tmp_path_factory: pytest.TempPathFactory, cert_files: tuple[str, str]
) -> Iterator[dict[str, PProxy]]:
    """pproxy listeners: SOCKS4 and 5 without credentials, SOCKS5 with, and HTTP over TLS."""
    logs = tmp_path_factory.mktemp("pproxy")
    proxies: dict[str, PProxy] = {}
    try:
        proxies["open"] = PProxy("socks4+socks5", log=str(logs / "open.log"))
        proxies["auth"] = PProxy("socks5", credentials="al:s3cr@t", log=str(logs / "auth.log"))
        proxies["tls"] = PProxy("http+ssl", ssl_files=cert_files, log=str(logs / "tls.log"))
        deadline = time.monotonic() + 30.0
        for proxy in proxies.values():
            proxy.wait_ready(deadline)
        yield proxies
    finally:
        for proxy in proxies.values():
            proxy.stop()


def _client(proxy_url: str, **kwargs: Any) -> Client:
    return Client(proxies={"http": proxy_url, "https": proxy_url}, timeout=Timeout(5, 10, total=30), **kwargs)


@pytest.mark.parametrize("scheme", ["socks4", "socks5", "socks5h"])  # (pproxy has no SOCKS4a)
def test_socks_proxies(pproxies: dict[str, PProxy], stdlib: StdlibServer, scheme: str) -> None:
    # Remote DNS (4a, 5h): the proxy resolves the name. Otherwise it is resolved here.
    host = "localhost" if scheme == "socks5h" else "127.0.0.1"
    url = f"http://{host}:{stdlib.port}"
    with _client(pproxies["open"].proxy_url(scheme)) as client:

        def main() -> Any:
            _, first = yield from fetch(client, f"{url}/bytes/100000")
            _, second = yield from fetch(client, f"{url}/echo")
            return first, second

        first, second = run(main)
    assert first == pattern(100000)
    assert b'"path": "/echo"' in second  # the origin's own target, not an absolute URL: this is not an HTTP proxy
    assert stdlib.counter.accepted == 1  # the connection through the proxy is kept alive and reused


@pytest.mark.parametrize("scheme", ["socks4", "socks5"])
def test_a_socks_origin_resolved_here_goes_through_the_connectors_resolver(
    pproxies: dict[str, PProxy], stdlib: StdlibServer, scheme: str
) -> None:
    """socks4:// and socks5:// resolve the origin's name on our side: with the connector's resolver, as a direct
    connection does (a name only the fake resolver knows reaches the server)."""
    resolver = FakeResolver({"site.test": ["127.0.0.1"]})
    connector = Connector(resolver=resolver)
    with _client(pproxies["open"].proxy_url(scheme), connector=connector) as client:
        _, body = run(fetch, client, f"http://site.test:{stdlib.port}/echo")
    assert b'"path": "/echo"' in body
    assert [host for _, host, _ in resolver.lookups] == ["site.test"]


def test_https_through_socks5h(
    pproxies: dict[str, PProxy],
    external_servers: dict[tuple[str, str], ExternalServer],
    client_context: ssl.SSLContext,
) -> None:
    target = external_servers["uvicorn-h11", "https"]
    with _client(pproxies["open"].proxy_url("socks5h"), context=client_context) as client:
        _, body = run(fetch, client, f"https://localhost:{target.port}/bytes/5000")
    assert body == pattern(5000)


def test_socks5_credentials(pproxies: dict[str, PProxy], stdlib: StdlibServer) -> None:
    with _client(pproxies["auth"].proxy_url("socks5h", CREDENTIALS)) as client:
        _, body = run(fetch, client, f"{stdlib.url}/bytes/10")
    assert body == pattern(10)


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        # pproxy hangs up rather than answer a failed authentication with a status
        ("al:badpass", "closed the connection after we sent the username and password (wrong ones?)"),
        (None, "closed the connection after we offered no authentication"),
    ],
)
def test_socks5_credentials_refused(
    pproxies: dict[str, PProxy], stdlib: StdlibServer, credentials: str | None, message: str
) -> None:
    with _client(pproxies["auth"].proxy_url("socks5", credentials)) as client, pytest.raises(ConnectFailed) as caught:
        run(fetch, client, f"{stdlib.url}/bytes/10")
    assert message in str(caught.value)
    assert "badpass" not in str(caught.value)  # the password is never shown


def test_an_https_proxy_is_reached_over_tls(
    pproxies: dict[str, PProxy], stdlib: StdlibServer, client_context: ssl.SSLContext
) -> None:
    with _client(pproxies["tls"].proxy_url("https").replace("127.0.0.1", "localhost"), context=client_context) as c:
        _, body = run(fetch, c, f"{stdlib.url}/bytes/1000")
    assert body == pattern(1000)


@pytest.mark.parametrize("kind", ["uvicorn-h11", "hypercorn"])
def test_https_through_an_https_proxy(
    pproxies: dict[str, PProxy],
    external_servers: dict[tuple[str, str], ExternalServer],
    client_context: ssl.SSLContext,
    kind: str,
) -> None:
    # TLS to pproxy (it listens on TLS only), CONNECT, then the origin's own TLS session inside
    # the proxy's (the origin speaks TLS only): two sessions, each certificate verified.
    target = external_servers[kind, "https"]
    origin = f"https://localhost:{target.port}"
    size = 3 * 1024 * 1024
    with _client(pproxies["tls"].proxy_url("https").replace("127.0.0.1", "localhost"), context=client_context) as c:

        def main() -> Any:
            _, small = yield from fetch(c, f"{origin}/bytes/5000")
            _, large = yield from fetch(c, f"{origin}/bytes/{size}")
            response = yield c.post(f"{origin}/echo", data=pattern(size, 1))
            echoed = yield response.json()
            return small, large, echoed

        small, large, echoed = run(main, limit=60.0)
    assert small == pattern(5000)
    assert large == pattern(size)
    assert echoed["body"].encode("latin-1") == pattern(size, 1)
    assert echoed["path"] == "/echo"  # the origin's own target: it was tunnelled, not forwarded


def test_an_https_proxy_whose_certificate_does_not_verify_is_refused(
    pproxies: dict[str, PProxy], stdlib: StdlibServer
) -> None:
    with _client(pproxies["tls"].proxy_url("https")) as client, pytest.raises(ConnectFailed, match="certificate"):
        run(fetch, client, f"{stdlib.url}/bytes/1000")


def test_an_unsupported_proxy_in_the_environment_fails_only_the_requests_that_use_it(
    monkeypatch: pytest.MonkeyPatch, stdlib: StdlibServer
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "ftp://user:hidden@proxy.invalid:21")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with Client(timeout=5) as client:  # before, Client() itself failed: every request in the process did
        _, body = run(fetch, client, f"{stdlib.url}/bytes/7")
        assert body == pattern(7)
        with pytest.raises(UnsupportedScheme, match=r"unsupported proxy 'ftp://user:\*\*\*@proxy.invalid:21'"):
            run(fetch, client, "http://origin.invalid/")


def test_all_proxy_serves_the_schemes_without_a_proxy_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    with RawServer(lambda conn: [conn.send(OK) for _ in iter(lambda: conn.recv_request()[0], b"")]) as proxy:
        monkeypatch.delenv("HTTP_PROXY", raising=False)
        monkeypatch.delenv("http_proxy", raising=False)
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        with Client(timeout=5) as client:
            _, body = run(fetch, client, "http://origin.invalid/all")
    assert body == b"ok"
    assert proxy.heads[0].startswith(b"GET http://origin.invalid/all HTTP/1.1")


def test_socks_without_socksio_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, pproxies: dict[str, PProxy], stdlib: StdlibServer
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "socksio", None)
    with _client(pproxies["open"].proxy_url("socks5")) as client:
        with pytest.raises(ConnectFailed, match=r"tasklets\[socks\]"):
            run(fetch, client, f"{stdlib.url}/bytes/10")


def test_a_connector_over_a_unix_socket_takes_no_proxy(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Connector(uds=) serves every origin from the socket: a proxy setting must not turn the target absolute."""
    path = str(tmp_path_factory.mktemp("uds", numbered=True) / "s")
    if len(path) > 100:  # sun_path is about 108 bytes
        pytest.skip(f"the temporary path {path!r} is too long for a Unix socket")

    def handler(stream: tasklets.Stream) -> Any:
        head = yield stream.read_until(b"\r\n\r\n")
        target = head.split(b" ")[1]
        yield stream.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(target), target))
        yield stream.read()  # until the client closes
        stream.close()

    def main() -> Any:
        server = yield tasklets.start_unix_server(handler, path)
        try:
            proxies = {"http": "http://127.0.0.1:9"}  # nothing listens there: it must not be used
            with Client(proxies=proxies, connector=Connector(uds=path), timeout=Timeout(5, 5)) as client:
                _, body = yield from fetch(client, "http://docker.invalid/v1/info")
        finally:
            server.close()
            yield server.wait_closed()
        return body

    assert run(main) == b"/v1/info"


def test_uds_and_a_connector_together_are_refused() -> None:
    with pytest.raises(ValueError, match=r"give .* the uds= instead"):
        Client(uds="/run/docker.sock", connector=Connector())
