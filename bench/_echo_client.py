"""The load generator of ``bench/net_echo.py``: one program, the same for every server.

It runs on uvloop with bare protocols (the cheapest client Python offers, so
that the server, not the client, is the bottleneck) and has two modes::

    python bench/_echo_client.py pingpong --port P --size S --conns C --duration D [--warmup W]
    python bench/_echo_client.py idle --port P --conns N

``pingpong``: every connection sends a message of S bytes, waits for the whole
echo, and repeats. After ``--warmup`` seconds the completed round trips are
counted for ``--duration`` seconds, together with the CPU time of this process
and (with ``--server-pid``) of the server, read from ``/proc``. One JSON
object is printed on standard output.

``idle``: opens N connections (a bounded number of handshakes at a time), makes
one 100-byte round trip on each so the server has set up everything a
connection needs, prints ``READY {json}`` and keeps them open until standard
input reaches end of file, then closes them.

``--ca PEM`` turns TLS on (server name ``localhost``). Everything is bounded:
the whole run is cancelled after ``--deadline`` seconds, and every connection
goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import ssl
import sys
import time
from typing import Any

import uvloop

HOST = "127.0.0.1"
#: Handshakes in flight at once when opening idle connections.
CONNECT_BATCH = 100
#: How long a stopping ping-pong run waits for the echoes still in flight.
DRAIN_TIMEOUT = 2.0
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None = None) -> float:
    """User+system CPU seconds of this process, or of ``pid`` read from /proc."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # Fields after the command name start at field 3 (state): utime is 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / _TICKS


class PingPong(asyncio.Protocol):
    """One connection of the load: send, wait for the full echo, repeat."""

    def __init__(self, message: bytes, run: Run) -> None:
        self.message = message
        self.size = len(message)
        self.run = run
        self.received = 0
        self.count = 0
        self.first = bytearray()  # the first echo is checked byte for byte
        self.checked = False
        self.transport: asyncio.Transport | None = None
        self.finished = run.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def start(self) -> None:
        """Send the first message."""
        assert self.transport is not None
        self.transport.write(self.message)

    def data_received(self, data: bytes) -> None:
        if not self.checked:
            self.first += data
        received = self.received + len(data)
        if received < self.size:
            self.received = received
            return
        self.received = 0
        if received > self.size:
            self.fail(f"echo overran the message: {received} > {self.size} bytes")
            return
        if not self.checked:
            self.checked = True
            if bytes(self.first) != self.message:
                self.fail("echo differs from the message")
                return
            self.first = bytearray()
        self.count += 1
        if self.run.stopping:
            if not self.finished.done():
                self.finished.set_result(None)
        else:
            self.transport.write(self.message)  # type: ignore[union-attr]

    def fail(self, why: str) -> None:
        """Record an error and stop this connection."""
        self.run.errors.append(why)
        if not self.finished.done():
            self.finished.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.finished.done():
            if not self.run.stopping:
                self.run.errors.append(f"connection lost during the run: {exc!r}")
            self.finished.set_result(None)


class Run:
    """Shared state of one client run."""

    def __init__(self, loop: asyncio.AbstractEventLoop, port: int) -> None:
        self.loop = loop
        self.port = port
        self.stopping = False
        self.errors: list[str] = []


async def _connect_all(run: Run, factory: Any, conns: int, context: ssl.SSLContext | None) -> list[Any]:
    """Open ``conns`` connections, at most ``CONNECT_BATCH`` handshakes at a time."""
    protocols: list[Any] = []
    for start in range(0, conns, CONNECT_BATCH):
        batch = [
            run.loop.create_connection(
                factory, HOST, run.port, ssl=context, server_hostname="localhost" if context else None
            )
            for _ in range(min(CONNECT_BATCH, conns - start))
        ]
        for _, protocol in await asyncio.gather(*batch):
            protocols.append(protocol)
    return protocols


async def pingpong(args: argparse.Namespace, context: ssl.SSLContext | None) -> dict[str, Any]:
    """The ping-pong load; returns the measurements."""
    loop = asyncio.get_running_loop()
    run = Run(loop, args.port)
    message = (b"0123456789abcdef" * (args.size // 16 + 1))[: args.size]
    protocols: list[PingPong] = await _connect_all(run, lambda: PingPong(message, run), args.conns, context)
    for protocol in protocols:
        protocol.start()
    await asyncio.sleep(args.warmup)

    def snapshot() -> tuple[float, int, float, float | None]:
        server_cpu = cpu_seconds(args.server_pid) if args.server_pid else None
        return time.perf_counter(), sum(p.count for p in protocols), cpu_seconds(), server_cpu

    t0, n0, c0, s0 = snapshot()
    await asyncio.sleep(args.duration)
    t1, n1, c1, s1 = snapshot()
    run.stopping = True
    pending = [p.finished for p in protocols if not p.finished.done()]
    if pending:
        await asyncio.wait(pending, timeout=DRAIN_TIMEOUT)
    for protocol in protocols:
        if protocol.transport is not None:
            protocol.transport.close()
    await asyncio.sleep(0)  # let the closes be sent
    seconds = t1 - t0
    if n1 == n0:
        run.errors.append("no echo came back during the run")
    result: dict[str, Any] = {
        "messages": n1 - n0,
        "total": sum(p.count for p in protocols),
        "seconds": seconds,
        "rate": (n1 - n0) / seconds,
        "client_cpu": (c1 - c0) / seconds,
        "errors": run.errors[:5],
    }
    if s0 is not None and s1 is not None:
        result["server_cpu"] = (s1 - s0) / seconds
        result["server_us_per_msg"] = (s1 - s0) / max(1, n1 - n0) * 1e6
    return result


class Idle(asyncio.Protocol):
    """A connection that makes one round trip and then stays quiet."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.received = 0
        self.echoed = run.loop.create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(b"x" * 100)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.received >= 100 and not self.echoed.done():
            self.echoed.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.echoed.done():
            self.echoed.set_exception(ConnectionError(f"lost before the echo: {exc!r}"))
        elif not self.run.stopping:
            self.run.errors.append(f"idle connection lost: {exc!r}")


async def idle(args: argparse.Namespace, context: ssl.SSLContext | None) -> dict[str, Any]:
    """Hold ``--conns`` idle connections until standard input closes."""
    loop = asyncio.get_running_loop()
    run = Run(loop, args.port)
    started = time.perf_counter()
    protocols: list[Idle] = []
    try:
        for start in range(0, args.conns, CONNECT_BATCH):
            batch = await _connect_all(run, lambda: Idle(run), min(CONNECT_BATCH, args.conns - start), context)
            await asyncio.gather(*(p.echoed for p in batch))
            protocols += batch
        ready = {"conns": len(protocols), "seconds": time.perf_counter() - started}
        sys.stdout.write("READY " + json.dumps(ready) + "\n")
        sys.stdout.flush()
        await loop.run_in_executor(None, _wait_for_stdin_eof)
    finally:
        run.stopping = True
        for protocol in protocols:
            if protocol.transport is not None:
                protocol.transport.close()
        await asyncio.sleep(0)
    return {"conns": len(protocols), "errors": run.errors[:5]}


def _wait_for_stdin_eof() -> None:
    while sys.stdin.buffer.read(4096):
        pass


async def _bounded(args: argparse.Namespace) -> dict[str, Any]:
    context = None
    if args.ca:
        context = ssl.create_default_context(cafile=args.ca)
    work = pingpong(args, context) if args.mode == "pingpong" else idle(args, context)
    return await asyncio.wait_for(work, args.deadline)


def main(argv: list[str] | None = None) -> int:
    """Run one load and print its JSON result; exit 2 on errors or timeout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("pingpong", "idle"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, default=100, help="message size in bytes")
    parser.add_argument("--conns", type=int, default=10)
    parser.add_argument("--duration", type=float, default=1.0, help="seconds counted")
    parser.add_argument("--warmup", type=float, default=0.2, help="seconds run before counting")
    parser.add_argument("--server-pid", type=int, help="also report this process's CPU time")
    parser.add_argument("--ca", help="CA bundle (PEM): connect with TLS")
    parser.add_argument("--deadline", type=float, default=60.0, help="hard limit on the whole run, seconds")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        result = uvloop.run(_bounded(args))
    except TimeoutError:
        result = {"errors": [f"client deadline of {args.deadline} s exceeded"]}
    except OSError as exc:
        result = {"errors": [f"{type(exc).__name__}: {exc}"]}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 2 if result.get("errors") else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
