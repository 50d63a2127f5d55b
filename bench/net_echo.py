"""TCP echo benchmark (issues 3 and 17): tasklets against asyncio and uvloop, streams and protocols.

Usage::

    python bench/net_echo.py             # the full run (about 9 minutes)
    python bench/net_echo.py --quick     # about a minute
    python bench/net_echo.py --profile   # also profile the tasklets server (cProfile, and py-spy if installed)
    python bench/net_echo.py --only plain --rounds 9   # one phase, more rounds

What it measures
----------------
* **Ping-pong throughput**: each server runs in its own process
  (``_echo_servers.py``: tasklets, asyncio streams, asyncio protocols, uvloop
  streams, uvloop protocols); the load comes from one client program, the
  same for every server, in another process: ``_echo_c.c`` compiled on the
  spot (epoll, cheaper per message than any Python client), or the uvloop
  client ``_echo_client.py`` when there is no C compiler (``--client uvloop``).
  Every connection sends a message, waits for the full echo and repeats.
  Cells: 100 B and 16 KiB messages, 10 and 100 connections. A minimal C epoll
  echo server runs alongside as the floor (the system calls alone).
* **TLS ping-pong**: tasklets against asyncio streams with ``ssl`` (trustme
  certificates), uvloop streams for reference; uvloop client with TLS.
* **Memory per idle connection**: a fresh server, warmed up, then N idle
  connections (each made one round trip); the growth of the server's RSS
  divided by N.

Server and client share the machine's cores (two, on the project's
machines) with whatever else runs there. Within a cell the servers run
interleaved (A B C D E, the order rotated each round) so that a burst of load
from elsewhere hits all of them alike; ratios are the median of per-round
ratios. The client also reads the server's CPU time from ``/proc``, so the
tables show CPU microseconds per message as well: a figure less sensitive to
a busy machine than messages/s, and one that stays meaningful when the client
is the bottleneck.

Everything listens on and connects to 127.0.0.1 only, every run is bounded
in time, and every child process is stopped on exit, errors, SIGTERM and
Ctrl-C included (servers also stop by themselves when their standard input
closes, so they die with this process however it dies).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import linecache
import os
import platform
import pstats
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVER_SCRIPT = HERE / "_echo_servers.py"
CLIENT_SCRIPT = HERE / "_echo_client.py"
C_SOURCE = HERE / "_echo_c.c"
TASK_FLOOR_SCRIPT = HERE / "_echo_task_floor.py"

ALL_KINDS = ("tasklets", "asyncio-streams", "asyncio-protocols", "uvloop-streams", "uvloop-protocols")
TLS_KINDS = ("tasklets", "asyncio-streams", "uvloop-streams")
#: The C epoll echo server: not a contender, the kernel's floor (plain TCP only).
FLOOR = "c-floor"
#: The thinnest task-and-future server in pure Python: not a contender, the floor of our design.
TASK_FLOOR = "task-floor"
#: The tasklets server imported from ``--baseline DIR``: an A/B against another copy, in the same rounds.
BASELINE = "tasklets-base"
LABELS = {
    FLOOR: "C epoll (floor)",
    TASK_FLOOR: "task floor (pure Python)",
    BASELINE: "tasklets (baseline)",
    "tasklets": "tasklets",
    "asyncio-streams": "asyncio streams",
    "asyncio-protocols": "asyncio protocols",
    "uvloop-streams": "uvloop streams",
    "uvloop-protocols": "uvloop protocols",
}
#: How long a server may take to print its port.
START_TIMEOUT = 15.0
#: How long a stopping child may take before it is terminated, then killed.
STOP_TIMEOUT = 5.0


@dataclass
class Config:
    """How much to run; ``--quick`` and the full run differ only here."""

    duration: float
    warmup: float
    rounds: int
    cells: Sequence[tuple[int, int]]
    tls_cells: Sequence[tuple[int, int]]
    idle_conns: int
    memory_rounds: int
    profile_seconds: float


FULL = Config(
    duration=2.0,
    warmup=0.5,
    rounds=5,
    cells=((100, 10), (100, 100), (16384, 10), (16384, 100)),
    tls_cells=((100, 10), (16384, 10), (16384, 100)),
    idle_conns=2000,
    memory_rounds=3,
    profile_seconds=4.0,
)
QUICK = Config(
    duration=0.4,
    warmup=0.1,
    rounds=3,
    cells=((100, 10), (100, 100), (16384, 10), (16384, 100)),
    tls_cells=((16384, 10),),
    idle_conns=1000,
    memory_rounds=1,
    profile_seconds=1.5,
)


def log(message: str) -> None:
    """Progress goes to standard error; the tables go to standard output."""
    print(message, file=sys.stderr, flush=True)


# -- child processes -----------------------------------------------------------------------


@dataclass
class Child:
    """A child process that we read lines from and stop by closing its stdin."""

    proc: subprocess.Popen[bytes]
    log_path: str | None = None
    buffer: bytes = b""

    def log_tail(self, size: int = 2000) -> str:
        """The end of what the child wrote on stderr."""
        if self.log_path is None:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-size:].decode(errors="replace")
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read_line(self, timeout: float) -> str:
        """The next line of the child's stdout; raises if none comes in ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"child {self.pid} printed no line within {timeout} s")
            readable, _, _ = select.select([fd], [], [], left)
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    time.sleep(0.2)  # let it finish its last words
                    rc = self.proc.poll()
                    raise RuntimeError(f"child {self.pid} exited (rc={rc}) before a line:\n{self.log_tail()}")
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    def stop(self) -> None:
        """Close stdin (the polite stop), then terminate, then kill; always reaps."""
        proc = self.proc
        try:
            if proc.stdin is not None and not proc.stdin.closed:
                proc.stdin.close()
        except OSError:
            pass
        for action in (None, proc.terminate, proc.kill):
            if action is not None and proc.poll() is None:
                action()
            try:
                proc.wait(STOP_TIMEOUT)
                break
            except subprocess.TimeoutExpired:
                continue
        if proc.stdout is not None:
            proc.stdout.close()


@dataclass
class Children:
    """Every child started, so that all of them are stopped whatever happens."""

    log_dir: str
    live: list[Child] = field(default_factory=list)
    started: int = 0

    def start(self, args: list[str], env: dict[str, str] | None = None) -> Child:
        """Start one of our Python scripts (in ``env``, or ``CHILD_ENV``)."""
        return self.start_command([sys.executable, *args], env)

    def start_command(self, command: list[str], env: dict[str, str] | None = None) -> Child:
        """Start a child; its stderr goes to a file (a pipe nobody reads would fill and block it)."""
        self.started += 1
        log_path = os.path.join(self.log_dir, f"child-{self.started}.log")
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, env=env or CHILD_ENV
            )
        child = Child(proc, log_path)
        self.live.append(child)
        return child

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self.live:
            self.live.remove(child)

    def stop_all(self) -> None:
        while self.live:
            self.stop(self.live[-1])


@contextmanager
def children(log_dir: str) -> Iterator[Children]:
    """A registry of children (their stderr logged under ``log_dir``), all stopped on the way out."""
    registry = Children(log_dir)
    try:
        yield registry
    finally:
        registry.stop_all()


@dataclass
class Server:
    """A running echo server."""

    kind: str
    child: Child
    port: int


def start_server(kids: Children, kind: str, certs: dict[str, str] | None = None, profile: str | None = None) -> Server:
    """Start one server process and wait for its port."""
    if kind == FLOOR:
        assert C_CLIENT is not None and certs is None and profile is None
        child = kids.start_command([C_CLIENT, "serve"])
    elif kind == TASK_FLOOR:
        assert certs is None and profile is None
        child = kids.start([str(TASK_FLOOR_SCRIPT)])
    else:
        args = [str(SERVER_SCRIPT), "tasklets" if kind == BASELINE else kind]
        if kind in ("tasklets", BASELINE) and TASKLETS_LOOP != "default":
            args += ["--loop", TASKLETS_LOOP]
        if certs is not None:
            args += ["--cert", certs["cert"], "--key", certs["key"]]
        if profile is not None:
            args += ["--profile", profile]
        child = kids.start(args, BASELINE_ENV if kind == BASELINE else None)
    line = child.read_line(START_TIMEOUT)
    if not line.startswith("PORT "):
        kids.stop(child)
        raise RuntimeError(f"{kind} server said {line!r} instead of its port")
    return Server(kind, child, int(line.split()[1]))


def build_c_client(directory: str) -> str | None:
    """Compile ``_echo_c.c`` (load client and floor server) into ``directory``; None without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return None
    binary = os.path.join(directory, "echo_c")
    done = subprocess.run([compiler, "-O2", "-o", binary, str(C_SOURCE)], capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        log(f"C client did not compile, using the uvloop client:\n{done.stderr.decode(errors='replace')[-1000:]}")
        return None
    return binary


#: The compiled C client, when there is one (set by ``main``); TLS always uses the uvloop client.
C_CLIENT: str | None = None
#: The environment of the children (``--tasklets-path`` puts another copy of tasklets first).
CHILD_ENV: dict[str, str] | None = None
#: The environment of the baseline server (``--baseline DIR`` first on its path).
BASELINE_ENV: dict[str, str] | None = None
#: The loop the tasklets servers run on (``--tasklets-loop``): run()'s default, or a plain Loop.
TASKLETS_LOOP = "default"


def run_pingpong(server: Server, size: int, conns: int, cfg: Config, ca: str | None = None) -> dict[str, Any]:
    """One client run against ``server``; the client's JSON result ('errors' non-empty on failure)."""
    deadline = cfg.warmup + cfg.duration + 30.0
    if C_CLIENT is not None and ca is None:
        cmd = [C_CLIENT, str(server.port), str(size), str(conns), str(cfg.warmup), str(cfg.duration),
               str(server.child.pid), str(deadline)]  # fmt: skip
    else:
        cmd = [
            sys.executable, str(CLIENT_SCRIPT), "pingpong",
            "--port", str(server.port), "--size", str(size), "--conns", str(conns),
            "--duration", str(cfg.duration), "--warmup", str(cfg.warmup),
            "--server-pid", str(server.child.pid), "--deadline", str(deadline),
        ]  # fmt: skip
    if ca is not None:
        cmd += ["--ca", ca]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=deadline + 10, check=False)
    except subprocess.TimeoutExpired:
        return {"errors": ["client process timed out"]}
    try:
        outcome: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
        return outcome
    except (ValueError, IndexError):
        return {"errors": [f"client rc={done.returncode}: {done.stderr.decode(errors='replace')[-500:]}"]}


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid``."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def make_certs(directory: str) -> dict[str, str]:
    """A trustme CA and a certificate for localhost/127.0.0.1, written as PEM files."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    paths = {"ca": os.path.join(directory, "ca.pem"), "cert": os.path.join(directory, "cert.pem"),
             "key": os.path.join(directory, "key.pem")}  # fmt: skip
    ca.cert_pem.write_to_path(paths["ca"])
    cert.private_key_pem.write_to_path(paths["key"])
    with open(paths["cert"], "wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    return paths


# -- the phases -------------------------------------------------------------------------------

Results = dict[tuple[int, int], dict[str, list[dict[str, Any] | None]]]


def rotated(kinds: Sequence[str], by: int) -> list[str]:
    """``kinds`` rotated left by ``by``: each round starts with another server."""
    by %= len(kinds)
    return [*kinds[by:], *kinds[:by]]


def throughput_phase(
    kids: Children, kinds: Sequence[str], cells: Sequence[tuple[int, int]], cfg: Config,
    certs: dict[str, str] | None = None,
) -> Results:  # fmt: skip
    """All cells, servers interleaved within each cell; one server process per kind for the phase."""
    servers = {kind: start_server(kids, kind, certs) for kind in kinds}
    results: Results = {}
    try:
        # One short, discarded run per server first: a fresh process's first run is often slow.
        warm = dataclasses.replace(cfg, duration=0.2, warmup=0.05)
        for kind in kinds:
            run_pingpong(servers[kind], cells[0][0], cells[0][1], warm, certs["ca"] if certs else None)
        for size, conns in cells:
            cell = results[(size, conns)] = {kind: [] for kind in kinds}
            for round_ in range(cfg.rounds):
                for kind in rotated(kinds, round_):
                    outcome = run_pingpong(servers[kind], size, conns, cfg, certs["ca"] if certs else None)
                    if outcome.get("errors"):
                        tail = servers[kind].child.log_tail(600).strip()
                        log(f"  !! {kind} {size} B x {conns}: {outcome['errors']}" + (f"\n{tail}" if tail else ""))
                        cell[kind].append(None)
                    else:
                        cell[kind].append(outcome)
                log(
                    f"  {'TLS ' if certs else ''}{size:>5} B x {conns:>3} round {round_ + 1}/{cfg.rounds}: "
                    + "  ".join(f"{k}={_fmt_rate(cell[k][-1])}" for k in kinds)
                )
    finally:
        for server in servers.values():
            kids.stop(server.child)
    return results


def memory_phase(kids: Children, kinds: Sequence[str], cfg: Config) -> dict[str, list[float | None]]:
    """RSS growth per idle connection, a fresh server per measurement."""
    per_conn: dict[str, list[float | None]] = {kind: [] for kind in kinds}
    warm = dataclasses.replace(cfg, duration=0.2, warmup=0.05)
    for round_ in range(cfg.memory_rounds):
        for kind in rotated(kinds, round_):
            server = start_server(kids, kind)
            client = None
            try:
                # Warm up every code path (and the allocator) before the baseline.
                run_pingpong(server, 100, 10, warm)
                time.sleep(0.2)
                before = rss_bytes(server.child.pid)
                client = kids.start([
                    str(CLIENT_SCRIPT), "idle", "--port", str(server.port), "--conns", str(cfg.idle_conns),
                    "--deadline", "120",
                ])  # fmt: skip
                line = client.read_line(90.0)
                if not line.startswith("READY "):
                    raise RuntimeError(f"idle client said {line!r}")
                opened = json.loads(line[6:])["conns"]
                time.sleep(0.3)
                after = rss_bytes(server.child.pid)
                per_conn[kind].append((after - before) / opened)
                log(f"  memory {kind}: {(after - before) / opened:,.0f} B per idle connection ({opened} open)")
            except RuntimeError as exc:
                log(f"  !! memory {kind}: {exc}")
                per_conn[kind].append(None)
            finally:
                if client is not None:
                    kids.stop(client)
                kids.stop(server.child)
    return per_conn


def profile_phase(
    kids: Children, cfg: Config, directory: str, kind: str = "tasklets",
    cells: Sequence[tuple[int, int]] = ((100, 100), (16384, 10)),
) -> str:  # fmt: skip
    """Profile the tasklets server under two loads; a markdown section with where the time goes.

    Two views of each load: ``cProfile`` (deterministic: calls per message,
    but its overhead inflates small functions) and, when ``py-spy`` is
    installed, sampling of an unprofiled server by line (where the time
    really goes; a C call such as ``recv`` counts against its calling line).
    """
    out: list[str] = []
    run_cfg = dataclasses.replace(cfg, duration=cfg.profile_seconds, warmup=0.2)
    for size, conns in cells:
        path = os.path.join(directory, f"{kind}-{size}-{conns}.prof")
        server = start_server(kids, kind, profile=path)
        outcome = run_pingpong(server, size, conns, run_cfg)
        kids.stop(server.child)
        if outcome.get("errors") or not os.path.exists(path):
            out.append(f"profile {size} B x {conns}: failed: {outcome.get('errors')}")
            continue
        out.append(_cprofile_section(path, outcome, size, conns, kind))
        if shutil.which("py-spy"):
            out.append(_pyspy_section(kids, directory, run_cfg, size, conns, kind))
    return "\n".join(out)


def _cprofile_section(path: str, outcome: dict[str, Any], size: int, conns: int, kind: str) -> str:
    stats = pstats.Stats(path)
    messages = max(1, outcome.get("total", outcome["messages"]))  # every message the server saw
    total = stats.total_tt  # type: ignore[attr-defined]
    out = [
        f"#### cProfile of the {kind} server, {_size_label(size)} x {conns} connections\n\n"
        f"{messages:,} messages served ({outcome['rate']:,.0f}/s under the profiler); {total:.2f} s of the "
        f"loop thread's CPU time, {total / messages * 1e6:.1f} µs per message (profiler overhead included).\n",
        "| tottime µs/msg | share | calls/msg | function |\n|---:|---:|---:|---|",
    ]
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    for (filename, line, name), (_cc, ncalls, tottime, _ct, _callers) in rows[:20]:
        where = f"{Path(filename).name}:{line}" if line else filename
        out.append(
            f"| {tottime / messages * 1e6:.2f} | {tottime / total:.0%} | {ncalls / messages:.2f} | `{name}` ({where}) |"
        )
    return "\n".join(out) + "\n"


def _pyspy_section(kids: Children, directory: str, run_cfg: Config, size: int, conns: int, kind: str) -> str:
    """Sample an unprofiled server with py-spy (native frames) under the same load."""
    raw = os.path.join(directory, f"pyspy-{kind}-{size}-{conns}.txt")
    server = start_server(kids, kind)
    spy = None
    outcome: dict[str, Any] = {"errors": ["py-spy did not attach"]}
    try:
        for _attempt in range(3):  # py-spy sometimes fails to attach to a young process: retry
            time.sleep(0.5)
            spy = kids.start_command(
                ["py-spy", "record", "--pid", str(server.child.pid), "--duration", str(int(run_cfg.duration + 1)),
                 "--rate", "997", "--format", "raw", "--idle", "--threads", "--nonblocking", "-o", raw]
            )  # fmt: skip
            time.sleep(0.5)
            if spy.proc.poll() is None:
                break
            kids.stop(spy)
            spy = None
        if spy is not None:
            outcome = run_pingpong(server, size, conns, run_cfg)
            try:
                spy.proc.wait(run_cfg.duration + 30)
            except subprocess.TimeoutExpired:
                pass
    finally:
        if spy is not None:
            kids.stop(spy)
        kids.stop(server.child)
    if outcome.get("errors") or not os.path.exists(raw):
        return f"py-spy {size} B x {conns}: failed ({outcome.get('errors')})\n"
    self_samples: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    with open(raw) as f:
        for line in f:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            if not frames[0].startswith("thread ") or "MainThread" not in frames[0]:
                continue  # only the loop thread (the stdin waiter idles in another)
            frames = frames[1:]
            if not frames:
                continue
            leaf = frames[-1]  # full path and line, for the line's text
            frames = [_frame_name(frame) for frame in frames]
            total += count
            self_samples[leaf] = self_samples.get(leaf, 0) + count
            for name in set(frames):
                inclusive[name] = inclusive.get(name, 0) + count
    if not total:
        return f"py-spy {size} B x {conns}: no samples\n"
    # Samples blocked in the poller are the server waiting for the client: leave them out of the shares.
    idle = sum(count for name, count in self_samples.items() if name.split(" (")[0] in _POLL_FRAMES)
    busy = max(1, total - idle)
    out = [
        f"#### py-spy of the {kind} server, {_size_label(size)} x {conns}\n\n"
        f"{outcome['rate']:,.0f} messages/s while sampled (py-spy takes CPU too); {total} samples of the loop "
        f"thread, {idle / total:.0%} of them waiting in the poller. Shares below are of the busy samples.\n",
        "| self share | leaf frame (a C call, e.g. `send`, counts against its line) | line |\n|---:|---|---|",
    ]
    for name, count in sorted(self_samples.items(), key=lambda kv: kv[1], reverse=True)[:16]:
        if name.split(" (")[0] in _POLL_FRAMES:
            continue
        out.append(f"| {count / busy:.1%} | `{_short(name)}` | `{_source_line(name)}` |")
    out += ["", "| inclusive share | function |", "|---:|---|"]
    top = max(inclusive.values())
    # Leave out the chain of wrappers every sample passes through (main, run, run_forever...).
    shown = [
        (name, count) for name, count in inclusive.items() if count < top and name.split(" (")[0] not in _POLL_FRAMES
    ]
    for name, count in sorted(shown, key=lambda kv: kv[1], reverse=True)[:20]:
        out.append(f"| {count / busy:.1%} | `{name}` |")
    return "\n".join(out) + "\n"


#: Frames in which a loop blocks waiting for readiness.
_POLL_FRAMES = {"EpollPoller.poll", "EpollSelector.select", "Loop._poll", "Loop._wait_for_events"}


def _short(frame: str) -> str:
    """``func (/a/b/file.py:12)`` → ``func (file.py:12)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.rstrip(')')).name})" if where else frame


def _source_line(frame: str) -> str:
    """The text of the line a py-spy frame points at (read now: it may have changed since)."""
    _, _, where = frame.partition(" (")
    path, _, line = where.rstrip(")").rpartition(":")
    if not line.isdigit():
        return ""
    if not os.path.isabs(path):
        # py-spy names files relative to sys.path: look where the servers imported from first.
        roots = [*((CHILD_ENV or {}).get("PYTHONPATH", "").split(os.pathsep)), *sys.path]
        path = next((os.path.join(r, path) for r in roots if r and os.path.exists(os.path.join(r, path))), path)
    text = linecache.getline(path, int(line)).strip()
    return text.replace("|", "\\|").replace("`", "'")[:70]


def _frame_name(frame: str) -> str:
    """``func (/path/file.py:12)`` → ``func (file.py)``: all samples of a function together."""
    name, _, where = frame.partition(" (")
    if not where:
        return frame
    return f"{name} ({Path(where.rstrip(')').rsplit(':', 1)[0]).name})"


# -- reporting ----------------------------------------------------------------------------------


def _fmt_rate(outcome: dict[str, Any] | None) -> str:
    return "fail" if outcome is None else f"{outcome['rate'] / 1000:.1f}k"


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_ratio(runs: dict[str, list[dict[str, Any] | None]], a: str, b: str) -> float | None:
    """Median over rounds of rate(a)/rate(b), counting only rounds where both ran."""
    if a not in runs or b not in runs:
        return None
    ratios = [x["rate"] / y["rate"] for x, y in zip(runs[a], runs[b]) if x is not None and y is not None]
    return statistics.median(ratios) if ratios else None


def median_cpu_ratio(runs: dict[str, list[dict[str, Any] | None]], a: str, b: str) -> float | None:
    """Median over rounds of cpu_per_msg(b)/cpu_per_msg(a): like ``median_ratio``, >1 when ``a`` is cheaper."""
    if a not in runs or b not in runs:
        return None
    ratios = [
        y["server_us_per_msg"] / x["server_us_per_msg"]
        for x, y in zip(runs[a], runs[b])
        if x and y and x.get("server_us_per_msg") and y.get("server_us_per_msg")
    ]
    return statistics.median(ratios) if ratios else None


def _size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def _cell_text(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def throughput_table(results: Results, kinds: Sequence[str], ratios: Sequence[tuple[str, str]]) -> str:
    """Messages/s (median), then server CPU µs/message, plus the requested ratios."""
    head = ["message", "conns", *(LABELS[k] for k in kinds), *(f"{LABELS[a]} / {LABELS[b]}" for a, b in ratios)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    compared = ("tasklets", TASK_FLOOR, "asyncio-protocols", "uvloop-streams")
    over = [k for k in compared if k in kinds] if FLOOR in kinds else []
    cpu_head = ["message", "conns", *(LABELS[k] for k in kinds), *(f"{LABELS[k]} over floor" for k in over)]
    cpu_lines = [
        "| " + " | ".join([*cpu_head, "client CPU (max)"]) + " |",
        "|" + "---|" * 2 + "---:|" * (len(cpu_head) - 1),
    ]
    for (size, conns), runs in results.items():
        rates = [_median([r["rate"] if r else None for r in runs[k]]) for k in kinds]
        row = [_size_label(size), str(conns)]
        row += [_cell_text(v, ",.0f") for v in rates]
        row += [_cell_text(median_ratio(runs, a, b), ".2f") for a, b in ratios]
        lines.append("| " + " | ".join(row) + " |")
        cpu = [_median([r.get("server_us_per_msg") if r else None for r in runs[k]]) for k in kinds]
        client = max((r["client_cpu"] for k in kinds for r in runs[k] if r), default=None)
        by_kind = dict(zip(kinds, cpu))
        floor = by_kind.get(FLOOR)
        extra = [
            None if floor is None or by_kind[k] is None else by_kind[k] - floor  # type: ignore[operator]
            for k in over
        ]
        cpu_row = [_size_label(size), str(conns), *(_cell_text(v, ".1f") for v in [*cpu, *extra])]
        cpu_row.append(_cell_text(client, ".0%"))
        cpu_lines.append("| " + " | ".join(cpu_row) + " |")
    return (
        "Messages per second (median of rounds; ratios are medians of per-round ratios):\n\n"
        + "\n".join(lines)
        + "\n\nServer CPU time per message, µs (median of rounds; lower is better), and the busiest client:\n\n"
        + "\n".join(cpu_lines)
    )


def memory_table(per_conn: dict[str, list[float | None]]) -> str:
    """Bytes of server RSS per idle connection."""
    head = "| server | bytes of RSS per idle connection (median) | all rounds |\n|---|---:|---|"
    rows = [
        f"| {LABELS[k]} | {_cell_text(_median(v), ',.0f')} | "
        + ", ".join("fail" if x is None else f"{x:,.0f}" for x in v)
        + " |"
        for k, v in per_conn.items()
    ]
    return head + "\n" + "\n".join(rows)


def _details(ratios: dict[tuple[int, int], float | None]) -> str:
    if not ratios:
        return "not run"
    return ", ".join(f"{_size_label(s)} x {c}: {_cell_text(r, '.2f')}" for (s, c), r in ratios.items())


def ratio_range(runs: dict[str, list[dict[str, Any] | None]], a: str, b: str) -> tuple[float, float, float] | None:
    """Median, min and max over rounds of rate(a)/rate(b), counting only rounds where both ran."""
    if a not in runs or b not in runs:
        return None
    ratios = [x["rate"] / y["rate"] for x, y in zip(runs[a], runs[b]) if x is not None and y is not None]
    return (statistics.median(ratios), min(ratios), max(ratios)) if ratios else None


def _range_details(results: Results, a: str, b: str) -> str:
    """``a``/``b`` messages/s in every cell, median [min-max] over rounds."""
    if not results:
        return "not run"
    texts = []
    for (size, conns), runs in results.items():
        found = ratio_range(runs, a, b)
        value = "n/a" if found is None else f"{found[0]:.2f} [{found[1]:.2f}-{found[2]:.2f}]"
        texts.append(f"{_size_label(size)} x {conns}: {value}")
    return ", ".join(texts)


def _cpu_range_details(results: Results, a: str, b: str) -> str:
    """``a``'s server CPU per message over ``b``'s in every cell, median [min-max] of rounds (< 1: ``a`` cheaper)."""
    texts = []
    for (size, conns), runs in results.items():
        ratios = [
            x["server_us_per_msg"] / y["server_us_per_msg"]
            for x, y in zip(runs.get(a, []), runs.get(b, []))
            if x and y and x.get("server_us_per_msg") and y.get("server_us_per_msg")
        ]
        value = f"{statistics.median(ratios):.3f} [{min(ratios):.3f}-{max(ratios):.3f}]" if ratios else "n/a"
        texts.append(f"{_size_label(size)} x {conns}: {value}")
    return ", ".join(texts) or "not run"


def verdict(ok: bool | None) -> str:
    """PASS, MISS, or n/a when there was nothing to compare."""
    return "n/a " if ok is None else "PASS" if ok else "MISS"


def _ratio_target(results: Results, rival: str, cells: list[tuple[int, int]], strict: bool) -> tuple[str, str]:
    """The verdict on messages/s ratios (what the issue asks), and the same on server CPU per message."""
    by_rate = {cell: median_ratio(results[cell], "tasklets", rival) for cell in cells}
    by_cpu = {cell: median_cpu_ratio(results[cell], "tasklets", rival) for cell in cells}
    verdicts = []
    for ratios in (by_rate, by_cpu):
        known = [r for r in ratios.values() if r is not None]
        ok = None if len(known) != len(ratios) or not known else all(r > 1 if strict else r >= 1 for r in known)
        verdicts.append(ok)
    rates = _range_details({cell: results[cell] for cell in cells}, "tasklets", rival)
    text = f"messages/s: {rates}; by server CPU per message [{verdict(verdicts[1])}]: {_details(by_cpu)}"
    return verdict(verdicts[0]), text


def targets(plain: Results, tls: Results, memory: dict[str, list[float | None]]) -> list[str]:
    """The issue's targets, one line each: verdict on messages/s, the CPU-per-message view beside it.

    Issue 17: tasklets at least as fast as uvloop streams in every cell; the
    distances to asyncio protocols and to the task floor are quoted, without
    a target.
    """
    lines = []
    mark, text = _ratio_target(plain, "uvloop-streams", list(plain), strict=False)
    lines.append(f"- [{mark}] tasklets ≥ uvloop streams in every cell ({text})")
    by_cpu = {cell: median_cpu_ratio(runs, "tasklets", "asyncio-protocols") for cell, runs in plain.items()}
    lines.append(
        f"- [info] tasklets / asyncio protocols, messages/s: {_range_details(plain, 'tasklets', 'asyncio-protocols')}"
        f"; by server CPU per message: {_details(by_cpu)}"
    )
    if any(TASK_FLOOR in runs for runs in plain.values()):
        lines.append(
            f"- [info] tasklets / the task floor, messages/s: {_range_details(plain, 'tasklets', TASK_FLOOR)}; "
            f"the task floor / asyncio protocols: {_range_details(plain, TASK_FLOOR, 'asyncio-protocols')}"
        )
    if any(BASELINE in runs for runs in plain.values()):
        lines.append(
            f"- [info] tasklets / its baseline, messages/s: {_range_details(plain, 'tasklets', BASELINE)}; "
            f"server CPU per message: {_cpu_range_details(plain, 'tasklets', BASELINE)}"
        )
    mark, text = _ratio_target(tls, "asyncio-streams", list(tls), strict=False)
    lines.append(f"- [{mark}] TLS echo: tasklets ≥ asyncio streams with ssl ({text})")
    ours = _median(memory.get("tasklets", []))
    theirs = _median(memory.get("asyncio-streams", []))
    ok = None if ours is None or theirs is None else ours <= theirs
    lines.append(
        f"- [{verdict(ok)}] memory per idle connection ≤ asyncio streams' "
        f"({_cell_text(ours, ',.0f')} B vs {_cell_text(theirs, ',.0f')} B)"
    )
    return lines


def available_kinds() -> tuple[list[str], list[str]]:
    """The servers that can run here, and notes on those that cannot."""
    kinds, notes = [], []
    for kind in ALL_KINDS:
        if kind == "tasklets":
            probe = subprocess.run(
                [sys.executable, "-c", "import tasklets; tasklets.start_server; tasklets.open_connection"],
                capture_output=True, check=False, timeout=60, env=CHILD_ENV,
            )  # fmt: skip
            if probe.returncode != 0:
                notes.append("tasklets: no tasklets.start_server yet; left out")
                continue
        if kind.startswith("uvloop") and importlib.util.find_spec("uvloop") is None:
            notes.append(f"{kind}: uvloop is not installed; left out")
            continue
        kinds.append(kind)
    return kinds, notes


def main(argv: list[str] | None = None) -> int:
    """Run the phases and print the markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run of about a minute")
    parser.add_argument("--profile", action="store_true", help="also profile the tasklets echo server")
    parser.add_argument("--profile-kind", choices=ALL_KINDS, default="tasklets", help="which server --profile profiles")
    parser.add_argument("--profile-cells", metavar="SIZExCONNS", nargs="+", default=["100x100", "16384x10"],
                        help="the loads --profile runs, e.g. 100x100 16384x10")  # fmt: skip
    parser.add_argument("--only", choices=("plain", "tls", "memory", "profile"), action="append",
                        help="run only these phases (repeatable)")  # fmt: skip
    parser.add_argument("--client", choices=("c", "uvloop"), default="c",
                        help="plain-TCP load client: compiled C (default, falls back to uvloop) or uvloop")  # fmt: skip
    parser.add_argument("--tasklets-path", metavar="DIR",
                        help="import tasklets from DIR (say, a snapshot of src/) in the servers")  # fmt: skip
    parser.add_argument("--baseline", metavar="DIR",
                        help="add the tasklets server imported from DIR (say, a snapshot of another commit's src/) "
                        "as a contender, interleaved in the same rounds: an A/B of two copies (plain TCP)")  # fmt: skip
    parser.add_argument("--tasklets-loop", choices=("default", "plain"), default="default",
                        help="the loop of the tasklets servers: run()'s default, or a plain tasklets Loop")  # fmt: skip
    parser.add_argument("--json", metavar="OUT", help="also write every raw measurement to OUT")
    parser.add_argument("--report-from", metavar="JSON", help="print the report of a --json run; run nothing")
    parser.add_argument("--rounds", type=int, help="override the number of interleaved rounds")
    parser.add_argument("--duration", type=float, help="override the counted seconds per run")
    args = parser.parse_args(argv)
    if args.report_from:
        with open(args.report_from) as f:
            render(json.load(f))
        return 0
    # SIGTERM unwinds like Ctrl-C, so that the children are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    cfg = QUICK if args.quick else FULL
    if args.rounds:
        cfg = dataclasses.replace(cfg, rounds=max(1, min(args.rounds, 50)))
    if args.duration:
        cfg = dataclasses.replace(cfg, duration=max(0.1, min(args.duration, 60.0)))
    global CHILD_ENV
    if args.tasklets_path:
        CHILD_ENV = dict(os.environ)
        CHILD_ENV["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.path.abspath(args.tasklets_path), os.environ.get("PYTHONPATH")) if p
        )
    global BASELINE_ENV, TASKLETS_LOOP
    TASKLETS_LOOP = args.tasklets_loop
    if args.baseline:
        BASELINE_ENV = dict(os.environ)
        BASELINE_ENV["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.path.abspath(args.baseline), os.environ.get("PYTHONPATH")) if p
        )
    phases = set(args.only or ["plain", "tls", "memory", *(["profile"] if args.profile else [])])
    kinds, notes = available_kinds()
    for note in notes:
        log(note)
    started = time.monotonic()
    load_before = os.getloadavg()
    plain: Results = {}
    tls: Results = {}
    memory: dict[str, list[float | None]] = {}
    profile = ""
    global C_CLIENT
    with tempfile.TemporaryDirectory(prefix="net-echo-") as tmp, children(tmp) as kids:
        C_CLIENT = build_c_client(tmp) if args.client == "c" else None
        client_name = "C (epoll), one process" if C_CLIENT else "uvloop + protocols, one process"
        if "plain" in phases:
            log("ping-pong echo, servers interleaved:")
            baseline = [BASELINE] if args.baseline and "tasklets" in kinds else []
            plain = throughput_phase(
                kids, [*kinds, *baseline, TASK_FLOOR, *([FLOOR] if C_CLIENT else [])], cfg.cells, cfg
            )
        if "tls" in phases:
            log("TLS ping-pong echo:")
            certs = make_certs(tmp)
            tls_kinds = [k for k in TLS_KINDS if k in kinds]
            tls = throughput_phase(kids, tls_kinds, cfg.tls_cells, cfg, certs)
        if "memory" in phases:
            log(f"memory per idle connection ({cfg.idle_conns} connections):")
            memory = memory_phase(kids, kinds, cfg)
        if "profile" in phases and args.profile_kind in kinds:
            log(f"profiling the {args.profile_kind} server:")
            profile_cells = [(int(c.split("x")[0]), int(c.split("x")[1])) for c in args.profile_cells]
            profile = profile_phase(kids, cfg, tmp, args.profile_kind, profile_cells)
    report = {
        "quick": args.quick,
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load": [load_before[0], os.getloadavg()[0]],
        "rounds": cfg.rounds,
        "duration": cfg.duration,
        "warmup": cfg.warmup,
        "idle_conns": cfg.idle_conns,
        "client": client_name,
        "elapsed": time.monotonic() - started,
        "tasklets_path": os.path.abspath(args.tasklets_path) if args.tasklets_path else None,
        "baseline": os.path.abspath(args.baseline) if args.baseline else None,
        "tasklets_loop": args.tasklets_loop,
        "notes": notes,
        "plain": _cells_to_json(plain),
        "tls": _cells_to_json(tls),
        "memory": memory,
        "profile": profile,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    render(report)
    return 0


def _cells_to_json(results: Results) -> dict[str, Any]:
    return {f"{size}x{conns}": runs for (size, conns), runs in results.items()}


def _cells_from_json(data: dict[str, Any]) -> Results:
    return {(int(key.split("x")[0]), int(key.split("x")[1])): runs for key, runs in data.items()}


def render(report: dict[str, Any]) -> None:
    """Print the markdown report of one run (live, or loaded back with ``--report-from``)."""
    plain = _cells_from_json(report["plain"])
    tls = _cells_from_json(report["tls"])
    memory = report["memory"]
    print(f"## TCP echo benchmark ({'quick' if report['quick'] else 'full'} run)\n")
    print(
        f"Python {report['python']}, {report['cores']} cores shared by server, client and whatever else runs "
        f"(load average {report['load'][0]:.1f} before, {report['load'][1]:.1f} after); {report['rounds']} "
        f"interleaved rounds of {report['duration']:g} s per server and cell (after {report['warmup']:g} s of "
        f"warm-up); plain-TCP client: {report['client']}; TLS and idle clients: uvloop + protocols; "
        f"{report['elapsed']:.0f} s in all.\n"
    )
    if report["tasklets_path"]:
        print(f"> tasklets imported from {report['tasklets_path']} (a snapshot), not the work tree\n")
    if report.get("baseline"):
        print(f"> tasklets (baseline): the same server with tasklets imported from {report['baseline']}\n")
    if report.get("tasklets_loop", "default") != "default":
        print(f"> the tasklets servers run on a {report['tasklets_loop']} Loop, not run()'s default\n")
    for note in report["notes"]:
        print(f"> {note}\n")
    if plain:
        print("### Plain TCP ping-pong\n")
        plain_kinds = list(next(iter(plain.values())).keys())
        ratios = [r for r in (("tasklets", "asyncio-protocols"), ("tasklets", "uvloop-streams")) if r[0] in plain_kinds]
        print(throughput_table(plain, plain_kinds, ratios) + "\n")
        if FLOOR in plain_kinds:
            print(
                "The C epoll server is the floor: the system calls every server makes, with nothing on top; it "
                "runs faster than one client can load it, so its messages/s is the client's limit. Its CPU time "
                "per message, subtracted from a Python server's, is that server's own overhead.\n"
            )
        if TASK_FLOOR in plain_kinds:
            print(
                "The task floor (`bench/_echo_task_floor.py`) is the least a server of tasklets' design can do in "
                "CPython: a task per connection resumed through a ready queue with a new future per read, and "
                "nothing else (no locks, thread checks, cancellation, timers, back-pressure or error handling). "
                "Where it is not above asyncio protocols, no server of this design can be.\n"
            )
    if tls:
        print("### TLS ping-pong\n")
        tls_kinds = list(next(iter(tls.values())).keys())
        tls_ratios = [("tasklets", "asyncio-streams")] if "tasklets" in tls_kinds else []
        print(throughput_table(tls, tls_kinds, tls_ratios) + "\n")
    if memory:
        print(f"### Memory per idle connection ({report['idle_conns']} connections, fresh server each)\n")
        print(memory_table(memory) + "\n")
    print("### Targets\n")
    print(
        "Verdicts are on messages/s as the issue asks; the same ratios on server CPU per message (less "
        "sensitive to a busy machine) follow each, with their own verdict.\n"
    )
    print("\n".join(targets(plain, tls, memory)) + "\n")
    if report["profile"]:
        print("### Profile\n")
        print(report["profile"])


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; children stopped")
        sys.exit(130)
