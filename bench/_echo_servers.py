"""TCP echo servers for ``bench/net_echo.py``, one kind per process.

Usage::

    python bench/_echo_servers.py KIND [--cert PEM --key PEM] [--profile OUT]

KIND is one of :data:`KINDS`. The server listens on 127.0.0.1 (port chosen by
the OS), prints ``PORT <n>`` on a line of its own and serves until its
standard input reaches end of file, which is how ``net_echo.py`` stops it.
Because the parent holds the other end of that pipe, a server also stops by
itself when the parent dies, however it dies.

Every echo handler writes what it read without waiting for the send buffer
to drain (the style of uvloop's own echo benchmark). In a ping-pong load the
buffer never fills, so back-pressure never comes into play. With
``--profile OUT``, the loop thread runs under ``cProfile`` (timed by the
thread's CPU clock) and the stats are dumped to OUT on a clean stop.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import resource
import ssl
import sys
import time
from collections.abc import Callable, Generator
from typing import Any

HOST = "127.0.0.1"
BACKLOG = 4096
READ_SIZE = 65536
#: How long a stopping server waits for its connections to be closed.
CLOSE_TIMEOUT = 2.0

KINDS = ("tasklets", "asyncio-streams", "asyncio-protocols", "uvloop-streams", "uvloop-protocols")


def _raise_fd_limit() -> None:
    """Allow as many descriptors as the hard limit, for the idle-connection test."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _announce(port: int) -> None:
    """Tell the parent which port we listen on."""
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()


def _wait_for_stdin_eof() -> None:
    """Block (in a worker thread) until the parent closes our standard input."""
    while sys.stdin.buffer.read(4096):
        pass


def _server_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """The server-side TLS context, or None for plain TCP."""
    if cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


# -- tasklets ----------------------------------------------------------------------------


def _tasklets_echo(stream: Any) -> Generator[Any, Any, None]:
    """Echo everything until end of file: the handler from the issue (plus the reset handling)."""
    try:
        while True:
            data = yield stream.read(READ_SIZE)
            if not data:
                break
            stream.write(data)
    except ConnectionError:
        pass  # the peer reset the connection: as the asyncio handlers do, just close
    finally:
        stream.close()


def _tasklets_main(context: ssl.SSLContext | None) -> Generator[Any, Any, None]:
    """Serve until standard input closes, then close the server."""
    import tasklets

    server = yield tasklets.start_server(_tasklets_echo, HOST, 0, ssl=context, backlog=BACKLOG)
    port = getattr(server, "port", None)
    if port is None:
        port = server.sockets[0].getsockname()[1]
    _announce(port)
    yield tasklets.to_thread(_wait_for_stdin_eof)
    server.close()
    try:
        yield tasklets.with_timeout(server.wait_closed(), CLOSE_TIMEOUT)
    except Exception:
        pass  # a connection the client left open: the process exits anyway


def _run_tasklets(context: ssl.SSLContext | None, loop: str) -> None:
    import tasklets

    if loop == "plain":
        try:
            import tasklets._where as where
        except ImportError:
            pass  # a copy from before tasklets.asyncio: run() makes a plain Loop anyway
        else:
            where.LOOP_FACTORY = tasklets.Loop
    tasklets.run(_tasklets_main, context)


# -- asyncio and uvloop ------------------------------------------------------------------


async def _streams_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo with StreamReader/StreamWriter until end of file."""
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            writer.write(data)
    except ConnectionError:
        pass
    finally:
        writer.close()


class _EchoProtocol(asyncio.Protocol):
    """Echo with a bare ``asyncio.Protocol``: the fastest thing asyncio offers."""

    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        self.transport.close()
        return False


async def _asyncio_main(protocols: bool, context: ssl.SSLContext | None) -> None:
    """Serve with streams or protocols until standard input closes."""
    loop = asyncio.get_running_loop()
    if protocols:
        server = await loop.create_server(_EchoProtocol, HOST, 0, ssl=context, backlog=BACKLOG)
    else:
        server = await asyncio.start_server(_streams_echo, HOST, 0, ssl=context, backlog=BACKLOG)
    _announce(server.sockets[0].getsockname()[1])
    await loop.run_in_executor(None, _wait_for_stdin_eof)
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), CLOSE_TIMEOUT)
    except TimeoutError:
        pass


def _run_asyncio(kind: str, context: ssl.SSLContext | None) -> None:
    main = _asyncio_main(kind.endswith("protocols"), context)
    if kind.startswith("uvloop"):
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, serve, and (optionally) dump the profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--cert", help="server certificate chain (PEM); enables TLS")
    parser.add_argument("--key", help="private key of --cert (PEM)")
    parser.add_argument("--loop", choices=("default", "plain"), default="default",
                        help="tasklets only: run()'s default loop, or a plain tasklets Loop")  # fmt: skip
    parser.add_argument("--profile", metavar="OUT", help="cProfile the loop thread, dump stats to OUT")
    args = parser.parse_args(argv)
    _raise_fd_limit()
    context = _server_context(args.cert, args.key)
    run: Callable[[], None]
    if args.kind == "tasklets":
        run = lambda: _run_tasklets(context, args.loop)  # noqa: E731
    else:
        run = lambda: _run_asyncio(args.kind, context)  # noqa: E731
    if args.profile is None:
        run()
        return 0
    # Import everything first, so that the profile shows serving, not start-up; count CPU time
    # of this thread (not wall time), so that being descheduled on a busy machine is not charged.
    if args.kind == "tasklets":
        import tasklets  # noqa: F401
    elif args.kind.startswith("uvloop"):
        import uvloop  # noqa: F401
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    try:
        run()
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
