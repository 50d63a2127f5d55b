"""Load: thousands of concurrent connections between two processes, each exchanging a message.

The default run holds 500 connections open at once; ``-m slow`` adds the
10,000-connection version. The server runs in a child process, so each side
has its own loop and its own descriptor limit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest

import tasklets

from ._echo_server import raise_fd_limit
from ._support import run

SERVER = os.path.join(os.path.dirname(__file__), "_echo_server.py")


def _hold_connections(count: int, *, time_limit: float) -> None:
    hard = raise_fd_limit()
    if hard < count + 100:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low for {count} connections")
    server = subprocess.Popen(
        [sys.executable, SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None and server.stdin is not None
        port = int(server.stdout.readline())
        started = time.monotonic()
        exchanged = run(_clients, port, count, timeout=time_limit)
        elapsed = time.monotonic() - started
        assert exchanged == count
        assert elapsed < time_limit
        server.stdin.close()
        status = server.stdout.readline().split()
        assert status[0] == "closed"
        # The server process is back to its listening-free baseline (stdio, loop, pool).
        assert int(status[1]) < 20, f"the server still holds {status[1]} descriptors"
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        for pipe in (server.stdin, server.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


def _clients(port: int, count: int) -> Any:
    connecting = tasklets.Semaphore(512)  # bounded SYN bursts: the listen backlog is finite
    everyone_exchanged = tasklets.Event()
    exchanged = [0]

    def client(i: int) -> Any:
        yield connecting.acquire()
        try:
            stream = yield tasklets.open_connection("127.0.0.1", port, timeout=30)
        finally:
            connecting.release()
        try:
            message = b"message %d\n" % i
            yield stream.write(message)
            assert (yield stream.read_until(b"\n")) == message
            exchanged[0] += 1
            if exchanged[0] == count:
                everyone_exchanged.set()
            yield everyone_exchanged.wait()  # every connection is open at this moment
        finally:
            stream.close()
        yield stream.wait_closed()

    clients = [tasklets.spawn(client, i) for i in range(count)]
    yield tasklets.gather(clients)
    return exchanged[0]


def test_500_concurrent_connections() -> None:
    _hold_connections(500, time_limit=30)


@pytest.mark.slow
def test_10000_concurrent_connections() -> None:
    _hold_connections(10_000, time_limit=55)
