"""What the Dask tests run on the workers, and the HTTP server the workers fetch from.

The workers are separate processes (``LocalCluster(processes=True)``,
started by ``spawn``). They import this module by name: pytest puts this
directory on ``sys.path`` before the cluster starts, and ``spawn`` hands
``sys.path`` to the children, so a function defined here travels as a
reference, like the function of an installed module would.

The server is the standard library's ``ThreadingHTTPServer`` (HTTP/1.1, a
backlog of 128 so that a burst of connections is never dropped) on
127.0.0.1, in a thread of the test process. It sets ``TCP_NODELAY``:
``BaseHTTPRequestHandler`` sends the head and the body in two writes, and
without it the body waits for the client's delayed ACK (40 ms a request), so
a few thousand requests would take minutes. Routes:

* ``/n/I``: ``size_of(I)`` bytes of a pattern, so every result can be checked;
* ``/status/CODE``: that status;
* ``/held/GATE/...``: sends its headers and the first half of its body
  (:func:`held_body`), is counted, then blocks until :meth:`Server.release`
  opens ``GATE`` (bounded by :data:`BOUND`) before sending the rest: a request
  in flight for as long as a test needs it, and a partial file meanwhile;
* anything else: 200 with ``ok``.

It records every path it serves; :meth:`Server.wait_for` waits (bounded) until
a path has been seen, :meth:`Server.wait_held` until so many requests are held
at a gate.
"""

from __future__ import annotations

import http.server
import os
import socket
import threading
from collections import Counter
from typing import Any

import tasklets
from tasklets.cli._dask_fetch import fetch_batch
from tasklets.cli._fetch import FetchOptions
from tasklets.cli._report import Result

#: Every wait of these tests is bounded by this many seconds.
BOUND = 20.0

#: ``scheduler_kwargs`` of every test cluster: the scheduler's HTTP server on a free port, never 8787 (the
#: dashboard stays off: LocalCluster's ``dashboard_address=None`` decides that). See ``conftest``.
NO_DEFAULT_HTTP_PORT = {"dashboard_address": "127.0.0.1:0"}


# -- the server ------------------------------------------------------------------------------------


def size_of(number: int) -> int:
    """The body size of ``/n/<number>``."""
    return (number * 37) % 1500


def body_of(number: int) -> bytes:
    return bytes((number + i) % 251 for i in range(size_of(number)))


def held_body(path: str) -> bytes:
    """The whole body of the held request ``path`` (its first half is sent before the gate)."""
    return path.encode() * 500


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # the standard library's name
        path = self.path
        self.server.record(path)
        if path.startswith("/n/"):
            self._send(200, body_of(int(path[3:])))
        elif path.startswith("/status/"):
            code = int(path.split("/")[2])
            self._send(code, f"status {code}\n".encode())
        elif path.startswith("/held/"):
            gate = path.split("/")[2]
            body = held_body(path)
            half = len(body) // 2
            self._send(200, body[:half], length=len(body))
            self.wfile.flush()
            self.server.hold(gate)
            if not self.server.gate(gate).wait(BOUND):
                self.close_connection = True
                return
            self.wfile.write(body[half:])
        else:
            self._send(200, b"ok")

    def _send(self, code: int, body: bytes, length: int | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the standard library's name
        pass


class Server(http.server.ThreadingHTTPServer):
    """The test server, counting what it served."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._cond = threading.Condition()
        self.seen: Counter[str] = Counter()
        self.held: Counter[str] = Counter()  # gate -> requests that reached it
        self._gates: dict[str, threading.Event] = {}

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away (a killed worker, say) is no news

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def record(self, path: str) -> None:
        with self._cond:
            self.seen[path] += 1
            self._cond.notify_all()

    def wait_for(self, path: str, timeout: float = BOUND) -> None:
        """Wait until ``path`` has been requested."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.seen[path] > 0, timeout):
                raise AssertionError(f"the server never saw {path!r} in {timeout} s")

    def gate(self, name: str) -> threading.Event:
        """The gate ``name`` (closed until :meth:`release`): what the ``/held/<name>/...`` requests wait for."""
        with self._cond:
            return self._gates.setdefault(name, threading.Event())

    def hold(self, name: str) -> None:
        with self._cond:
            self.held[name] += 1
            self._cond.notify_all()

    def wait_held(self, name: str, count: int, timeout: float = BOUND) -> None:
        """Wait until ``count`` requests are held at the gate ``name`` (each sent half its body)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.held[name] >= count, timeout):
                raise AssertionError(f"{self.held[name]} requests held at {name!r}, not {count}, in {timeout} s")

    def release(self, name: str | None = None) -> None:
        """Open the gate ``name`` (every gate when None): its held requests, and those to come, finish."""
        with self._cond:
            names = list(self._gates) if name is None else [name]
        for each in names:
            self.gate(each).set()


# -- run on the workers ---------------------------------------------------------------------------


class RemoteError(Exception):
    """Raised on a worker; must arrive in the task as itself."""


def inc(x: int) -> int:
    return x + 1


def boom(text: str) -> None:
    raise RemoteError(text)


def wait_for_event(name: str) -> str:
    """Block a worker thread until the ``distributed.Event`` ``name`` is set."""
    import distributed

    if not distributed.Event(name).wait(BOUND):
        raise TimeoutError(f"event {name!r} never set")
    return name


def write_marker(_: object, path: str) -> str:
    """Runs after its argument (a gate) is done: leaves a file, proof that it ran."""
    with open(path, "w") as file:
        file.write("ran")
    return path


@tasklets.task
def where(tag: str) -> Any:
    """A task: where it ran (process, thread) and its argument, after a real wait on the loop."""
    yield tasklets.sleep(0.001)
    return os.getpid(), threading.current_thread().name, tag


def _get(url: str) -> Any:
    response = yield tasklets.urlopen_async(url, timeout=BOUND)
    return (yield from response.read())


@tasklets.task
def wait_then_report_cancel(started_url: str, cancelled_url: str) -> Any:
    """A task that tells the test server it started, waits (for long) and, once cancelled, tells it so."""
    yield from _get(started_url)
    try:
        yield tasklets.sleep(BOUND * 3)
    except tasklets.Cancelled:
        yield from _get(cancelled_url)
        raise
    return "not cancelled"


# -- a result whose arrival needs the coordinator's loop --------------------------------------------

#: Handshakes of this (test) process: name -> (arrived, go).
HANDSHAKES: dict[str, tuple[threading.Event, threading.Event]] = {}


def open_handshake(name: str) -> tuple[threading.Event, threading.Event]:
    HANDSHAKES[name] = (threading.Event(), threading.Event())
    return HANDSHAKES[name]


def _arrive(name: str) -> str:
    """Unpickling a :class:`Handshake` in the test process: say so, then wait for 'go'."""
    arrived, go = HANDSHAKES[name]
    arrived.set()
    if not go.wait(BOUND / 2):
        raise RuntimeError(f"handshake {name!r}: no 'go' (the tasklets loop was blocked while the result came)")
    return f"handshake {name}"


class Handshake:
    """A result that can only be unpickled, by the coordinator, while its tasklets loop runs.

    Unpickling it (which Dask does when the result is fetched) signals
    ``arrived`` and waits for ``go``; a task on the coordinator's loop sets
    ``go`` once it sees ``arrived``. Were the loop itself fetching the
    result, it could not set ``go``: the fetch would fail after a bounded wait.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _arrive, (self.name,)


def make_handshake(name: str) -> Handshake:
    return Handshake(name)


# -- batches that kill their worker ---------------------------------------------------------------


def killing_batch(urls: list[str], options: FetchOptions, *, poison: str, marker: str) -> list[Result]:
    """Fetch the batch; but the batch holding ``poison`` kills its worker process, once.

    On its first attempt (``marker`` does not exist yet; it is created
    atomically) it fetches the first half of its URLs, then ends the process
    with ``os._exit``: the results it had are lost with it, as when a
    machine dies. Every later attempt fetches the whole batch.
    """
    if poison in urls:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            fetch_batch(urls[: len(urls) // 2], options)
            os._exit(17)
    return fetch_batch(urls, options)


def always_killing_batch(urls: list[str], options: FetchOptions, *, poison: str) -> list[Result]:
    """Fetch the batch; but the batch holding ``poison`` kills its worker at every attempt."""
    if poison in urls:
        os._exit(18)
    return fetch_batch(urls, options)
