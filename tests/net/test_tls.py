"""TLS: verification failures, SNI, ALPN, clean and unclean shutdowns, handshake timeouts."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import Any

import pytest

import tasklets
from tasklets import Future
from tasklets.testing import VirtualClock

from ._support import RawPeer, TLSMaterial, open_pair, read_all, run


def _echo_once(stream: tasklets.Stream) -> Any:
    data = yield stream.read()
    yield stream.write(data)


def _expect_handshake_failure(server_context: ssl.SSLContext, client_context: Any, **options: Any) -> BaseException:
    def main() -> Any:
        server = yield tasklets.start_server(_echo_once, "127.0.0.1", 0, ssl=server_context)
        try:
            with pytest.raises(tasklets.TLSHandshakeError) as caught:
                yield tasklets.open_connection("127.0.0.1", server.port, ssl=client_context, **options)
            return caught.value
        finally:
            server.close()
            yield server.wait_closed()

    return run(main)


def test_wrong_host_name(tls: TLSMaterial, other_host_server_context: ssl.SSLContext) -> None:
    error = _expect_handshake_failure(other_host_server_context, tls.client_context, server_hostname="localhost")
    assert isinstance(error, tasklets.TLSCertificateError)
    assert isinstance(error.__cause__, ssl.SSLCertVerificationError)
    assert "localhost" in str(error) or "match" in str(error).lower()


def test_untrusted_ca(tls: TLSMaterial, untrusted_server_context: ssl.SSLContext) -> None:
    error = _expect_handshake_failure(untrusted_server_context, tls.client_context, server_hostname="localhost")
    assert isinstance(error, tasklets.TLSCertificateError)
    assert "certificate" in str(error)


def test_expired_certificate(tls: TLSMaterial, expired_server_context: ssl.SSLContext) -> None:
    error = _expect_handshake_failure(expired_server_context, tls.client_context, server_hostname="localhost")
    assert isinstance(error, tasklets.TLSCertificateError)
    assert "expired" in str(error)


def test_ssl_true_verifies_against_the_system_store(tls: TLSMaterial) -> None:
    # trustme's CA is not in the system store: the default context must refuse it.
    error = _expect_handshake_failure(tls.server_context, True, server_hostname="localhost")
    assert isinstance(error, tasklets.TLSCertificateError)


def test_the_host_name_is_checked_by_default(tls: TLSMaterial) -> None:
    # The certificate names localhost and 127.0.0.1; connecting to 127.0.0.1
    # without server_hostname checks the IP address, which matches.
    def main() -> Any:
        server = yield tasklets.start_server(_echo_once, "127.0.0.1", 0, ssl=tls.server_context)
        stream = yield tasklets.open_connection("127.0.0.1", server.port, ssl=tls.client_context)
        yield stream.write(b"ok")
        assert (yield stream.read_exactly(2)) == b"ok"
        stream.close()
        server.close()
        yield server.wait_closed()

    run(main)
    error = _expect_handshake_failure(tls.server_context, tls.client_context, server_hostname="example.org")
    assert isinstance(error, tasklets.TLSCertificateError)


def test_a_peer_that_does_not_speak_tls() -> None:
    def script(conn: socket.socket) -> None:
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    peer = RawPeer().serve(script)

    def main() -> Any:
        with pytest.raises(tasklets.TLSHandshakeError) as caught:
            yield tasklets.open_connection("127.0.0.1", peer.port, ssl=True, server_hostname="localhost")
        assert not isinstance(caught.value, tasklets.TLSCertificateError)
        assert caught.value.port == peer.port
        yield peer.done

    try:
        run(main)
    finally:
        peer.close()


def test_a_peer_that_closes_during_the_handshake() -> None:
    def script(conn: socket.socket) -> None:
        conn.recv(1024)

    peer = RawPeer().serve(script)

    def main() -> Any:
        with pytest.raises(tasklets.TLSHandshakeError):
            yield tasklets.open_connection("127.0.0.1", peer.port, ssl=True, server_hostname="localhost")
        yield peer.done

    try:
        run(main)
    finally:
        peer.close()


def test_server_survives_failed_handshakes(tls: TLSMaterial, untrusted_server_context: ssl.SSLContext) -> None:
    def main() -> Any:
        server = yield tasklets.start_server(_echo_once, "127.0.0.1", 0, ssl=tls.server_context)
        # A client that does not trust the server aborts the handshake...
        untrusting = ssl.create_default_context()
        with pytest.raises(tasklets.TLSCertificateError):
            yield tasklets.open_connection("127.0.0.1", server.port, ssl=untrusting, server_hostname="localhost")
        # ...a plain client sends garbage...
        plain = yield tasklets.open_connection("127.0.0.1", server.port)
        yield plain.write(b"GET / HTTP/1.0\r\n\r\n")
        yield from read_all(plain)  # the server answers with an alert, or nothing, and closes
        plain.close()
        # ...and the server still serves.
        stream = yield tasklets.open_connection(
            "127.0.0.1", server.port, ssl=tls.client_context, server_hostname="localhost"
        )
        yield stream.write(b"still here")
        assert (yield stream.read_exactly(10)) == b"still here"
        stream.close()
        server.close()
        yield server.wait_closed()

    run(main)


def test_server_handshake_timeout(tls: TLSMaterial) -> None:
    def main() -> Any:
        server = yield tasklets.start_server(
            _echo_once, "127.0.0.1", 0, ssl=tls.server_context, ssl_handshake_timeout=0.05
        )
        silent = yield tasklets.open_connection("127.0.0.1", server.port)  # never sends a ClientHello
        assert (yield silent.read()) == b""  # the server gave up on us
        silent.close()
        server.close()
        yield server.wait_closed()

    run(main)


def test_cancelling_a_handshake_leaves_nothing_behind(tls: TLSMaterial) -> None:
    stop: Future[None] = Future()
    hello: Future[bytes] = Future()

    def script(conn: socket.socket) -> None:
        hello.set_result(conn.recv(1024))
        stop.result(10)

    peer = RawPeer().serve(script)

    def main() -> Any:
        connecting = tasklets.open_connection(
            "127.0.0.1", peer.port, ssl=tls.client_context, server_hostname="localhost"
        )
        assert (yield hello)[:1] == b"\x16"  # a TLS handshake record: the client waits for the answer
        connecting.cancel()
        with pytest.raises(tasklets.CancelledError):
            yield connecting
        stop.set_result(None)
        yield peer.done

    try:
        run(main)
    finally:
        peer.close()


def test_sni_and_alpn(tls: TLSMaterial, ca: Any) -> None:
    seen: list[str | None] = []
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "sni.example").configure_cert(server_context)
    server_context.set_alpn_protocols(["h2", "http/1.1"])
    server_context.sni_callback = lambda sslobj, name, context: seen.append(name)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    client_context.set_alpn_protocols(["http/1.1"])
    protocols: list[str | None] = []

    def handler(stream: tasklets.Stream) -> Any:
        protocols.append(stream.alpn_protocol)
        yield stream.write(b"hi")

    def main() -> Any:
        server = yield tasklets.start_server(handler, "127.0.0.1", 0, ssl=server_context)
        stream = yield tasklets.open_connection(
            "127.0.0.1", server.port, ssl=client_context, server_hostname="sni.example"
        )
        assert stream.alpn_protocol == "http/1.1"
        assert (yield stream.read_exactly(2)) == b"hi"
        stream.close()
        server.close()
        yield server.wait_closed()

    run(main)
    assert seen == ["sni.example"]
    assert protocols == ["http/1.1"]


def _tls_peer(tls: TLSMaterial, script: Any) -> RawPeer:
    """A raw peer that speaks TLS through a blocking ``ssl.SSLSocket``."""

    def wrapped(conn: socket.socket) -> Any:
        with tls.server_context.wrap_socket(conn, server_side=True) as tls_conn:
            return script(tls_conn)

    return RawPeer().serve(wrapped)


def test_clean_shutdown_by_the_peer(tls: TLSMaterial) -> None:
    def script(conn: ssl.SSLSocket) -> None:
        conn.sendall(b"goodbye")
        conn.unwrap()  # close_notify, and wait for ours

    peer = _tls_peer(tls, script)

    def main() -> Any:
        stream = yield tasklets.open_connection(
            "127.0.0.1", peer.port, ssl=tls.client_context, server_hostname="localhost"
        )
        assert (yield from read_all(stream)) == b"goodbye"
        assert not stream._tls.unclean_eof
        stream.close()  # sends our close_notify, which unwrap() waits for
        yield stream.wait_closed()
        yield peer.done

    try:
        run(main)
    finally:
        peer.close()


def test_unclean_shutdown_by_the_peer(tls: TLSMaterial) -> None:
    def script(conn: ssl.SSLSocket) -> None:
        conn.sendall(b"truncated")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\0" * 8)  # a plain TCP FIN, no close_notify
        socket.socket(fileno=conn.detach()).close()

    peer = _tls_peer(tls, script)

    def main() -> Any:
        stream = yield tasklets.open_connection(
            "127.0.0.1", peer.port, ssl=tls.client_context, server_hostname="localhost"
        )
        assert (yield from read_all(stream)) == b"truncated"
        assert stream._tls.unclean_eof
        stream.close()
        yield stream.wait_closed()
        yield peer.done

    try:
        run(main)
    finally:
        peer.close()


def _with_silent_tls_peer(body: Callable[[tasklets.Stream, Future[bytes], int], Any], clock: Any = None) -> None:
    """Run ``body(stream, hello, port)`` on a plain stream to a peer that never answers a TLS handshake.

    The peer accepts, takes the first bytes it gets (a ClientHello: ``hello``)
    and waits to be let go, which happens, with the stream aborted should the
    body have left it open, whatever the body did.
    """
    hello: Future[bytes] = Future()
    release: Future[None] = Future()

    def script(conn: socket.socket) -> None:
        hello.set_result(conn.recv(1024))
        release.result(10)

    peer = RawPeer().serve(script)

    def main() -> Any:
        stream = None
        try:
            stream = yield tasklets.open_connection("127.0.0.1", peer.port)
            yield from body(stream, hello, peer.port)
        finally:
            if stream is not None and not stream.is_closing():
                stream.abort()  # only when the body's checks failed: spare the next test the descriptor
            release.set_result(None)
            yield peer.done

    try:
        run(main, clock=clock)
    finally:
        peer.close()


def test_start_tls_times_out_and_aborts_the_stream(tls: TLSMaterial) -> None:
    def body(stream: tasklets.Stream, hello: Future[bytes], port: int) -> Any:
        started = stream.loop.time()
        with pytest.raises(tasklets.ConnectTimeout) as caught:
            yield stream.start_tls(tls.client_context, server_hostname="localhost", timeout=0.05)
        assert stream.loop.time() - started == pytest.approx(0.05)  # exactly its timeout: the peer is silent
        error = caught.value
        assert isinstance(error, TimeoutError)
        assert (error.host, error.port) == ("127.0.0.1", port)
        assert (yield hello)[:1] == b"\x16"  # the handshake had begun: the ClientHello went out
        # Half a handshake is on the wire: the stream was aborted, its socket closed.
        assert stream.is_closing()
        assert stream.wait_closed().done()
        assert stream.socket.fileno() == -1
        with pytest.raises(tasklets.StreamClosed):
            yield stream.write(b"plain text after a failed upgrade")

    _with_silent_tls_peer(body, clock=VirtualClock())


def test_start_tls_cut_short_by_with_timeout_leaves_nothing_behind(tls: TLSMaterial) -> None:
    def body(stream: tasklets.Stream, hello: Future[bytes], port: int) -> Any:
        # Its own timeout is long: the timer it arms must go with the cancelled handshake.
        upgrading = stream.start_tls(tls.client_context, server_hostname="localhost", timeout=30.0)
        with pytest.raises(tasklets.TimeoutError) as caught:
            yield tasklets.with_timeout(upgrading, 0.05)
        assert not isinstance(caught.value, tasklets.ConnectTimeout)  # with_timeout's, not start_tls's
        with pytest.raises(tasklets.CancelledError):
            yield upgrading
        assert (yield hello)[:1] == b"\x16"
        assert stream.wait_closed().done()
        assert stream.socket.fileno() == -1

    _with_silent_tls_peer(body)


def test_cancelling_start_tls_leaves_nothing_behind(tls: TLSMaterial) -> None:
    def body(stream: tasklets.Stream, hello: Future[bytes], port: int) -> Any:
        upgrading = stream.start_tls(tls.client_context, server_hostname="localhost", timeout=30.0)
        assert (yield hello)[:1] == b"\x16"  # the client now waits for the ServerHello
        assert not upgrading.done()
        upgrading.cancel()
        with pytest.raises(tasklets.CancelledError):
            yield upgrading
        assert stream.wait_closed().done()
        assert stream.socket.fileno() == -1

    _with_silent_tls_peer(body)


def test_start_tls_misuse_leaves_the_stream_usable(tls: TLSMaterial) -> None:
    # Starting TLS while a read waits is a programming error caught before any byte goes out:
    # the stream's state is intact, so unlike a failed handshake it must not cost the connection.
    def main() -> Any:
        pair = yield from open_pair("tls", tls)
        try:
            reading = pair.client.read(8)
            with pytest.raises(RuntimeError, match="while a read waits"):
                pair.client.start_tls(tls.client_context, server_hostname="localhost", timeout=5.0)
            assert not pair.client.is_closing(), "the refused start_tls aborted a working TLS stream"
            yield pair.server_side.write(b"still up")
            assert (yield reading) == b"still up"
        finally:
            yield from pair.close()

    run(main)
