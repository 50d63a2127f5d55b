"""The URLs of ``tasklets fetch``: the arguments, then a file or stdin, read in a thread and never held whole.

The URL stream is read by a :class:`UrlSource` in a thread of its own, never
on the loop: stdin may be a pipe fed slowly or a terminal, and a fetch that
completes meanwhile is still reported at once, and Ctrl-C still works. The
source reads only a bounded number of URLs ahead, so memory stays flat
whatever the number of URLs.

An input line over :data:`MAX_LINE` bytes (a binary file given by mistake, a
line with no newline) is passed on as one :class:`OverlongLine`, reported as
one failed URL and skipped to its end, so that no line takes more memory
than that. A UTF-8 byte order mark at the start of the input is dropped.
:func:`count_urls` counts a regular file's URLs the same way, for the
progress display's total, without holding them.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import stat
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

from .._exceptions import InvalidStateError
from .._future import Future

__all__ = ["MAX_LINE", "OverlongLine", "UrlSource", "count_urls", "stdin_or_file"]

#: The longest input line taken for a URL, in bytes (far beyond any URL a server accepts).
MAX_LINE = 64 * 1024
#: Bytes read from the input at a time.
_CHUNK = 64 * 1024
#: Bytes of an overlong line shown in its report.
_SHOWN = 100


class OverlongLine(str):
    """An input line over :data:`MAX_LINE` bytes, as its start: the "URL" of a ``LineTooLong`` failure.

    A ``str``, so that it travels the way of every URL (the source, a Dask
    batch) until :func:`fetch_one` turns it into its failure.
    """

    __slots__ = ()


class UrlSource:
    """The URLs to fetch: the arguments, then the lines of ``input_file``, read in a thread.

    :meth:`get` never blocks the loop: it returns a URL at once when one is
    ready, ``None`` once the input is exhausted, or else a future of either.
    A daemon thread reads the file (straight from its descriptor, so that a
    read pending at exit holds no lock of ``sys.stdin``), keeping at most
    ``ahead`` URLs ready. Blank lines and lines starting with ``#`` are
    skipped; bytes that are not UTF-8 are replaced (the URL then fails alone).
    With ``close_input``, the file is closed once read.
    """

    def __init__(
        self, arguments: Iterable[str], input_file: TextIO | None, *, close_input: bool = False, ahead: int = 1024
    ) -> None:
        self._ready: deque[str] = deque(arguments)
        self._waiters: deque[Future[str | None]] = deque()
        self._cond = threading.Condition()
        self._ahead = ahead
        # The reader is woken only once half the URLs ahead are taken, to read the other half in one go,
        # rather than at every URL taken (a lock hand-off to another thread per URL).
        self._refill = max(ahead // 2, 1)
        self._finished = input_file is None
        self._closed = False
        self._close_input = close_input
        #: What went wrong reading the input, if anything (the URLs read before are fetched).
        self.error: OSError | None = None
        if input_file is not None:
            threading.Thread(target=self._read, args=(input_file,), name="tasklets-fetch-input", daemon=True).start()

    def get(self) -> str | Future[str | None] | None:
        """The next URL, ``None`` at the end (or once closed), or a future of one of those. Called on the loop."""
        with self._cond:
            if self._closed:
                return None
            if self._ready:
                url = self._ready.popleft()
                if len(self._ready) < self._refill:
                    self._cond.notify()
                return url
            if self._finished:
                return None
            waiter: Future[str | None] = Future()
            self._waiters.append(waiter)
            return waiter

    def get_ready(self) -> str | None:
        """A URL already read, or None (none yet, the end, or closed): never a wait. Called on the loop."""
        with self._cond:
            if self._ready and not self._closed:
                url = self._ready.popleft()
                if len(self._ready) < self._refill:
                    self._cond.notify()
                return url
            return None

    def close(self) -> None:
        """Stop: no more URLs, not even those read already; the thread ends at its next line, the waits end."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._end_waits()

    def _read(self, input_file: TextIO) -> None:
        try:
            for url in _url_lines(input_file):
                with self._cond:
                    while len(self._ready) >= self._ahead and not self._waiters and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    waiter = self._waiters.popleft() if self._waiters else None
                    if waiter is None:
                        self._ready.append(url)
                if waiter is not None:
                    with contextlib.suppress(InvalidStateError):  # cancelled: we are stopping anyway
                        waiter.set_result(url)
        except (OSError, ValueError) as exc:  # ValueError: a closed file
            self.error = exc if isinstance(exc, OSError) else OSError(str(exc))
        finally:
            with self._cond:
                self._finished = True
            self._end_waits()
            if self._close_input:
                input_file.close()

    def _end_waits(self) -> None:
        with self._cond:
            waiters = list(self._waiters)
            self._waiters.clear()
        for waiter in waiters:
            with contextlib.suppress(InvalidStateError):
                waiter.set_result(None)


def _url_lines(input_file: TextIO) -> Iterator[str]:
    """The URLs of a file, one per line, read as they come (overlong lines included, as :class:`OverlongLine`)."""
    for line in _lines(_without_bom(_chunks(input_file))):
        url = line if isinstance(line, OverlongLine) else line.strip()
        if url and not url.startswith("#"):
            yield url


def _chunks(input_file: TextIO) -> Iterator[bytes]:
    """The file's bytes as they come: from its descriptor, or encoded back from a stream without one."""
    try:
        fd = input_file.fileno()
    except (AttributeError, OSError, ValueError):  # io.StringIO, say
        fd = None
    if fd is None:
        while text := input_file.read(_CHUNK):
            yield text.encode("utf-8", "surrogatepass")
    else:
        while chunk := os.read(fd, _CHUNK):  # what is there, at once: a pipe fed slowly is not waited on
            yield chunk


def _without_bom(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The stream without the UTF-8 byte order mark that some editors write first (the first URL would fail).

    Waits for no more than the mark's three bytes: a slow pipe's first URL is not held back.
    """
    chunks = iter(chunks)
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(codecs.BOM_UTF8) or not codecs.BOM_UTF8.startswith(head):
            break
    if head:
        yield head.removeprefix(codecs.BOM_UTF8)
    yield from chunks


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The lines of a byte stream, decoded; a line over :data:`MAX_LINE` bytes as one :class:`OverlongLine`.

    Linear in the input: each chunk is split once, and only the unfinished
    line is kept between chunks (a line in a thousand chunks costs what it
    costs in one). Past :data:`MAX_LINE` bytes a line is reported and the rest
    of it dropped as it comes, up to its newline: memory stays bounded.
    """
    pending = bytearray()  # the unfinished line
    skipping = False  # in a line already reported as overlong
    for chunk in chunks:
        *ended, rest = chunk.split(b"\n")
        for piece in ended:
            if not skipping:
                if pending:
                    pending += piece
                    piece = bytes(pending)
                yield _decoded(piece)
            pending.clear()
            skipping = False
        if not skipping:
            pending += rest
            if len(pending) > MAX_LINE:
                yield _decoded(pending)
                pending.clear()
                skipping = True
    if pending:
        yield _decoded(pending)


def _decoded(line: bytes | bytearray) -> str:
    """A line as text: bytes that are not UTF-8 are replaced (the URL then fails alone)."""
    if len(line) > MAX_LINE:
        return OverlongLine(line[:_SHOWN].decode("utf-8", "replace").strip() + "...")
    return line.decode("utf-8", "replace")


def count_urls(name: str, arguments: int, done: Callable[[int], None]) -> None:
    """Count the URLs of the regular file ``name`` in a daemon thread; ``done(arguments + count)`` at the end.

    Nothing is called for stdin, a pipe or a file that cannot be read: the
    total is then unknown. The file is read a second time, a chunk at a time,
    so that the count never holds the URLs.
    """
    if name == "-":
        return
    try:
        if not stat.S_ISREG(os.stat(name).st_mode):
            return
    except OSError:
        return

    def count() -> None:
        try:
            with open(name, encoding="utf-8", errors="replace") as file:
                total = sum(1 for _ in _url_lines(file))
        except (OSError, ValueError):
            return
        done(arguments + total)

    threading.Thread(target=count, name="tasklets-fetch-count", daemon=True).start()


def stdin_or_file(name: str | None) -> TextIO | None:
    """``-i -`` is stdin; ``-i FILE`` opens the file (streamed, never read whole)."""
    if name is None:
        return None
    if name == "-":
        return sys.stdin
    return open(name, encoding="utf-8", errors="replace")  # closed by UrlSource once read
