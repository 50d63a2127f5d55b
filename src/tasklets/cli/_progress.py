"""The progress line of ``tasklets fetch``: one line on stderr, redrawn ten times a second.

It lives on stderr so that ``tasklets fetch ... --json > file`` shows its
progress while the results go to the file. When stdout is the same terminal,
every result line is written *above* it: the progress line is erased
(``CR``, erase-to-end-of-line), the result written and flushed, and the line
drawn again, as wget and curl do; it never wraps, since it is cut to the
terminal's width. A daemon thread redraws it (so the counts and the rate
move while requests wait); a lock keeps its writes and the result lines
apart. It only ever writes text it made itself: counts, sizes and times.

Why not ``rich``: its live display owns one stream and repaints by moving the
cursor up over what it drew last, so a line written to the *other* stream
(stdout) in between is overwritten or leaves the bar behind.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TextIO

__all__ = ["ProgressLine"]

_ERASE = "\r\x1b[K"


class ProgressLine:
    """A single status line on ``err`` (a terminal), with result lines written above it.

    Args:
        err: the terminal to draw on.
        render: makes the text of the line; called at each redraw.
        interval: seconds between redraws.
    """

    def __init__(self, err: TextIO, render: Callable[[], str], *, interval: float = 0.1) -> None:
        self._err = err
        self._render = render
        self._interval = interval
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._drawn = False
        #: The terminal went away (a write failed): no more drawing, and no more erasing either.
        self.broken = False
        self._thread = threading.Thread(target=self._run, name="tasklets-fetch-progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            with self._lock:
                if not self._stopped.is_set():
                    self._draw()

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self._err.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return 80

    def _draw(self) -> None:
        text = self._render()[: max(self._width() - 1, 1)]  # one column spare: no wrap, whatever the terminal
        self._write(_ERASE + text)
        self._drawn = True

    def _write(self, text: str) -> None:
        if self.broken:
            return
        try:
            self._err.write(text)
            self._err.flush()
        except (OSError, ValueError):
            self.broken = True

    def above(self, write: Callable[[], None]) -> None:
        """Run ``write`` (which writes and flushes a line to the same terminal) above the progress line."""
        with self._lock:
            if self._drawn:
                self._write(_ERASE)
                self._drawn = False
            write()
            if not self._stopped.is_set():
                self._draw()

    def stop(self) -> None:
        """Stop redrawing and erase the line (idempotent)."""
        with self._lock:
            self._stopped.set()
            if self._drawn:
                self._write(_ERASE)
                self._drawn = False
        self._thread.join()
