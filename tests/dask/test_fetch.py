"""``tasklets fetch --dask``: the URL stream sharded across a real local cluster.

Every URL is checked one by one: reported exactly once, with the size its
path implies. Output formats, summary and exit status are those of a local
run (compared line by line, timings aside).

The command-line tests run ``python -m tasklets fetch --dask ...`` as a user
does: against the module's cluster (its scheduler's address), a scheduler
that is not there, or a cluster of its own (``local:N``), and compare with
the same command run without ``--dask``. Nothing sleeps: they wait, bounded,
on the child's output lines, on the test server's counters (``/held/``
requests are kept in flight until a test lets them go) and on the processes.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")  # a dependency of distributed

from _dask_support import BOUND, Server, body_of, size_of  # noqa: E402

import tasklets  # noqa: E402
from cli._cli_support import LiveChild, cli_env, command  # noqa: E402
from tasklets.cli._dask_fetch import parse_dask_target, run_dask_fetch  # noqa: E402
from tasklets.cli._fetch import FetchOptions, UrlSource, fetch_all  # noqa: E402
from tasklets.cli._names import safe_file_name  # noqa: E402
from tasklets.cli._report import Reporter, Summary  # noqa: E402


class PeakReporter(Reporter):
    """The plain reporter, into memory, remembering the most URLs ever in flight."""

    def __init__(self, *, as_json: bool) -> None:
        self.stream = io.StringIO()
        super().__init__(Summary(), as_json=as_json, out=self.stream, err=self.stream)
        self.peak = 0

    def started(self, url: str) -> None:
        super().started(url)
        self.peak = max(self.peak, self.summary.in_flight)

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()


def _sharded(client: Any, source: UrlSource, *, as_json: bool = True, **kwargs: Any) -> tuple[int, PeakReporter]:
    reporter = PeakReporter(as_json=as_json)
    options = kwargs.pop("options", FetchOptions(concurrency=16, timeout=BOUND))
    status = run_dask_fetch(None, source, options, reporter, client=client, **kwargs)  # type: ignore[arg-type]
    return status, reporter


def _check_every_url(server: Server, lines: list[str], count: int) -> None:
    """One JSON line per URL /n/0 ... /n/<count-1>, each once, each with its own size."""
    records = [json.loads(line) for line in lines]
    urls = Counter(record["url"] for record in records)
    expected = {server.url(f"/n/{i}") for i in range(count)}
    assert set(urls) == expected, f"missing {len(expected - set(urls))}, unexpected {set(urls) - expected}"
    assert [url for url, n in urls.items() if n > 1] == []
    for record in records:
        number = int(record["url"].rsplit("/", 1)[1])
        assert (record["status"], record["bytes"], record["error"]) == (200, size_of(number), None), record


@pytest.fixture
def refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/nowhere"


class TestShardedFetch:
    def test_every_url_once_with_its_own_result(self, dask_client, server) -> None:
        count = 2000
        source = UrlSource([server.url(f"/n/{i}") for i in range(count)], None)
        status, reporter = _sharded(dask_client, source, batch_size=50, max_in_flight=6)
        assert status == 0
        _check_every_url(server, reporter.lines(), count)
        assert (reporter.summary.done, reporter.summary.failed) == (count, 0)
        assert reporter.summary.bytes == sum(size_of(i) for i in range(count))
        assert reporter.peak <= 6 * 50  # bounded: never more batches out than allowed

    def test_urls_streamed_from_a_file(self, dask_client, server, tmp_path: Path) -> None:
        count = 700
        listing = tmp_path / "urls.txt"
        listing.write_text("".join(f"{server.url(f'/n/{i}')}\n" for i in range(count)) + "# a comment\n\n")
        source = UrlSource([], open(listing, encoding="utf-8"), close_input=True, ahead=64)
        status, reporter = _sharded(dask_client, source, batch_size=32, max_in_flight=3)
        assert status == 0 and source.error is None
        _check_every_url(server, reporter.lines(), count)
        assert reporter.peak <= 3 * 32

    def test_same_lines_summary_and_status_as_a_local_run(self, dask_client, server, refused_url) -> None:
        urls = [
            *(server.url(f"/n/{i}") for i in range(40)),
            server.url("/status/404"),
            server.url("/status/500"),
            refused_url,
            "http://",
        ]
        status, sharded = _sharded(dask_client, UrlSource(urls, None), as_json=False, batch_size=7)
        local = PeakReporter(as_json=False)
        options = FetchOptions(concurrency=16, timeout=BOUND)
        local_status = tasklets.run(fetch_all, UrlSource(urls, None), options, local)
        assert status == local_status == 1

        def timeless(lines: list[str]) -> list[str]:
            return sorted(re.sub(r"in \d+ ms$", "in ? ms", line) for line in lines)

        sharded.finish()
        local.finish()
        results_sharded = timeless(sharded.lines()[:-4])  # the summary: a head line, and 3 kinds of failure
        assert results_sharded == timeless(local.lines()[:-4])
        assert len(results_sharded) == len(urls)

        def untimed(lines: list[str]) -> list[str]:  # kinds of failure seen once each come in either order
            return sorted(re.sub(r"in [\d.]+ s \(\d+ requests/s\)", "", line) for line in lines)

        assert untimed(sharded.lines()[-4:]) == untimed(local.lines()[-4:])

    @pytest.mark.slow
    def test_twenty_thousand_urls(self, dask_client, server) -> None:
        count = 20_000
        source = UrlSource([server.url(f"/n/{i}") for i in range(count)], None)
        status, reporter = _sharded(
            dask_client, source, options=FetchOptions(concurrency=32, timeout=BOUND), max_in_flight=8
        )
        assert status == 0
        _check_every_url(server, reporter.lines(), count)
        assert reporter.peak <= 8 * 128


class TestCommandLine:
    def test_dask_local_cluster_from_the_command_line(self, server, tmp_path: Path) -> None:
        count = 300
        listing = tmp_path / "urls.txt"
        listing.write_text("".join(f"{server.url(f'/n/{i}')}\n" for i in range(count)))
        done = subprocess.run(
            [sys.executable, "-m", "tasklets", "fetch", "--dask", "local:2", "-i", str(listing), "--json", "-c", "8"],
            capture_output=True,
            text=True,
            timeout=BOUND * 2,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        _check_every_url(server, done.stdout.splitlines(), count)
        assert f"{count} URLs in" in done.stderr and f"{count} loaded, 0 failed" in done.stderr

    @pytest.mark.parametrize("target", ["local:0", "local:x", "local", ""])
    def test_a_bad_target_is_a_usage_error(self, target) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "tasklets", "fetch", "--dask", target, "http://127.0.0.1:1/"],
            capture_output=True,
            text=True,
            timeout=BOUND,
            check=False,
        )
        assert done.returncode == 2
        assert "--dask" in done.stderr

    def test_targets(self) -> None:
        assert parse_dask_target("local:3").local_workers == 3
        assert parse_dask_target("tcp://10.0.0.1:8786").address == "tcp://10.0.0.1:8786"
        assert str(parse_dask_target(" local:2 ")) == "local:2"


# -- the command line against a cluster ------------------------------------------------------------------------------

_REPR = r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""  # a str's repr: the URL, escaped
LOADED = re.compile(rf"^Loaded (\d+) bytes from {_REPR} in (\d+) ms$")
BROKE = re.compile(rf"^Something broke for {_REPR} \((\w+): (.*)\)$")
SUMMARY = re.compile(
    r"^(Interrupted: )?(\d+) URLs in [\d.]+ s \((\d+) requests/s\): (\d+) loaded, (\d+) failed, (.+) received$"
)


def _run_cli(*args: str, timeout: float = BOUND * 2) -> subprocess.CompletedProcess[str]:
    """``tasklets ARGS...`` to its end, with pipes (no terminal, no bar)."""
    return subprocess.run(command(*args), capture_output=True, text=True, env=cli_env(), timeout=timeout, check=False)


def _url_of(line: str) -> str:
    """The URL of a result line (plain format)."""
    match = LOADED.match(line) or BROKE.match(line)
    assert match, line
    return str(ast.literal_eval(match[2] if match.re is LOADED else match[1]))


def _split(stdout: str) -> tuple[list[str], list[str]]:
    """The result lines and the summary lines of a plain run."""
    lines = stdout.splitlines()
    results = [line for line in lines if LOADED.match(line) or BROKE.match(line)]
    summary = lines[len(results) :]
    assert lines[: len(results)] == results, "a result line after the summary"
    return results, summary


def _timeless(stdout: str) -> tuple[list[str], list[str]]:
    """The result lines and the summary lines, timings and rate blanked, each part sorted.

    Lines come in completion order, and kinds of failure seen as often as each
    other in either order: only the sets of lines can be compared.
    """
    results, summary = _split(stdout)
    return (
        sorted(re.sub(r" in \d+ ms$", " in ? ms", line) for line in results),
        sorted(re.sub(r" in [\d.]+ s \(\d+ requests/s\)", " in ? s", line) for line in summary),
    )


def _write_lines(child: LiveChild, lines: list[str]) -> None:
    child.write("".join(f"{line}\n" for line in lines))


def _alive(process: Any) -> bool:
    """Still running (a zombie has exited: only its entry waits to be reaped)."""
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _executing(client: Any) -> dict[str, int]:
    """The tasks each worker of ``client``'s cluster is running now."""
    return client.run(lambda dask_worker: len(dask_worker.state.executing))  # type: ignore[no-any-return]


class TestCommandLineOnACluster:
    def test_against_a_running_scheduler_as_a_local_run(self, dask_client, server, refused_url) -> None:
        urls = [
            *(server.url(f"/n/{i}") for i in range(300)),  # three batches (of 128 at most)
            server.url("/status/404"),
            server.url("/status/500"),
            refused_url,
            "http://",
        ]
        address = dask_client.scheduler.address
        assert address.startswith("tcp://127.0.0.1:")
        sharded = _run_cli("fetch", "--dask", address, "-c", "8", *urls)
        local = _run_cli("fetch", "-c", "8", *urls)
        assert (sharded.returncode, local.returncode) == (1, 1), sharded.stderr
        assert sharded.stderr == local.stderr == ""

        results, summary = _split(sharded.stdout)
        assert Counter(map(_url_of, results)) == Counter(urls)  # every URL, once
        for line in results:
            if match := LOADED.match(line):  # /n/I: its own size
                assert int(match[1]) == size_of(int(_url_of(line).rsplit("/", 1)[1])), line
        assert _timeless(sharded.stdout) == _timeless(local.stdout)
        match = SUMMARY.match(summary[0])
        assert match and not match[1] and (match[2], match[4], match[5]) == (str(len(urls)), "300", "4"), summary
        assert len(summary) == 4  # three kinds of failure

    def test_an_unreachable_scheduler_is_one_line_and_exit_1(self, server) -> None:
        with socket.socket() as probe:  # a loopback port where nothing listens
            probe.bind(("127.0.0.1", 0))
            address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
        path = f"/unreachable-{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        # The command line has no setting for it: the wait is CONNECT_TIMEOUT (10 s) of _dask_fetch.
        done = _run_cli("fetch", "--dask", address, server.url(path), timeout=BOUND * 3)
        # The message below names the 10 s that fired; this only says nothing waited far longer
        # (a loaded machine takes seconds just to import Dask: no tighter wall-clock bound).
        assert time.monotonic() - started < BOUND * 3
        assert done.returncode == 1
        assert done.stderr.splitlines() == [
            f"tasklets fetch: cannot reach the Dask scheduler at {address!r}: "
            f"Timed out trying to connect to {address} after 10 s"
        ], done.stderr
        results, summary = _split(done.stdout)
        assert results == [] and len(summary) == 1
        match = SUMMARY.match(summary[0])
        assert match and not match[1] and (match[2], match[4], match[5]) == ("0", "0", "0"), summary
        assert server.seen[path] == 0  # nothing fetched, not even locally

    @pytest.mark.parametrize("interrupted", ["the command", "every process"])
    def test_ctrl_c_with_a_local_cluster(self, server, interrupted) -> None:
        """SIGINT while requests are held: 130, the summary of what was reported, and no process left.

        "every process" is Ctrl-C on a terminal, which reaches the workers too
        (each by its PID here): they must leave it to the command.
        """
        gate = f"local-{uuid.uuid4().hex[:8]}"
        child = LiveChild("fetch", "--dask", "local:1", "-c", "4", "-i", "-", stdin=True)
        tree: list[Any] = []
        try:
            quick = [server.url("/n/1"), server.url("/n/2")]
            _write_lines(child, quick)
            first = [child.next_line(), child.next_line()]  # reported, the input still open
            # Two held: in flight whatever the batches (one of two URLs, or two of one: the worker has two
            # threads), each with half its body received. (More would depend on how the input is cut.)
            _write_lines(child, [server.url(f"/held/{gate}/{i}") for i in range(2)])
            server.wait_held(gate, 2)

            tree = psutil.Process(child.process.pid).children(recursive=True)
            command_lines = {p.pid: " ".join(p.cmdline()) for p in tree}  # read now: a zombie has none
            workers = [p for p in tree if "spawn_main" in command_lines[p.pid]]
            assert len(workers) == 1, command_lines
            if interrupted == "every process":
                for process in tree:
                    os.kill(process.pid, signal.SIGINT)
            child.process.send_signal(signal.SIGINT)
            child.process.wait(BOUND * 3)  # a local cluster's shutdown takes seconds on a loaded machine
            # The workers are gone when the command is, at once: none left running. (Checked before reading
            # the pipes to their end, which also waits for any process that inherited them.)
            left = [command_lines[p.pid] for p in tree if "resource_tracker" not in command_lines[p.pid] and _alive(p)]
            assert left == []
            status, rest = child.finish()
            assert status == 130, child.stderr
            # No traceback, no error (a warning of the cluster's own is another test's business).
            assert [line for line in child.stderr if re.search("Traceback|Error|KeyboardInterrupt", line)] == []
            assert sorted(map(_url_of, first)) == sorted(quick)
            assert len(rest) == 1, rest
            match = SUMMARY.match(rest[0])
            assert match and match[1] and (match[2], match[4], match[5]) == ("2", "2", "0"), rest
            assert server.held[gate] == 2  # no batch was sent again after Ctrl-C
            # multiprocessing's resource tracker ends on its own once its pipe closes: bounded wait.
            deadline = time.monotonic() + BOUND * 3
            while any(_alive(p) for p in tree):
                assert time.monotonic() < deadline, [command_lines[p.pid] for p in tree if _alive(p)]
                time.sleep(0.01)
        finally:
            if not tree:  # the test failed before it looked: find the cluster's processes now
                with contextlib.suppress(psutil.NoSuchProcess):
                    tree = psutil.Process(child.process.pid).children(recursive=True)
            for process in tree:  # a worker left behind (the test failed) is stopped, by its PID,
                if _alive(process):
                    process.kill()
            child.kill()  # before the pipes it may hold open are closed
            server.release(gate)

    def test_ctrl_c_against_a_running_scheduler_stops_the_batches_on_the_workers(self, dask_client, server) -> None:
        """The held requests are never let go: the workers' threads come free only if Ctrl-C cancelled them."""
        gate = f"remote-{uuid.uuid4().hex[:8]}"
        assert set(_executing(dask_client).values()) == {0}
        child = LiveChild("fetch", "--dask", dask_client.scheduler.address, "-c", "4", "-i", "-", stdin=True)
        try:
            _write_lines(child, [server.url("/n/3")])
            assert _url_of(child.next_line()) == server.url("/n/3")
            _write_lines(child, [server.url(f"/held/{gate}/{i}") for i in range(2)])  # one batch or two
            server.wait_held(gate, 2)
            assert sum(_executing(dask_client).values()) > 0

            child.process.send_signal(signal.SIGINT)
            status, rest = child.finish()
            assert status == 130, child.stderr
            assert child.stderr == [], child.stderr
            match = SUMMARY.match(rest[0]) if len(rest) == 1 else None
            assert match and match[1] and (match[2], match[4], match[5]) == ("1", "1", "0"), rest
            # The server holds each request for BOUND s: a thread free well before that was freed by a cancel.
            deadline = time.monotonic() + BOUND / 2
            while (executing := _executing(dask_client)) != dict.fromkeys(executing, 0):
                assert time.monotonic() < deadline, f"still running on the workers: {executing}"
                time.sleep(0.05)
            assert server.held[gate] == 2  # no batch was sent again after Ctrl-C
        finally:
            child.kill()
            server.release(gate)

    def test_a_local_cluster_adds_nothing_to_stderr_when_port_8787_is_taken(self, server) -> None:
        """``--json``: stderr is the summary, and only that, whatever else runs on the machine.

        8787 is Dask's default HTTP port, which a scheduler binds even without a
        dashboard (``dashboard_address=None``): any other cluster on the machine
        holds it. We hold it (loopback) for the run when nobody does.
        """
        holder = socket.socket()
        try:
            try:
                holder.bind(("127.0.0.1", 8787))
                holder.listen()
            except OSError:
                pass  # taken already
            done = _run_cli("fetch", "--dask", "local:1", "--json", server.url("/n/5"))
        finally:
            holder.close()
        assert done.returncode == 0, done.stderr
        assert [json.loads(line)["bytes"] for line in done.stdout.splitlines()] == [size_of(5)]
        assert len(done.stderr.splitlines()) == 1 and SUMMARY.match(done.stderr), done.stderr

    def test_output_dir_holds_the_files_of_a_local_run(self, dask_client, server, tmp_path: Path) -> None:
        paths = [*(f"/n/{i}" for i in range(300)), "/status/404", "/page.html", "/a/b/archive.tar.gz", "/"]
        urls = [server.url(path) for path in paths]
        sharded_dir, local_dir = tmp_path / "sharded", tmp_path / "local"
        sharded_dir.mkdir()
        local_dir.mkdir()
        sharded = _run_cli("fetch", "--dask", dask_client.scheduler.address, "-c", "8", "-o", str(sharded_dir), *urls)
        local = _run_cli("fetch", "-c", "8", "-o", str(local_dir), *urls)
        assert (sharded.returncode, local.returncode) == (1, 1), sharded.stderr  # the 404
        assert _timeless(sharded.stdout) == _timeless(local.stdout)

        def files(directory: Path) -> dict[str, bytes]:
            return {path.name: path.read_bytes() for path in directory.iterdir()}

        saved = files(sharded_dir)
        assert saved == files(local_dir)
        expected = {safe_file_name(server.url(f"/n/{i}")): body_of(i) for i in range(300)}
        expected |= {safe_file_name(server.url(path)): b"ok" for path in paths[-3:]}
        assert saved == expected  # each body, under its name; nothing for the 404, no partial file
