"""Helpers of the networking tests: a leak-checking runner, connected pairs, TLS material."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import tasklets
from tasklets import Future, Loop
from tasklets._clock import Clock
from tasklets.testing import run_strict


def leftovers(loop: Loop) -> list[str]:
    """What a loop still holds that a finished test should have released."""
    return loop.statistics().describe()


def run(fn: Callable[..., Any], /, *args: Any, timeout: float = 30.0, clock: Clock | None = None) -> Any:
    """Run ``fn(*args)`` as the main task of a fresh loop; fail if it leaves anything behind.

    Timing tests pass a ``VirtualClock``: their windows are then exact
    equalities on the loop's clock, whatever the load.
    """
    return run_strict(fn, *args, timeout=timeout, clock=clock)


def open_fds() -> dict[int, str]:
    """The descriptors open in this process, with what they point at."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # the directory listing's own descriptor, closed already
    return found


@dataclass
class Pair:
    """Two ends of one connection, and the server that accepted it."""

    client: tasklets.Stream
    server_side: tasklets.Stream
    server: tasklets.Server
    release: Future[None] = field(default_factory=Future)

    def close(self) -> Generator[Any, Any, None]:
        self.client.close()
        if not self.release.done():
            self.release.set_result(None)
        self.server.close()
        yield self.server.wait_closed()
        yield self.client.wait_closed()
        yield self.server_side.wait_closed()


@dataclass
class TLSMaterial:
    """Server and client contexts that trust each other (trustme)."""

    ca: Any
    server_context: Any
    client_context: Any


def open_pair(kind: str, tls: TLSMaterial | None = None, **client_options: Any) -> Generator[Any, Any, Pair]:
    """Connect a client stream to a server stream of ``kind``: "tcp", "unix" or "tls"."""
    accepted: Future[tasklets.Stream] = Future()
    release: Future[None] = Future()

    def handler(stream: tasklets.Stream) -> Generator[Any, Any, None]:
        accepted.set_result(stream)
        yield release

    if kind == "tcp":
        server = yield tasklets.start_server(handler, "127.0.0.1", 0)
        client = yield tasklets.open_connection("127.0.0.1", server.port, **client_options)
    elif kind == "unix":
        path = os.path.join(short_tmpdir(), "s.sock")
        server = yield tasklets.start_unix_server(handler, path)
        client = yield tasklets.open_unix_connection(path, **client_options)
    elif kind == "tls":
        assert tls is not None
        server = yield tasklets.start_server(handler, "127.0.0.1", 0, ssl=tls.server_context)
        client = yield tasklets.open_connection(
            "127.0.0.1", server.port, ssl=tls.client_context, server_hostname="localhost", **client_options
        )
    else:
        raise ValueError(kind)
    server_side = yield accepted
    return Pair(client, server_side, server, release)


_tmpdirs: list[str] = []


def short_tmpdir() -> str:
    """A fresh directory with a short path (Unix socket paths are limited to 107 bytes)."""
    path = tempfile.mkdtemp(prefix="tl-", dir="/tmp")
    _tmpdirs.append(path)
    return path


def remove_tmpdirs() -> None:
    while _tmpdirs:
        shutil.rmtree(_tmpdirs.pop(), ignore_errors=True)


def read_all(stream: tasklets.Stream) -> Generator[Any, Any, bytes]:
    """Every byte until end of stream."""
    parts = []
    for wait_for_chunk in stream.chunks():
        chunk = yield wait_for_chunk
        parts.append(chunk)
    return b"".join(parts)


class RawPeer:
    """A hostile peer: a plain blocking socket driven byte by byte from a thread.

    ``listen()`` gives the port; ``serve(script)`` runs ``script(conn)`` in a
    thread on the first connection accepted; ``done`` is a future of its result.
    """

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.done: Future[Any] = Future()
        self._thread: threading.Thread | None = None

    def serve(self, script: Callable[[socket.socket], Any]) -> RawPeer:
        def main() -> None:
            try:
                conn, _ = self.listener.accept()
            except OSError as exc:
                self.done.set_exception(exc)
                return
            try:
                with conn:
                    result = script(conn)
            except BaseException as exc:
                self.done.set_exception(exc)
            else:
                self.done.set_result(result)

        self._thread = threading.Thread(target=main, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.listener.close()
        if self._thread is not None:
            self._thread.join(10)


def recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data
