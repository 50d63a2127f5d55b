"""Servers for the HTTP client's integration tests, and a few helpers.

* :class:`ExternalServer`: uvicorn (h11 or httptools) or hypercorn in a
  subprocess, serving ``_asgi_app.app``; started and stopped by session
  fixtures (``conftest.py``).
* :class:`StdlibServer`: ``http.server.ThreadingHTTPServer`` speaking
  HTTP/1.1 in a thread of this process; it counts connections (open now,
  most at once, accepted in all), which the pool tests check.
* :class:`RawServer`: a socket server whose every connection runs a script
  in a thread: it sends exactly the bytes a test gives it, hostile ones
  included.

Every server here that lives in this process registers itself, so that the
leak check waits (on a condition, bounded) for its connections to close
before it counts descriptors.
"""

from __future__ import annotations

import http.server
import os
import selectors
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Generator
from typing import Any

from _asgi_app import pattern

import tasklets
from tasklets.http import Client, Response
from tasklets.testing import run_strict

HERE = os.path.dirname(os.path.abspath(__file__))

#: In-process servers whose connections the leak check waits for.
LIVE: weakref.WeakSet[Any] = weakref.WeakSet()

__all__ = ["HERE", "ExternalServer", "RawConnection", "RawServer", "StdlibServer", "fetch", "pattern", "run"]


# -- running client code -----------------------------------------------------------------------------


def run(fn: Callable[..., Any], /, *args: Any, limit: float = 20.0, clock: Any = None, **kwargs: Any) -> Any:
    """Run ``fn(*args, **kwargs)`` as the main task of a fresh loop, strictly (``tasklets.testing.run_strict``).

    The test fails if the task takes more than ``limit`` seconds (on the
    loop's clock), or leaves a task, timer or reader/writer registration
    behind. Timing tests pass a ``VirtualClock``.
    """

    def main() -> Generator[Any, Any, Any]:
        made = fn(*args, **kwargs)
        inner = made if isinstance(made, tasklets.Future) else tasklets.Task(made)
        return (yield tasklets.with_timeout(inner, limit))

    return run_strict(main, clock=clock)


def fetch(client: Client, url: str, *args: Any, **kwargs: Any) -> Generator[Any, Any, tuple[Response, bytes]]:
    """Request ``url`` and read the whole body (``yield from`` it)."""
    response = yield client.urlopen(url, *args, **kwargs)
    body = yield from response.read()
    return response, body


# -- uvicorn and hypercorn, in subprocesses -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ExternalServer:
    """A server we did not write, in a subprocess, on 127.0.0.1 and a free port.

    Args:
        kind: ``"uvicorn-h11"``, ``"uvicorn-httptools"`` or ``"hypercorn"`` (serving ``_asgi_app``), or
            ``"httpbin"`` (httpbin's own application, under uvicorn).
        certfile, keyfile: serve TLS with these (PEM files).
        log: where the server's output goes.
    """

    def __init__(self, kind: str, *, certfile: str | None = None, keyfile: str | None = None, log: str) -> None:
        self.kind = kind
        self.scheme = "https" if certfile else "http"
        self.port = free_port()
        if kind == "httpbin":
            # httpbin is a WSGI (Flask) application: uvicorn serves it through its WSGI interface.
            # (Hypercorn's WSGI wrapper fails every empty body: HEAD, 204, an empty 404.)
            command = [
                sys.executable, "-m", "uvicorn", "httpbin:app", "--interface", "wsgi", "--host", "127.0.0.1",
                "--port", str(self.port), "--log-level", "warning", "--no-access-log", "--lifespan", "off",
            ]
        elif kind.startswith("uvicorn"):
            command = [
                sys.executable, "-m", "uvicorn", "_asgi_app:app", "--host", "127.0.0.1", "--port", str(self.port),
                "--http", kind.split("-")[1], "--log-level", "warning", "--no-access-log", "--lifespan", "off",
            ]
            if certfile:
                command += ["--ssl-certfile", certfile, "--ssl-keyfile", str(keyfile)]
        elif kind == "hypercorn":
            command = [
                sys.executable, "-m", "hypercorn", "_asgi_app:app", "--bind", f"127.0.0.1:{self.port}",
                "--log-level", "warning",
            ]
            if certfile:
                command += ["--certfile", certfile, "--keyfile", str(keyfile)]
        else:
            raise ValueError(f"unknown server kind {kind!r}")
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, cwd=HERE, stdout=out, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"<{self.kind} {self.url}>"

    def wait_ready(self, deadline: float) -> None:
        """Poll connect until the server listens (bounded by ``deadline``, a ``time.monotonic()``)."""
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self!r} exited with {self.process.returncode}: {self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self!r} did not listen in time: {self.output()}")
            try:
                self.process.wait(0.05)  # the poll interval; returns early if the server died
            except subprocess.TimeoutExpired:
                pass

    def output(self) -> str:
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(3)  # uvicorn waits for requests in flight (a slow route, say)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


_PPROXY_MAIN = """
import asyncio, sys
sys.modules["uvloop"] = None  # pproxy's main() asks for the current loop, which uvloop's policy refuses
asyncio.set_event_loop(asyncio.new_event_loop())
from pproxy.server import main
sys.argv[0] = "pproxy"
main()
"""


class PProxy(ExternalServer):
    """pproxy (a SOCKS4/5 and HTTP proxy we did not write) in a subprocess, listening as ``scheme``.

    Args:
        scheme: pproxy's listen scheme: ``"socks5"``, ``"socks4"``, ``"http+ssl"``...
        credentials: ``"user:password"`` the proxy demands (``--auth 0``: every connection, every time).
        ssl_files: ``(certfile, keyfile)`` for a TLS listener.
    """

    def __init__(
        self, scheme: str, *, credentials: str | None = None, ssl_files: tuple[str, str] | None = None, log: str
    ) -> None:
        self.kind = f"pproxy-{scheme}"
        self.scheme = scheme
        self.port = free_port()
        listen = f"{scheme}://127.0.0.1:{self.port}" + (f"#{credentials}" if credentials else "")
        command = [sys.executable, "-c", _PPROXY_MAIN, "-l", listen, "--auth", "0"]
        if ssl_files:
            command += ["--ssl", ",".join(ssl_files)]
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, cwd=HERE, stdout=out, stderr=subprocess.STDOUT)

    def proxy_url(self, scheme: str, credentials: str | None = None) -> str:
        return f"{scheme}://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}"


class TwistedSocks(ExternalServer):
    """Twisted's SOCKSv4 server (``python -m twisted socks``), which also speaks SOCKS4a: the one of pproxy lacks it."""

    def __init__(self, *, log: str) -> None:
        self.kind = "twisted-socks4"
        self.scheme = "socks4a"
        self.port = free_port()
        command = [sys.executable, "-m", "twisted", "socks", "-i", "127.0.0.1", "-p", str(self.port)]
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, cwd=HERE, stdout=out, stderr=subprocess.STDOUT)

    def proxy_url(self, scheme: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}"


# -- connection counting for in-process servers ------------------------------------------------------------


class _Counter:
    """Connections of an in-process server: open now, most at once, accepted in all."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.active = 0
        self.max_active = 0
        self.accepted = 0
        self.in_flight = 0  # requests between their arrival and their response (StdlibServer)
        self.max_in_flight = 0

    def opened(self) -> None:
        with self.cond:
            self.accepted += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.cond.notify_all()

    def closed(self) -> None:
        with self.cond:
            self.active -= 1
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until every connection is closed on the server's side."""
        return self.wait_for(lambda: self.active == 0, timeout)


# -- http.server ---------------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _ThreadingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> None:
        server = self.server.owner
        body = self._body()
        server.requests.append((self.command, self.path, dict(self.headers.items()), body))
        parts = self.path.split("?")[0].strip("/").split("/")
        route, arg = parts[0], parts[1] if len(parts) > 1 else ""
        if route == "bytes":
            self._send(200, pattern(int(arg)))
        elif route == "chunked":
            data = pattern(int(arg))
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(data), 1000):
                piece = data[i : i + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif route == "close":
            # No Content-Length, not chunked: the body ends when the connection closes.
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(pattern(int(arg)))
            self.close_connection = True
        elif route == "echo":
            import json

            document = {"method": self.command, "path": self.path, "headers": list(self.headers.items()),
                        "body": body.decode("latin-1")}
            self._send(200, json.dumps(document).encode(), {"Content-Type": "application/json"})
        elif route == "status":
            self._send(int(arg), f"status {arg}".encode() if int(arg) not in (204, 304) else b"")
        elif route == "hold":
            # Answer once ``hold_until`` requests have been in flight at once (bounded wait). A request
            # leaves the count before its response is written, so the count never runs ahead of the
            # client's busy connections, whatever the timing.
            counter = server.counter
            with counter.cond:
                counter.in_flight += 1
                counter.max_in_flight = max(counter.max_in_flight, counter.in_flight)
                counter.cond.notify_all()
            counter.wait_for(lambda: counter.max_in_flight >= server.hold_until, 5.0)
            with counter.cond:
                counter.in_flight -= 1
            self._send(200, b"held")
        elif route == "redirect":
            to = urllib.parse.unquote(self.path.split("to=", 1)[1]) if "to=" in self.path else "/bytes/5"
            self._send(int(arg), b"moved", {"Location": to})
        else:
            self._send(404, b"no such route")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _route


class _ThreadingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: StdlibServer

    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner.counter.opened()
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that resets its connection is what some tests do on purpose

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        self.owner.counter.closed()


class StdlibServer:
    """``http.server.ThreadingHTTPServer`` (HTTP/1.1) in a thread, on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.counter = _Counter()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.hold_until = 1
        self.httpd = _ThreadingServer(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        LIVE.add(self)

    def reset(self) -> None:
        self.requests.clear()
        self.hold_until = 1
        with self.counter.cond:
            self.counter.accepted = self.counter.max_active = self.counter.active
            self.counter.in_flight = self.counter.max_in_flight = 0

    def wait_idle(self, timeout: float = 5.0) -> bool:
        return self.counter.wait_idle(timeout)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


# -- scripted raw servers ---------------------------------------------------------------------------------------


class RawConnection:
    """One accepted connection of a :class:`RawServer`, as its script sees it."""

    def __init__(self, sock: socket.socket, server: RawServer) -> None:
        self.sock = sock
        self.server = server
        self._buffer = b""

    def recv_head(self) -> bytes:
        """The next request head (up to the blank line), or ``b""`` if the client closed first."""
        while b"\r\n\r\n" not in self._buffer:
            data = self.sock.recv(65536)
            if not data:
                return b""
            self._buffer += data
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        with self.server.counter.cond:
            self.server.heads.append(head)
            self.server.counter.cond.notify_all()
        return head

    def recv_request(self) -> tuple[bytes, bytes]:
        """The next request: head and body (Content-Length or chunked); ``(b"", b"")`` at EOF."""
        head = self.recv_head()
        if not head:
            return b"", b""
        lowered = head.lower()
        body = b""
        if b"content-length:" in lowered:
            length = int(lowered.split(b"content-length:")[1].split(b"\r\n")[0])
            body = self._take(length)
        elif b"transfer-encoding: chunked" in lowered:
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._take(size)
                self._line()
        self.server.bodies.append(body)
        return head, body

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("EOF in the middle of a chunked request")
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def _take(self, n: int) -> bytes:
        while len(self._buffer) < n:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("EOF in the middle of a request body")
            self._buffer += data
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def trickle(self, data: bytes, delay: float) -> None:
        """Send one byte every ``delay`` seconds (until the server stops or the client leaves)."""
        for i in range(len(data)):
            self.sock.sendall(data[i : i + 1])
            if self.server.stopping.wait(delay):
                return

    def hold(self) -> None:
        """Send nothing; return when the client closes (or the server stops)."""
        while self.sock.recv(65536):
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class RawServer:
    """A TCP (or TLS) server on 127.0.0.1 whose every connection runs ``script(conn)`` in a thread.

    Attributes:
        heads: request heads received, in order.
        counter: connections (open now, most at once, accepted in all).
    """

    def __init__(self, script: Callable[[RawConnection], object], *, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.counter = _Counter()
        self.stopping = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()
        LIVE.add(self)

    @property
    def accepted(self) -> int:
        return self.counter.accepted

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.counter.opened()
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self._lock:
                self._socks.append(sock)
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        conn = None
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
                with self._lock:
                    self._socks.append(sock)
            conn = RawConnection(sock, self)
            self.script(conn)
        except (OSError, ValueError):
            pass  # the client went away (or the server stopped): nothing to report
        finally:
            try:
                sock.close()
            except OSError:
                pass
            self.counter.closed()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        return self.counter.wait_idle(timeout)

    def close(self) -> None:
        self.stopping.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.listener.close()
        self._acceptor.join(10)
        with self._lock:
            socks, threads = list(self._socks), list(self._threads)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a script blocked in recv()
            except OSError:
                pass
        for thread in threads:
            thread.join(10)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def forward(a: socket.socket, b: socket.socket, stopping: threading.Event) -> None:
    """Copy bytes both ways between two sockets until one side closes (a CONNECT tunnel)."""
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while not stopping.is_set():
            for key, _ in selector.select(0.5):
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                if not data:
                    return
                key.data.sendall(data)
