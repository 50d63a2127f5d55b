"""What ``tasklets fetch`` prints: one line per URL as it completes, and a summary.

Three reporters share one interface: plain lines, JSON lines (``--json``,
for scripts: one object per URL on stdout, the summary on stderr), and, on a
terminal, either of those above a live progress bar drawn by ``rich`` (an
optional extra: without it, or without a terminal, there is no bar).
Nothing is kept per URL beyond the line printed, so memory stays flat over
millions of URLs.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = ["Result", "Summary", "make_reporter"]


@dataclass(slots=True)
class Result:
    """The outcome of one URL."""

    url: str
    status: int | None = None
    size: int = 0
    ms: float = 0.0
    error_kind: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    def line(self) -> str:
        """The human line, in the seed's words."""
        if self.ok:
            return f"Loaded {self.size} bytes from {self.url!r} in {self.ms:.0f} ms"
        return f"Something broke for {self.url!r} ({self.error_kind}: {self.error})"

    def as_json(self) -> str:
        error = None if self.ok else f"{self.error_kind}: {self.error}"
        return json.dumps(
            {"url": self.url, "status": self.status, "bytes": self.size, "ms": round(self.ms, 1), "error": error}
        )


@dataclass
class Summary:
    """Counts over the whole run."""

    started: float = field(default_factory=time.perf_counter)
    done: int = 0
    failed: int = 0
    in_flight: int = 0
    bytes: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False

    def add(self, result: Result) -> None:
        self.done += 1
        self.bytes += result.size
        if not result.ok:
            self.failed += 1
            self.failures[result.error_kind or "Error"] += 1

    def wall(self) -> float:
        return time.perf_counter() - self.started

    def lines(self) -> list[str]:
        wall = self.wall()
        rate = self.done / wall if wall > 0 else 0.0
        head = "Interrupted: " if self.interrupted else ""
        lines = [
            f"{head}{self.done} URLs in {wall:.2f} s ({rate:.0f} requests/s): "
            f"{self.done - self.failed} loaded, {self.failed} failed, {_human(self.bytes)} received"
        ]
        for kind, count in self.failures.most_common():
            lines.append(f"  {count} x {kind}")
        return lines


def _human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


class PlainReporter:
    """Lines on stdout (JSON lines with ``as_json``); the summary on stdout, or stderr for JSON."""

    def __init__(self, summary: Summary, *, as_json: bool, out: TextIO, err: TextIO) -> None:
        self.summary = summary
        self.as_json = as_json
        self.out = out
        self.err = err
        #: Our output cannot be written any more (the reader went away, ``tasklets fetch ... | head``,
        #: or a write failed): time to stop.
        self.output_closed = False
        #: Why the output failed, when it was not a reader going away (a full disk, say): worth a word.
        self.output_error: OSError | None = None

    def started(self, url: str) -> None:
        self.summary.in_flight += 1

    def result(self, result: Result) -> None:
        self.summary.in_flight -= 1
        self.summary.add(result)
        if not self.output_closed:
            self._write(self.out, (result.as_json() if self.as_json else result.line()) + "\n")

    def finish(self) -> None:
        target = self.err if self.as_json else self.out
        if self.output_closed and target is self.out:
            return
        self._write(target, "\n".join(self.summary.lines()) + "\n")

    def _write(self, stream: TextIO, text: str) -> None:
        """Write and flush ``text``: a stream that fails ends the output, never the run with a traceback."""
        try:
            stream.write(text)
            stream.flush()
        except OSError as exc:
            self._output_failed(exc)

    def _output_failed(self, exc: OSError) -> None:
        """Stop writing, and stop the run: nobody will see its results.

        A reader that went away is the normal end of ``tasklets fetch ... |
        head``; any other error (ENOSPC on a full disk, EIO) is kept, for the
        command to report once on stderr.
        """
        self.output_closed = True
        if not isinstance(exc, BrokenPipeError) and self.output_error is None:
            self.output_error = exc


class RichReporter(PlainReporter):
    """Plain or JSON lines printed above a live progress bar (on a terminal).

    The counts are read when the bar is drawn (ten times a second, by rich's
    thread), not when a URL starts or completes: a bar updated only on those
    events would show stale counts while requests wait, and rate-limiting its
    updates would drop the last one.
    """

    def __init__(self, summary: Summary, *, as_json: bool, out: TextIO, err: TextIO) -> None:
        super().__init__(summary, as_json=as_json, out=out, err=err)
        from rich.console import Console
        from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
        from rich.table import Column
        from rich.text import Text

        counts = self._counts

        class CountsColumn(ProgressColumn):
            def render(self, task: Any) -> Text:
                return Text(counts())

        self.console = Console(file=out)
        self.progress = Progress(
            TextColumn("[bold]fetch[/]"),
            BarColumn(bar_width=10),  # the total is unknown (the input is streamed): a pulse
            TimeElapsedColumn(),
            # Last, and cut rather than wrapped: the bar stays one line on an 80-column terminal.
            CountsColumn(table_column=Column(no_wrap=True, overflow="ellipsis")),
            console=self.console,
            transient=True,
        )
        self.progress.add_task("fetch", total=None)
        self.progress.start()

    def _counts(self) -> str:
        s = self.summary
        wall = s.wall()
        rate = s.done / wall if wall > 0 else 0.0
        return (
            f"done {s.done - s.failed}  failed {s.failed}  in flight {s.in_flight}  "
            f"{rate:.0f} req/s  {_human(int(s.bytes / wall) if wall > 0 else 0)}/s"
        )

    def result(self, result: Result) -> None:
        self.summary.in_flight -= 1
        self.summary.add(result)
        if self.output_closed:
            return
        text = result.as_json() if self.as_json else result.line()
        try:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        except OSError as exc:
            self._output_failed(exc)

    def finish(self) -> None:
        try:
            self.progress.stop()  # clears the bar: a write too
        except OSError as exc:
            self._output_failed(exc)
        super().finish()


def make_reporter(summary: Summary, *, as_json: bool, progress: bool | None, out: Any = None, err: Any = None) -> Any:
    """The right reporter: a progress bar on a terminal when ``rich`` is installed."""
    out = out or sys.stdout
    err = err or sys.stderr
    if progress is None:
        progress = out.isatty()
    if progress:
        try:
            return RichReporter(summary, as_json=as_json, out=out, err=err)
        except ImportError:
            pass
    return PlainReporter(summary, as_json=as_json, out=out, err=err)
