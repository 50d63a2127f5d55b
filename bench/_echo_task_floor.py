"""The thinnest task-and-future echo server in pure Python: the floor of tasklets' design.

Usage::

    python bench/_echo_task_floor.py

It prints ``PORT <n>`` and serves on 127.0.0.1 until its standard input
reaches end of file, like the servers of ``_echo_servers.py``.

Why it exists: issue 3 asks the tasklets server (a task per connection that
yields a future per read) to beat asyncio *protocols* (no task, no future: the
readiness callback calls ``data_received``, which calls ``send``). This server
keeps exactly the work that design cannot drop (a readiness callback that
reads and completes a future, a task woken through the ready queue and resumed
with ``generator.send``, one new future per read) and nothing else: no locks,
no thread checks, no cancellation, no timers, no back-pressure, no error
handling, its own ten-line loop. Whatever it costs is the least any server of
that design costs in CPython; tasklets' cost above it is what tasklets' own
features and safety cost.

It is a measuring stick, not a server: it assumes every ``send`` takes the
whole message (true for a ping-pong peer on loopback; it stops with an error
otherwise).
"""

from __future__ import annotations

import os
import select
import socket
import sys
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

HOST = "127.0.0.1"
BACKLOG = 4096
READ_SIZE = 65536


class Future:
    """A result and one callback: all a task needs to wait."""

    __slots__ = ("result", "callback")

    def __init__(self) -> None:
        self.result: Any = None
        self.callback: Callable[[Future], None] | None = None


class Task:
    """Resumes its generator with each future's result; woken through the ready queue."""

    __slots__ = ("generator", "resume_with", "step_method", "wake_method")

    def __init__(self, generator: Generator[Future, Any, None]) -> None:
        self.generator = generator
        self.resume_with: Future | None = None
        self.step_method = self.step
        self.wake_method = self.wake
        READY.append(self.step_method)

    def wake(self, future: Future) -> None:
        """The future's callback: enqueue the step, never step here (the design's rule)."""
        self.resume_with = future
        READY.append(self.step_method)

    def step(self) -> None:
        future = self.resume_with
        try:
            waited = self.generator.send(None if future is None else future.result)
        except StopIteration:
            return
        waited.callback = self.wake_method


class Stream:
    """A socket whose readiness callback completes the pending read's future."""

    __slots__ = ("sock", "fd", "recv", "send", "waiter")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self.recv = sock.recv
        self.send = sock.send
        self.waiter: Future | None = None
        HANDLERS[self.fd] = self.on_readable
        POLLER.register(self.fd, select.EPOLLIN)

    def on_readable(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            try:
                waiter.result = self.recv(READ_SIZE)
            except OSError:  # reset by the peer: end the handler as at end of file
                waiter.result = b""
            if waiter.callback is not None:
                waiter.callback(waiter)

    def read(self) -> Future:
        waiter = self.waiter = Future()
        return waiter

    def write(self, data: bytes) -> None:
        if self.send(data) != len(data):
            raise RuntimeError("partial send: this measuring stick only serves ping-pong loads")

    def close(self) -> None:
        POLLER.unregister(self.fd)
        del HANDLERS[self.fd]
        self.sock.close()


def echo(stream: Stream) -> Generator[Future, Any, None]:
    """The same handler as the tasklets server's."""
    try:
        while True:
            data = yield stream.read()
            if not data:
                break
            stream.write(data)
    except ConnectionError:
        pass
    stream.close()


READY: deque[Callable[[], None]] = deque()
HANDLERS: dict[int, Callable[[], None]] = {}
POLLER = select.epoll()


def main() -> int:
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(BACKLOG)
    listener.setblocking(False)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            Task(echo(Stream(conn)))

    stopping: list[bool] = []

    def stdin_readable() -> None:
        if not os.read(sys.stdin.fileno(), 4096):
            stopping.append(True)

    for fd, handler in ((listener.fileno(), accept), (sys.stdin.fileno(), stdin_readable)):
        HANDLERS[fd] = handler
        POLLER.register(fd, select.EPOLLIN)
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    popleft = READY.popleft
    while not stopping:
        if not READY:
            for fd, _mask in POLLER.poll(-1):
                READY.append(HANDLERS[fd])
        for _ in range(len(READY)):
            popleft()()
    return 0


if __name__ == "__main__":
    sys.exit(main())
