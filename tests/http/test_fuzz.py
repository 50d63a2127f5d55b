"""Fuzzing the response side: generated and mutated responses, both backends, whole and in pieces.

Every case (``_fuzz.make_case``, seeded) must give a correct body or a
clear error, never another exception, never a hang, nothing left behind,
and the same outcome with either backend however its bytes are split:

* the sans-IO layer, fed each case whole, byte by byte and in random pieces:
  the events or a ProtocolError;
* the client, served each case by a raw socket (whole, in small pieces, and
  byte by byte, with Nagle off) and reading the body: the decoded body, or a
  URLError; no hang, and no connection, descriptor or task left after.

The normal run takes a few thousand cases in seconds. More, for a campaign
(200,000 take a few minutes; the seeds go on from the normal run's)::

    TASKLETS_FUZZ_CASES=200000 TASKLETS_FUZZ_SOCKET_CASES=20000 python -m pytest tests/http/test_fuzz.py

A failure names the seed: ``_fuzz.make_case(seed).data`` is the response.
"""

from __future__ import annotations

import gc
import os
import random
import socket
import time
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
from _fuzz import Case, make_case
from _servers import RawConnection, RawServer

import tasklets
from tasklets._exceptions import HTTPError, ProtocolError
from tasklets.http import Client, Timeout
from tasklets.http._protocol import Data, EndOfMessage, Response, create_client_connection
from tasklets.testing import run_strict

BACKENDS = ("h11", "httptools")
SANS_IO_CASES = int(os.environ.get("TASKLETS_FUZZ_CASES", "3000"))
SOCKET_CASES = int(os.environ.get("TASKLETS_FUZZ_SOCKET_CASES", "300"))
FIRST_SEED = int(os.environ.get("TASKLETS_FUZZ_SEED", "0"))
#: A campaign reports its progress every so many cases.
PROGRESS_EVERY = 10_000
#: A campaign stops at this many failing cases, and reports them all.
MAX_FAILURES = 20
#: Byte-by-byte feeding covers this many bytes of each response (its head and framing); the rest goes in one piece.
BYTEWISE_MAX = 400


def _pieces(rng: random.Random, data: bytes, mode: str) -> list[bytes]:
    if mode == "whole":
        return [data]
    if mode == "bytewise":
        return [data[i : i + 1] for i in range(min(len(data), BYTEWISE_MAX))] + [data[BYTEWISE_MAX:]] * (
            len(data) > BYTEWISE_MAX
        )
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 40)))) if len(data) > 1 else []
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


def sans_io_outcome(backend: str, pieces: list[bytes]) -> tuple[Any, ...]:
    """What the protocol layer makes of ``pieces`` and then EOF: the response, or the type of its error."""
    conn = create_client_connection(backend=backend)
    conn.send_request("GET", "/", [("Host", "fuzz.example")])
    conn.send_end()
    events = []
    try:
        for piece in pieces:
            events += conn.feed(piece)
        reusable = conn.can_reuse()
        events += conn.feed_eof()
    except ProtocolError as exc:
        assert str(exc)
        return ("error", type(exc).__name__)
    final = [event for event in events if isinstance(event, Response)]
    ends = [event for event in events if isinstance(event, EndOfMessage)]
    assert len(final) == len(ends) == 1, events
    body = b"".join(event.data for event in events if isinstance(event, Data))
    return ("ok", final[0].status, body, tuple(ends[0].trailers), reusable)


def _expected_sans_io(case: Case) -> tuple[Any, ...]:
    return ("ok", case.status, case.encoded, tuple(case.trailers))


@pytest.mark.timeout(max(60, SANS_IO_CASES // 50))
def test_sans_io() -> None:
    """Both backends, whole, byte by byte and in random pieces: one outcome per case."""
    start = time.monotonic()
    modes = 0
    failures: list[str] = []
    for seed in range(FIRST_SEED, FIRST_SEED + SANS_IO_CASES):
        case = make_case(seed)
        rng = random.Random(seed)
        outcomes = {}
        for mode in ("whole", "pieces", "bytewise"):
            pieces = _pieces(rng, case.data, mode)
            for backend in BACKENDS:
                outcomes[backend, mode] = sans_io_outcome(backend, pieces)
                modes += 1
        # Reusability may differ by mode only where bytes follow the response (how much of them
        # was seen before the end differs); the outcome proper may not differ at all.
        distinct = {outcome[:4] for outcome in outcomes.values()}
        if len(distinct) != 1:
            failures.append(f"seed {seed}: the backends or modes disagree: {outcomes} on {case.data[:300]!r}")
        elif not case.mutated and distinct != {_expected_sans_io(case)}:
            failures.append(f"seed {seed}: a valid response was misread: {outcomes}")
        if len(failures) >= MAX_FAILURES:
            break
        if (seed - FIRST_SEED + 1) % PROGRESS_EVERY == 0:  # a campaign's progress (seen with -s)
            done = seed - FIRST_SEED + 1
            print(f"\n  ... {done} cases, {len(failures)} failing, {time.monotonic() - start:.0f} s", flush=True)
    print(f"\nfuzz, sans-IO: {seed - FIRST_SEED + 1} cases, {modes} feeds, {time.monotonic() - start:.1f} s")
    assert not failures, f"{len(failures)} failing cases:\n" + "\n".join(failures)


# -- through sockets ---------------------------------------------------------------------------------------------


def _serve(conn: RawConnection) -> None:
    """``GET /SEED/MODE``: the case's bytes, whole, in small pieces or byte by byte, then the connection closed.

    (Sends of one byte each, with Nagle off: the client's reads take a byte or
    a few, as many as have arrived.)
    """
    head = conn.recv_head()
    if not head:
        return
    seed, mode = head.split(b" ")[1].decode().strip("/").split("/")
    data = make_case(int(seed)).data
    if mode == "whole":
        conn.send(data)
    else:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in _pieces(random.Random(int(seed) + 1), data, mode):
            conn.send(piece)
    conn.sock.shutdown(socket.SHUT_WR)
    conn.hold()  # until the client closes: then the leak check finds both sides closed


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[RawServer]:
    with RawServer(_serve) as server:
        yield server


def client_outcome(client: Client, url: str) -> Any:
    """Fetch ``url`` and read the body: the response, or what went wrong (a URLError, nothing else)."""
    try:
        response = yield client.urlopen(url, headers={"Connection": "close"})
        body = yield from response.read()
        return ("ok", response.status, body)
    except HTTPError as error:
        try:
            return ("http-error", error.code, error.read())
        except urllib.error.URLError as exc:
            return ("http-error", error.code, type(exc).__name__)
    except urllib.error.URLError as exc:
        assert str(exc)
        return ("error", type(exc).__name__)


def _kind(outcome: tuple[Any, ...]) -> tuple[Any, ...]:
    """An outcome with its error, if any, reduced to "error".

    Which error a response with several faults gives first (a corrupt gzip
    stream, then broken framing, say) depends on where the client's reads
    end, and so does whether a fault in the body comes before the head is
    handed out (both in one read: the exchange fails) or after (an HTTPError
    whose body cannot be read). The sans-IO test compares errors exactly.
    """
    if outcome[0] == "error" or (outcome[0] == "http-error" and isinstance(outcome[2], str)):
        return ("error",)
    return outcome


def _live_tasks() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, tasklets.Task) and not obj.done())


def _fetch_all(client: Client, urls: list[str]) -> Any:
    outcomes = []
    for url in urls:
        try:
            outcome = yield tasklets.with_timeout(tasklets.Task(client_outcome(client, url)), 20.0)
        except tasklets.TimeoutError:
            outcome = ("hang",)
        outcomes.append(outcome)
    return outcomes


@pytest.mark.timeout(max(60, SOCKET_CASES // 10))
def test_through_sockets(fuzz_server: RawServer) -> None:
    """Both backends, each case served whole and in pieces: a body or a URLError, the same with both."""
    start = time.monotonic()
    seeds = range(FIRST_SEED, FIRST_SEED + SOCKET_CASES)
    urls = [f"{fuzz_server.url}/{seed}/{mode}" for seed in seeds for mode in ("whole", "pieces", "bytewise")]
    tasks_before = _live_tasks()
    results = {}
    for backend in BACKENDS:
        with Client(proxies=None, timeout=Timeout(connect=5, read=5, total=15), parser=backend) as client:
            # Strictly (a task, timer or registration left behind fails the test), with a
            # real-time bound that grows with the campaign.
            results[backend] = run_strict(_fetch_all, client, urls, timeout=60 + 2 * len(urls))
    assert fuzz_server.wait_idle(10), "connections left open"
    assert _live_tasks() == tasks_before, "tasks left running"
    failures = []
    for i, url in enumerate(urls):
        seed = int(url.split("/")[-2])
        case = make_case(seed)
        outcomes = {backend: results[backend][i] for backend in BACKENDS}
        kind = "http-error" if case.status >= 400 else "ok"
        if ("hang",) in outcomes.values():
            failures.append(f"seed {seed}: {url} hung: {outcomes}")
        elif len({repr(_kind(outcome)) for outcome in outcomes.values()}) != 1:
            failures.append(f"seed {seed}: the backends disagree on {url}: {outcomes}")
        elif not case.mutated and outcomes["h11"] != (kind, case.status, case.body):
            failures.append(f"seed {seed}: a valid response was misread: {outcomes}")
    print(f"\nfuzz, sockets: {SOCKET_CASES} cases x 3 modes x 2 backends, {time.monotonic() - start:.1f} s")
    assert not failures, f"{len(failures)} failing cases:\n" + "\n".join(failures[:MAX_FAILURES])
