"""``tasklets fetch --dask``: the URL stream sharded across a real local cluster.

Every URL is checked one by one: reported exactly once, with the size its
path implies. Output formats, summary and exit status are those of a local
run (compared line by line, timings aside).
"""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from _dask_support import BOUND, Server, size_of  # noqa: E402

import tasklets  # noqa: E402
from tasklets.cli._dask_fetch import parse_dask_target, run_dask_fetch  # noqa: E402
from tasklets.cli._fetch import FetchOptions, UrlSource, fetch_all  # noqa: E402
from tasklets.cli._report import PlainReporter, Summary  # noqa: E402


class PeakReporter(PlainReporter):
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
