"""TLS inside TLS: ``start_tls`` on a stream that is TLS already (a tunnel through a TLS proxy).

The inner sessions use certificates of their own (``inner.example``, then
``inner2.example``), so a test that got the outer session back instead of a
new one fails on the peer's certificate. asyncio (3.11+) speaks TLS inside
TLS too: it is the peer nobody here wrote, on either side.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trustme

import tasklets
from tasklets import Future

from ._support import TLSMaterial, read_all, run

INNER_NAMES = ["inner.example", "inner2.example"]


def _server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


@pytest.fixture(scope="module")
def inner_contexts(tls: TLSMaterial) -> list[ssl.SSLContext]:
    """Server contexts of the inner sessions, one certificate per depth."""
    return [_server_context(tls.ca.issue_cert(name)) for name in INNER_NAMES]


def _upgrade_server_side(
    stream: tasklets.Stream, inner_contexts: list[ssl.SSLContext], depth: int
) -> Generator[Any, Any, None]:
    """The server half of the protocol: each ``STARTTLS`` line starts a session inside the current one."""
    for level in range(depth):
        assert (yield stream.read_until(b"\n")) == b"STARTTLS\n"
        yield stream.start_tls(inner_contexts[level], server_side=True, timeout=30.0)


def _upgrade_client_side(stream: tasklets.Stream, tls: TLSMaterial, depth: int) -> Generator[Any, Any, None]:
    for level in range(depth):
        yield stream.write(b"STARTTLS\n")
        yield stream.start_tls(tls.client_context, server_hostname=INNER_NAMES[level], timeout=30.0)


def _with_nested_pair(
    tls: TLSMaterial,
    inner_contexts: list[ssl.SSLContext],
    body: Callable[[tasklets.Stream, tasklets.Stream], Generator[Any, Any, Any]],
    *,
    depth: int = 1,
    **client_options: Any,
) -> Any:
    """Run ``body(client, server_side)`` over a TLS connection upgraded ``depth`` more times on both ends."""
    accepted: Future[tasklets.Stream] = Future()
    release: Future[None] = Future()

    def handler(stream: tasklets.Stream) -> Generator[Any, Any, None]:
        yield from _upgrade_server_side(stream, inner_contexts, depth)
        accepted.set_result(stream)
        yield release

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0, ssl=tls.server_context)
        client = None
        try:
            client = yield tasklets.open_connection(
                "127.0.0.1", server.port, ssl=tls.client_context, server_hostname="localhost", **client_options
            )
            yield from _upgrade_client_side(client, tls, depth)
            server_side = yield accepted
            return (yield from body(client, server_side))
        finally:
            if client is not None:
                client.close()
                yield client.wait_closed()
            release.set_result(None)
            server.close()
            yield server.wait_closed()
            if accepted.done():
                yield accepted.result().wait_closed()

    return run(main, timeout=60.0)


@pytest.mark.parametrize("depth", [1, 2], ids=["tls-in-tls", "tls-in-tls-in-tls"])
def test_start_tls_on_a_tls_stream_makes_a_session_inside_it(
    tls: TLSMaterial, inner_contexts: list[ssl.SSLContext], depth: int
) -> None:
    def body(client: tasklets.Stream, server_side: tasklets.Stream) -> Any:
        # The sessions seen are the innermost ones: their certificates say so.
        client_session = client.ssl_object
        assert client_session is not None
        assert client_session.getpeercert()["subjectAltName"] == (("DNS", INNER_NAMES[depth - 1]),)
        assert server_side.ssl_object is not None and server_side.ssl_object.server_side
        assert "TLS-in-TLS" in repr(client) and "TLS-in-TLS" in repr(server_side)
        for n in range(20):  # bytes both ways, several times: the sessions stay in step
            yield client.write(b"ping %d\n" % n)
            assert (yield server_side.read_until(b"\n")) == b"ping %d\n" % n
            yield server_side.write(b"pong %d\n" % n)
            assert (yield client.read_until(b"\n")) == b"pong %d\n" % n
        # Bytes that come right behind each other are all delivered (some wait in the sessions'
        # buffers, where readiness cannot see them).
        yield server_side.write(b"".join(b"%05d" % n for n in range(2000)))
        assert (yield client.read_exactly(10000)) == b"".join(b"%05d" % n for n in range(2000))

    _with_nested_pair(tls, inner_contexts, body, depth=depth)


@pytest.mark.parametrize("depth", [1, 2], ids=["tls-in-tls", "tls-in-tls-in-tls"])
def test_megabytes_go_both_ways_at_once(tls: TLSMaterial, inner_contexts: list[ssl.SSLContext], depth: int) -> None:
    size = 6 * 1024 * 1024
    up = (b"%08d" % 1 * 8192)[: 64 * 1024]
    down = (b"%08d" % 2 * 8192)[: 64 * 1024]

    def send(stream: tasklets.Stream, pattern: bytes) -> Generator[Any, Any, None]:
        for _ in range(size // len(pattern)):
            yield stream.write(pattern)  # back-pressure: waits while the queue is above its mark

    def receive(stream: tasklets.Stream) -> Generator[Any, Any, str]:
        digest = hashlib.sha256()
        got = 0
        buffer = bytearray(256 * 1024)
        while got < size:
            count = yield stream.read_into(memoryview(buffer)[: size - got])
            assert count, f"end of stream after {got} of {size} bytes"
            digest.update(memoryview(buffer)[:count])
            got += count
        return digest.hexdigest()

    def body(client: tasklets.Stream, server_side: tasklets.Stream) -> Any:
        # Both ends write before either reads all: each direction's flow control must hold
        # while the other direction is busy.
        tasks = [
            tasklets.spawn(send, client, up),
            tasklets.spawn(send, server_side, down),
            tasklets.spawn(receive, server_side),
            tasklets.spawn(receive, client),
        ]
        _, _, server_got, client_got = yield tasklets.gather(tasks)
        assert server_got == hashlib.sha256(up * (size // len(up))).hexdigest()
        assert client_got == hashlib.sha256(down * (size // len(down))).hexdigest()

    _with_nested_pair(tls, inner_contexts, body, depth=depth)


def test_close_ends_every_session_cleanly(tls: TLSMaterial, inner_contexts: list[ssl.SSLContext]) -> None:
    def body(client: tasklets.Stream, server_side: tasklets.Stream) -> Any:
        yield client.write(b"last words")
        client.close()  # the inner close_notify, then the outer one, then the socket
        assert (yield from read_all(server_side)) == b"last words"
        assert server_side._tls is not None and not server_side._tls.unclean_eof
        yield client.wait_closed()
        assert client.socket.fileno() == -1
        server_side.close()
        yield server_side.wait_closed()
        assert server_side.socket.fileno() == -1

    _with_nested_pair(tls, inner_contexts, body)


def test_abort_in_the_middle_of_a_transfer_leaves_nothing_open(
    tls: TLSMaterial, inner_contexts: list[ssl.SSLContext]
) -> None:
    def body(client: tasklets.Stream, server_side: tasklets.Stream) -> Any:
        def flood() -> Generator[Any, Any, None]:
            for _ in range(1000):  # 64 MiB at most: the abort cuts it short long before
                yield server_side.write(b"x" * 65536)

        flooding = tasklets.spawn(flood)
        assert (yield client.read_exactly(100000)) == b"x" * 100000
        client.abort()
        assert client.socket.fileno() == -1
        with pytest.raises(tasklets.StreamError):
            yield flooding  # the peer is gone: the write fails (reset, or a broken pipe)
        server_side.abort()
        yield server_side.wait_closed()

    _with_nested_pair(tls, inner_contexts, body)


def test_a_failed_inner_handshake_aborts_the_stream(tls: TLSMaterial) -> None:
    untrusted = _server_context(trustme.CA().issue_cert(INNER_NAMES[0]))
    finished: Future[None] = Future()

    def handler(stream: tasklets.Stream) -> Generator[Any, Any, None]:
        try:
            yield from _upgrade_server_side(stream, [untrusted], 1)
        except tasklets.TLSError:
            pass
        finally:
            finished.set_result(None)

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0, ssl=tls.server_context)
        try:
            stream = yield tasklets.open_connection(
                "127.0.0.1", server.port, ssl=tls.client_context, server_hostname="localhost"
            )
            with pytest.raises(tasklets.TLSCertificateError):
                yield from _upgrade_client_side(stream, tls, 1)
            assert stream.is_closing() and stream.socket.fileno() == -1
            yield finished
        finally:
            server.close()
            yield server.wait_closed()

    run(main)


# -- against asyncio, which speaks TLS inside TLS since Python 3.11 --------------------------------------


@contextmanager
def _asyncio_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any], context: ssl.SSLContext
) -> Iterator[int]:
    """An asyncio TLS server on its own thread; its port."""
    started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event, int]] = Future()

    async def serve() -> None:
        stop = asyncio.Event()
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context)
        started.set_result((asyncio.get_running_loop(), stop, server.sockets[0].getsockname()[1]))
        async with server:
            await stop.wait()

    def thread_main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)

    thread = threading.Thread(target=thread_main, daemon=True)
    thread.start()
    loop, stop, port = started.result(30)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)


def test_our_client_inside_asyncios_tls_server(tls: TLSMaterial, inner_contexts: list[ssl.SSLContext]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readline() == b"STARTTLS\n"
        # asyncio's start_tls drops what its reader has buffered: the client waits for this
        # line before its ClientHello (ours feeds such bytes to the new session).
        writer.write(b"GO\n")
        await writer.start_tls(inner_contexts[0])
        size = int(await reader.readline())
        data = await reader.readexactly(size)
        writer.write(hashlib.sha256(data).hexdigest().encode() + b"\n" + data[::-1])
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    payload = bytes(range(256)) * (3 * 4096)  # 3 MiB

    def main(port: int) -> Any:
        stream = yield tasklets.open_connection("127.0.0.1", port, ssl=tls.client_context, server_hostname="localhost")
        try:
            yield stream.write(b"STARTTLS\n")
            assert (yield stream.read_until(b"\n")) == b"GO\n"
            yield stream.start_tls(tls.client_context, server_hostname=INNER_NAMES[0], timeout=30.0)
            yield stream.write(b"%d\n" % len(payload))
            for start in range(0, len(payload), 65536):
                yield stream.write(payload[start : start + 65536])
            assert (yield stream.read_until(b"\n")) == hashlib.sha256(payload).hexdigest().encode() + b"\n"
            assert (yield stream.read_exactly(len(payload))) == payload[::-1]
        finally:
            stream.close()
            yield stream.wait_closed()

    with _asyncio_server(handler, tls.server_context) as port:
        run(main, port, timeout=60.0)


def test_asyncios_client_inside_our_tls_server(tls: TLSMaterial, inner_contexts: list[ssl.SSLContext]) -> None:
    payload = bytes(range(256)) * (3 * 4096)  # 3 MiB

    def handler(stream: tasklets.Stream) -> Generator[Any, Any, None]:
        yield from _upgrade_server_side(stream, inner_contexts, 1)
        size = int((yield stream.read_until(b"\n")))
        data = yield stream.read_exactly(size)
        yield stream.write(hashlib.sha256(data).hexdigest().encode() + b"\n")
        for start in range(0, size, 65536):
            yield stream.write(data[::-1][start : start + 65536])
        stream.close()
        yield stream.wait_closed()

    async def client(port: int) -> tuple[bytes, bytes, Any]:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls.client_context, server_hostname="localhost"
        )
        writer.write(b"STARTTLS\n")
        await writer.drain()
        await writer.start_tls(tls.client_context, server_hostname=INNER_NAMES[0])
        peer_cert = writer.get_extra_info("ssl_object").getpeercert()
        writer.write(b"%d\n" % len(payload) + payload)
        await writer.drain()
        digest = await reader.readline()
        back = await reader.readexactly(len(payload))
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass  # our side closed first
        return digest, back, peer_cert

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0, ssl=tls.server_context)
        try:
            return (yield tasklets.to_thread(asyncio.run, client(server.port)))
        finally:
            server.close()
            yield server.wait_closed()

    digest, back, peer_cert = run(main, timeout=60.0)
    assert peer_cert["subjectAltName"] == (("DNS", INNER_NAMES[0]),)
    assert digest == hashlib.sha256(payload).hexdigest().encode() + b"\n"
    assert back == payload[::-1]


# -- records that reading makes ---------------------------------------------------------------------------


def _asking_for_client_certificates(tls: TLSMaterial) -> TLSMaterial:
    """A server that may ask for the client's certificate after the handshake, and a client that has one."""
    client_context = ssl.create_default_context()
    tls.ca.configure_trust(client_context)
    tls.ca.issue_cert("client.example").configure_cert(client_context)
    client_context.post_handshake_auth = True
    server_context = _server_context(tls.ca.issue_cert("localhost", "127.0.0.1"))
    tls.ca.configure_trust(server_context)
    server_context.verify_mode = ssl.CERT_OPTIONAL
    server_context.post_handshake_auth = True
    return TLSMaterial(tls.ca, server_context, client_context)


@pytest.mark.parametrize("depth", [0, 1], ids=["tls", "tls-in-tls"])
def test_records_made_while_reading_reach_the_peer(tls: TLSMaterial, depth: int) -> None:
    # TLS 1.3 post-handshake authentication: the server asks for the client's certificate
    # after the handshake; the client's answer (Certificate, CertificateVerify, Finished) is
    # made while it *reads* the request, and must go out through every session below.
    asking = _asking_for_client_certificates(tls)
    if depth:  # the inner session asks; the outer one is the usual
        inner = _server_context(tls.ca.issue_cert(INNER_NAMES[0]))
        tls.ca.configure_trust(inner)
        inner.verify_mode = ssl.CERT_OPTIONAL
        inner.post_handshake_auth = True
        material, inner_asking = TLSMaterial(tls.ca, tls.server_context, asking.client_context), [inner]
    else:
        material, inner_asking = asking, []

    def body(client: tasklets.Stream, server_side: tasklets.Stream) -> Any:
        assert server_side.ssl_object is not None and client.ssl_object is not None
        assert server_side.ssl_object.getpeercert() is None  # not asked for yet
        server_side.ssl_object.verify_client_post_handshake()
        yield server_side.write(b"hello")  # carries the CertificateRequest
        reading = server_side.read(100)
        assert (yield client.read_exactly(5)) == b"hello"
        assert client._tls is not None and not client._tls._outgoing.pending, "the answer was not sent"
        yield client.write(b"after")  # only now does the server's read end: the answer came first
        assert (yield reading) == b"after"
        assert server_side.ssl_object.getpeercert()["subjectAltName"] == (("DNS", "client.example"),)

    _with_nested_pair(material, inner_asking, body, depth=depth)


def test_records_made_while_reading_go_out_past_a_full_write_queue(tls: TLSMaterial) -> None:
    # They used to be written with write(), which refuses bytes while the queue is above its
    # high-water mark: the answer was dropped, and the session broken.
    size = 8 * 1024 * 1024

    def body(client: tasklets.Stream, server_side: tasklets.Stream) -> Any:
        assert server_side.ssl_object is not None
        server_side.ssl_object.verify_client_post_handshake()
        yield server_side.write(b"hello")
        draining = client.write(b"q" * size)  # more than the kernel takes: the queue stays full
        assert not draining.done()
        assert (yield client.read_exactly(5)) == b"hello"  # the answer is made here, behind the queue
        assert (yield server_side.read_exactly(size)) == b"q" * size
        yield draining
        yield client.write(b"after")
        assert (yield server_side.read_exactly(5)) == b"after"
        assert server_side.ssl_object.getpeercert()["subjectAltName"] == (("DNS", "client.example"),)

    _with_nested_pair(_asking_for_client_certificates(tls), [], body, depth=0, high_water=1024)
