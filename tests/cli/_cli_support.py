"""Helpers of the command-line tests: a local HTTP server, and ``tasklets`` run as a user runs it.

The server is the standard library's ``ThreadingHTTPServer`` (HTTP/1.1, a
backlog of 128 so that a burst of connections is never dropped) on
127.0.0.1 and a free port, in a thread. Its routes:

* ``/bytes/N``: N bytes of a pattern (:func:`pattern`), so sizes and saved content can be checked;
* ``/status/404``, ``/status/500``: those errors;
* ``/slow/...``: sends its headers and the first half of its body (:func:`slow_body`), is
  counted (:meth:`Server.wait_slow`), then blocks until :meth:`Server.release` before
  sending the rest: a client saving it has a partial file meanwhile. The most of them
  held at once is kept (:attr:`Server.slow_peak`), as is the most connections open at
  once (:attr:`Server.connections_peak`): bounds on the client's concurrency;
* ``/redirect``: a 302 to ``/bytes/123``;
* anything else: 200 with ``echo:`` and the request target as received, so a
  saved file can be matched to its URL.

:class:`ClosingListener` is a port where every connection is accepted, counted and closed
unread: a network failure whose attempts can be counted.

Nothing sleeps: tests wait on the server's counters and on the child's
output lines, each wait bounded by :data:`BOUND`.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import queue
import socket
import subprocess
import sys
import threading
from typing import IO, Any

#: Every wait of these tests is bounded by this many seconds.
BOUND = 20.0


def pattern(size: int) -> bytes:
    """The body of ``/bytes/<size>``."""
    block = bytes(range(256)) * 16
    return (block * (size // len(block) + 1))[:size]


def echo_body(target: str) -> bytes:
    """The body of the echo route for the request target ``target``."""
    return b"echo:" + target.encode("latin-1")


def slow_body(target: str) -> bytes:
    """The whole body of a slow request (its first half is sent before the wait)."""
    return echo_body(target) * 200


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def do_GET(self) -> None:  # the standard library's name
        path = self.path
        self.server.record(path, dict(self.headers.items()))
        if path.startswith("/bytes/"):
            self._send(200, pattern(int(path.split("/")[2])))
        elif path.startswith("/status/"):
            code = int(path.split("/")[2])
            self._send(code, f"status {code}\n".encode())
        elif path == "/redirect":
            self._send(302, b"", location="/bytes/123")
        elif path.startswith("/slow/"):
            body = slow_body(path)
            half = len(body) // 2
            self.server.slow_began()
            try:
                self._send(200, body[:half], length=len(body))
                self.wfile.flush()
                self.server.slow_arrived()
                released = self.server.released.wait(BOUND)
            finally:
                # Counted out before the rest is sent: until then the client cannot have the whole response,
                # so the slot it holds for it is still taken (the server's count never exceeds the client's).
                self.server.slow_ended()
            if not released:
                self.close_connection = True
                return
            self.wfile.write(body[half:])
        else:
            self._send(200, echo_body(path))

    def _send(self, code: int, body: bytes, location: str | None = None, length: int | None = None) -> None:
        self.send_response(code)
        if location is not None:
            self.send_header("Location", location)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the standard library's name
        pass


class Server(http.server.ThreadingHTTPServer):
    """The test server, with counters the tests can wait on."""

    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops SYNs of a burst (a 1 s retransmit)

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.released = threading.Event()
        self._cond = threading.Condition()
        self.slow_seen = 0
        #: Slow requests begun and not yet sending their second half; the most of them at once.
        self.slow_in_flight = 0
        self.slow_peak = 0
        #: Connections accepted and not yet closed; the most of them at once.
        self.connections_open = 0
        self.connections_peak = 0
        self.requests: list[tuple[str, dict[str, str]]] = []

    def process_request(self, request: Any, client_address: Any) -> None:  # on accept, before its thread starts
        with self._cond:
            self.connections_open += 1
            self.connections_peak = max(self.connections_peak, self.connections_open)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:  # once the connection is done with, in its thread
        try:
            super().shutdown_request(request)
        finally:
            with self._cond:
                self.connections_open -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away (Ctrl-C'd, say) is no news

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def record(self, path: str, headers: dict[str, str]) -> None:
        with self._cond:
            self.requests.append((path, headers))

    def paths(self) -> list[str]:
        with self._cond:
            return [path for path, _ in self.requests]

    def slow_began(self) -> None:
        with self._cond:
            self.slow_in_flight += 1
            self.slow_peak = max(self.slow_peak, self.slow_in_flight)

    def slow_ended(self) -> None:
        with self._cond:
            self.slow_in_flight -= 1

    def slow_arrived(self) -> None:
        with self._cond:
            self.slow_seen += 1
            self._cond.notify_all()

    def wait_slow(self, count: int, timeout: float = BOUND) -> None:
        """Wait until ``count`` slow requests have been sent half their body (and are held)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.slow_seen >= count, timeout):
                raise AssertionError(f"the server saw {self.slow_seen} slow requests, not {count}, in {timeout} s")

    def release(self) -> None:
        """Let every slow request, held or to come, finish."""
        self.released.set()


class ClosingListener:
    """A loopback port that accepts each connection and closes it at once, unread: every request there fails.

    Each connection is counted: how many times a client tried (a reset
    connection is a network failure, as a refused one is). :meth:`stop`
    ends the accepting thread deterministically: it connects once more
    itself and the thread stops at that connection, so every connection
    made before it, accepted or still queued, has been counted.
    """

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}/closed"
        self.connections = 0
        self._sentinel: tuple[str, int] | None = None
        self._thread = threading.Thread(target=self._serve, name="cli-test-closing-listener", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            connection, peer = self._socket.accept()
            connection.close()  # the request unread: the client sees a reset connection
            if peer == self._sentinel:
                return
            self.connections += 1

    def stop(self) -> int:
        """Stop accepting; the number of connections made before (idempotent)."""
        if self._thread.is_alive():
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self._sentinel = probe.getsockname()
                probe.connect(self._socket.getsockname())
                self._thread.join(BOUND)
            assert not self._thread.is_alive(), "the closing listener did not stop"
        self._socket.close()
        return self.connections


#: Proxy settings: the child's requests go to the test server on 127.0.0.1, never through a proxy.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def cli_env() -> dict[str, str]:
    """The child's environment: ours, unbuffered, without settings that change its output or its route."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    for name in ("FORCE_COLOR", "NO_COLOR", "TASKLETS_DEBUG", "COLUMNS", "LINES"):
        env.pop(name, None)
    for name in list(env):
        if name.lower() in PROXY_VARIABLES:  # any case: urllib reads http_proxy and HTTP_PROXY alike
            del env[name]
    return env


def command(*args: str) -> list[str]:
    """The command line that runs ``tasklets ARGS...``."""
    return [sys.executable, "-m", "tasklets", *args]


def first_line_then_hang_up(*args: str) -> tuple[bytes, int, str]:
    """``tasklets ARGS... | head -1``: read one line of stdout, close the pipe; (that line, exit status, stderr)."""
    read_end, write_end = os.pipe()
    child = subprocess.Popen(command(*args), stdout=write_end, stderr=subprocess.PIPE, env=cli_env(), text=True)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as reader:
            line = reader.readline()
        _, stderr = child.communicate(timeout=BOUND)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=BOUND)
    return line, child.returncode, stderr


def run_cli(
    *args: str, stdin: str = "", env: dict[str, str] | None = None, timeout: float = BOUND * 2
) -> subprocess.CompletedProcess[str]:
    """Run ``tasklets ARGS...`` to its end, with pipes (no terminal); its CompletedProcess.

    ``env`` adds to (or overrides) :func:`cli_env`.
    """
    return subprocess.run(
        command(*args),
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        env={**cli_env(), **(env or {})},
        timeout=timeout,
        check=False,
    )


class LiveChild:
    """``tasklets ARGS...`` running, its output lines read as they come (pipes, no terminal)."""

    def __init__(self, *args: str, stdin: bool = False) -> None:
        self.process = subprocess.Popen(
            command(*args),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=cli_env(),
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self.process.stdout, self.lines.put), daemon=True),
            threading.Thread(target=self._pump, args=(self.process.stderr, self._stderr_line), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _pump(stream: IO[str], put: Any) -> None:
        for line in stream:
            put(line.rstrip("\n"))
        put(None)

    def _stderr_line(self, line: str | None) -> None:
        if line is not None:  # (None: the end of stderr)
            self.stderr.append(line)

    def next_line(self) -> str:
        """The next line of stdout (bounded wait)."""
        line = self.lines.get(timeout=BOUND)
        assert line is not None, f"stdout ended early; stderr: {self.stderr}"
        return line

    def write(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def close_stdin(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()

    def finish(self) -> tuple[int, list[str]]:
        """Wait for the exit (bounded); the status and the stdout lines not read yet."""
        status = self.process.wait(BOUND)
        for thread in self._threads:
            thread.join(BOUND)
        rest = []
        while (line := self.lines.get_nowait()) is not None:
            rest.append(line)
        return status, rest

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(BOUND)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
