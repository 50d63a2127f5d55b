"""Asking a SOCKS proxy for a connection: SOCKS4, SOCKS4a, SOCKS5 and SOCKS5 with remote DNS.

The messages are built and parsed by the sans-IO ``socksio`` package
(``tasklets[socks]``); this module moves them over a stream. socksio parses
a reply only whole, so each is read to its known length (``read_exactly``).

``socks5h://`` and ``socks4a://`` send the host name to the proxy, which
resolves it; ``socks5://`` and ``socks4://`` resolve it here first (as curl
and httpx do). Credentials of the proxy URL are a SOCKS5 username and
password (RFC 1929), or the SOCKS4 user id.

The handshake runs on a stream the caller opened and closes on failure, so a
connector that opens streams another way can run it too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Generator
from typing import Any

from .._exceptions import ConnectFailed, IncompleteReadError
from ..net import Resolver, SystemResolver
from ._proxy import Proxy
from ._url import Origin

__all__ = ["socks_handshake"]


def socks_handshake(
    stream: Any, proxy: Proxy, origin: Origin, *, resolver: Resolver | None = None
) -> Generator[Any, Any, None]:
    """Over ``stream`` (connected to ``proxy``), ask for a connection to ``origin``; ``yield from`` it.

    ``resolver`` (default: the system's) resolves the origin's name where the
    scheme says it is resolved here (``socks4://``, ``socks5://``).

    Raises:
        ConnectFailed: socksio is not installed, the proxy refused the
            credentials or the connection, or broke the protocol.
    """
    try:
        import socksio
    except ImportError as exc:
        raise ConnectFailed(
            f"{proxy!r} is a SOCKS proxy: SOCKS needs the socksio package (pip install 'tasklets[socks]')"
        ) from exc
    step = ["greeting it"]  # what we were doing, for the message should the proxy hang up
    try:
        if proxy.scheme.startswith("socks5"):
            yield from _socks5(stream, proxy, origin, step, resolver)
        else:
            yield from _socks4(stream, proxy, origin, step, resolver)
    except socksio.ProtocolError as exc:
        raise ConnectFailed(f"the SOCKS proxy {proxy!r} broke the protocol: {exc}") from exc
    except IncompleteReadError as exc:
        raise ConnectFailed(f"the SOCKS proxy {proxy!r} closed the connection after we {step[0]}") from exc


def _address(
    proxy: Proxy, origin: Origin, resolver: Resolver | None, *, ipv4_only: bool
) -> Generator[Any, Any, str]:
    """The origin's host as the proxy is to get it: the name (remote DNS), or an address resolved here."""
    host = origin.host
    if proxy.scheme in ("socks5h", "socks4a"):
        return host
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    family = socket.AF_INET if ipv4_only else socket.AF_UNSPEC
    try:
        found = yield (resolver or SystemResolver()).resolve(host, origin.port, family)
    except OSError as exc:
        raise ConnectFailed(f"cannot resolve {host!r} for {proxy!r}: {exc}") from exc
    return str(found[0][4][0])


def _socks5(
    stream: Any, proxy: Proxy, origin: Origin, step: list[str], resolver: Resolver | None
) -> Generator[Any, Any, None]:
    from socksio import socks5

    connection: Any = socks5.SOCKS5Connection()
    methods = [socks5.SOCKS5AuthMethod.NO_AUTH_REQUIRED]
    if proxy.username is not None:
        methods.append(socks5.SOCKS5AuthMethod.USERNAME_PASSWORD)
    connection.send(socks5.SOCKS5AuthMethodsRequest(methods))
    step[0] = "offered " + ("no authentication" if proxy.username is None else "a username and password")
    yield stream.write(connection.data_to_send())
    chosen = connection.receive_data((yield stream.read_exactly(2)))
    if chosen.method == socks5.SOCKS5AuthMethod.USERNAME_PASSWORD and proxy.username is not None:
        password = proxy.password or ""
        connection.send(socks5.SOCKS5UsernamePasswordRequest(proxy.username.encode(), password.encode()))
        step[0] = "sent the username and password (wrong ones?)"
        yield stream.write(connection.data_to_send())
        verdict = connection.receive_data((yield stream.read_exactly(2)))
        if not verdict.success:
            raise ConnectFailed(f"the SOCKS proxy {proxy!r} refused the username and password")
    elif chosen.method != socks5.SOCKS5AuthMethod.NO_AUTH_REQUIRED:
        wanted = "a username and password" if proxy.username is None else "an authentication method we do not offer"
        raise ConnectFailed(f"the SOCKS proxy {proxy!r} wants {wanted}")
    address = yield from _address(proxy, origin, resolver, ipv4_only=False)
    connection.send(
        socks5.SOCKS5CommandRequest.from_address(socks5.SOCKS5Command.CONNECT, (address, origin.port))
    )
    step[0] = f"asked for a connection to {origin}"
    yield stream.write(connection.data_to_send())
    head = yield stream.read_exactly(5)  # version, reply, reserved, address type, and one byte of the address
    address_length = {b"\x01": 4 - 1, b"\x04": 16 - 1, b"\x03": head[4]}.get(head[3:4])
    if address_length is None:
        raise ConnectFailed(f"the SOCKS proxy {proxy!r} answered with an unknown address type {head[3]}")
    rest = yield stream.read_exactly(address_length + 2)
    reply = connection.receive_data(head + rest)
    if reply.reply_code != socks5.SOCKS5ReplyCode.SUCCEEDED:
        reason = reply.reply_code.name.lower().replace("_", " ")
        raise ConnectFailed(f"the SOCKS proxy {proxy!r} could not connect to {origin}: {reason}")


def _socks4(
    stream: Any, proxy: Proxy, origin: Origin, step: list[str], resolver: Resolver | None
) -> Generator[Any, Any, None]:
    from socksio import socks4

    # SOCKS4's user id: the URL's user, or a name of ours (socksio, like some proxies, refuses an empty one).
    connection: Any = socks4.SOCKS4Connection(user_id=(proxy.username or "tasklets").encode())
    address = yield from _address(proxy, origin, resolver, ipv4_only=True)
    if proxy.scheme == "socks4a":
        request: Any = socks4.SOCKS4ARequest.from_address(socks4.SOCKS4Command.CONNECT, (address, origin.port))
    else:
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise ConnectFailed(f"SOCKS4 reaches IPv4 addresses only, and {origin.host!r} is {address}") from None
        request = socks4.SOCKS4Request.from_address(socks4.SOCKS4Command.CONNECT, (address, origin.port))
    connection.send(request)
    step[0] = f"asked for a connection to {origin}"
    yield stream.write(connection.data_to_send())
    reply = connection.receive_data((yield stream.read_exactly(8)))
    if reply.reply_code != socks4.SOCKS4ReplyCode.REQUEST_GRANTED:
        reason = reply.reply_code.name.lower().replace("_", " ")
        raise ConnectFailed(f"the SOCKS proxy {proxy!r} could not connect to {origin}: {reason}")
