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

The parts: ``_echo_config.py`` names the servers and sizes a run,
``_echo_procs.py`` starts, reads and stops the processes,
``_echo_profile.py`` is the ``--profile`` phase and ``_echo_report.py`` the
tables and targets; this file runs the phases and prints the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from _echo_config import ALL_KINDS, BASELINE, FLOOR, FULL, QUICK, TASK_FLOOR, TLS_KINDS, Config
from _echo_procs import (
    CLIENT_SCRIPT,
    LAUNCH,
    Children,
    build_c_client,
    children,
    log,
    make_certs,
    run_pingpong,
    start_server,
)
from _echo_profile import profile_phase
from _echo_report import Results, fmt_rate, memory_table, targets, throughput_table
from _harness import rss_bytes

# -- the phases -------------------------------------------------------------------------------


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
                    + "  ".join(f"{k}={fmt_rate(cell[k][-1])}" for k in kinds)
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


def available_kinds() -> tuple[list[str], list[str]]:
    """The servers that can run here, and notes on those that cannot."""
    kinds, notes = [], []
    for kind in ALL_KINDS:
        if kind == "tasklets":
            probe = subprocess.run(
                [sys.executable, "-c", "import tasklets; tasklets.start_server; tasklets.open_connection"],
                capture_output=True, check=False, timeout=60, env=LAUNCH.child_env,
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
    if args.tasklets_path:
        LAUNCH.child_env = _environ_with(args.tasklets_path)
    LAUNCH.tasklets_loop = args.tasklets_loop
    if args.baseline:
        LAUNCH.baseline_env = _environ_with(args.baseline)
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
    with tempfile.TemporaryDirectory(prefix="net-echo-") as tmp, children(tmp) as kids:
        LAUNCH.c_client = build_c_client(tmp) if args.client == "c" else None
        client_name = "C (epoll), one process" if LAUNCH.c_client else "uvloop + protocols, one process"
        if "plain" in phases:
            log("ping-pong echo, servers interleaved:")
            baseline = [BASELINE] if args.baseline and "tasklets" in kinds else []
            plain = throughput_phase(
                kids, [*kinds, *baseline, TASK_FLOOR, *([FLOOR] if LAUNCH.c_client else [])], cfg.cells, cfg
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
            profile_cells = [_cell(text) for text in args.profile_cells]
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


def _environ_with(directory: str) -> dict[str, str]:
    """This process's environment with ``directory`` first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.abspath(directory), os.environ.get("PYTHONPATH")) if p)
    return env


def _cells_to_json(results: Results) -> dict[str, Any]:
    return {f"{size}x{conns}": runs for (size, conns), runs in results.items()}


def _cells_from_json(data: dict[str, Any]) -> Results:
    return {_cell(key): runs for key, runs in data.items()}


def _cell(text: str) -> tuple[int, int]:
    """``SIZExCONNS`` (how --profile-cells and the JSON name a cell) as ``(size, conns)``."""
    size, conns = text.split("x")
    return int(size), int(conns)


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
