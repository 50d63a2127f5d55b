"""Plain unit tests of the CLI's pure parts: pacing, terminal-safe text, the progress line's text."""

from __future__ import annotations

import pytest

from tasklets.cli._pace import Pacer
from tasklets.cli._report import Result, Summary
from tasklets.cli._terminal import printable


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
