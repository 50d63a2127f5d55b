"""Large bodies read whole: received into reused buffers, and as cheap from the first request of a fresh process.

glibc's malloc keeps large blocks in mappings of their own, and returns its
heap's free top to the system, until it has seen a large mapped block freed
(see ``tasklets/http/_body_buffers.py``). Each test reads 1 MiB bodies in a
fresh interpreter (where that has not happened yet) and counts the minor
page faults per body: a body whose memory is faulted in anew costs 256 of
them, a body in memory the process already has, about none. Counts, not
times: they hold on a loaded machine.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from _servers import HERE, ExternalServer, RawConnection, RawServer, fetch, pattern, run

import tasklets
from tasklets.http import Client, Response
from tasklets.http._body_buffers import GRANULE, BodyBuffer, BodyBuffers

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

SIZE = 1024 * 1024
COUNT = 40


def _read_in_a_fresh_process(url: str, mode: str, tunables: str = "") -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "PYTHONMALLOC"))}
    if tunables:
        env["GLIBC_TUNABLES"] = tunables
    done = subprocess.run(
        [sys.executable, os.path.join(HERE, "_fresh_process_reader.py"), url, mode, str(COUNT)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def server(external_servers: dict[tuple[str, str], ExternalServer]) -> ExternalServer:
    return external_servers["uvicorn-httptools", "http"]


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(proxies=None) as made:
        yield made


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc on Linux")
@pytest.mark.parametrize("mode", ["whole", "whole-and-a-copy", "chunks"])
def test_large_bodies_read_in_a_fresh_process_fault_no_memory_in(server: ExternalServer, mode: str) -> None:
    # Without the allocator told: 480 faults per body with a copy, 160 chunk by chunk.
    result = _read_in_a_fresh_process(f"{server.url}/bytes/{SIZE}", mode)
    assert result["size"] == SIZE
    assert result["faults_per_body"] < 32, result


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc on Linux")
def test_the_receive_buffer_costs_no_fault_per_body_whatever_the_allocator_does(server: ExternalServer) -> None:
    # With its threshold fixed at 128 KiB, glibc maps every large block on its own and unmaps it when
    # freed: the body handed out faults its 256 pages in (305 per body in all), and a receive buffer made
    # per body would fault 256 more (553).
    result = _read_in_a_fresh_process(f"{server.url}/bytes/{SIZE}", "whole", "glibc.malloc.mmap_threshold=131072")
    assert result["size"] == SIZE
    assert result["faults_per_body"] < 256 + 128, result


# -- received in place: no buffer beside the body, no second pass over it ---------------------------------


def test_a_large_body_read_whole_takes_one_buffer_and_its_copy_and_the_pool_keeps_only_the_buffer(
    server: ExternalServer,
) -> None:
    """The body is received into a buffer and copied out once: nothing more; the buffer is kept for reuse,
    until the client is closed."""
    size = 4 * 1024 * 1024

    def main() -> Any:
        client = Client(proxies=None)
        try:
            yield from fetch(client, f"{server.url}/bytes/10")  # the pool and the connection are made now
            tracemalloc.start()
            try:
                response, body = yield from fetch(client, f"{server.url}/bytes/{size}?seed=1")
                peak = tracemalloc.get_traced_memory()[1]
                correct = body == pattern(size, seed=1)
                del response, body
                yield from fetch(client, f"{server.url}/bytes/10")  # the task lets go of the last future it waited on
                kept = tracemalloc.get_traced_memory()[0]
                client.close()
                after_close = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
        finally:
            client.close()
        return correct, peak, kept, after_close

    correct, peak, kept, after_close = run(main)
    assert correct
    assert peak < 2.25 * size, f"{peak:,} bytes at the peak for a body of {size:,}"
    assert size <= kept < size + GRANULE + size // 4, f"{kept:,} bytes kept after the body was dropped"
    assert after_close < size // 4, f"{after_close:,} bytes kept after the client was closed"


class _Recording(BodyBuffers):
    """BodyBuffers that remember what they lent and what came back."""

    def __init__(self) -> None:
        super().__init__()
        self.lent: list[BodyBuffer] = []
        self.returned: list[BodyBuffer] = []

    def make(self, size: int) -> BodyBuffer:
        buffer = super().make(size)
        self.lent.append(buffer)
        return buffer

    def give_back(self, buffer: BodyBuffer) -> None:
        self.returned.append(buffer)
        super().give_back(buffer)


def _record(client: Client) -> _Recording:
    """Have the client's pool on this loop lend recording buffers (before it opens a connection)."""
    recording = _Recording()
    client._pool(tasklets.current_loop()).body_buffers = recording
    return recording


def test_consecutive_large_bodies_are_received_into_one_buffer(server: ExternalServer, client: Client) -> None:
    def main() -> Any:
        recording = _record(client)
        bodies = []
        for seed in (1, 2, 3):
            _, body = yield from fetch(client, f"{server.url}/bytes/{SIZE}?seed={seed}")
            bodies.append(body == pattern(SIZE, seed=seed))
        kept = recording.idle_bytes
        client.close()
        return bodies, recording, kept

    bodies, recording, kept = run(main)
    assert bodies == [True, True, True]  # a reused buffer leaks nothing of one body into the next
    assert len(recording.lent) == 3 and len({id(b) for b in recording.lent}) == 1, recording.lent
    assert kept == recording.lent[0].size
    assert recording.idle_bytes == 0  # the client's close dropped it


def test_a_buffer_whose_body_broke_off_is_not_lent_again(client: Client) -> None:
    """A read may still be under way into the buffer of a failed body: it is left to the collector."""
    size = 1024 * 1024

    def script(conn: RawConnection) -> None:
        conn.recv_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + pattern(size)[:300_000])
        conn.close()

    def main() -> Any:
        recording = _record(client)
        response = yield client.urlopen(f"{raw.url}/")
        try:
            yield from response.read()
        except Exception as exc:
            return exc, recording
        return None, recording

    with RawServer(script) as raw:
        error, recording = run(main)
    assert error is not None
    assert len(recording.lent) == 1 and not recording.returned
    assert recording.idle_bytes == 0


def _reader_parked(response: Response) -> Generator[Any, Any, tasklets.Task[bytes]]:
    """A task reading ``response`` whole, once its first step has parked its read (the rest has not come)."""

    def read_all() -> Any:
        return (yield from response.read())

    reading = tasklets.spawn(read_all)
    stepped: tasklets.Future[None] = tasklets.Future()
    tasklets.current_loop().call_soon(stepped.set_result, None)  # queued behind the reader's first step
    yield stepped
    return reading


def test_a_buffer_whose_read_was_cancelled_is_not_lent_again(client: Client) -> None:
    """Cancelled while the stream waits to receive into it, the buffer is never given back."""
    size = 1024 * 1024
    parked = threading.Event()

    def script(conn: RawConnection) -> None:
        conn.recv_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + pattern(size)[:100_000])
        parked.wait(10)
        conn.hold()

    def main() -> Any:
        recording = _record(client)
        response = yield client.urlopen(f"{raw.url}/")
        reading = yield from _reader_parked(response)
        reading.cancel()
        parked.set()
        try:
            yield reading
        except tasklets.CancelledError:
            pass
        return recording

    with RawServer(script) as raw:
        recording = run(main)
    assert len(recording.lent) == 1 and not recording.returned
    assert recording.idle_bytes == 0


def test_a_body_whose_end_arrives_after_the_read_waited(client: Client) -> None:
    """The read that completes the body is called back by the stream, which still holds its slice of the buffer."""
    size = 1024 * 1024
    body = pattern(size, seed=3)
    parked = threading.Event()

    def script(conn: RawConnection) -> None:
        conn.recv_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body[:100_000])
        parked.wait(10)  # the client's read of the rest waits for readiness now
        conn.send(body[100_000:])

    def main() -> Any:
        response = yield client.urlopen(f"{server.url}/")
        reading = yield from _reader_parked(response)
        parked.set()
        return (yield reading)

    with RawServer(script) as server:
        assert run(main) == body
