"""Opening HTTP connections: direct, through a proxy (forwarding, tunnel, SOCKS), over a Unix socket, with TLS.

Theory of operation
-------------------
The pool decides *whether* a new connection is needed; a :class:`Connector`,
handed to the pool once when the pool is made, knows *how* to open one. A
request names where its connection must go with a :class:`Route`: the origin,
the proxy on the way (chosen by the client from its proxy settings), and the
``SSLContext`` that verifies the origin. The route's ``key`` is what the pool
keys and counts connections by, so a connection is reused only for requests
that would have opened the same one.

:meth:`Connector.connect` runs :meth:`Connector.open_stream` (the one step a
test's fake or another transport replaces) and turns the stream into an
:class:`HTTPConnection`; the errors of the layers below become the client's
(``HTTPConnectTimeout``, ``ConnectFailed``) here, whoever opened the stream.

How a stream is opened, by route:

- a Unix socket path on the connector: every origin goes to that socket
  (https still verifies the origin's name);
- no proxy: TCP to the origin (Happy Eyeballs, see ``tasklets.net``), TLS
  for https;
- an HTTP(S) proxy and plain http: TCP (or TLS) to the proxy, which the
  request then asks for the absolute URL (forwarding: one connection to the
  proxy serves every plain-http origin);
- an HTTP proxy and https: a CONNECT tunnel through the proxy, then TLS with
  the origin inside it;
- a SOCKS proxy: the SOCKS handshake (``_socks``), then TLS for https.
"""

from __future__ import annotations

import ssl as _ssl
from collections.abc import Callable, Generator
from typing import Any

from .._exceptions import ConnectError, ConnectFailed, ConnectTimeout, HTTPConnectTimeout
from ..net import Resolver, Stream, open_connection, open_unix_connection
from . import _protocol as protocol
from ._connection import HTTPConnection
from ._proxy import Proxy
from ._socks import socks_handshake
from ._url import Origin

__all__ = ["Connector", "Route", "default_context"]


class Route:
    """Where a new connection goes, and how: the origin, the proxy on the way, the TLS context.

    Args:
        origin: the scheme, host and port the requests are for.
        proxy: the proxy to go through, or None.
        context: the ``ssl.SSLContext`` that verifies an https origin (None:
            the default, verification on).

    Attributes:
        key: what the pool keys (and counts) the connection by. Through a
            proxy, the proxy's key. An https connection made with a caller's
            ``SSLContext`` is only reused with that same context: a request
            with another (or the default) context must not ride on a
            connection verified differently. The connection's SSL object holds
            its context, so the ``id`` cannot be reused while it is pooled.
    """

    __slots__ = ("origin", "proxy", "context", "key")

    def __init__(self, origin: Origin, proxy: Proxy | None = None, context: _ssl.SSLContext | None = None) -> None:
        self.origin = origin
        self.proxy = proxy
        self.context = context
        key = origin if proxy is None else _proxied_origin(proxy, origin)
        if context is not None and origin.scheme == "https":
            key = Origin(key.scheme, f"{key.host}#{id(context):x}", key.port)
        self.key = key

    def __repr__(self) -> str:
        via = "" if self.proxy is None else f" via {self.proxy!r}"
        return f"<Route to {self.origin}{via}>"

    @property
    def forwarded(self) -> bool:
        """True when the request goes to an HTTP proxy that forwards it (plain http; https is tunnelled)."""
        return self.proxy is not None and self.origin.scheme == "http" and not self.proxy.is_socks


class Connector:
    """Opens the connections of a client's pool: directly, through proxies, over a Unix socket, with TLS.

    Give one to :class:`~tasklets.http.Client` (``connector=``) to change how
    connections are made; ``tasklets.testing.FakeConnector`` serves them from
    memory. A subclass replaces :meth:`open_stream`.

    Args:
        parser: the HTTP/1.1 parser of each connection: ``"auto"``, ``"h11"`` or ``"httptools"``.
        uds: a Unix socket path that every connection goes to instead of the origin's address.
        resolver: what resolves host names (default: the system's, in the thread pool).
    """

    def __init__(self, *, parser: str = "auto", uds: str | None = None, resolver: Resolver | None = None) -> None:
        self.parser = parser
        self.uds = uds
        self.resolver = resolver

    def __repr__(self) -> str:
        where = "" if self.uds is None else f" uds={self.uds!r}"
        return f"<{type(self).__name__} parser={self.parser!r}{where}>"

    def connect(
        self, route: Route, timeout: float | None, on_release: Callable[[HTTPConnection, bool], None]
    ) -> Generator[Any, Any, HTTPConnection]:
        """Open a connection along ``route``; ``yield from`` it (the pool runs it as a task).

        Args:
            route: where the connection goes.
            timeout: seconds for each step (None: no limit): connecting (name resolution
                and TLS included), each read of a proxy's handshake, TLS through a tunnel.
            on_release: called by the connection when its response is done (the pool's).

        Raises:
            HTTPConnectTimeout: it took longer than ``timeout``.
            ConnectFailed: it could not be opened (refused, unresolvable, a proxy said no...).
        """
        origin = route.origin
        try:
            stream = yield from self.open_stream(route, timeout)
        except ConnectTimeout as exc:
            message = f"connecting to {origin} timed out after {timeout} s"
            raise HTTPConnectTimeout(message, reason=exc) from exc
        except (ConnectError, OSError) as exc:
            raise ConnectFailed(f"cannot connect to {origin}: {exc}", reason=exc) from exc
        return HTTPConnection(stream, route.key, protocol.create_client_connection(backend=self.parser), on_release)

    def open_stream(self, route: Route, timeout: float | None) -> Generator[Any, Any, Stream]:
        """A stream that speaks to ``route.origin`` (TLS done for https); ``yield from`` it.

        Raises:
            ConnectTimeout: it took longer than ``timeout``.
            ConnectError: connecting failed (an ``OSError`` does as well).
        """
        origin, proxy, context = route.origin, route.proxy, route.context
        tls = origin.scheme == "https"
        ssl_context: Any = (context or default_context()) if tls else None
        stream: Stream
        if self.uds is not None:  # every origin is served by the one socket; https still verifies the origin
            stream = yield open_unix_connection(
                self.uds, ssl=ssl_context, server_hostname=origin.host if tls else None, timeout=timeout
            )
            return stream
        if proxy is None:
            stream = yield open_connection(
                origin.host, origin.port, ssl=ssl_context, server_hostname=origin.host if tls else None,
                timeout=timeout, resolver=self.resolver,
            )
            return stream
        # An https origin through an https proxy: TLS to the proxy, CONNECT, then
        # the origin's TLS session inside the proxy's (start_tls stacks).
        proxy_tls = (context or default_context()) if proxy.scheme == "https" else None
        stream = yield open_connection(
            proxy.host, proxy.port, ssl=proxy_tls, server_hostname=proxy.host if proxy_tls else None,
            timeout=timeout, resolver=self.resolver,
        )
        if tls or proxy.is_socks:
            try:
                stream.timeout = timeout
                if proxy.is_socks:
                    yield from socks_handshake(stream, proxy, origin, resolver=self.resolver)
                else:
                    yield from _tunnel(stream, origin, proxy, self.parser)
                if tls:
                    yield stream.start_tls(ssl_context, server_hostname=origin.host, timeout=timeout)
            except BaseException:
                stream.abort()
                raise
        return stream


def _proxied_origin(proxy: Proxy, origin: Origin) -> Origin:
    # Plain http through an HTTP proxy shares the proxy's connections; tunnels are per origin.
    where = proxy.url.origin
    if proxy.is_socks:
        return Origin(origin.scheme, f"{origin.host}@{proxy.scheme}:{where.host}:{where.port}", origin.port)
    if origin.scheme == "http":
        return Origin("http", f"proxy:{where.host}", where.port)
    return Origin("https", f"{origin.host}@{where.host}", origin.port)


def _tunnel(stream: Stream, origin: Origin, proxy: Proxy, parser_name: str) -> Generator[Any, Any, None]:
    """Ask an HTTP proxy for a CONNECT tunnel to ``origin`` (the stream's timeout bounds each read)."""
    parser = protocol.create_client_connection(backend=parser_name)
    authority = f"{origin.host}:{origin.port}"
    headers = [("Host", authority)]
    if proxy.authorization:
        headers.append(("Proxy-Authorization", proxy.authorization))
    yield stream.write(parser.send_request("CONNECT", authority, headers) + parser.send_end())
    while True:
        data = yield stream.read(65536)
        for event in parser.feed(data) if data else parser.feed_eof():
            if isinstance(event, protocol.Response):
                if not 200 <= event.status < 300:
                    reason = event.reason.decode("latin-1")
                    raise ConnectFailed(f"the proxy refused to tunnel to {origin}: {event.status} {reason}")
                return


_default_ssl_context: _ssl.SSLContext | None = None


def default_context() -> _ssl.SSLContext:
    """The ``SSLContext`` of https without one of the caller's: made once, verification on."""
    global _default_ssl_context
    if _default_ssl_context is None:
        _default_ssl_context = _ssl.create_default_context()
    return _default_ssl_context

