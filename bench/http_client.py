"""HTTP client benchmark (issues 4 and 17): tasklets.http against aiohttp, httpx and urllib in threads.

Usage::

    python bench/http_client.py              # the full run (5 rounds; 5 minutes on a quiet machine)
    python bench/http_client.py --quick      # a few minutes (3 rounds, fewer requests)
    python bench/http_client.py --profile    # then cProfile the tasklets client on both files
    python bench/http_client.py --clients tasklets,aiohttp --rounds 7
    python bench/http_client.py --only large --concurrency 256      # one file, one concurrency
    python bench/http_client.py --tasklets-from /path/to/tasklets   # measure another copy of the package
    python bench/http_client.py --quick --only small --concurrency 64 \
        --clients tasklets,tasklets-verbs,tasklets-baseline --baseline /path/to/main/src/tasklets   # an A/B

What it measures
----------------
A private nginx (``_nginx.py``: one process, ``127.0.0.1``, keep-alive up to
100,000 requests per connection, no access log) serves two files made for
the run, of 1 KiB and 1 MiB. Every client fetches one file at concurrency C
through its keep-alive pool, C = 64 (every client) and 256 (tasklets,
aiohttp and the floor): 256 bodies of 1 MiB in flight exceed any CPU cache,
so a client that is fast only while its working set fits in cache shows it
on every machine.

* **tasklets**: ``tasklets.http.Client`` (C connections), C worker tasks
  (the same shape as the peers'); ``tasklets-map`` is the README's idiom,
  ``map_unordered(..., limit=C)`` over one spawned task per request.
* **aiohttp**: ``ClientSession`` with ``TCPConnector(limit=C)``, C worker
  coroutines, on asyncio's default loop.
* **httpx**: ``httpx.AsyncClient`` with ``Limits(C, C)``, C workers, on asyncio.
* **urllib threads**: ``urllib.request`` in a C-thread ``ThreadPoolExecutor``:
  the blocking code tasklets is meant to replace. urllib opens a new
  connection per request (it sends ``Connection: close``); ``threads
  keep-alive`` (``http.client``, one persistent connection per thread) is
  shown for reference. Neither has a target: how they fare depends on how
  the machine's scheduler shares the cores between threads, not on the
  library measured.
* **raw sockets (floor)**: not an HTTP client but the least a Python client
  of the usual shape can do here: C keep-alive sockets on one ``epoll``, each
  response read with ``recv_into`` into a buffer reused for every response of
  its connection, the head only searched for its end and ``Content-Length``,
  the body copied out as ``bytes`` (what every client must hand over) and
  compared with the file. Shown for reference; the 1 MiB target on CPU per
  request is stated against it.

Cells: requests/s on the 1 KiB file, MB/s (10^6 bytes) on the 1 MiB file.
One more cell, 1 MiB at 64 with every body decoded (``bytes.decode``) while
it is alive, as a user's code would: a second large object per body, which
is what decides how glibc's malloc serves and returns large blocks in a
fresh process (``tasklets/http/_body_buffers.py``); it is quoted, without a
target.

Every sample is the first and only client of a fresh interpreter, as a user
meets it: nothing runs in that process before it (no throwaway client, no
allocator tuning). Its first batch (2C requests: the client made, the
connections opened, the first bodies received) and then its steady batch
are timed apart, and both are reported: client CPU time per request
(``time.process_time``) and minor page faults per request (``getrusage``: a
body whose memory is faulted in anew costs 256 per MiB, whatever the
machine's speed or load). Every response must have status 200 and a body
equal to the file, or the sample fails: a broken client cannot look fast.

How it compares
---------------
The clients run interleaved, one sample each per round (the order rotated
every round), after one short unrecorded warm-up round; the verdicts come
from the **median of per-round ratios** tasklets / peer (higher is better
for tasklets here), with their range over rounds. Absolute figures are
medians over rounds, for scale. nginx's CPU per request
(``/proc/<pid>/schedstat``) is shown too. On a shared machine, wall-clock
speed moves with the load: ``--cpu-time`` takes the speed ratios (and their
verdicts) from client CPU per request instead. Note that a 64-thread client
gets a larger share of busy cores than a one-thread event loop, which
flatters the thread pools' throughput.

Targets (issue 17), at concurrency 64 and 256 alike, on the steady batch:

* 1 KiB: tasklets req/s >= 1.3x aiohttp's;
* 1 MiB: tasklets MB/s >= 1.0x aiohttp's, and tasklets' client CPU per
  request <= 1.5x the raw-socket floor's.

The header names the CPU (model, cache sizes) and the load average before
and after.

The children import tasklets from a snapshot of the package copied when the
run starts (``--no-snapshot`` to import ``src/`` as it is): others edit
``src/`` while benchmarks run, and all rounds must measure the same code.

Everything stays on 127.0.0.1, every sample is bounded in time
(``Config.sample_timeout``: a hung client fails the run with its stderr), and
nginx and every child are stopped on exit, errors and Ctrl-C included.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _http_clients import RUNNERS, USE, Sample  # noqa: E402
from _http_profile import profile_client  # noqa: E402
from _nginx import Nginx, NginxUnavailable, die_with_parent, nginx_server, pattern_bytes  # noqa: E402
from _run_env import cpu_description, installed, snapshot_tasklets  # noqa: E402

SMALL, LARGE = "small.bin", "large.bin"
#: The cells: file, concurrency, what the caller does with each body, and the clients measured (None: all).
CELLS: tuple[tuple[str, int, str, tuple[str, ...] | None], ...] = (
    (SMALL, 64, "", None),
    (SMALL, 256, "", ("tasklets", "aiohttp", "raw-floor")),
    (LARGE, 64, "", None),
    (LARGE, 256, "", ("tasklets", "aiohttp", "raw-floor")),
    (LARGE, 64, "decode", ("tasklets", "aiohttp", "raw-floor")),
)
CONCURRENCIES = sorted({concurrency for _, concurrency, _, _ in CELLS})
#: Set in the children's environment to the snapshot of tasklets they must import.
SNAPSHOT_ENV = "TASKLETS_BENCH_SNAPSHOT"
SIZES = {SMALL: 1024, LARGE: 1024 * 1024}

ALL_CLIENTS = (
    "tasklets", "tasklets-map", "tasklets-verbs", "tasklets-baseline", "aiohttp", "httpx", "urllib-threads",
    "threads-keepalive", "raw-floor",
)  # fmt: skip
#: Run only when named (--clients): the verbs (client.get + body()), and tasklets from --baseline (an A/B).
OPTIONAL_CLIENTS = ("tasklets-verbs", "tasklets-baseline")
LABELS = {
    "tasklets": "tasklets (C workers)",
    "tasklets-map": "tasklets map_unordered",
    "tasklets-verbs": "tasklets client.get + body()",
    "tasklets-baseline": "tasklets from --baseline",
    "aiohttp": "aiohttp (asyncio)",
    "httpx": "httpx (asyncio)",
    "urllib-threads": "urllib, C threads",
    "threads-keepalive": "http.client keep-alive, C thr",
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
    cpu_time: bool = False  # speed ratios from client CPU per request, not wall time

    def requests(self, client: str, name: str, concurrency: int) -> int:
        """Timed requests per sample for ``client`` on file ``name`` at ``concurrency``."""
        small_div, large_div = SLOW_CLIENTS.get(client, (1, 1))
        if name == SMALL:
            return max(concurrency, self.small_requests // small_div)
        return max(concurrency, self.large_requests // large_div, 4 * concurrency)  # 4 bodies per connection


def warmup_requests(concurrency: int) -> int:
    """Requests of the untimed batch that opens the connections inside each sample."""
    return 2 * concurrency


FULL = Config(rounds=5, small_requests=20_000, large_requests=500, sample_timeout=180.0)
QUICK = Config(rounds=3, small_requests=5_000, large_requests=300, sample_timeout=60.0)


def child_main(args: argparse.Namespace) -> None:
    """Run one sample in this (fresh) interpreter; print it as JSON on the last line."""
    snapshot = os.environ.get(SNAPSHOT_ENV)
    if snapshot and args.child.startswith("tasklets"):
        import tasklets

        if not tasklets.__file__ or not tasklets.__file__.startswith(snapshot):
            raise SystemExit(f"tasklets imported from {tasklets.__file__}, not from the snapshot {snapshot}")
    expected = pattern_bytes(args.size, seed=args.size)
    USE["body"] = args.use
    runner = RUNNERS[args.child]
    if args.profile_to:
        profiler = cProfile.Profile()
        profiler.enable()
        sample = runner(args.url, expected, args.requests, args.warmup, args.concurrency)
        profiler.disable()
        profiler.dump_stats(args.profile_to)
    else:
        sample = runner(args.url, expected, args.requests, args.warmup, args.concurrency)
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
    baseline_env: dict[str, str] | None = None  # the children's environment for "tasklets-baseline"

    def run_sample(
        self,
        client: str,
        name: str,
        concurrency: int,
        requests: int,
        warmup: int,
        profile_to: str = "",
        use: str = "",
    ) -> tuple[Sample, float]:
        """Run one client once in a fresh interpreter; the sample and nginx's CPU seconds per request served."""
        command = [
            sys.executable, str(Path(__file__).resolve()), "--child", client, "--url", self.nginx.url(name),
            "--size", str(SIZES[name]), "--requests", str(requests), "--warmup", str(warmup),
            "--concurrency", str(concurrency), "--use", use,
        ]  # fmt: skip
        if profile_to:
            command += ["--profile-to", profile_to]
        what = f"{client} on {name} at concurrency {concurrency}"
        env = self.env
        if client == "tasklets-baseline":
            if self.baseline_env is None:
                raise SampleFailed("tasklets-baseline needs --baseline DIR (a tasklets package directory)")
            env = self.baseline_env
        nginx_cpu0 = self.nginx.cpu_seconds()
        with subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=die_with_parent,
        ) as process:
            try:
                out, err = process.communicate(timeout=self.config.sample_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
                raise SampleFailed(
                    f"{what} hung: no result within {self.config.sample_timeout:.0f} s\n{err[-3000:]}"
                ) from None
            except BaseException:  # Ctrl-C, ...: the child goes too
                process.kill()
                process.wait()
                raise
        nginx_cpu = self.nginx.cpu_seconds() - nginx_cpu0
        if process.returncode != 0:
            raise SampleFailed(f"{what} failed (exit {process.returncode}):\n{err[-3000:]}")
        sample = Sample(**json.loads(out.strip().splitlines()[-1]))
        if sample.requests != requests or sample.nbytes != requests * SIZES[name]:
            raise SampleFailed(f"{what}: {sample.nbytes} bytes for {sample.requests} requests")
        return sample, nginx_cpu / (requests + warmup)  # nginx served the warm-up too


@dataclass
class Cell:
    """The samples of every client on one file at one concurrency, round by round."""

    name: str
    concurrency: int
    use: str = ""
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    nginx_cpu: dict[str, list[float]] = field(default_factory=dict)  # seconds per request

    @property
    def title(self) -> str:
        decoded = ", decoded" if self.use == "decode" else ""
        return f"{'1 KiB' if self.name == SMALL else '1 MiB'} x {self.concurrency}{decoded}"

    def rate(self, sample: Sample) -> float:
        """Requests/s on the small file, MB/s (10^6 bytes) on the large one."""
        if self.name == SMALL:
            return sample.requests / sample.seconds
        return sample.nbytes / sample.seconds / 1e6

    def rates(self, client: str) -> list[float]:
        """The client's figure in every round."""
        return [self.rate(s) for s in self.samples[client]]

    def speeds(self, client: str, cpu_time: bool) -> list[float]:
        """What speed ratios compare, every round: the figure, or with ``cpu_time`` requests per CPU second."""
        if cpu_time:
            return [s.requests / s.cpu for s in self.samples[client]]
        return self.rates(client)

    def cpu_per_request(self, client: str) -> list[float]:
        """The client's CPU seconds per request in every round."""
        return [s.cpu / s.requests for s in self.samples[client]]

    def first_cpu_per_request(self, client: str) -> list[float]:
        """The client's CPU seconds per request of its first batch (client made, connections opened), every round."""
        return [s.first_cpu / s.first_requests for s in self.samples[client] if s.first_requests]


def progress(message: str) -> None:
    """A progress note on stderr (the tables go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(bench: Bench, name: str, concurrency: int, use: str, clients: Sequence[str]) -> Cell:
    """Interleaved rounds of every client on file ``name``, after one short unrecorded warm-up round."""
    config = bench.config
    cell = Cell(name, concurrency, use, {c: [] for c in clients}, {c: [] for c in clients})
    for client in clients:  # warm-up: imports into the page cache, nginx's open-file cache
        bench.run_sample(client, name, concurrency, requests=concurrency, warmup=concurrency, use=use)
    for number in range(config.rounds):
        shift = number % len(clients)
        order = list(clients[shift:]) + list(clients[:shift])
        for client in order:
            requests = config.requests(client, name, concurrency)
            sample, nginx_cpu = bench.run_sample(
                client, name, concurrency, requests, warmup_requests(concurrency), use=use
            )
            cell.samples[client].append(sample)
            cell.nginx_cpu[client].append(nginx_cpu)
        figures = ", ".join(f"{c} {cell.rate(cell.samples[c][-1]):,.0f}" for c in clients)
        progress(f"{cell.title} round {number + 1}/{config.rounds}: {figures}")
    return cell


@dataclass
class Verdict:
    """One target: the measure, the ratio (median [min-max]) and whether it passed."""

    measure: str
    ratio: float
    low: float
    high: float
    target: str
    passed: bool


@dataclass(frozen=True)
class Target:
    """``ours`` against ``peer`` on ``what`` ("rate": ours/peer, higher is better; "cpu": CPU per request,
    ours/peer, lower is better; "rate-at-most": ours/peer, the peer must keep up): the median of per-round
    ratios must be >= (rate) or <= (cpu, rate-at-most) ``bound``."""

    peer: str
    what: str
    bound: float
    inverse: bool = False  # the ratio is peer / tasklets: the verbs against urlopen + read()

    def ratios(self, cell: Cell, cpu_time: bool = False) -> list[float]:
        if self.what in ("rate", "rate-at-most"):
            pairs = zip(cell.speeds("tasklets", cpu_time), cell.speeds(self.peer, cpu_time), strict=True)
        else:
            pairs = zip(cell.cpu_per_request("tasklets"), cell.cpu_per_request(self.peer), strict=True)
        if self.inverse:
            return [theirs / ours for ours, theirs in pairs if ours]
        return [ours / theirs for ours, theirs in pairs if theirs]

    def judge(self, cell: Cell, cpu_time: bool = False) -> Verdict | None:
        values = self.ratios(cell, cpu_time)
        if not values:
            return None
        median = statistics.median(values)
        passed = median >= self.bound if self.what == "rate" else median <= self.bound
        sign = ">=" if self.what == "rate" else "<="
        measure = f"{cell.title}: " + (
            (f"{'CPU-time ' if cpu_time else ''}speed vs {LABELS[self.peer]}")
            if self.what != "cpu"
            else f"CPU/req vs {LABELS[self.peer]}"
        )
        if self.what == "rate-at-most":
            passed, sign = median <= self.bound, "<="
        if self.inverse:
            kind = f"{'CPU-time ' if cpu_time else ''}speed" if self.what == "rate" else "CPU/req"
            measure = f"{cell.title}: {kind}, {self.peer} / tasklets"
        return Verdict(measure, median, min(values), max(values), f"{sign} {self.bound:.3g}", passed)


#: Issue 17's targets, the same at every concurrency.
TARGETS: dict[str, list[Target]] = {
    SMALL: [Target("aiohttp", "rate", 1.3)],
    LARGE: [Target("aiohttp", "rate", 1.0), Target("raw-floor", "cpu", 1.5)],
}
# Issue 14's, when their clients run: the session's features cost nothing when unused (within 3 % of the
# --baseline copy, main's say), and the verbs (client.get + body()) within 5 % of urlopen + read(): verbs /
# urlopen, in CPU per request (what a shared machine disturbs least) and in speed.
for _targets in TARGETS.values():
    _targets += [Target("tasklets-baseline", "rate", 0.97), Target("tasklets-verbs", "cpu", 1.05, inverse=True)]
    _targets.append(Target("tasklets-verbs", "rate", 0.95, inverse=True))


def report(cell: Cell, clients: Sequence[str], config: Config) -> list[Verdict]:
    """Print the table of one cell; return its verdicts."""
    small = cell.name == SMALL
    unit = "req/s" if small else "MB/s"
    title = f"{'1 KiB GET: requests/s' if small else '1 MiB GET: MB/s'}, concurrency {cell.concurrency}"
    if cell.use == "decode":
        title += ", every body decoded (bytes.decode) while it is alive"
    print(
        f"\n== {title}  (keep-alive except urllib, {config.rounds} rounds, first client of a fresh process "
        "per sample, every body verified)"
    )
    print(
        f"   {'client':<32} {'requests':>8} {unit:>9} {'CPU us/req':>11} {'faults/req':>10} {'nginx us/req':>12}   "
        f"{'speed tasklets/this':<24}  {'CPU/req this/tasklets':<21}   "
        "first batch: CPU us/req faults/req"
    )
    base = "tasklets" if "tasklets" in clients else None
    for client in clients:
        samples = cell.samples[client]
        rate = statistics.median(cell.rates(client))
        cpu_us = statistics.median(cell.cpu_per_request(client)) * 1e6
        faults = statistics.median(s.faults / s.requests for s in samples)
        first_cpu = statistics.median(cell.first_cpu_per_request(client)) * 1e6
        first_faults = statistics.median(s.first_faults / max(1, s.first_requests) for s in samples)
        nginx_us = statistics.median(cell.nginx_cpu[client]) * 1e6
        ratio_text = cpu_text = ""
        if base and client != base:
            values = Target(client, "rate", 0).ratios(cell)
            ratio_text = f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"
            cpu_ratios = [1 / r for r in Target(client, "cpu", 0).ratios(cell) if r]
            if cpu_ratios:
                cpu_text = f"{statistics.median(cpu_ratios):.2f} [{min(cpu_ratios):.2f}-{max(cpu_ratios):.2f}]"
        print(
            f"   {LABELS[client].replace('C ', f'{cell.concurrency} ', 1):<32} {samples[0].requests:>8,} "
            f"{rate:>9,.0f} {cpu_us:>11.1f} {faults:>10.1f} {nginx_us:>12.1f}   {ratio_text:<24}  {cpu_text:<21}   "
            f"{first_cpu:>10.1f} {first_faults:>10.1f}",
            flush=True,
        )
    if base:
        quoted = []
        for client in clients:
            pairs = zip(cell.first_cpu_per_request(base), cell.first_cpu_per_request(client), strict=False)
            values = [ours / theirs for ours, theirs in pairs if theirs]
            if client != base and values:
                quoted.append(
                    f"{LABELS[client].split(' (')[0]} {statistics.median(values):.2f} "
                    f"[{min(values):.2f}-{max(values):.2f}]"
                )
        if quoted:
            print(
                f"   first batch ({warmup_requests(cell.concurrency)} requests, client made and connections "
                f"opened), CPU/req tasklets/this: {'; '.join(quoted)}"
            )
    verdicts = []
    if base and not cell.use:  # the targets are on the plain cells; the others are quoted
        for target in TARGETS[cell.name]:
            if target.peer in clients:
                verdict = target.judge(cell, config.cpu_time)
                if verdict is not None:
                    verdicts.append(verdict)
    return verdicts


def summary(verdicts: Sequence[Verdict]) -> int:
    """Print every target and its verdict; return how many missed."""
    print("\n== Targets (tasklets / peer: median of per-round ratios [min-max])")
    missed = 0
    for v in verdicts:
        missed += not v.passed
        print(
            f"   {v.measure:<52} {v.ratio:6.2f} [{v.low:.2f}-{v.high:.2f}]  "
            f"target {v.target:<6} {'PASS' if v.passed else 'MISS'}"
        )
    print(f"   {len(verdicts) - missed} PASS, {missed} MISS", flush=True)
    return missed


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line; run the child, or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, fewer requests (a few minutes)")
    parser.add_argument("--rounds", type=int, help="rounds to record (default 5, 3 with --quick)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="speed ratios (and their verdicts) from client CPU time per request rather than wall time: "
        "steadier on a shared machine",
    )
    parser.add_argument("--clients", help=f"comma-separated subset of {','.join(ALL_CLIENTS)}")
    parser.add_argument("--only", choices=("small", "large"), help="just one of the two files")
    parser.add_argument(
        "--concurrency", help=f"comma-separated subset of {','.join(map(str, CONCURRENCIES))} (default: all)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the tasklets client afterwards")
    parser.add_argument(
        "--no-snapshot", action="store_true", help="children import tasklets from src/ as it is when they start"
    )
    parser.add_argument(
        "--tasklets-from", type=Path, metavar="DIR", help="snapshot this tasklets package directory instead"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="an A/B: the client 'tasklets-baseline' runs this tasklets package directory (main's, say)",
    )
    parser.add_argument("--child", choices=ALL_CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", default="", help=argparse.SUPPRESS)
    parser.add_argument("--use", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.concurrency = int(args.concurrency)
        child_main(args)
        return 0

    config = QUICK if args.quick else FULL
    if args.rounds:
        config = dataclasses.replace(config, rounds=args.rounds)
    if args.cpu_time:
        config = dataclasses.replace(config, cpu_time=True)
    default = tuple(c for c in ALL_CLIENTS if c not in OPTIONAL_CLIENTS)
    if args.baseline:
        default += ("tasklets-baseline",)
    clients = default if not args.clients else tuple(c.strip() for c in args.clients.split(","))
    unknown = set(clients) - set(ALL_CLIENTS)
    if unknown:
        parser.error(f"unknown clients: {', '.join(sorted(unknown))}")
    concurrencies = list(CONCURRENCIES) if not args.concurrency else [int(c) for c in args.concurrency.split(",")]
    if set(concurrencies) - set(CONCURRENCIES):
        parser.error(f"--concurrency: choose among {', '.join(map(str, CONCURRENCIES))}")
    names = {"small": (SMALL,), "large": (LARGE,), None: (SMALL, LARGE)}[args.only]
    cells = [cell for cell in CELLS if cell[0] in names and cell[1] in concurrencies]

    import importlib.metadata as md

    versions = ", ".join(f"{p} {md.version(p)}" for p in ("aiohttp", "httpx", "httptools") if installed(p))
    print(f"# tasklets HTTP client benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, {versions}")
    print(f"# CPU: {cpu_description()}")
    load_before = os.getloadavg()[0]
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
            baseline_env = None
            if args.baseline:
                base_dir = Path(snap) / "baseline"
                base_dir.mkdir()
                base_path = snapshot_tasklets(base_dir, args.baseline)
                baseline_env = dict(env, PYTHONPATH=os.pathsep.join([str(base_path), os.environ.get("PYTHONPATH", "")]))
                baseline_env[SNAPSHOT_ENV] = str(base_path)
                print(f"# tasklets-baseline: a snapshot of {args.baseline} taken at {time.strftime('%H:%M:%S')}")
            print(f"# nginx {nginx.version} pid {nginx.process.pid} on 127.0.0.1:{nginx.port} (one process)")
            bench = Bench(nginx, config, env, baseline_env)
            verdicts: list[Verdict] = []
            for name, concurrency, use, wanted in cells:
                here = [c for c in clients if wanted is None or c in wanted or c in OPTIONAL_CLIENTS]
                if here:
                    cell = measure(bench, name, concurrency, use, here)
                    verdicts += report(cell, here, config)
            print(f"\n# load average (1 min): {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
            missed = summary(verdicts)
            if args.profile:
                for name in names:
                    count = bench.config.requests("tasklets", name, concurrencies[0])
                    warmup = warmup_requests(concurrencies[0])
                    run = functools.partial(bench.run_sample, "tasklets", name, concurrencies[0], count, warmup)
                    what = f"{name} ({SIZES[name]:,} bytes), concurrency {concurrencies[0]}"
                    profile_client(run, what, count + warmup)
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


if __name__ == "__main__":
    sys.exit(main())
