"""Fixtures of the HTTP client's integration tests: servers, TLS material and the leak check."""

from __future__ import annotations

import gc
import os
import socket
import ssl
import time
from collections.abc import Iterator

import pytest
import trustme
from _servers import LIVE, ExternalServer, StdlibServer

import tasklets
import tasklets.http
from tasklets._where import default_executor

EXTERNAL_KINDS = ("uvicorn-h11", "uvicorn-httptools", "hypercorn")


def _open_fds() -> dict[int, str]:
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # the listing's own descriptor, gone already
    return found


def _describe_sockets(leaked: dict[int, str]) -> dict[int, str]:
    """Each leaked socket's TCP endpoints and state, from /proc/net/tcp (which tells a client's from a server's)."""
    states = {"01": "ESTABLISHED", "02": "SYN_SENT", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "0A": "LISTEN", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "09": "LAST_ACK", "0B": "CLOSING"}
    by_inode = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, remote = (int(end.rsplit(":", 1)[1], 16) for end in fields[1:3])
                    by_inode[fields[9]] = f"port {local} -> {remote} {states.get(fields[3], fields[3])}"
        except OSError:
            pass
    described = {}
    for fd, target in leaked.items():
        described[fd] = by_inode.get(target.strip("socket:[]"), target)
        if described[fd] == target and target.startswith("socket:"):  # not a TCP endpoint: ask the socket itself
            try:
                with socket.socket(fileno=os.dup(fd)) as sock:
                    try:
                        peer = sock.getpeername()
                    except OSError:
                        peer = None
                    described[fd] = f"{target} {sock.family.name} {sock.type.name} {sock.getsockname()!r} -> {peer!r}"
            except OSError as exc:
                described[fd] = f"{target} ({exc})"
    return described


def _close_default_client() -> None:
    """Close the default client's pools on the default loop's thread, and wait for it."""
    loop = tasklets.default_loop()
    done: tasklets.Future[None] = tasklets.Future()

    def close() -> None:
        tasklets.http.default_client().close()
        done.set_result(None)

    loop.call_soon_threadsafe(close)
    done.result(10)


@pytest.fixture(scope="session", autouse=True)
def _runtime_started() -> None:
    # The default loop and thread pool open descriptors on first use: before any test counts its own.
    tasklets.default_loop()
    default_executor().submit(lambda: None).result()


@pytest.fixture(autouse=True)
def no_leaked_fds(_runtime_started: None) -> Iterator[None]:
    """Fail a test that leaves a descriptor open (a socket of the client, most likely).

    Pools go first: the default client's, on the default loop. Each
    ``tasklets.run`` closes its own loop's pools when it returns. In-process
    servers close their side of a connection when they see the client's
    close: wait for that (on a condition, bounded) before counting.
    """
    _close_default_client()
    for server in list(LIVE):
        server.wait_idle(5.0)
    before = _open_fds()
    yield
    _close_default_client()
    for server in list(LIVE):
        assert server.wait_idle(5.0), f"{server!r} still has connections open: the client kept them"
    leaked = {fd: target for fd, target in _open_fds().items() if fd not in before}
    # A connection the client opened and closed at once (a cancelled connect) may still wait in a
    # server's accept queue as the count above is taken, or have been accepted a moment ago by a
    # server thread that has not counted it yet: a server-side descriptor that its server closes
    # once it sees the client's close. The client's loop is closed by now, so nothing of the
    # client's closes later: what is still open after a bounded wait is a leak.
    deadline = time.monotonic() + 5.0
    while leaked and time.monotonic() < deadline:
        time.sleep(0.01)
        for server in list(LIVE):
            server.wait_idle(5.0)
        now_open = _open_fds()
        leaked = {fd: target for fd, target in leaked.items() if now_open.get(fd) == target}
    if leaked:
        gc.collect()  # a socket dropped unclosed then warns (ResourceWarning) here, naming itself
    assert not leaked, f"the test leaked descriptors: {_describe_sockets(leaked)!r}"


# -- TLS -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def cert_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(certfile, keyfile) of a server certificate for localhost and 127.0.0.1."""
    cert = ca.issue_cert("localhost", "127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    cert.cert_chain_pems[0].write_to_path(certfile)
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(certfile, append=True)
    cert.private_key_pem.write_to_path(keyfile)
    return str(certfile), str(keyfile)


@pytest.fixture(scope="session")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """Verification on, trusting the trustme CA."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture(scope="session")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


# -- servers -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def external_servers(
    cert_files: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[tuple[str, str], ExternalServer]]:
    """Every external server, plain and TLS, started at once: ``{(kind, scheme): server}``."""
    logs = tmp_path_factory.mktemp("logs")
    certfile, keyfile = cert_files
    servers: dict[tuple[str, str], ExternalServer] = {}
    try:
        for kind in EXTERNAL_KINDS:
            servers[kind, "http"] = ExternalServer(kind, log=str(logs / f"{kind}-http.log"))
            servers[kind, "https"] = ExternalServer(
                kind, certfile=certfile, keyfile=keyfile, log=str(logs / f"{kind}-https.log")
            )
        deadline = time.monotonic() + 30.0
        for server in servers.values():
            server.wait_ready(deadline)
        yield servers
    finally:
        for server in servers.values():
            server.process.terminate()
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="session")
def httpbin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExternalServer]:
    """httpbin (its Flask application, unchanged) under uvicorn, on plain HTTP."""
    server = ExternalServer("httpbin", log=str(tmp_path_factory.mktemp("logs") / "httpbin.log"))
    try:
        server.wait_ready(time.monotonic() + 60.0)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def stdlib_server() -> Iterator[StdlibServer]:
    server = StdlibServer()
    yield server
    server.close()


@pytest.fixture
def stdlib(stdlib_server: StdlibServer) -> StdlibServer:
    """The http.server instance, its records cleared for this test."""
    stdlib_server.reset()
    return stdlib_server
