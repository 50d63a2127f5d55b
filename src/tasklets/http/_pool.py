"""A keep-alive connection pool with total and per-host limits.

Theory of operation
-------------------
Which connection serves a request is decided by :func:`choose`, a pure
function of the pool's state and the time (after httpcore's pool
assignment): reuse the most recently used idle connection of the origin that
is neither expired nor dead; else open a new one if the limits allow,
closing the least recently used idle connection of another origin if that is
what stands in the way; else wait. The pool object only carries out those
decisions, owns the idle lists and wakes waiters (first come, first served)
when a connection is released or closed. New connections are opened by the
pool's :class:`~tasklets.http.Connector`, given once when the pool is made:
a request says where its connection must go with a ``Route``, the
connector knows how to get there.

A connection is handed back by its :class:`HTTPConnection` once its response
body has been read to the end and the server allowed reuse; a body abandoned
half-way or a connection the server closes never comes back.
"""

from __future__ import annotations

import functools
from collections import OrderedDict, deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, cast

from .._combinators import with_timeout
from .._exceptions import PoolTimeout
from .._future import Future
from .._loop import Loop
from .._task import Task
from ._body_buffers import BodyBuffers
from ._connection import HTTPConnection
from ._connector import Connector, Route
from ._url import Origin

__all__ = ["ConnectionPool", "PoolLimits", "choose", "Reuse", "Open", "Wait"]


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """How many connections a pool may hold, and for how long an idle one is kept."""

    max_connections: int = 100
    max_per_host: int = 20
    keepalive_expiry: float = 5.0


@dataclass(frozen=True, slots=True)
class Reuse:
    connection: HTTPConnection
    discard: tuple[HTTPConnection, ...]  # expired or dead idle ones found on the way


@dataclass(frozen=True, slots=True)
class Open:
    discard: tuple[HTTPConnection, ...]  # expired/dead ones, or an LRU idle one evicted to make room


@dataclass(frozen=True, slots=True)
class Wait:
    discard: tuple[HTTPConnection, ...]


def choose(
    origin: Origin,
    idle: OrderedDict[HTTPConnection, None],
    active_total: int,
    active_for_origin: int,
    limits: PoolLimits,
    now: float,
    is_dead: Callable[[HTTPConnection, float], bool],
    *,
    reuse: bool = True,
) -> Reuse | Open | Wait:
    """Decide how to serve a request for ``origin``.

    Args:
        origin: where the request goes.
        idle: idle connections, least recently used first.
        active_total: connections open (idle or busy) in the whole pool.
        active_for_origin: connections open (idle or busy) to ``origin``.
        limits: the pool's limits.
        now: the loop's time.
        is_dead: tells whether an idle connection was closed under us.
        reuse: False when the request wants a new connection (the retry of one
            that met a closed keep-alive connection: the origin's other idle
            ones may be just as stale). One of them is then closed if the
            origin's limit leaves no room.
    """
    discard: list[HTTPConnection] = []
    found: HTTPConnection | None = None
    for conn in reversed(idle):  # most recently used first
        if now - conn.idle_since > limits.keepalive_expiry:
            discard.append(conn)
        elif reuse and conn.origin == origin:
            if is_dead(conn, now):
                discard.append(conn)
            else:
                found = conn
                break
    if found is not None:
        return Reuse(found, tuple(discard))
    gone_for_origin = sum(1 for c in discard if c.origin == origin)
    total = active_total - len(discard)
    for_origin = active_for_origin - gone_for_origin
    if for_origin >= limits.max_per_host:
        if not reuse:  # least recently used first: an idle one of the origin makes way
            for conn in idle:
                if conn not in discard and conn.origin == origin:
                    return Open((*discard, conn))
        return Wait(tuple(discard))
    if total < limits.max_connections:
        return Open(tuple(discard))
    for conn in idle:  # least recently used first: evict one of another origin (or, for a new one, any)
        if conn not in discard and (conn.origin != origin or not reuse):
            return Open((*discard, conn))
    return Wait(tuple(discard))


class ConnectionPool:
    """Keep-alive connections by origin, within :class:`PoolLimits`."""

    def __init__(self, loop: Loop, limits: PoolLimits, connector: Connector) -> None:
        self.loop = loop
        self.limits = limits
        self.connector = connector
        self._idle: OrderedDict[HTTPConnection, None] = OrderedDict()
        self._live: set[HTTPConnection] = set()  # every open connection, idle or busy
        self._count_by_origin: dict[Origin, int] = {}
        self._total = 0
        self._waiters: deque[Future[None]] = deque()
        self._closed = False
        self.body_buffers = BodyBuffers()  # lent to this pool's connections (HTTPConnection.read_rest)

    def __repr__(self) -> str:
        return f"<ConnectionPool open={self._total} idle={len(self._idle)} waiting={len(self._waiters)}>"

    @property
    def open_connections(self) -> int:
        """Connections open now, idle or busy."""
        return self._total

    @property
    def idle_connections(self) -> int:
        """Connections open and waiting for a request."""
        return len(self._idle)

    def acquire(
        self,
        route: Route,
        timeout: float | None,
        *,
        connect_timeout: float | None = None,
        retryable: bool = False,
        reuse: bool = True,
    ) -> Generator[Any, Any, HTTPConnection]:
        """A connection along ``route``: reused, newly opened by the connector, or waited for.

        Use with ``yield from``. ``timeout`` bounds the wait for a free
        connection, ``connect_timeout`` the opening of a new one.
        ``retryable`` says the request may be retried on a new connection if
        a reused one turns out closed, which lets a connection that was idle
        for a moment only be trusted without a system call. ``reuse=False``
        asks for a new connection (see :func:`choose`).

        Raises:
            PoolTimeout: no connection became free within ``timeout`` seconds.
        """
        origin = route.key
        deadline = None if timeout is None else self.loop.time() + timeout
        while True:
            decision = choose(
                origin,
                self._idle,
                self._total,
                self._count_by_origin.get(origin, 0),
                self.limits,
                self.loop.time(),
                functools.partial(HTTPConnection.is_dead, trust_fresh=retryable),
                reuse=reuse,
            )
            for conn in decision.discard:
                self._forget(conn)
                conn.close()
            if isinstance(decision, Reuse):
                del self._idle[decision.connection]
                return decision.connection
            if isinstance(decision, Open):
                self._count(origin, +1)  # the slot is taken while connecting
                opening = Task(
                    self.connector.connect(route, connect_timeout, self._release),
                    loop=self.loop,
                    name=f"connect {route.origin}",
                )
                try:
                    conn = cast(HTTPConnection, (yield opening))
                except BaseException:
                    self._count(origin, -1)
                    self._wake_one()
                    # Cancelled while it connects: it may still finish with a
                    # connection (its last wait completed as we gave up on it),
                    # which nobody is left to take.
                    opening.add_done_callback(_close_unclaimed)
                    raise
                self._live.add(conn)
                conn.body_buffers = self.body_buffers
                return conn
            yield from self._wait(deadline, origin)

    def _wait(self, deadline: float | None, origin: Origin) -> Generator[Any, Any, None]:
        waiter: Future[None] = Future()
        self._waiters.append(waiter)
        try:
            if deadline is None:
                yield waiter
            else:
                remaining = max(0.0, deadline - self.loop.time())
                yield with_timeout(waiter, remaining)
        except TimeoutError as exc:
            raise PoolTimeout(
                f"no connection to {origin} became free within the pool timeout "
                f"({self._total} open, limits {self.limits.max_connections} total / "
                f"{self.limits.max_per_host} per host)"
            ) from exc
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _release(self, conn: HTTPConnection, reusable: bool) -> None:
        """Called by a connection when its response is done (or it died)."""
        if reusable and not self._closed:
            conn.idle_since = self.loop.time()
            self._idle[conn] = None
        else:
            self._forget(conn)
            conn.close()
        self._wake_one()

    def _forget(self, conn: HTTPConnection) -> None:
        self._idle.pop(conn, None)
        if conn in self._live:
            self._live.discard(conn)
            self._count(conn.origin, -1)

    def _count(self, origin: Origin, delta: int) -> None:
        self._total += delta
        left = self._count_by_origin.get(origin, 0) + delta
        if left:
            self._count_by_origin[origin] = left
        else:
            self._count_by_origin.pop(origin, None)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        """Close every idle connection; busy ones close when their response is done."""
        self._closed = True
        self.body_buffers.close()
        for conn in list(self._idle):
            self._forget(conn)
            conn.close()
        while self._waiters:
            waiter = self._waiters.popleft()
            waiter.cancel()

    def abort(self) -> None:
        """Close every connection, busy ones too: their loop is closing (a response never read, say)."""
        self.close()
        for conn in list(self._live):
            self._forget(conn)
            conn.close()


def _close_unclaimed(opening: Any) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()
