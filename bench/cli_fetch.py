"""``tasklets fetch`` benchmark (issues 5 and 16): the command line against ``xargs -P 64 curl`` and a thread pool.

Usage::

    python bench/cli_fetch.py              # 10,000 URLs (100,000 for memory), 3 rounds: about 10 minutes
    python bench/cli_fetch.py --quick      # 3,000 URLs (30,000 for memory), 2 rounds: about 3 minutes
    python bench/cli_fetch.py --rounds 3 --urls 20000
    python bench/cli_fetch.py --git-ref HEAD   # measure the committed tasklets, not src/ as it is now
    python bench/cli_fetch.py --skip curl --skip tasklets-10x --rounds 7   # tasklets against the threads, closely
    python bench/cli_fetch.py --baseline main   # an A/B: src/ against main's tasklets, in the same rounds

What it measures
----------------
A private nginx (``_nginx.py``: one process, ``127.0.0.1``, a free port,
``worker_processes 1``, no access log, keep-alive) serves one small file
(1 KiB). The URL list names it N times, each with its own query string
(``/small.bin?n=123``), one per line in a file. Each contender fetches the
whole list at concurrency 64, as a separate command, and must get every
body (checked: status lines, byte counts or the summary):

* **tasklets**: ``python -m tasklets fetch -c 64 --per-host 64 -i urls.txt
  --no-progress``, its per-URL lines going to a file (they are its output; a
  user reads them). ``--per-host 64``: every URL is on one host, and the
  peers open 64 connections to it; by default tasklets opens 8 (polite);
* **tasklets, default politeness** (for reference, no target): the same
  without ``--per-host``, so at most 8 connections;
* **xargs curl**: ``xargs -P 64 -n 1 curl -s -o /dev/null -w '%{http_code} ...'``,
  the shell idiom: one curl process (and one connection) per URL; most of
  its time is starting curl (fork, exec, loading libcurl's libraries);
* **xargs curl, batched** (for reference, no target): ``xargs -P 64 -n 100
  curl``, each curl fetching 100 URLs one after another over one keep-alive
  connection: what a user who knows curl well would write;
* **threads urllib**: a Python script, ``ThreadPoolExecutor(64)`` calling
  ``urllib.request.urlopen`` per URL (a new connection each: urllib sends
  ``Connection: close``), the blocking code tasklets replaces;
* **tasklets 10x**: tasklets again on ten times the URLs, for memory only;
* **tasklets baseline** (with ``--baseline REF``, no target): tasklets as
  committed at REF (``main``, say), interleaved with the others: an A/B of a
  change, on the same machine in the same rounds.

Wall time is measured around the whole command (interpreter start-up
included: it is what the user waits for). Peak RSS is GNU time's ``%M``
(the command's ``ru_maxrss``): for tasklets and the thread script, that one
process; for xargs, the largest single process of its tree (one curl or
xargs itself), though 64 curls run at once, so their total is ~64x that.

How it compares
---------------
The machine has 2 cores shared with other work. So the contenders run
interleaved, one sample each per round (the order rotated every round),
after an unrecorded warm-up of each (256 URLs); verdicts come from the **median of
per-round ratios** (tasklets / peer: below 1 means tasklets is faster),
shown with their range. Wall times are medians over rounds, for scale.

Targets (issue 16): tasklets at least 1.5x faster than xargs curl and than
the thread pool (wall ratio <= 0.67); tasklets' peak RSS on 10x the URLs
within 1.5x of its peak on 1x (memory stays flat: the input is streamed,
nothing is kept per URL).

The children import tasklets from a snapshot of the package copied when the
run starts (others edit ``src/`` while benchmarks run); ``--git-ref REF``
snapshots ``src/tasklets`` of a commit instead (``git archive``, read-only).
Each snapshot is byte-compiled once, as ``pip install`` does: without that,
under ``PYTHONDONTWRITEBYTECODE`` every tasklets command of the run would
compile its ~60 modules at start (about 0.35 s here), a cost no installed
copy pays and the thread script (stdlib only, compiled) does not pay either.
Everything stays on 127.0.0.1; every command is bounded in time; nginx is
stopped on every way out.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.util
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _nginx import Nginx, NginxUnavailable, nginx_server, pattern_bytes

CONCURRENCY = 64
FILE_NAME = "small.bin"
FILE_SIZE = 1024
#: Memory target: peak RSS on 10x the URLs over peak RSS on 1x.
MEMORY_TARGET = 1.5
#: Speed target: tasklets' wall time over a peer's (1.5x faster).
SPEED_TARGET = 1 / 1.5
#: GNU time, for the peak RSS of a command (see ``timed``).
TIME = "/usr/bin/time"
#: URLs of each contender's unrecorded warm-up (binaries and files into the page cache).
WARMUP_URLS = 256
#: A command that runs longer than this is taken for a hang.
COMMAND_TIMEOUT = 600.0

THREADS_SCRIPT = """
import concurrent.futures, sys, urllib.request

def one(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, len(response.read())

with open(sys.argv[1]) as listing:
    urls = [line.strip() for line in listing if line.strip()]
with concurrent.futures.ThreadPoolExecutor(64) as pool:
    results = list(pool.map(one, urls))
good = sum(1 for status, size in results if status == 200 and size == int(sys.argv[2]))
print(good)
sys.exit(0 if good == len(urls) else 1)
"""


class SampleFailed(RuntimeError):
    """A contender did not fetch every URL correctly."""


@dataclass
class Sample:
    wall: float  # seconds
    rss_kib: int  # peak RSS (ru_maxrss)


@dataclass
class Contender:
    name: str
    label: str
    listing: Path  # the URLs it fetches, one per line
    count: int
    run: Callable[[Path, int, Path], Sample]  # (listing, count, scratch directory)
    samples: list[Sample] = field(default_factory=list)

    def sample(self, out: Path) -> Sample:
        return self.run(self.listing, self.count, out)


def timed(argv: Sequence[str], *, env: dict[str, str], stdin: Path | None = None, stdout: Path | None = None) -> Sample:
    """Run ``argv``; its wall time and peak RSS. Raises SampleFailed on a non-zero exit.

    The peak RSS comes from ``/usr/bin/time -f %M``, not from our own
    ``wait4``: Linux carries a process's peak RSS across ``exec``, so a
    child forked from this (larger) Python would report at least our size.
    ``time`` is small, and the command it forks starts from that.
    """
    with contextlib.ExitStack() as stack:
        stdin_file = stack.enter_context(open(stdin, "rb")) if stdin else subprocess.DEVNULL
        stdout_file = stack.enter_context(open(stdout, "wb")) if stdout else subprocess.DEVNULL
        stderr_file = stack.enter_context(tempfile.TemporaryFile())
        rss_file = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "rss"
        command = [TIME, "-f", "%M", "-o", str(rss_file), *argv]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdin=stdin_file, stdout=stdout_file, stderr=stderr_file, env=env)
        try:
            status = process.wait(COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise SampleFailed(f"{argv[0]} ran for more than {COMMAND_TIMEOUT:.0f} s") from None
        wall = time.perf_counter() - started
        if status != 0:
            stderr_file.seek(0)
            raise SampleFailed(f"{' '.join(argv[:4])}... exited {status}: {stderr_file.read()[-800:]!r}")
        rss_kib = int(rss_file.read_text().split()[-1])
    return Sample(wall, rss_kib)


def write_urls(path: Path, nginx: Nginx, count: int) -> Path:
    base = nginx.url(FILE_NAME)
    with open(path, "w") as listing:
        for n in range(count):
            listing.write(f"{base}?n={n}\n")
    return path


def run_tasklets(env: dict[str, str], per_host: int | None = CONCURRENCY) -> Callable[[Path, int, Path], Sample]:
    def run(listing: Path, count: int, out: Path) -> Sample:
        report = out / "tasklets.txt"
        argv = [sys.executable, "-m", "tasklets", "fetch", "-c", str(CONCURRENCY), "--no-progress", "-i", str(listing)]
        if per_host is not None:
            argv += ["--per-host", str(per_host)]
        sample = timed(argv, env=env, stdout=report)
        lines = report.read_text().splitlines()
        summary = [line for line in lines if " URLs in " in line]
        if (
            not summary
            or not summary[-1].startswith(f"{count} URLs in ")
            or f"{count} loaded, 0 failed" not in summary[-1]
        ):
            raise SampleFailed(f"tasklets: unexpected summary {summary[-1:]}")
        if sum(1 for line in lines if line.startswith(f"Loaded {FILE_SIZE} bytes from ")) != count:
            raise SampleFailed("tasklets: not every URL was loaded")
        return sample

    return run


def run_curl(env: dict[str, str], per_process: int) -> Callable[[Path, int, Path], Sample]:
    def run(listing: Path, count: int, out: Path) -> Sample:
        codes = out / "curl.txt"
        write_out = "%{http_code} %{size_download}\n"
        argv = ["xargs", "-P", str(CONCURRENCY), "-n", str(per_process), "curl", "-s", "--noproxy", "*"]
        discard = ["-o", "/dev/null"] * per_process  # the n-th -o goes with the n-th URL, wherever they are
        sample = timed([*argv, "-w", write_out, *discard], env=env, stdin=listing, stdout=codes)
        good = sum(1 for line in codes.read_bytes().splitlines() if line == f"200 {FILE_SIZE}".encode())
        if good != count:
            raise SampleFailed(f"xargs curl: {good} good responses of {count}")
        return sample

    return run


def run_threads(env: dict[str, str], work: Path) -> Callable[[Path, int, Path], Sample]:
    script = work / "threads_urllib.py"
    script.write_text(THREADS_SCRIPT)

    def run(listing: Path, count: int, out: Path) -> Sample:
        result = out / "threads.txt"
        sample = timed([sys.executable, str(script), str(listing), str(FILE_SIZE)], env=env, stdout=result)
        if result.read_text().strip() != str(count):
            raise SampleFailed(f"threads urllib: {result.read_text().strip()} good responses of {count}")
        return sample

    return run


def make_contenders(
    env: dict[str, str],
    work: Path,
    nginx: Nginx,
    count: int,
    memory_count: int,
    baseline: tuple[str, dict[str, str]] | None = None,
) -> list[Contender]:
    small = write_urls(work / "urls.txt", nginx, count)
    large = write_urls(work / "urls-10x.txt", nginx, memory_count)
    extra = []
    if baseline is not None:
        ref, base_env = baseline
        extra = [Contender("tasklets-base", f"tasklets fetch as at {ref} (A/B)", small, count, run_tasklets(base_env))]
    return [
        Contender("tasklets", "tasklets fetch -c 64 --per-host 64", small, count, run_tasklets(env)),
        *extra,
        Contender("tasklets-polite", "tasklets fetch -c 64 (8 per host, ref.)", small, count, run_tasklets(env, None)),
        Contender("curl", "xargs -P 64 -n 1 curl", small, count, run_curl(env, 1)),
        Contender("curl-batched", "xargs -P 64 -n 100 curl (reference)", small, count, run_curl(env, 100)),
        Contender("threads", "ThreadPoolExecutor(64) + urllib", small, count, run_threads(env, work)),
        Contender("tasklets-10x", "tasklets fetch --per-host 64 (10x URLs)", large, memory_count, run_tasklets(env)),
    ]


def snapshot(directory: Path, git_ref: str | None, source: Path | None) -> Path:
    """Copy the tasklets package into ``directory/tasklets``; return ``directory`` (to put first on the path)."""
    if git_ref is not None:
        root = Path(__file__).resolve().parent.parent
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", "--format=tar", git_ref, "src/tasklets"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(directory / "git", filter="data")
        shutil.move(directory / "git" / "src" / "tasklets", directory / "tasklets")
    else:
        if source is None:
            spec = importlib.util.find_spec("tasklets")
            if spec is None or not spec.submodule_search_locations:
                raise SystemExit("tasklets is not installed: python -m pip install -e .")
            source = Path(next(iter(spec.submodule_search_locations)))
        shutil.copytree(source, directory / "tasklets", ignore=shutil.ignore_patterns("__pycache__"))
    if not compileall.compile_dir(directory / "tasklets", quiet=1):
        raise SystemExit(f"the snapshot of tasklets in {directory} does not compile")
    return directory


def check_snapshot(env: dict[str, str], directory: Path) -> None:
    """The children must import the snapshot, and it must work."""
    probe = subprocess.run(
        [sys.executable, "-c", "import tasklets, tasklets.cli._fetch; print(tasklets.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0 or not probe.stdout.strip().startswith(str(directory)):
        raise SystemExit(f"the snapshot of tasklets does not import cleanly:\n{probe.stdout}{probe.stderr[-1500:]}")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ratios(ours: Contender, theirs: Contender, what: Callable[[Sample], float]) -> list[float]:
    return [what(a) / what(b) for a, b in zip(ours.samples, theirs.samples)]


def describe(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def report(contenders: dict[str, Contender]) -> int:
    ours = contenders["tasklets"]
    print()
    print(f"{'contender':<36} {'URLs':>7} {'wall s':>8} {'req/s':>8} {'peak RSS MiB':>13} {'tasklets/it (wall)':>20}")
    for contender in contenders.values():
        wall = statistics.median(s.wall for s in contender.samples)
        rss = statistics.median(s.rss_kib for s in contender.samples) / 1024
        compared = contender.name not in ("tasklets", "tasklets-10x")
        versus = describe(ratios(ours, contender, lambda s: s.wall)) if compared else ""
        rss_note = " (largest process)" if contender.name.startswith("curl") else ""
        print(
            f"{contender.label:<36} {contender.count:>7,} {wall:>8.2f} {contender.count / wall:>8.0f} "
            f"{rss:>13.1f} {versus:>20}{rss_note}"
        )
    print()
    verdicts = []
    for name, label, target in (
        ("curl", "1.5x faster than xargs -P 64 -n 1 curl", SPEED_TARGET),
        ("threads", "1.5x faster than ThreadPoolExecutor(64)+urllib", SPEED_TARGET),
        ("curl-batched", "(reference) faster than xargs -n 100 curl", 1.0),
        ("tasklets-polite", "(reference) vs the default --per-host 8", 1.0),
        ("tasklets-base", "(reference) vs --baseline (the A/B)", 1.0),
    ):
        if name not in contenders:
            continue
        values = ratios(ours, contenders[name], lambda s: s.wall)
        verdicts.append((label, f"wall ratio <= {target:.2f}", describe(values), statistics.median(values) <= target))
    if "tasklets-10x" in contenders:
        memory = ratios(contenders["tasklets-10x"], ours, lambda s: s.rss_kib)
        verdicts.append(
            (
                f"memory flat ({contenders['tasklets-10x'].count:,} vs {ours.count:,} URLs)",
                f"RSS ratio <= {MEMORY_TARGET}",
                describe(memory),
                statistics.median(memory) <= MEMORY_TARGET,
            )
        )
    print(f"{'target':<46} {'criterion':<18} {'median [range]':>20}  verdict")
    for label, criterion, value, ok in verdicts:
        print(f"{label:<46} {criterion:<18} {value:>20}  {'PASS' if ok else 'MISS'}")
    return 0 if all(ok for label, *_, ok in verdicts if not label.startswith("(reference)")) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3,000 URLs (30,000 for memory)")
    parser.add_argument("--urls", type=int, help="URLs per sample (10,000; the memory run takes 10x)")
    parser.add_argument("--rounds", type=int, help="recorded rounds (3; 2, the least, with --quick)")
    parser.add_argument("--git-ref", metavar="REF", help="snapshot src/tasklets of this commit (git archive)")
    parser.add_argument("--tasklets-from", type=Path, metavar="DIR", help="snapshot this package directory")
    parser.add_argument("--baseline", metavar="REF", help="an A/B: also run tasklets as committed at REF (main, say)")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["curl", "curl-batched", "threads", "tasklets-polite", "tasklets-10x"],
        help="leave a contender out (repeat for more): more rounds of the others in the same time",
    )
    args = parser.parse_args(argv)
    count = args.urls or (3_000 if args.quick else 10_000)
    rounds = max(2, args.rounds or (2 if args.quick else 3))
    if shutil.which("curl") is None or shutil.which("xargs") is None:
        raise SystemExit("curl and xargs are needed: apt-get install -y curl")
    if not os.access(TIME, os.X_OK):
        raise SystemExit(f"{TIME} is needed for peak RSS: apt-get install -y time")

    with tempfile.TemporaryDirectory(prefix="tasklets-bench-cli-") as tmp:
        work = Path(tmp)
        (work / "snapshot").mkdir()
        path = snapshot(work / "snapshot", args.git_ref, args.tasklets_from)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH", "")]))
        env.pop("TASKLETS_DEBUG", None)
        check_snapshot(env, path)
        origin = f"git {args.git_ref}" if args.git_ref else str(args.tasklets_from or "the installed package")
        print(f"# tasklets: a snapshot of {origin} taken at {time.strftime('%H:%M:%S')}")
        baseline = None
        if args.baseline:
            (work / "baseline").mkdir()
            base_path = snapshot(work / "baseline", args.baseline, None)
            base_env = dict(
                env, PYTHONPATH=os.pathsep.join(filter(None, [str(base_path), os.environ.get("PYTHONPATH")]))
            )
            check_snapshot(base_env, base_path)
            baseline = (args.baseline, base_env)
            print(f"# tasklets-base: git {args.baseline}")
        print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; Python {sys.version.split()[0]}")
        try:
            with nginx_server({FILE_NAME: pattern_bytes(FILE_SIZE)}) as nginx:
                print(f"# nginx {nginx.version} on 127.0.0.1:{nginx.port}, one {FILE_SIZE}-byte file")
                print(f"# {count:,} URLs per sample, concurrency {CONCURRENCY}, {rounds} rounds after a warm-up")
                contenders = [
                    c for c in make_contenders(env, work, nginx, count, count * 10, baseline) if c.name not in args.skip
                ]
                out = work / "out"
                out.mkdir()
                warm_listing = write_urls(work / "urls-warm.txt", nginx, WARMUP_URLS)
                progress(f"warm-up: {WARMUP_URLS} URLs each")
                for contender in contenders:
                    if contender.name != "tasklets-10x":
                        contender.run(warm_listing, WARMUP_URLS, out)
                for round_number in range(rounds):
                    shift = round_number % len(contenders)
                    order = contenders[shift:] + contenders[:shift]
                    for contender in order:
                        sample = contender.sample(out)
                        contender.samples.append(sample)
                        progress(
                            f"round {round_number + 1}/{rounds}: {contender.name:<13} {sample.wall:7.2f} s "
                            f"{sample.rss_kib / 1024:7.1f} MiB"
                        )
        except NginxUnavailable as exc:
            raise SystemExit(f"{exc}\n(apt-get install -y nginx-light)") from None
        except SampleFailed as exc:
            raise SystemExit(f"a sample failed: {exc}") from None
        return report({c.name: c for c in contenders})


if __name__ == "__main__":
    sys.exit(main())
