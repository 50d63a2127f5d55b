"""What ``tasklets fetch`` prints: one line per URL as it completes, and a summary.

Plain lines or JSON lines (``--json``, for scripts: one object per URL on
stdout, the summary on stderr); ``--quiet`` keeps only the failures and the
summary. On a terminal, a progress line on stderr (:mod:`._progress`) shows
the counts, bytes, rate and, when the number of URLs is known, an ETA.
Nothing is kept per URL beyond the line printed, so memory stays flat over
millions of URLs.

Every human line goes through :func:`~._terminal.printable`: a reason
phrase, an error message or a URL may carry escape sequences from a server,
and none reaches the terminal raw. JSON escapes control characters itself.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from .._exceptions import LoopError
from .._where import current_loop
from ._progress import ProgressLine
from ._terminal import printable

__all__ = ["JSON_FIELDS", "Result", "Summary", "make_reporter"]

#: Seconds a result line for a regular file is held at most before it is written.
_FILE_FLUSH_INTERVAL = 0.2
#: Lines held for a regular file at most (a bound on the buffer, whatever the rate).
_FILE_FLUSH_LINES = 1024

#: The keys of every ``--json`` line, in order (docs/cli.md documents each; a test checks both).
JSON_FIELDS = (
    "url",
    "final_url",
    "redirects",
    "status",
    "content_type",
    "bytes",
    "path",
    "ms",
    "attempts",
    "skipped",
    "error",
    "error_class",
    "error_message",
)


@dataclass(slots=True)
class Result:
    """The outcome of one URL."""

    url: str
    status: int | None = None
    size: int = 0
    ms: float = 0.0
    #: A short name for the failure (the lower error's class for a failed connection: ConnectionRefused).
    error_kind: str | None = None
    error: str | None = None
    final_url: str | None = None
    redirects: int | None = None
    content_type: str | None = None
    path: str | None = None
    attempts: int = 1
    #: Why nothing was fetched although nothing failed (the file is there already), or None.
    skipped: str | None = None
    #: The exception's class, for scripts (``error_kind`` is the short name the human line shows).
    error_class: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    def line(self) -> str:
        """The human line, in the seed's words (made printable by the writer)."""
        if self.skipped is not None:
            return f"Skipped {self.url!r}: {self.skipped}"
        if self.ok:
            return f"Loaded {self.size} bytes from {self.url!r} in {self.ms:.0f} ms"
        tries = f", after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"Something broke for {self.url!r} ({self.error_kind}: {self.error}{tries})"

    def as_json(self) -> str:
        error = None if self.ok else f"{self.error_kind}: {self.error}"
        record = {
            "url": self.url,
            "final_url": self.final_url,
            "redirects": self.redirects,
            "status": self.status,
            "content_type": self.content_type,
            "bytes": self.size,
            "path": self.path,
            "ms": round(self.ms, 1),
            "attempts": self.attempts,
            "skipped": self.skipped,
            "error": error,
            "error_class": None if self.ok else (self.error_class or self.error_kind),
            "error_message": self.error,
        }
        return json.dumps(record)  # ensure_ascii: control characters and all non-ASCII escaped


@dataclass
class Summary:
    """Counts over the whole run."""

    started: float = field(default_factory=time.perf_counter)
    done: int = 0
    failed: int = 0
    skipped: int = 0
    in_flight: int = 0
    #: Body bytes of the URLs completed.
    bytes: int = 0
    #: Body bytes received so far, those of the URLs in flight included (the progress line's).
    streamed: int = 0
    #: How many URLs there are, when known (a regular file's, counted): for the ETA.
    total: int | None = None
    failures: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False

    def add(self, result: Result) -> None:
        self.done += 1
        self.bytes += result.size
        if result.skipped is not None:
            self.skipped += 1
        if not result.ok:
            self.failed += 1
            self.failures[result.error_kind or "Error"] += 1

    def wall(self) -> float:
        return time.perf_counter() - self.started

    def lines(self) -> list[str]:
        wall = self.wall()
        rate = self.done / wall if wall > 0 else 0.0
        head = "Interrupted: " if self.interrupted else ""
        skipped = f", {self.skipped} skipped" if self.skipped else ""
        lines = [
            f"{head}{self.done} URLs in {wall:.2f} s ({rate:.0f} requests/s): "
            f"{self.done - self.failed - self.skipped} loaded, {self.failed} failed{skipped}, "
            f"{human_size(self.bytes)} received"
        ]
        for kind, count in self.failures.most_common():
            lines.append(f"  {count} x {kind}")
        return lines

    def progress(self) -> str:
        """The progress line: counts, bytes, rates and, with a known total, the share done and an ETA."""
        wall = self.wall()
        rate = self.done / wall if wall > 0 else 0.0
        parts = ["fetch"]
        if self.total:
            parts.append(f"{self.done}/{self.total} ({100 * self.done // self.total}%)")
        parts.append(f"done {self.done - self.failed}  failed {self.failed}  in flight {self.in_flight}")
        parts.append(human_size(self.streamed))
        parts.append(f"{rate:.0f} req/s  {human_size(int(self.streamed / wall) if wall > 0 else 0)}/s")
        parts.append(_clock(wall))
        if self.total and rate > 0 and self.done < self.total:
            parts.append(f"ETA {_clock((self.total - self.done) / rate)}")
        return "  ".join(parts)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


class Reporter:
    """Lines on stdout (JSON lines with ``as_json``); the summary on stdout, or stderr for JSON.

    With ``quiet``, only the failures' lines (and the summary). With
    ``progress``, a :class:`ProgressLine` on ``err``, the lines written
    above it when ``out`` is the same terminal.
    """

    def __init__(
        self, summary: Summary, *, as_json: bool, out: TextIO, err: TextIO, quiet: bool = False, progress: bool = False
    ) -> None:
        self.summary = summary
        self.as_json = as_json
        self.quiet = quiet
        self.out = out
        self.err = err
        #: Our output cannot be written any more (the reader went away, ``tasklets fetch ... | head``,
        #: or a write failed): time to stop.
        self.output_closed = False
        #: Why the output failed, when it was not a reader going away (a full disk, say): worth a word.
        self.output_error: OSError | None = None
        self.progress = ProgressLine(err, summary.progress) if progress else None
        self._out_on_terminal = progress and _isatty(out)
        # Lines for a regular file are held and written a few times a second rather than one by one:
        # nobody waits on each line there (a pipe's reader or a terminal does), and a write per URL is
        # 4% of a fast run. They are held here, not in the stream's buffer, which PYTHONUNBUFFERED
        # (common in containers) turns into a system call per line; and a loop timer writes them, so
        # that `tail -f` sees a line within the interval even when no other result follows it.
        self._out_is_file = _is_regular_file(out)
        self._held: list[str] = []
        self._flush_timer: Any = None

    def started(self, url: str) -> None:
        self.summary.in_flight += 1

    def received(self, size: int) -> None:
        """``size`` more body bytes arrived (for the progress line's live count)."""
        self.summary.streamed += size

    def set_total(self, total: int) -> None:
        """The number of URLs, once counted (called from any thread)."""
        self.summary.total = total

    def result(self, result: Result) -> None:
        self.summary.in_flight -= 1
        self.summary.add(result)
        if self.output_closed or (self.quiet and result.ok):
            return
        text = result.as_json() if self.as_json else printable(result.line())
        self._emit(self.out, text + "\n")

    def message(self, text: str) -> None:
        """A note for the user on stderr (made printable), above the progress line."""
        self._emit(self.err, f"tasklets fetch: {printable(text)}\n")

    def finish(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        target = self.err if self.as_json else self.out
        if self.output_closed and target is self.out:
            return
        if target is not self.out and not self.output_closed:
            self._write(self.out, "", final=True)  # the lines still buffered for a regular file
        self._write(target, "\n".join(printable(line) for line in self.summary.lines()) + "\n", final=True)

    def _emit(self, stream: TextIO, text: str) -> None:
        if self.progress is not None and (stream is self.err or self._out_on_terminal):
            self.progress.above(lambda: self._write(stream, text))
        else:
            self._write(stream, text)

    def _write(self, stream: TextIO, text: str, *, final: bool = False) -> None:
        """Write and flush ``text``: a stream that fails ends the output, never the run with a traceback.

        For a regular file ``out``, ``text`` is held (see ``__init__``) unless ``final``.
        """
        if stream is self.out and self._out_is_file:
            self._held.append(text)
            if not final and len(self._held) < _FILE_FLUSH_LINES and self._flush_later():
                return
            text = self._take_held()
            if not text:
                return
        try:
            stream.write(text)
            stream.flush()
        except OSError as exc:
            if stream is self.out:
                self._output_failed(exc)

    def _flush_later(self) -> bool:
        """Have the held lines written within the interval; False when no loop runs here to do it."""
        if self._flush_timer is None:
            try:
                loop = current_loop()
            except LoopError:
                return False
            self._flush_timer = loop.call_later(_FILE_FLUSH_INTERVAL, self._flush_held)
        return True

    def _flush_held(self) -> None:
        self._flush_timer = None
        if self._held and not self.output_closed:
            self._write(self.out, "", final=True)

    def _take_held(self) -> str:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        text = "".join(self._held)
        self._held.clear()
        return text

    def _output_failed(self, exc: OSError) -> None:
        """Stop writing, and stop the run: nobody will see its results.

        A reader that went away is the normal end of ``tasklets fetch ... |
        head``; any other error (ENOSPC on a full disk, EIO) is kept, for the
        command to report once on stderr.
        """
        self.output_closed = True
        if not isinstance(exc, BrokenPipeError) and self.output_error is None:
            self.output_error = exc


def _is_regular_file(stream: Any) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, ValueError, OSError):
        return False


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def make_reporter(
    summary: Summary,
    *,
    as_json: bool,
    progress: bool | None,
    quiet: bool = False,
    out: Any = None,
    err: Any = None,
) -> Reporter:
    """The reporter; a progress line on stderr when it is a terminal (or when ``progress`` forces it)."""
    out = out or sys.stdout
    err = err or sys.stderr
    if progress is None:
        progress = _isatty(err)
    return Reporter(summary, as_json=as_json, out=out, err=err, quiet=quiet, progress=progress)
