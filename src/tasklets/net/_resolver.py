"""Name resolution behind a small interface, so that a test (or a caching or DNS-over-HTTPS resolver) can stand in.

``open_connection`` asks a resolver for a host's addresses; by default the
:class:`SystemResolver`, which calls ``socket.getaddrinfo`` in the default
thread pool (the lookup blocks). A resolver only answers; numeric hosts never
reach it, and ``open_connection`` turns a ``socket.gaierror`` or an empty
answer into :class:`~tasklets.NameResolutionError`.
"""

from __future__ import annotations

import socket
from typing import Any, Protocol

from .._combinators import to_thread
from .._future import Future

__all__ = ["AddressInfo", "Resolver", "SystemResolver"]

#: One ``getaddrinfo`` entry: ``(family, type, proto, canonname, sockaddr)``.
AddressInfo = tuple[Any, ...]


class Resolver(Protocol):
    """What ``open_connection(..., resolver=)`` needs: a host's stream addresses, as a future."""

    def resolve(self, host: str, port: int | None, family: int) -> Future[list[AddressInfo]]:
        """A future of ``getaddrinfo``-style entries for ``host``.

        Args:
            host: the host name to resolve.
            port: the port to put in each address.
            family: ``0`` for any, or one family (``socket.AF_INET``...).

        Returns:
            A future of the entries, best first; it fails with ``socket.gaierror``
            when the name does not resolve. Cancelling it abandons the lookup.
        """
        ...


class SystemResolver:
    """The operating system's resolver: ``socket.getaddrinfo`` in the default thread pool."""

    def __repr__(self) -> str:
        return "<tasklets.net.SystemResolver>"

    def resolve(self, host: str, port: int | None, family: int) -> Future[list[AddressInfo]]:
        """``socket.getaddrinfo(host, port, family, SOCK_STREAM)``, run by a worker thread."""
        # socket.getaddrinfo is looked up at each call: a test may patch it.
        return to_thread(socket.getaddrinfo, host, port, family, socket.SOCK_STREAM)


#: The resolver ``open_connection`` uses when given none.
SYSTEM_RESOLVER = SystemResolver()
