"""HTTP client benchmark (issue 4): tasklets.http against aiohttp, httpx and urllib in threads.

Usage::

    python bench/http_client.py              # the full run (5 rounds; a few minutes)
    python bench/http_client.py --quick      # about a minute (3 rounds, fewer requests)
    python bench/http_client.py --profile    # then cProfile the tasklets client on both files
    python bench/http_client.py --clients tasklets,aiohttp --rounds 7
    python bench/http_client.py --tasklets-from /path/to/tasklets   # measure another copy of the package

What it measures
----------------
A private nginx (``_nginx.py``: one process, ``127.0.0.1``, keep-alive up to
100,000 requests per connection, no access log) serves two files made for
the run, of 1 KiB and 1 MiB. Every client fetches one file at concurrency 64
through its keep-alive pool:

* **tasklets**: ``tasklets.http.Client`` (64 connections), 64 worker tasks
  (the same shape as the peers'); ``tasklets-map`` is the README's idiom,
  ``map_unordered(..., limit=64)`` over one spawned task per request.
* **aiohttp**: ``ClientSession`` with ``TCPConnector(limit=64)``, 64 worker
  coroutines, on asyncio's default loop.
* **httpx**: ``httpx.AsyncClient`` with ``Limits(64, 64)``, 64 workers, on asyncio.
* **urllib threads**: ``urllib.request`` in a 64-thread ``ThreadPoolExecutor``:
  the blocking code tasklets is meant to replace (the "kicker" baseline).
  urllib opens a new connection per request (it sends ``Connection:
  close``); ``threads keep-alive`` (``http.client``, one persistent
  connection per thread) is shown for reference, without a target.
* **raw sockets (floor)**: not an HTTP client but the least any Python client
  can do here: 64 keep-alive sockets on one ``epoll``, each response read with
  ``recv_into`` into a buffer reused for every response of its connection,
  the head only searched for its end and ``Content-Length``, the body
  copied out as ``bytes`` (what every client must hand over) and compared
  with the file. Its figures bound what any Python client can reach on this
  machine, with this nginx; shown for reference, without a target.

Cells: requests/s on the 1 KiB file, MB/s (10^6 bytes) on the 1 MiB file.
Every client runs in a fresh interpreter per sample; inside it, a warm-up
batch (128 requests) opens the connections, then the timed batch runs. Every
response must have status 200 and a body equal to the file (length and
content), or the sample fails: a broken client cannot look fast.

How it compares
---------------
The machine has 2 cores shared with other work, and flips between two
speeds. So the clients run interleaved, one sample each per round (the order
rotated every round), after one short unrecorded warm-up round; the verdicts
come from the **median of per-round ratios** tasklets / peer (higher is
better for tasklets here), shown with their range over rounds. The absolute
figures are medians over rounds, for scale. Client CPU time per request
(``time.process_time`` in the child, all threads) and nginx's CPU per request
(``/proc/<pid>/schedstat``, in nanoseconds, over the warm-up and the timed
batch) are shown too, with the median per-round ratio
of CPU per request, peer / tasklets (above 1: tasklets spends less). CPU per
request is much less sensitive to a busy machine than throughput; note that
when other work competes for the cores, a 64-thread client gets a larger
share of them than a one-thread event loop (the scheduler shares CPU between
threads, not processes), which flatters the thread pools' throughput.

Targets: tasklets req/s > aiohttp's on 1 KiB; tasklets MB/s >= aiohttp's on
1 MiB; tasklets >= 5x urllib threads (judged on both cells).

The children import tasklets from a snapshot of the package copied when the
run starts (``--no-snapshot`` to import ``src/`` as it is): others edit
``src/`` while benchmarks run, and all rounds must measure the same code.

Everything stays on 127.0.0.1, every sample is bounded in time
(``Config.sample_timeout``: a hung client fails the run with its stderr), and
nginx and every child are stopped on exit, errors and Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import importlib.util
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _nginx import Nginx, NginxUnavailable, die_with_parent, nginx_server, pattern_bytes  # noqa: E402

CONCURRENCY = 64
#: Requests of the untimed batch that opens the connections inside each sample.
WARMUP_REQUESTS = 2 * CONCURRENCY
SMALL, LARGE = "small.bin", "large.bin"
#: Set in the children's environment to the snapshot of tasklets they must import.
SNAPSHOT_ENV = "TASKLETS_BENCH_SNAPSHOT"
SIZES = {SMALL: 1024, LARGE: 1024 * 1024}

ALL_CLIENTS = ("tasklets", "tasklets-map", "aiohttp", "httpx", "urllib-threads", "threads-keepalive", "raw-floor")
LABELS = {
    "tasklets": "tasklets (64 workers)",
    "tasklets-map": "tasklets map_unordered",
    "aiohttp": "aiohttp (asyncio)",
    "httpx": "httpx (asyncio)",
    "urllib-threads": "urllib, 64 threads",
    "threads-keepalive": "http.client keep-alive, 64 thr",
    "raw-floor": "raw sockets (floor, reference)",
}
#: Clients so much slower than the others that they get fewer requests per sample, so that every
#: sample lasts about as long (the figures are rates, so they stay comparable): divisors per file.
SLOW_CLIENTS: dict[str, tuple[int, int]] = {"httpx": (20, 4), "urllib-threads": (2, 2)}


@dataclass
class Config:
    """How much to run; ``--quick`` and the full run differ only here."""

    rounds: int
    small_requests: int
    large_requests: int
    sample_timeout: float

    def requests(self, client: str, name: str) -> int:
        """Timed requests per sample for ``client`` on file ``name``."""
        small_div, large_div = SLOW_CLIENTS.get(client, (1, 1))
        if name == SMALL:
            return max(CONCURRENCY, self.small_requests // small_div)
        return max(CONCURRENCY, self.large_requests // large_div)


FULL = Config(rounds=5, small_requests=20_000, large_requests=500, sample_timeout=180.0)
QUICK = Config(rounds=3, small_requests=5_000, large_requests=300, sample_timeout=60.0)


# -- the clients (run in the child) --------------------------------------------------------------------


class BadResponse(AssertionError):
    """A response whose status or body is not what the server holds."""


def _check(status: int, body: bytes, expected: bytes) -> None:
    if status != 200 or body != expected:
        raise BadResponse(f"status {status}, {len(body)} bytes (expected 200, {len(expected)} bytes)")


@dataclass
class Sample:
    """One timed batch: wall and CPU seconds, requests and body bytes."""

    seconds: float
    cpu: float
    requests: int
    nbytes: int


def _timed(run_batch: Callable[[int], int], warmup: int, requests: int) -> Sample:
    """Run an untimed warm-up batch, then time ``requests`` (for the blocking clients)."""
    run_batch(warmup)
    cpu0, t0 = time.process_time(), time.perf_counter()
    nbytes = run_batch(requests)
    t1, cpu1 = time.perf_counter(), time.process_time()
    return Sample(t1 - t0, cpu1 - cpu0, requests, nbytes)


def run_tasklets(url: str, expected: bytes, requests: int, warmup: int, *, mapped: bool) -> Sample:
    """tasklets.http.Client; 64 worker tasks, or map_unordered over one task per request."""
    import tasklets
    from tasklets.http import Client, PoolLimits

    client = Client(limits=PoolLimits(max_connections=CONCURRENCY, max_per_host=CONCURRENCY), proxies=None)

    def fetch() -> Any:
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

        totals = yield [tasklets.spawn(worker) for _ in range(CONCURRENCY)]
        return sum(totals)

    def mapped_batch(count: int) -> Any:
        total = 0
        for signal in tasklets.map_unordered(lambda _: tasklets.spawn(fetch), range(count), limit=CONCURRENCY):
            total += yield signal
        return total

    batch = mapped_batch if mapped else workers

    def main() -> Any:
        yield from batch(warmup)
        cpu0, t0 = time.process_time(), time.perf_counter()
        nbytes = yield from batch(requests)
        t1, cpu1 = time.perf_counter(), time.process_time()
        return Sample(t1 - t0, cpu1 - cpu0, requests, nbytes)

    try:
        return tasklets.run(main)
    finally:
        client.close()


def run_aiohttp(url: str, expected: bytes, requests: int, warmup: int) -> Sample:
    """aiohttp.ClientSession with TCPConnector(limit=64), 64 worker coroutines, asyncio's loop."""
    import asyncio

    import aiohttp

    async def main() -> Sample:
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
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

                return sum(await asyncio.gather(*(worker() for _ in range(CONCURRENCY))))

            await batch(warmup)
            cpu0, t0 = time.process_time(), time.perf_counter()
            nbytes = await batch(requests)
            t1, cpu1 = time.perf_counter(), time.process_time()
            return Sample(t1 - t0, cpu1 - cpu0, requests, nbytes)

    return asyncio.run(main())


def run_httpx(url: str, expected: bytes, requests: int, warmup: int) -> Sample:
    """httpx.AsyncClient with Limits(64, 64), 64 worker coroutines, asyncio's loop."""
    import asyncio

    import httpx

    async def main() -> Sample:
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
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

                return sum(await asyncio.gather(*(worker() for _ in range(CONCURRENCY))))

            await batch(warmup)
            cpu0, t0 = time.process_time(), time.perf_counter()
            nbytes = await batch(requests)
            t1, cpu1 = time.perf_counter(), time.process_time()
            return Sample(t1 - t0, cpu1 - cpu0, requests, nbytes)

    return asyncio.run(main())


def run_urllib_threads(url: str, expected: bytes, requests: int, warmup: int) -> Sample:
    """urllib.request.urlopen in a 64-thread ThreadPoolExecutor (a new connection per request)."""
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy

    def one(_: int) -> int:
        with opener.open(url, timeout=60) as response:
            body = response.read()
            _check(response.status, body, expected)
            return len(body)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return _timed(lambda count: sum(pool.map(one, range(count))), warmup, requests)


def run_threads_keepalive(url: str, expected: bytes, requests: int, warmup: int) -> Sample:
    """http.client in a 64-thread ThreadPoolExecutor, one persistent connection per thread."""
    import http.client
    import threading
    import urllib.parse
    from concurrent.futures import ThreadPoolExecutor

    parts = urllib.parse.urlsplit(url)
    local = threading.local()

    def one(_: int) -> int:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        conn.request("GET", parts.path)
        response = conn.getresponse()
        body = response.read()
        _check(response.status, body, expected)
        return len(body)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return _timed(lambda count: sum(pool.map(one, range(count))), warmup, requests)


def run_raw_floor(url: str, expected: bytes, requests: int, warmup: int) -> Sample:
    """The floor: raw keep-alive sockets on epoll, recv_into a reused buffer, no HTTP library."""
    import re
    import select
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    request = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    content_length = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
    size = len(expected)
    poller = select.epoll()
    conns: dict[int, tuple[socket.socket, bytearray, memoryview]] = {}
    for _ in range(CONCURRENCY):
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
                if have > total or body != expected:
                    raise RuntimeError("the body differs from the file")
                done += 1
                got[fd] = 0
                del wanted[fd]
                if left:
                    left -= 1
                    sock.send(request)
        return count * size

    try:
        return _timed(batch, warmup, requests)
    finally:
        poller.close()
        for sock, _, _ in conns.values():
            sock.close()


RUNNERS: dict[str, Callable[[str, bytes, int, int], Sample]] = {
    "tasklets": lambda *a: run_tasklets(*a, mapped=False),
    "tasklets-map": lambda *a: run_tasklets(*a, mapped=True),
    "aiohttp": run_aiohttp,
    "httpx": run_httpx,
    "urllib-threads": run_urllib_threads,
    "threads-keepalive": run_threads_keepalive,
    "raw-floor": run_raw_floor,
}


def child_main(args: argparse.Namespace) -> None:
    """Run one sample in this (fresh) interpreter; print it as JSON on the last line."""
    snapshot = os.environ.get(SNAPSHOT_ENV)
    if snapshot and args.child.startswith("tasklets"):
        import tasklets

        if not tasklets.__file__ or not tasklets.__file__.startswith(snapshot):
            raise SystemExit(f"tasklets imported from {tasklets.__file__}, not from the snapshot {snapshot}")
    expected = pattern_bytes(args.size, seed=args.size)
    runner = RUNNERS[args.child]
    if args.profile_to:
        profiler = cProfile.Profile()
        profiler.enable()
        sample = runner(args.url, expected, args.requests, args.warmup)
        profiler.disable()
        profiler.dump_stats(args.profile_to)
    else:
        sample = runner(args.url, expected, args.requests, args.warmup)
    print(json.dumps(sample.__dict__), flush=True)


# -- the parent: nginx, interleaved rounds, tables ----------------------------------------------------


class SampleFailed(RuntimeError):
    """A child failed, timed out, or returned wrong bodies."""


@dataclass
class Bench:
    """What every sample needs: the server, the sizes, and the children's environment."""

    nginx: Nginx
    config: Config
    env: dict[str, str]

    def run_sample(
        self, client: str, name: str, requests: int, warmup: int = WARMUP_REQUESTS, profile_to: str = ""
    ) -> tuple[Sample, float]:
        """Run one client once in a fresh interpreter; the sample and nginx's CPU seconds per request served."""
        command = [
            sys.executable, str(Path(__file__).resolve()), "--child", client, "--url", self.nginx.url(name),
            "--size", str(SIZES[name]), "--requests", str(requests), "--warmup", str(warmup),
        ]  # fmt: skip
        if profile_to:
            command += ["--profile-to", profile_to]
        nginx_cpu0 = self.nginx.cpu_seconds()
        with subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            preexec_fn=die_with_parent,
        ) as process:
            try:
                out, err = process.communicate(timeout=self.config.sample_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
                raise SampleFailed(
                    f"{client} on {name} hung: no result within {self.config.sample_timeout:.0f} s\n{err[-3000:]}"
                ) from None
            except BaseException:  # Ctrl-C, ...: the child goes too
                process.kill()
                process.wait()
                raise
        nginx_cpu = self.nginx.cpu_seconds() - nginx_cpu0
        if process.returncode != 0:
            raise SampleFailed(f"{client} on {name} failed (exit {process.returncode}):\n{err[-3000:]}")
        sample = Sample(**json.loads(out.strip().splitlines()[-1]))
        if sample.requests != requests or sample.nbytes != requests * SIZES[name]:
            raise SampleFailed(f"{client} on {name}: {sample.nbytes} bytes for {sample.requests} requests")
        return sample, nginx_cpu / (requests + warmup)  # nginx served the warm-up too


def snapshot_tasklets(directory: Path, source: Path | None = None) -> Path:
    """Copy the tasklets package (as installed now) into ``directory``; return the path to put first.

    Other people edit ``src/`` while benchmarks run; without a snapshot, the
    rounds of one run could measure different code (or a half-saved file).

    Args:
        directory: where the copy goes (as ``directory/tasklets``).
        source: the package directory to copy (default: the installed one).
    """
    if source is None:
        spec = importlib.util.find_spec("tasklets")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("tasklets is not installed: python -m pip install -e .")
        source = Path(next(iter(spec.submodule_search_locations)))
    if not (source / "__init__.py").is_file():
        raise SystemExit(f"{source} is not the tasklets package directory")
    shutil.copytree(source, directory / "tasklets", ignore=shutil.ignore_patterns("__pycache__"))
    return directory


@dataclass
class Cell:
    """The samples of every client on one file, round by round."""

    name: str
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    nginx_cpu: dict[str, list[float]] = field(default_factory=dict)  # seconds per request

    def rate(self, sample: Sample) -> float:
        """Requests/s on the small file, MB/s (10^6 bytes) on the large one."""
        if self.name == SMALL:
            return sample.requests / sample.seconds
        return sample.nbytes / sample.seconds / 1e6

    def rates(self, client: str) -> list[float]:
        """The client's figure in every round."""
        return [self.rate(s) for s in self.samples[client]]


def progress(message: str) -> None:
    """A progress note on stderr (the tables go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(bench: Bench, name: str, clients: Sequence[str]) -> Cell:
    """Interleaved rounds of every client on file ``name``, after one short unrecorded warm-up round."""
    config = bench.config
    cell = Cell(name, {c: [] for c in clients}, {c: [] for c in clients})
    for client in clients:  # warm-up: imports into the page cache, nginx's open-file cache
        bench.run_sample(client, name, requests=CONCURRENCY, warmup=CONCURRENCY)
    for number in range(config.rounds):
        shift = number % len(clients)
        order = list(clients[shift:]) + list(clients[:shift])
        for client in order:
            sample, nginx_cpu = bench.run_sample(client, name, config.requests(client, name))
            cell.samples[client].append(sample)
            cell.nginx_cpu[client].append(nginx_cpu)
        figures = ", ".join(f"{c} {cell.rate(cell.samples[c][-1]):,.0f}" for c in clients)
        progress(f"{name} round {number + 1}/{config.rounds}: {figures}")
    return cell


@dataclass
class Verdict:
    """One target: the measure, the peer, the ratio (median [min-max]) and whether it passed."""

    measure: str
    peer: str
    ratio: float
    low: float
    high: float
    target: str
    passed: bool


def _ratios(cell: Cell, ours: str, theirs: str) -> list[float]:
    return [a / b for a, b in zip(cell.rates(ours), cell.rates(theirs), strict=True) if b]


TARGETS: dict[str, list[tuple[str, str, float, bool]]] = {
    # file: (ours, peer, threshold, strict) -- ours/peer must be > threshold (strict) or >= threshold
    SMALL: [("tasklets", "aiohttp", 1.0, True), ("tasklets", "urllib-threads", 5.0, False)],
    LARGE: [("tasklets", "aiohttp", 1.0, False), ("tasklets", "urllib-threads", 5.0, False)],
}


def report(cell: Cell, clients: Sequence[str], config: Config) -> list[Verdict]:
    """Print the table of one cell; return its verdicts."""
    small = cell.name == SMALL
    unit = "req/s" if small else "MB/s"
    title = "1 KiB GET: requests/s" if small else "1 MiB GET: MB/s"
    print(
        f"\n== {title}  (concurrency {CONCURRENCY}, keep-alive except urllib, {config.rounds} rounds, "
        f"fresh process per sample, every body verified)"
    )
    print(
        f"   {'client':<32} {'requests':>8} {unit:>9} {'CPU us/req':>11} {'nginx us/req':>12}   "
        f"{'tasklets/this [min-max]':<24} {'target':<7} {'verdict':<7}  CPU/req this/tasklets"
    )
    targets = {peer: (threshold, strict) for _, peer, threshold, strict in TARGETS[cell.name]}
    verdicts = []
    base = "tasklets" if "tasklets" in clients else None
    for client in clients:
        samples = cell.samples[client]
        rate = statistics.median(cell.rates(client))
        cpu_us = statistics.median(s.cpu / s.requests * 1e6 for s in samples)
        nginx_us = statistics.median(cell.nginx_cpu[client]) * 1e6
        ratio_text = target_text = verdict_text = cpu_text = ""
        if base and client != base:
            cpu_ratios = [
                (theirs.cpu / theirs.requests) / (ours.cpu / ours.requests)
                for ours, theirs in zip(cell.samples[base], samples, strict=True)
                if ours.cpu
            ]
            cpu_text = f"{statistics.median(cpu_ratios):.2f}" if cpu_ratios else ""
            values = _ratios(cell, base, client)
            med, low, high = statistics.median(values), min(values), max(values)
            ratio_text = f"{med:.2f} [{low:.2f}-{high:.2f}]"
            if client in targets:
                threshold, strict = targets[client]
                passed = med > threshold if strict else med >= threshold
                target_text = f"{'>' if strict else '>='} {threshold:.1f}"
                verdict_text = "PASS" if passed else "MISS"
                verdicts.append(Verdict(title, LABELS[client], med, low, high, target_text, passed))
        print(
            f"   {LABELS[client]:<32} {samples[0].requests:>8,} {rate:>9,.0f} {cpu_us:>11.1f} {nginx_us:>12.1f}   "
            f"{ratio_text:<24} {target_text:<7} {verdict_text:<7}  {cpu_text}",
            flush=True,
        )
    return verdicts


def summary(verdicts: Sequence[Verdict]) -> int:
    """Print every target and its verdict; return how many missed."""
    print("\n== Summary (tasklets / peer: median of per-round ratios [min-max]; higher is better)")
    missed = 0
    for v in verdicts:
        missed += not v.passed
        print(
            f"   {v.measure:<22} vs {v.peer:<24} {v.ratio:6.2f} [{v.low:.2f}-{v.high:.2f}]  "
            f"target {v.target:<6} {'PASS' if v.passed else 'MISS'}"
        )
    print(f"   {len(verdicts) - missed} PASS, {missed} MISS", flush=True)
    return missed


def profile(bench: Bench, names: Sequence[str]) -> None:
    """cProfile the tasklets client; print where its time goes, per request."""
    for name in names:
        requests = bench.config.requests("tasklets", name)
        with tempfile.NamedTemporaryFile(suffix=".prof", delete=False) as handle:
            path = handle.name
        try:
            bench.run_sample("tasklets", name, requests, profile_to=path)
            total = requests + WARMUP_REQUESTS
            print(
                f"\n== cProfile of the tasklets client, {name} ({SIZES[name]:,} bytes), "
                f"{total:,} requests (warm-up included); wall-clock times per request, inflated by the "
                "profiler\n   (socket.send includes being preempted by nginx, which its send wakes)"
            )
            stats = pstats.Stats(path)
            rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
            print(f"   {'tottime us/req':>14} {'cumtime us/req':>14} {'calls/req':>9}  function")
            for (filename, line, function), (_, ncalls, tottime, cumtime, _) in rows[:25]:
                where = _short_path(filename)
                print(
                    f"   {tottime / total * 1e6:>14.2f} {cumtime / total * 1e6:>14.2f} {ncalls / total:>9.2f}  "
                    f"{where}:{line}({function})"
                )
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)


def _short_path(filename: str) -> str:
    """``tasklets/http/_client.py`` for a file of the snapshot or of src/; stdlib and packages by name."""
    if "/tasklets/" in filename:
        return "tasklets/" + filename.rsplit("/tasklets/", 1)[1]
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line; run the child, or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, fewer requests (about a minute)")
    parser.add_argument("--rounds", type=int, help="rounds to record (default 5, 3 with --quick)")
    parser.add_argument("--clients", help=f"comma-separated subset of {','.join(ALL_CLIENTS)}")
    parser.add_argument("--only", choices=("small", "large"), help="just one of the two files")
    parser.add_argument("--profile", action="store_true", help="cProfile the tasklets client afterwards")
    parser.add_argument(
        "--no-snapshot", action="store_true", help="children import tasklets from src/ as it is when they start"
    )
    parser.add_argument(
        "--tasklets-from", type=Path, metavar="DIR", help="snapshot this tasklets package directory instead"
    )
    parser.add_argument("--child", choices=ALL_CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=WARMUP_REQUESTS, help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args)
        return 0

    config = QUICK if args.quick else FULL
    if args.rounds:
        config = dataclasses.replace(config, rounds=args.rounds)
    clients = ALL_CLIENTS if not args.clients else tuple(c.strip() for c in args.clients.split(","))
    unknown = set(clients) - set(ALL_CLIENTS)
    if unknown:
        parser.error(f"unknown clients: {', '.join(sorted(unknown))}")
    names = {"small": (SMALL,), "large": (LARGE,), None: (SMALL, LARGE)}[args.only]

    import importlib.metadata as md

    versions = ", ".join(f"{p} {md.version(p)}" for p in ("aiohttp", "httpx", "httptools") if _installed(p))
    print(f"# tasklets HTTP client benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, {versions}")
    files = {name: pattern_bytes(size, seed=size) for name, size in SIZES.items()}
    try:
        with nginx_server(files) as nginx, tempfile.TemporaryDirectory(prefix="tasklets-bench-src-") as snap:
            env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
            if not args.no_snapshot:
                path = snapshot_tasklets(Path(snap), args.tasklets_from)
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH", "")]))
                env[SNAPSHOT_ENV] = str(path)
                origin = args.tasklets_from or "the installed package"
                print(f"# tasklets: a snapshot of {origin} taken at {time.strftime('%H:%M:%S')}")
            print(f"# nginx {nginx.version} pid {nginx.process.pid} on 127.0.0.1:{nginx.port} (one process)")
            bench = Bench(nginx, config, env)
            verdicts: list[Verdict] = []
            for name in names:
                cell = measure(bench, name, clients)
                verdicts += report(cell, clients, config)
            missed = summary(verdicts)
            if args.profile:
                profile(bench, names)
    except NginxUnavailable as exc:
        print(f"cannot run the benchmark: {exc}", file=sys.stderr)
        return 2
    except SampleFailed as exc:
        print(f"a sample failed, no verdicts: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted; nginx stopped", file=sys.stderr)
        return 130
    return 1 if missed else 0


def _installed(package: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(package)
    except md.PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
