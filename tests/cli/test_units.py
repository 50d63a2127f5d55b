"""Plain unit tests of the CLI's pure parts: pacing, terminal-safe text, the progress line's text, the writer."""

from __future__ import annotations

import concurrent.futures
import io
import json
import tracemalloc
import urllib.error
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, TextIO

import pytest

import tasklets
from tasklets.cli._demo import _describe
from tasklets.cli._pace import Pacer
from tasklets.cli._report import Result, Summary, make_reporter
from tasklets.cli._source import count_urls
from tasklets.cli._terminal import printable
from tasklets.testing import VirtualClock, run_strict

from ._cli_support import BOUND


class TestPacer:
    def test_spaces_starts_evenly_with_no_burst(self) -> None:
        pacer = Pacer(4.0)  # 250 ms apart
        assert [pacer.reserve("h", 10.0) for _ in range(4)] == [0.0, 0.25, 0.5, 0.75]

    def test_time_passing_frees_the_slots(self) -> None:
        pacer = Pacer(2.0)
        assert pacer.reserve("h", 0.0) == 0.0
        assert pacer.reserve("h", 0.2) == pytest.approx(0.3)
        assert pacer.reserve("h", 5.0) == 0.0  # idle for a while: no debt, and no burst saved up either
        assert pacer.reserve("h", 5.0) == 0.5

    def test_keys_are_paced_apart(self) -> None:
        pacer = Pacer(1.0)
        assert pacer.reserve("a", 0.0) == 0.0
        assert pacer.reserve("b", 0.0) == 0.0
        assert pacer.reserve("a", 0.0) == 1.0

    def test_past_keys_are_forgotten(self) -> None:
        pacer = Pacer(1000.0)
        for n in range(100_000):
            pacer.reserve(f"host{n}", n * 0.01)  # each host once, its slot soon in the past
        assert len(pacer) < 2100

    @pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan")])
    def test_rate_must_be_positive_and_finite(self, rate: float) -> None:
        with pytest.raises(ValueError, match="positive number of requests per second"):
            Pacer(rate)


class TestPrintable:
    @pytest.mark.parametrize(
        ("text", "shown"),
        [
            ("\x1b[2J\x1b[31mPWNED\x1b]0;title\x07", "\\x1b[2J\\x1b[31mPWNED\\x1b]0;title\\x07"),
            ("a\rb\nc\td\x00", "a\\x0db\\x0ac\\x09d\\x00"),
            ("\x7f\x9b2J", "\\x7f\\x9b2J"),
            ("abc\u202edcba\u2066x\u2069", "abc\\u202edcba\\u2066x\\u2069"),
            ("café 東京 ✓", "café 東京 ✓"),
        ],
    )
    def test_control_characters_become_escapes(self, text: str, shown: str) -> None:
        assert printable(text) == shown

    def test_every_escaped_character_is_one_isprintable_refuses(self) -> None:
        # printable() returns text that str.isprintable() accepts as it is: that must never skip an escape.
        escaped = [chr(code) for code in range(0x3000) if printable(chr(code)) != chr(code)]
        assert len(escaped) == 32 + 33 + 1 + 2 + 2 + 5 + 4
        assert not any(char.isprintable() for char in escaped)

    def test_a_failure_line_with_escapes_is_printable(self) -> None:
        line = Result("http://h/", 500, error_kind="HTTPError", error="500 \x1b[2Jboom").line()
        assert "\x1b" in line  # the line carries the text; the writer makes it printable
        assert "\x1b" not in printable(line)


class TestProgressText:
    def test_without_a_total(self) -> None:
        summary = Summary(started=0.0)
        summary.done, summary.failed, summary.in_flight, summary.streamed = 10, 2, 5, 2048
        text = summary.progress()
        assert text.startswith("fetch  done 8  failed 2  in flight 5  2.0 KiB  ")
        assert "ETA" not in text

    def test_with_a_total_the_share_and_an_eta(self) -> None:
        import time

        summary = Summary(started=time.perf_counter() - 10)  # 10 s ago: 10 done, 1 a second
        summary.done, summary.total = 10, 40
        text = summary.progress()
        assert "10/40 (25%)" in text
        eta = text.rsplit("ETA ", 1)[1]
        h, m, s = map(int, eta.split(":"))
        assert 25 <= h * 3600 + m * 60 + s <= 30  # 30 left at 1 a second (the clock moved a little)


class TestResultsToARegularFile:
    """Lines for a regular file are held and written a few times a second, whatever the stream's buffering:
    ``PYTHONUNBUFFERED`` (common in containers) makes ``sys.stdout`` write through, a system call per line."""

    @pytest.fixture
    def out(self, tmp_path: Path) -> Iterator[_CountingStream]:
        with open(tmp_path / "out.txt", "w", encoding="utf-8") as file:
            file.reconfigure(write_through=True)
            yield _CountingStream(file)

    def test_held_for_the_interval_then_written_at_once(self, out: _CountingStream) -> None:
        reporter = make_reporter(Summary(), as_json=True, progress=False, out=out, err=io.StringIO())

        def main() -> Generator[Any, Any, list[int]]:
            writes = []
            for n in range(100):
                reporter.result(Result(f"http://h/{n}", 200, 1))
            writes.append(out.writes)
            yield tasklets.sleep(0.19)
            writes.append(out.writes)
            yield tasklets.sleep(0.02)  # no other result comes: the timer writes them (`tail -f` sees them)
            writes.append(out.writes)
            reporter.result(Result("http://h/100", 200, 1))
            yield tasklets.sleep(0.25)
            writes.append(out.writes)
            return writes

        assert run_strict(main, clock=VirtualClock()) == [0, 0, 1, 2]
        reporter.finish()
        assert out.writes == 2  # the summary goes to stderr with --json
        lines = out.path.read_text().splitlines()
        assert [json.loads(line)["url"] for line in lines] == [f"http://h/{n}" for n in range(101)]

    def test_held_lines_are_bounded_in_number(self, out: _CountingStream) -> None:
        reporter = make_reporter(Summary(), as_json=False, progress=False, out=out, err=io.StringIO())

        def main() -> Generator[Any, Any, int]:
            for n in range(3000):
                reporter.result(Result(f"http://h/{n}", 200, 1))
            writes = out.writes
            yield tasklets.sleep(0.25)  # the rest, by the timer
            return writes

        assert run_strict(main, clock=VirtualClock()) == 2  # at 1024 lines held, and at 2048
        assert out.writes == 3
        reporter.finish()
        assert out.writes == 4
        assert len(out.path.read_text().splitlines()) == 3000 + 1  # and the summary

    def test_with_no_loop_each_line_is_written(self, out: _CountingStream) -> None:
        reporter = make_reporter(Summary(), as_json=False, progress=False, out=out, err=io.StringIO())
        reporter.result(Result("http://h/", 200, 1))
        assert out.writes == 1


class TestCountingTheInput:
    """The progress line's total: a regular file's URLs counted in a thread, a chunk at a time, never all held."""

    @staticmethod
    def _count(name: str, arguments: int = 0) -> concurrent.futures.Future[int]:
        counted: concurrent.futures.Future[int] = concurrent.futures.Future()
        count_urls(name, arguments, counted.set_result)
        return counted

    def test_urls_are_counted_comments_and_blank_lines_are_not(self, tmp_path: Path) -> None:
        path = tmp_path / "urls.txt"
        path.write_text("# a comment\n\nhttp://a/\n  http://b/  \nnot a url\n\n")
        assert self._count(str(path), arguments=2).result(timeout=BOUND) == 2 + 3

    @pytest.mark.parametrize("name", ["-", "missing.txt", "."], ids=["stdin", "missing", "a directory"])
    def test_no_total_for_what_is_not_a_regular_file(self, name: str, tmp_path: Path, monkeypatch) -> None:
        monkeypatch.chdir(tmp_path)
        counted = self._count(name)
        assert not counted.done()  # nothing is counted, so nothing is ever called

    def test_a_large_file_is_counted_without_holding_its_lines(self, tmp_path: Path) -> None:
        lines = 100_000
        path = tmp_path / "urls.txt"
        with open(path, "w") as file:
            file.writelines(f"http://127.0.0.1:9/a/path/that/is/not/short/{n:08d}?page=1\n" for n in range(lines))
        assert path.stat().st_size >= 6_000_000  # held as str objects, over 10 MB
        tracemalloc.start()  # traces every thread's allocations, the counting thread's too
        try:
            total = self._count(str(path)).result(timeout=BOUND)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert total == lines
        assert peak < 2 * 1024 * 1024, peak  # a chunk (64 KiB) read and split at a time


class _CountingStream:
    """A text file that counts the writes asked of it (a regular file: it has the file's descriptor)."""

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self.path = Path(file.name)
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return self.file.write(text)

    def flush(self) -> None:
        self.file.flush()

    def fileno(self) -> int:
        return self.file.fileno()

    def isatty(self) -> bool:
        return False


@pytest.mark.parametrize(
    "exc",
    [
        urllib.error.HTTPError("http://x/", 500, "\x1b[2J\x1b]0;title\x07", None, None),  # type: ignore[arg-type]
        urllib.error.URLError(OSError("\x1b[31mred\u202e")),
        ValueError("line\nbreak\x9b"),
    ],
    ids=["HTTPError reason", "URLError reason", "other"],
)
def test_the_demo_describes_a_failure_without_a_control_character(exc: BaseException) -> None:
    described = _describe(exc)
    assert described.isprintable(), described
    assert "\\x" in described  # escaped, not dropped
