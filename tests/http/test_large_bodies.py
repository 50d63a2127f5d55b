"""Large bodies read whole: received in place, and as cheap from the first request of a fresh process.

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
from collections.abc import Iterator
from typing import Any

import pytest
from _servers import HERE, ExternalServer, RawConnection, RawServer, fetch, pattern, run

import tasklets
from tasklets.http import Client, Response

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

SIZE = 1024 * 1024
COUNT = 40


def _read_in_a_fresh_process(url: str, mode: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "PYTHONMALLOC"))}
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


# -- received in place: no buffer beside the body, no second pass over it ---------------------------------


def test_a_large_body_read_whole_takes_its_array_and_its_copy_and_keeps_neither(server: ExternalServer) -> None:
    """The body is received into an array of its size and copied out once: nothing more, nothing kept after."""
    size = 4 * 1024 * 1024

    def main() -> Any:
        with Client(proxies=None) as client:
            yield from fetch(client, f"{server.url}/bytes/10")  # the pool and the connection are made now
            tracemalloc.start()
            try:
                response, body = yield from fetch(client, f"{server.url}/bytes/{size}?seed=1")
                peak = tracemalloc.get_traced_memory()[1]
                correct = body == pattern(size, seed=1)
                del response, body
                yield from fetch(client, f"{server.url}/bytes/10")  # the task lets go of the last future it waited on
                kept = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
            return correct, peak, kept

    correct, peak, kept = run(main)
    assert correct
    assert peak < 2.25 * size, f"{peak:,} bytes at the peak for a body of {size:,}"
    assert kept < size // 4, f"{kept:,} bytes kept after the body was dropped"  # a lent buffer was kept


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

    def read_all(response: Response) -> Any:
        return (yield from response.read())

    def main() -> Any:
        loop = tasklets.current_loop()
        response = yield client.urlopen(f"{server.url}/")
        reading = tasklets.spawn(read_all, response)
        stepped: tasklets.Future[None] = tasklets.Future()
        loop.call_soon(stepped.set_result, None)  # queued behind the reader's first step, which parks its read
        yield stepped
        parked.set()
        return (yield reading)

    with RawServer(script) as server:
        assert run(main) == body
