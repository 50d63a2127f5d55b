"""Fixtures of the command-line tests: the local HTTP server, a refused port, a closing one, a running child."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from ._cli_support import BOUND, ClosingListener, LiveChild, Server


@pytest.fixture
def server() -> Iterator[Server]:
    """The test server (see ``_cli_support``), stopped and its held requests released at the end."""
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), name="cli-test-server", daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release()
        srv.shutdown()
        srv.server_close()
        thread.join(BOUND)


@pytest.fixture
def refused_url() -> str:
    """A URL on a loopback port where nothing listens (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/nowhere"


@pytest.fixture
def closing_listener() -> Iterator[ClosingListener]:
    """A loopback port that accepts and closes every connection, counting them (see ``_cli_support``)."""
    listener = ClosingListener()
    try:
        yield listener
    finally:
        listener.stop()


@pytest.fixture
def live() -> Iterator[Callable[..., LiveChild]]:
    """``live(*args, stdin=False)`` starts ``tasklets ARGS...``; every child is killed at the end."""
    children: list[LiveChild] = []

    def start(*args: str, stdin: bool = False) -> LiveChild:
        child = LiveChild(*args, stdin=stdin)
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()
