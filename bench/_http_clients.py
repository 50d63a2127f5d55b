"""The clients that ``http_client.py`` measures, each run in a fresh interpreter (its ``--child``).

Each runner takes ``(url, expected, requests, warmup, concurrency)``: it runs
a first batch of ``warmup`` requests (making the client and opening its
connections: the first client of a fresh process, as a user meets it), then
``requests`` more (the steady state), ``concurrency`` at a time, checks every
response (status 200 and a body equal to ``expected``) and returns a
:class:`Sample`: wall and CPU time, requests, body bytes and the process's
minor page faults over each batch. ``USE["body"] = "decode"`` has every caller decode
every body too.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["RUNNERS", "USE", "BadResponse", "Sample"]


class BadResponse(AssertionError):
    """A response whose status or body is not what the server holds."""


#: What the caller does with each body besides checking it: "" (nothing) or "decode" (``bytes.decode``,
#: which makes a second object as large as the body while the body is alive, as a user's code would).
USE = {"body": ""}


def _check(status: int, body: bytes, expected: bytes) -> None:
    if status != 200 or body != expected:
        raise BadResponse(f"status {status}, {len(body)} bytes (expected 200, {len(expected)} bytes)")
    if USE["body"] == "decode":
        body.decode("latin-1")


@dataclass
class Sample:
    """The steady batch: wall and CPU seconds, requests, body bytes and minor page faults; and the first batch's."""

    seconds: float
    cpu: float
    requests: int
    nbytes: int
    faults: int = 0
    first_seconds: float = 0.0  # the first batch: from making the client to its last response
    first_cpu: float = 0.0
    first_requests: int = 0
    first_faults: int = 0

    def add_first(self, first: Sample) -> Sample:
        """This sample, with ``first`` as its first batch."""
        self.first_seconds, self.first_cpu = first.seconds, first.cpu
        self.first_requests, self.first_faults = first.requests, first.faults
        return self


def _faults() -> int:
    """Minor page faults of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class _Clock:
    """Wall, CPU and page faults from ``start()`` to ``stop()``."""

    def start(self) -> None:
        self.faults, self.cpu, self.wall = _faults(), time.process_time(), time.perf_counter()

    def stop(self, requests: int, nbytes: int) -> Sample:
        wall, cpu, faults = time.perf_counter(), time.process_time(), _faults()
        return Sample(wall - self.wall, cpu - self.cpu, requests, nbytes, faults - self.faults)


def _timed(run_batch: Callable[[int], int], warmup: int, requests: int, first: _Clock) -> Sample:
    """Time the first batch (from ``first``'s start) and the steady one (for the blocking clients)."""
    first_sample = first.stop(warmup, run_batch(warmup))
    clock = _Clock()
    clock.start()
    nbytes = run_batch(requests)
    return clock.stop(requests, nbytes).add_first(first_sample)


def run_tasklets(
    url: str, expected: bytes, requests: int, warmup: int, concurrency: int, *, mapped: bool, verbs: bool = False
) -> Sample:
    """tasklets.http.Client; C worker tasks, or map_unordered over one task per request.

    ``urlopen`` then ``yield from response.read()``; with ``verbs``, ``client.get`` then ``yield response.body()``.
    """
    import tasklets
    from tasklets.http import Client, PoolLimits

    first = _Clock()
    first.start()
    client = Client(limits=PoolLimits(max_connections=concurrency, max_per_host=concurrency), proxies=None)

    def fetch() -> Any:
        if verbs:
            response = yield client.get(url)
            body = yield response.body()
        else:
            response = yield client.urlopen(url)
            body = yield from response.read()
        _check(response.status, body, expected)
        return len(body)

    def workers(count: int) -> Any:
        left = [count]

        def worker() -> Any:
            total = 0
            while left[0] > 0:
                left[0] -= 1
                total += yield from fetch()
            return total

        totals = yield [tasklets.spawn(worker) for _ in range(concurrency)]
        return sum(totals)

    def mapped_batch(count: int) -> Any:
        total = 0
        for signal in tasklets.map_unordered(lambda _: tasklets.spawn(fetch), range(count), limit=concurrency):
            total += yield signal
        return total

    batch = mapped_batch if mapped else workers

    def main() -> Any:
        first_sample = first.stop(warmup, (yield from batch(warmup)))
        clock = _Clock()
        clock.start()
        nbytes = yield from batch(requests)
        return clock.stop(requests, nbytes).add_first(first_sample)

    try:
        sample: Sample = tasklets.run(main)
    finally:
        client.close()
    return sample


def run_aiohttp(url: str, expected: bytes, requests: int, warmup: int, concurrency: int) -> Sample:
    """aiohttp.ClientSession with TCPConnector(limit=C), C worker coroutines, asyncio's loop."""
    import asyncio

    import aiohttp

    first = _Clock()
    first.start()

    async def main() -> Sample:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def batch(count: int) -> int:
                left = [count]

                async def worker() -> int:
                    total = 0
                    while left[0] > 0:
                        left[0] -= 1
                        async with session.get(url) as response:
                            body = await response.read()
                            _check(response.status, body, expected)
                            total += len(body)
                    return total

                return sum(await asyncio.gather(*(worker() for _ in range(concurrency))))

            first_sample = first.stop(warmup, await batch(warmup))
            clock = _Clock()
            clock.start()
            nbytes = await batch(requests)
            return clock.stop(requests, nbytes).add_first(first_sample)

    return asyncio.run(main())


def run_httpx(url: str, expected: bytes, requests: int, warmup: int, concurrency: int) -> Sample:
    """httpx.AsyncClient with Limits(C, C), C worker coroutines, asyncio's loop."""
    import asyncio

    import httpx

    first = _Clock()
    first.start()

    async def main() -> Sample:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, trust_env=False) as client:

            async def batch(count: int) -> int:
                left = [count]

                async def worker() -> int:
                    total = 0
                    while left[0] > 0:
                        left[0] -= 1
                        response = await client.get(url)
                        body = response.content
                        _check(response.status_code, body, expected)
                        total += len(body)
                    return total

                return sum(await asyncio.gather(*(worker() for _ in range(concurrency))))

            first_sample = first.stop(warmup, await batch(warmup))
            clock = _Clock()
            clock.start()
            nbytes = await batch(requests)
            return clock.stop(requests, nbytes).add_first(first_sample)

    return asyncio.run(main())


def run_urllib_threads(url: str, expected: bytes, requests: int, warmup: int, concurrency: int) -> Sample:
    """urllib.request.urlopen in a C-thread ThreadPoolExecutor (a new connection per request)."""
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    first = _Clock()
    first.start()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy

    def one(_: int) -> int:
        with opener.open(url, timeout=60) as response:
            body = response.read()
            _check(response.status, body, expected)
            return len(body)

    with ThreadPoolExecutor(concurrency) as pool:
        return _timed(lambda count: sum(pool.map(one, range(count))), warmup, requests, first)


def run_threads_keepalive(url: str, expected: bytes, requests: int, warmup: int, concurrency: int) -> Sample:
    """http.client in a C-thread ThreadPoolExecutor, one persistent connection per thread."""
    import http.client
    import threading
    import urllib.parse
    from concurrent.futures import ThreadPoolExecutor

    first = _Clock()
    first.start()
    parts = urllib.parse.urlsplit(url)
    local = threading.local()

    def one(_: int) -> int:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        conn.request("GET", parts.path)
        response = conn.getresponse()
        body = response.read()
        _check(response.status, body, expected)
        return len(body)

    with ThreadPoolExecutor(concurrency) as pool:
        return _timed(lambda count: sum(pool.map(one, range(count))), warmup, requests, first)


def run_raw_floor(url: str, expected: bytes, requests: int, warmup: int, concurrency: int) -> Sample:
    """The floor: raw keep-alive sockets on epoll, recv_into a reused buffer, no HTTP library."""
    import re
    import select
    import socket
    import urllib.parse

    first = _Clock()
    first.start()
    parts = urllib.parse.urlsplit(url)
    request = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    content_length = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
    size = len(expected)
    poller = select.epoll()
    conns: dict[int, tuple[socket.socket, bytearray, memoryview]] = {}
    for _ in range(concurrency):
        sock = socket.create_connection((parts.hostname, parts.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        buf = bytearray(size + 4096)
        conns[sock.fileno()] = (sock, buf, memoryview(buf))
        poller.register(sock.fileno(), select.EPOLLIN)

    def batch(count: int) -> int:
        left = count
        done = 0
        got = dict.fromkeys(conns, 0)
        wanted: dict[int, int] = {}
        for fd, (sock, _, _) in conns.items():
            if left:
                left -= 1
                sock.send(request)
            else:
                del got[fd]
        while done < count:
            for fd, _mask in poller.poll():
                sock, buf, view = conns[fd]
                n = sock.recv_into(view[got[fd] :])
                if not n:
                    raise RuntimeError("nginx closed a kept-alive connection")
                have = got[fd] = got[fd] + n
                if fd not in wanted:
                    end = buf.find(b"\r\n\r\n", 0, have)
                    if end < 0:
                        continue
                    match = content_length.search(buf, 0, end + 2)
                    if match is None or int(match.group(1)) != size or buf[9:12] != b"200":
                        raise RuntimeError(f"unexpected response head: {bytes(buf[:end])!r}")
                    wanted[fd] = end + 4 + size
                total = wanted[fd]
                if have < total:
                    continue
                body = bytes(view[total - size : total])
                if have > total:
                    raise RuntimeError("the body is longer than its Content-Length")
                _check(200, body, expected)
                done += 1
                got[fd] = 0
                del wanted[fd]
                if left:
                    left -= 1
                    sock.send(request)
        return count * size

    try:
        return _timed(batch, warmup, requests, first)
    finally:
        poller.close()
        for sock, _, _ in conns.values():
            sock.close()


RUNNERS: dict[str, Callable[[str, bytes, int, int, int], Sample]] = {
    "tasklets": lambda *a: run_tasklets(*a, mapped=False),
    "tasklets-map": lambda *a: run_tasklets(*a, mapped=True),
    "tasklets-verbs": lambda *a: run_tasklets(*a, mapped=False, verbs=True),
    "tasklets-baseline": lambda *a: run_tasklets(*a, mapped=False),
    "aiohttp": run_aiohttp,
    "httpx": run_httpx,
    "urllib-threads": run_urllib_threads,
    "threads-keepalive": run_threads_keepalive,
    "raw-floor": run_raw_floor,
}
