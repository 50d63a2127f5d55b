"""Servers: listening sockets whose connections each run a handler task.

Theory of operation
-------------------
Each listening socket has a reader on the loop. When it is readable the
server accepts what is pending (a bounded batch, so one busy socket cannot
starve the loop) and starts one task per connection. That task owns the
connection: it runs the TLS handshake if there is one (bounded by
``ssl_handshake_timeout``), then the handler, *within the same task* (a
generator handler is delegated to with ``yield from``, an ``async def`` one
through its ``__await__``; a ``@task`` function's task is waited on), and
finally closes the stream. A handler that raises has its exception logged,
and only its own connection is aborted.

``close()`` removes the readers and closes the listening sockets at once;
connections already accepted go on until their handlers return, and
``wait_closed()`` resolves when the last one has (``close(cancel_handlers=True)``
cancels them instead). When accepting fails for lack of descriptors
(EMFILE), the server pauses accepting briefly rather than spinning.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import socket
import stat
import types
from collections.abc import Callable, Generator, Iterable
from typing import Any

from .._combinators import to_thread
from .._exceptions import Cancelled, NameResolutionError
from .._future import Future
from .._loop import Loop, TimerHandle
from .._task import Task
from .._where import loop_for_caller
from ._stream import DEFAULT_HIGH_WATER, Stream, handshake
from ._transport import make_context

__all__ = ["Server", "start_server", "start_unix_server"]

logger = logging.getLogger("tasklets")

#: Connections accepted per readiness event of one listening socket.
_ACCEPT_BATCH = 128
#: Seconds to stop accepting after running out of descriptors.
_ACCEPT_RETRY_DELAY = 0.1
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
#: Default seconds a client may take over the TLS handshake.
DEFAULT_HANDSHAKE_TIMEOUT = 60.0

Handler = Callable[[Stream], Any]


class Server:
    """Listening sockets and the connections they accepted.

    Made by :func:`start_server` / :func:`start_unix_server`. Use it as a
    context manager (``with server:`` closes it) or call :meth:`close`.

    Attributes:
        sockets: the listening sockets.
    """

    def __init__(
        self,
        loop: Loop,
        sockets: list[socket.socket],
        handler: Handler,
        *,
        ssl_context: Any = None,
        ssl_handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        unix_path: str | None = None,
        high_water: int = DEFAULT_HIGH_WATER,
    ) -> None:
        self._loop = loop
        self.sockets = sockets
        self._handler = handler
        self._ssl_context = ssl_context
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._unix_path = unix_path
        self._unix_inode = os.stat(unix_path).st_ino if unix_path is not None else None
        self._high_water = high_water
        self._connections: set[Task[None]] = set()
        self._closing = False
        self._closed_future: Future[None] | None = None
        self._retry_timer: TimerHandle | None = None
        self._serving = False
        self._start_accepting()

    def __repr__(self) -> str:
        state = "closed" if self._closing else "serving"
        return f"<tasklets.Server {state} on {[s.getsockname() for s in self.sockets] if not self._closing else ''}>"

    @property
    def port(self) -> int | None:
        """The TCP port of the first listening socket (None for a Unix server)."""
        if not self.sockets:
            return None
        address = self.sockets[0].getsockname()
        return address[1] if isinstance(address, tuple) else None

    @property
    def addresses(self) -> list[Any]:
        """The address of every listening socket."""
        return [s.getsockname() for s in self.sockets]

    @property
    def connections(self) -> int:
        """How many accepted connections are still being handled."""
        return len(self._connections)

    def is_serving(self) -> bool:
        """Whether the server still accepts connections."""
        return not self._closing

    # -- accepting ------------------------------------------------------------------------

    def _start_accepting(self) -> None:
        self._retry_timer = None
        if self._closing or self._serving:
            return
        self._serving = True
        for sock in self.sockets:
            self._loop.watch_reader(sock.fileno(), self._accept, sock)

    def _stop_accepting(self) -> None:
        if self._serving:
            self._serving = False
            for sock in self.sockets:
                self._loop.unwatch_reader(sock.fileno())

    def _accept(self, listener: socket.socket) -> None:
        loop = self._loop
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, address = listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    logger.error("%r cannot accept: %s; pausing for %s s", self, exc, _ACCEPT_RETRY_DELAY)
                    self._stop_accepting()
                    self._retry_timer = loop.call_later(_ACCEPT_RETRY_DELAY, self._start_accepting)
                    return
                continue  # the client gave up before we accepted (ECONNABORTED...)
            if conn.family != socket.AF_UNIX:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                host, port = address[0], address[1]
            else:
                host, port = self._unix_path, None
            stream = Stream(conn, loop=loop, host=host, port=port, peername=address, high_water=self._high_water)
            connection = Task(self._serve(stream), loop=loop, name=f"connection from {address!r}")
            self._connections.add(connection)
            connection.add_done_callback(functools.partial(self._connection_done, stream))

    def _serve(self, stream: Stream) -> Generator[Any, Any, None]:
        try:
            if self._ssl_context is not None:
                timer = None
                if self._ssl_handshake_timeout is not None:
                    timer = self._loop.call_later(self._ssl_handshake_timeout, stream.abort)
                try:
                    yield from handshake(stream, self._ssl_context, server_side=True, server_hostname=None)
                except Exception as exc:
                    logger.debug("TLS handshake with %r failed: %s", stream.peername, exc)
                    stream.abort()
                    return
                finally:
                    if timer is not None:
                        timer.cancel()
            made = self._handler(stream)
            if isinstance(made, types.GeneratorType):
                yield from made
            elif isinstance(made, types.CoroutineType):
                yield from made.__await__()
            elif made is not None and hasattr(made, "add_done_callback"):
                yield made
        except Cancelled:
            stream.abort()
            raise
        except Exception:
            logger.exception("handler %r failed on the connection from %r", self._handler, stream.peername)
            stream.abort()
        else:
            stream.close()

    def _connection_done(self, stream: Stream, connection: Future[None]) -> None:
        if connection.cancelled():
            # Cancelled before its first step (the server closed with
            # cancel_handlers, or run() ended), the task never ran the code
            # that closes the stream.
            stream.abort()
        self._connections.discard(connection)  # type: ignore[arg-type,unused-ignore]
        if self._closing and not self._connections:
            self._resolve_closed()

    # -- closing -----------------------------------------------------------------------------

    def close(self, *, cancel_handlers: bool = False) -> None:
        """Stop accepting and close the listening sockets; idempotent.

        Args:
            cancel_handlers: also cancel the handlers of the open connections
                (otherwise they run to their end).
        """
        if self._loop.is_foreign_thread():
            self._loop.call_soon_threadsafe(lambda: self.close(cancel_handlers=cancel_handlers))
            return
        if not self._closing:
            self._closing = True
            self._stop_accepting()
            if self._retry_timer is not None:
                self._retry_timer.cancel()
                self._retry_timer = None
            for sock in self.sockets:
                sock.close()
            self._unlink_unix_path()
        if cancel_handlers:
            for connection in list(self._connections):
                connection.cancel()
        if not self._connections:
            self._resolve_closed()

    def wait_closed(self) -> Future[None]:
        """A future resolved once the server is closed and every handler has finished."""
        if self._closed_future is None:
            self._closed_future = Future()
            if self._closing and not self._connections:
                self._closed_future.set_result(None)
        return self._closed_future

    def _resolve_closed(self) -> None:
        closed = self.wait_closed()
        if not closed.done():
            closed.set_result(None)

    def _unlink_unix_path(self) -> None:
        path = self._unix_path
        if path is None:
            return
        try:
            if os.stat(path).st_ino == self._unix_inode:
                os.unlink(path)
        except OSError:
            pass

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()


def start_server(
    handler: Handler,
    host: str | Iterable[str] | None = None,
    port: int | None = None,
    *,
    sock: socket.socket | None = None,
    ssl: Any = None,
    backlog: int = 1024,
    reuse_port: bool = False,
    reuse_address: bool = True,
    ssl_handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    high_water: int = DEFAULT_HIGH_WATER,
) -> Task[Server]:
    """Listen on ``host:port``; each connection runs ``handler(stream)`` as a task.

    Args:
        handler: a generator function, an ``async def`` function or a
            ``@task`` function, called with the connection's :class:`Stream`.
            The stream is closed when it returns; if it raises, the error is
            logged and only that connection is aborted.
        host: an address or host name, a list of them, or None for every
            interface.
        port: the port; 0 (or None) picks a free one (see ``Server.port``).
        sock: an already bound socket to listen on instead of host/port.
        ssl: an ``ssl.SSLContext`` with the server's certificate, for TLS.
        backlog: the listen queue length.
        reuse_port: set ``SO_REUSEPORT`` (several processes on one port).
        reuse_address: set ``SO_REUSEADDR`` (rebind while old connections linger).
        ssl_handshake_timeout: seconds a client may take over the handshake.
        high_water: the write high-water mark of each connection's stream.

    Returns:
        A task (a future) whose result is the listening :class:`Server`.
    """
    context = None if ssl is None else make_context(ssl, server_side=True)
    loop = loop_for_caller()

    def body() -> Generator[Any, Any, Server]:
        if sock is not None:
            sockets = [sock]
            sock.setblocking(False)
            sock.listen(backlog)
        else:
            sockets = yield from _listen_tcp(host, port or 0, backlog, reuse_port, reuse_address)
        server = Server(
            loop,
            sockets,
            handler,
            ssl_context=context,
            ssl_handshake_timeout=ssl_handshake_timeout,
            high_water=high_water,
        )
        return (yield from _handed_over(server))

    return Task(body(), loop=loop, name=f"start_server {host!r}:{port!r}")


def start_unix_server(
    handler: Handler,
    path: str | os.PathLike[str],
    *,
    ssl: Any = None,
    backlog: int = 1024,
    ssl_handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    high_water: int = DEFAULT_HIGH_WATER,
) -> Task[Server]:
    """Listen on the Unix socket ``path``; each connection runs ``handler(stream)`` as a task.

    A stale socket file at ``path`` is replaced; the file is removed when the
    server closes. See :func:`start_server` for the other arguments.
    """
    context = None if ssl is None else make_context(ssl, server_side=True)
    path = os.fspath(path)
    loop = loop_for_caller()

    def body() -> Generator[Any, Any, Server]:
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                os.unlink(path)
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            listener.listen(backlog)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        return Server(
            loop,
            [listener],
            handler,
            ssl_context=context,
            ssl_handshake_timeout=ssl_handshake_timeout,
            unix_path=path,
            high_water=high_water,
        )
        yield  # a generator: the server starts on its loop

    return Task(body(), loop=loop, name=f"start_unix_server {path!r}")


def _handed_over(server: Server) -> Generator[Any, Any, Server]:
    """``server``, unless the task making it was cancelled meanwhile: then it is closed.

    A task resumes with a wait that completed even when it was cancelled
    meanwhile (the cancellation lands at its next wait), so the resolution
    may have brought us here cancelled. This wait is where that cancellation
    lands.
    """
    try:
        yield None
    except BaseException:
        server.close(cancel_handlers=True)
        raise
    return server


def _listen_tcp(
    host: str | Iterable[str] | None, port: int, backlog: int, reuse_port: bool, reuse_address: bool
) -> Generator[Any, Any, list[socket.socket]]:
    hosts: list[str | None] = [host] if host is None or isinstance(host, str) else list(host)
    infos: list[tuple[Any, ...]] = []
    for name in hosts:
        try:
            found = yield to_thread(
                socket.getaddrinfo, name, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
            ) if name is None or not _is_numeric(name) else _numeric_info(name, port)
        except socket.gaierror as exc:
            raise NameResolutionError(f"cannot resolve {name!r}: {exc.strerror}", host=name, port=port) from exc
        infos.extend(found)
    sockets: list[socket.socket] = []
    seen = set()
    try:
        for family, type_, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            listener = socket.socket(family, type_, proto)
            sockets.append(listener)
            if reuse_address:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            listener.bind(address)
            listener.listen(backlog)
            listener.setblocking(False)
    except BaseException:
        for listener in sockets:
            listener.close()
        raise
    return sockets


def _is_numeric(host: str) -> bool:
    return _numeric_family(host) is not None


def _numeric_family(host: str) -> int | None:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None


def _numeric_info(host: str, port: int) -> Future[list[tuple[Any, ...]]]:
    family = _numeric_family(host)
    address = (host, port) if family == socket.AF_INET else (host, port, 0, 0)
    done: Future[list[tuple[Any, ...]]] = Future()
    done.set_result([(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)])
    return done
