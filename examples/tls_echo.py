"""TLS: an echo server and client over TLS, and an HTTPS request, with a throwaway CA.

Certificates come from ``trustme`` (``pip install trustme``; it is in the
``test`` extra), which makes a certificate authority for this run only, so
nothing needs a network or a real certificate. The server gets a certificate
for ``localhost``; the clients trust the CA and verify the certificate and
the host name, as they would on the Internet (verification is on by default).

Run it:  python examples/tls_echo.py
"""

# requires: trustme

from __future__ import annotations

import contextlib
import http.server
import ssl
import threading
from collections.abc import Iterator

import trustme

import tasklets


def make_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context with a certificate for localhost, client context trusting its CA)."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()  # verification and host-name check on
    ca.configure_trust(client_context)
    return server_context, client_context


def echo(stream: tasklets.Stream):
    """Server handler: echo every chunk back until the client closes."""
    for wait_for_chunk in stream.chunks():
        chunk = yield wait_for_chunk
        if chunk:
            yield stream.write(chunk)


@tasklets.task
def tls_echo(server_context: ssl.SSLContext, client_context: ssl.SSLContext):
    server = yield tasklets.start_server(echo, "127.0.0.1", 0, ssl=server_context)
    with server:
        stream = yield tasklets.open_connection(
            "127.0.0.1", server.port, ssl=client_context, server_hostname="localhost", timeout=5
        )
        with stream:
            print("TLS client: connected with", stream.ssl_object.version())
            yield stream.write(b"hello over TLS")
            print("TLS client: echoed", (yield stream.read_exactly(14)))

        # A client that does not trust the CA fails the handshake, clearly.
        try:
            yield tasklets.open_connection("127.0.0.1", server.port, ssl=True, server_hostname="localhost", timeout=5)
        except tasklets.TLSCertificateError as exc:
            print("untrusted CA:", type(exc).__name__)
    yield server.wait_closed()


@contextlib.contextmanager
def https_server(context: ssl.SSLContext) -> Iterator[str]:
    """A standard-library HTTPS server on 127.0.0.1."""

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"hello over HTTPS"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@tasklets.task
def https_get(url: str, client_context: ssl.SSLContext):
    response = yield tasklets.urlopen_async(url, context=client_context, timeout=5)
    body = yield from response.read()
    return response.status, body


def main() -> None:
    server_context, client_context = make_contexts()
    tasklets.run(tls_echo, server_context, client_context)
    with https_server(server_context) as url:
        status, body = https_get(url, client_context).result(timeout=10)
        print(f"HTTPS: {status} {body!r}")


if __name__ == "__main__":
    main()
