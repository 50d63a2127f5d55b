"""Opening connections: resolution, staggered connect attempts, TLS, one timeout over all.

Theory of operation
-------------------
``open_connection`` is a task. It asks its resolver for the host's addresses
(by default ``getaddrinfo`` in the default thread pool; numeric addresses skip
that, see ``_resolver.py``), orders the addresses
(``_happy_eyeballs.interleave``), then runs the connect loop: ask the pure
policy (``_happy_eyeballs.plan``) what to do, start the attempts it names,
and sleep on one *wake* future that any attempt finishing, or the policy's
next deadline, resolves. The first attempt to connect wins; the rest are
cancelled, which closes their sockets.

An attempt is a non-blocking ``connect_ex`` followed, when it is in
progress, by ``watch_writer`` and a look at ``SO_ERROR`` when the socket turns
writable. Cancelling the attempt's future removes the writer and closes the
socket, so a connect abandoned at any point (another address won, the
timeout fired, the caller cancelled) leaves no descriptor and no
registration behind.

The timeout covers resolution, connecting and the TLS handshake: a timer on
the loop cancels the task and the task turns that cancellation into a
:class:`ConnectTimeout`.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Generator
from typing import Any

from .._exceptions import Cancelled, ConnectTimeout, InvalidStateError, NameResolutionError
from .._future import Future
from .._loop import Loop
from .._task import Task, current_task
from .._where import loop_for_caller
from ._errors import connect_error, describe
from ._happy_eyeballs import DEFAULT_DELAY, Attempts, interleave, plan
from ._resolver import SYSTEM_RESOLVER, Resolver
from ._stream import DEFAULT_HIGH_WATER, Stream, handshake
from ._transport import make_context

__all__ = ["open_connection", "open_unix_connection"]

_IN_PROGRESS = (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY)
# A Unix socket whose listener's backlog is full refuses a non-blocking
# connect with EAGAIN and does not start it: retry after this many seconds.
_UNIX_RETRY = 0.002


def open_connection(
    host: str,
    port: int,
    *,
    ssl: Any = None,
    server_hostname: str | None = None,
    timeout: float | None = None,
    local_addr: tuple[str, int] | None = None,
    happy_eyeballs_delay: float = DEFAULT_DELAY,
    family: int = 0,
    high_water: int = DEFAULT_HIGH_WATER,
    resolver: Resolver | None = None,
) -> Task[Stream]:
    """Connect to ``host:port`` over TCP (and TLS); a future of the :class:`Stream`.

    The host is resolved with ``getaddrinfo`` in the default thread pool
    (or by ``resolver``).
    When it has several addresses they are tried Happy-Eyeballs style
    (RFC 8305): address families alternate, and a new attempt starts every
    ``happy_eyeballs_delay`` seconds, or as soon as the previous ones failed,
    until one connects.

    Args:
        host: a host name or a numeric IPv4/IPv6 address.
        port: the port.
        ssl: an ``ssl.SSLContext``, or True for ``ssl.create_default_context()``
            (certificate and host name verified); None for plain TCP.
        server_hostname: the name to verify the certificate against and to
            send as SNI (default: ``host``).
        timeout: seconds for everything: resolution, connecting and the TLS
            handshake (None: no limit).
        local_addr: a ``(host, port)`` to bind the socket to first.
        happy_eyeballs_delay: seconds between staggered attempts.
        family: restrict resolution to one address family (``socket.AF_INET``...).
        high_water: the stream's write high-water mark, in bytes.
        resolver: what resolves host names (default: the system's, a
            :class:`SystemResolver`); ``tasklets.testing.FakeResolver`` in tests.

    Returns:
        A task (a future) whose result is the connected stream.

    Raises:
        ConnectionRefused: every address refused the connection.
        ConnectTimeout: it took longer than ``timeout``.
        NameResolutionError: the host name does not resolve.
        ConnectError: connecting failed otherwise (``errors`` lists why).
        TLSCertificateError: the server's certificate did not verify.
        TLSHandshakeError: the TLS handshake failed otherwise.
    """
    context = None if ssl is None or ssl is False else make_context(ssl, server_side=False)
    if context is not None and server_hostname is None:
        server_hostname = host
    loop = loop_for_caller()
    body = _connect(
        loop,
        host,
        port,
        None,
        context,
        server_hostname,
        timeout,
        local_addr,
        happy_eyeballs_delay,
        family,
        high_water,
        SYSTEM_RESOLVER if resolver is None else resolver,
    )
    return Task(body, loop=loop, name=f"open_connection {describe(host, port)}")


def open_unix_connection(
    path: str | os.PathLike[str],
    *,
    ssl: Any = None,
    server_hostname: str | None = None,
    timeout: float | None = None,
    high_water: int = DEFAULT_HIGH_WATER,
) -> Task[Stream]:
    """Connect to the Unix socket at ``path``; a future of the :class:`Stream`.

    Args:
        path: the socket's path.
        ssl: an ``ssl.SSLContext`` or True to speak TLS over the socket.
        server_hostname: the name to verify the certificate against (required
            with TLS when the context checks host names).
        timeout: seconds for connecting (and the TLS handshake).
        high_water: the stream's write high-water mark, in bytes.

    Raises:
        ConnectionRefused: nothing listens at ``path``.
        ConnectError: connecting failed otherwise (no such file...).
        ConnectTimeout: it took longer than ``timeout``.
    """
    context = None if ssl is None or ssl is False else make_context(ssl, server_side=False)
    if context is not None and server_hostname is None and context.check_hostname:
        raise ValueError("open_unix_connection(ssl=...) needs server_hostname= to verify the certificate against")
    path = os.fspath(path)
    loop = loop_for_caller()
    infos = [(socket.AF_UNIX, socket.SOCK_STREAM, 0, "", path)]
    body = _connect(
        loop, path, None, infos, context, server_hostname, timeout, None, 0.0, 0, high_water, SYSTEM_RESOLVER
    )
    return Task(body, loop=loop, name=f"open_unix_connection {path!r}")


def _connect(
    loop: Loop,
    host: Any,
    port: int | None,
    infos: list[tuple[Any, ...]] | None,
    context: Any,
    server_hostname: str | None,
    timeout: float | None,
    local_addr: tuple[str, int] | None,
    delay: float,
    family: int,
    high_water: int,
    resolver: Resolver,
) -> Generator[Any, Any, Stream]:
    timed_out = False
    timer = None
    if timeout is not None:
        me = current_task()

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            if me is not None:
                me.cancel()

        timer = loop.call_later(timeout, expire)
    try:
        if infos is None:
            infos = yield from _resolve(resolver, host, port, family)
        sock, address = yield from _connect_any(loop, host, port, infos, local_addr, delay)
        stream = Stream(sock, loop=loop, host=host, port=port, peername=address, high_water=high_water)
        try:
            if context is not None:
                yield from handshake(stream, context, server_side=False, server_hostname=server_hostname)
            # A task resumes with a wait that completed even when it was
            # cancelled meanwhile (the cancellation lands at its next wait), so
            # the last connect or handshake step may bring us here cancelled:
            # whoever asked for the stream has gone. This wait is where that
            # cancellation lands, and the stream is closed instead of returned.
            yield None
        except BaseException:
            stream.abort()
            raise
        return stream
    except Cancelled:
        if timed_out:
            raise ConnectTimeout(
                f"connecting to {describe(host, port)} took longer than {timeout} s", host=host, port=port
            ) from None
        raise
    finally:
        if timer is not None:
            timer.cancel()


def _numeric(host: str, port: int) -> list[tuple[Any, ...]] | None:
    """The address list of a numeric host, without asking the resolver."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError, TypeError):
            continue
        address = (host, port) if family == socket.AF_INET else (host, port, 0, 0)
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)]
    return None


def _resolve(
    resolver: Resolver, host: str, port: int | None, family: int
) -> Generator[Any, Any, list[tuple[Any, ...]]]:
    numeric = _numeric(host, port) if isinstance(host, str) and port is not None else None
    if numeric is not None and (family == 0 or numeric[0][0] == family):
        return numeric
    try:
        infos = yield resolver.resolve(host, port, family)
    except socket.gaierror as exc:
        raise NameResolutionError(f"cannot resolve {host!r}: {exc.strerror}", host=host, port=port) from exc
    if not infos:
        raise NameResolutionError(f"{host!r} resolved to no address", host=host, port=port)
    return list(infos)


def _connect_any(
    loop: Loop,
    host: Any,
    port: int | None,
    infos: list[tuple[Any, ...]],
    local_addr: tuple[str, int] | None,
    delay: float,
) -> Generator[Any, Any, tuple[socket.socket, Any]]:
    """The Happy-Eyeballs connect loop: carry out ``plan()``'s actions until one attempt wins."""
    addresses = interleave(infos)
    state = Attempts(count=len(addresses), delay=delay)
    attempts: list[Future[socket.socket]] = []
    running: list[Future[socket.socket]] = []
    errors: list[OSError] = []
    winner: Future[socket.socket] | None = None
    try:
        while True:
            decision = plan(state, loop.time())
            while decision.start is not None:
                attempt = _attempt(loop, addresses[decision.start], local_addr)
                attempts.append(attempt)
                running.append(attempt)
                state.started += 1
                state.in_flight += 1
                state.last_start = loop.time()
                decision = plan(state, loop.time())
            for attempt in [a for a in running if a.done()]:
                running.remove(attempt)
                state.in_flight -= 1
                exc = attempt.exception()
                if exc is None:
                    winner = attempt
                    return attempt.result(), addresses[attempts.index(attempt)][4]
                errors.append(exc)  # type: ignore[arg-type]
            decision = plan(state, loop.time())
            if decision.give_up:
                raise connect_error(errors, host, port)
            if decision.start is not None:
                continue
            wake: Future[None] = Future()

            def rouse(_: object, wake: Future[None] = wake) -> None:
                if not wake.done():
                    wake.set_result(None)

            for attempt in running:
                attempt.add_done_callback(rouse)
            timer = loop.call_at(decision.wake_at, rouse, None) if decision.wake_at is not None else None
            try:
                yield wake
            finally:
                if timer is not None:
                    timer.cancel()
                for attempt in running:
                    attempt.remove_done_callback(rouse)
    finally:
        for attempt in attempts:
            if attempt is winner:
                continue
            if not attempt.cancel() and attempt.exception() is None:
                attempt.result().close()  # it connected too, but lost


def _attempt(loop: Loop, info: tuple[Any, ...], local_addr: tuple[str, int] | None) -> Future[socket.socket]:
    """One non-blocking connect; a future of the connected socket. Cancelling it closes the socket."""
    family, type_, proto, _, address = info
    future: Future[socket.socket] = Future()
    try:
        sock = socket.socket(family, type_, proto)
    except OSError as exc:
        future.set_exception(exc)
        return future
    try:
        sock.setblocking(False)
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if local_addr is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(local_addr)
        err = sock.connect_ex(address)
    except OSError as exc:
        sock.close()
        future.set_exception(exc)
        return future
    if err == 0:
        future.set_result(sock)
        return future
    if err not in _IN_PROGRESS:
        sock.close()
        future.set_exception(OSError(err, os.strerror(err)))
        return future
    fd = sock.fileno()
    retry: list[Any] = [None]

    def connected() -> None:
        loop.unwatch_writer(fd)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == 0:
            try:
                future.set_result(sock)
            except InvalidStateError:
                sock.close()
            return
        sock.close()
        if not future.done():
            future.set_exception(OSError(err, os.strerror(err)))

    def retry_unix() -> None:
        retry[0] = None
        try:
            err = sock.connect_ex(address)
        except OSError as exc:
            err = exc.errno or errno.EIO
        if err == 0:
            future.set_result(sock)
        elif err in (errno.EAGAIN, errno.EWOULDBLOCK):
            retry[0] = loop.call_later(_UNIX_RETRY, retry_unix)
        else:
            sock.close()
            future.set_exception(OSError(err, os.strerror(err)))

    if family == socket.AF_UNIX and err in (errno.EAGAIN, errno.EWOULDBLOCK):
        retry[0] = loop.call_later(_UNIX_RETRY, retry_unix)
    else:
        loop.watch_writer(fd, connected)

    def on_done(f: Future[socket.socket]) -> None:
        if f.cancelled():
            if retry[0] is not None:
                retry[0].cancel()
            else:
                loop.unwatch_writer(fd)
            sock.close()

    future.add_done_callback(on_done)
    return future
