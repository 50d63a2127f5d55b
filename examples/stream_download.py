"""Stream a large HTTP response chunk by chunk, in constant memory.

``response.read()`` is an ordinary generator of chunk futures. Under
``yield from`` it collects the whole body; iterated with ``for`` it hands out
one future per chunk, and each chunk can be processed (hashed, written to a
file) and dropped before the next arrives. A local ``http.server`` serves a
16 MiB body on 127.0.0.1 (no network needed).

Run it:  python examples/stream_download.py
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import tempfile
import threading
from collections.abc import Iterator

import tasklets

SIZE = 16 * 1024 * 1024
BLOCK = bytes(range(256)) * 256  # 64 KiB


class BigHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(SIZE))
        self.end_headers()
        try:
            for _ in range(SIZE // len(BLOCK)):
                self.wfile.write(BLOCK)
        except (ConnectionResetError, BrokenPipeError):
            pass  # the client stopped reading (see too_big below)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BigHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/big.bin"
    finally:
        server.shutdown()
        server.server_close()


@tasklets.task
def download(url: str, path: str):
    """Save ``url`` to ``path`` chunk by chunk; return (bytes, sha256, biggest chunk)."""
    response = yield tasklets.urlopen_async(url, timeout=10)
    print(f"{response.status} {response.reason}, Content-Length: {response.headers['Content-Length']}")
    digest = hashlib.sha256()
    total = biggest = 0
    with response, open(path, "wb") as out:
        for wait_for_chunk in response.read():
            chunk = yield wait_for_chunk     # b"" may come last
            digest.update(chunk)
            out.write(chunk)                 # a blocking write of a small chunk; see to_thread for slow disks
            total += len(chunk)
            biggest = max(biggest, len(chunk))
    return total, digest.hexdigest(), biggest


@tasklets.task
def too_big(url: str):
    """Under ``yield from``, ``read(limit=...)`` refuses a body larger than the limit."""
    response = yield tasklets.urlopen_async(url, timeout=10)
    try:
        yield from response.read(limit=1024 * 1024)
    except tasklets.BodyTooLarge as exc:
        return type(exc).__name__


def main() -> None:
    expected = hashlib.sha256(BLOCK * (SIZE // len(BLOCK))).hexdigest()
    with serve() as url, tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.bin")
        total, sha, biggest = download(url, path).result(timeout=30)
        print(f"streamed {total} bytes to disk, never more than {biggest} bytes in memory at once")
        print("sha256 matches:", sha == expected, "- file size:", os.path.getsize(path))
        print("read(limit=1 MiB):", too_big(url).result(timeout=30))


if __name__ == "__main__":
    main()
