"""``tasklets fetch``: many URLs at once, each reported the moment it completes.

The URL stream (arguments, then a file or stdin) is read by a
:class:`UrlSource` in a thread of its own, never on the loop: stdin may be a
pipe fed slowly or a terminal, and a fetch that completes meanwhile is still
reported at once, and Ctrl-C still works. Worker tasks take URLs from it,
started as URLs arrive and never more than ``concurrency`` (nor more than the
URLs seen: ``-c 1000000`` over three URLs costs three tasks), so at most that
many fetches run, and the source reads only a bounded number of URLs ahead:
memory stays flat whatever the number of URLs.

A fetch never raises: every failure, an invalid URL included, becomes a
:class:`Result` of that URL. So does an input line over :data:`MAX_LINE`
bytes (a binary file given by mistake, a line with no newline): it is
reported as one failed URL and skipped to its end, so that no line takes more
memory than that. A UTF-8 byte order mark at the start of the input is
dropped. With ``-o DIR`` a body is streamed into a hidden temporary file in
DIR and renamed into place only once complete, so an interrupted or failed
fetch leaves no partial file behind.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from .._exceptions import ConnectFailed, HTTPError, InvalidStateError, InvalidURL
from .._future import Future
from .._sync import Semaphore
from .._task import Task
from ..http import Client, PoolLimits, Timeout
from ._names import safe_file_name
from ._report import Result

__all__ = ["MAX_LINE", "FetchOptions", "OverlongLine", "UrlSource", "fetch_all", "fetch_one"]

# Failures worth another try: the network's, and the server's 5xx.
_NOT_RETRIED = (InvalidURL,)

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


@dataclass
class FetchOptions:
    """What ``tasklets fetch`` was asked to do."""

    concurrency: int = 64
    timeout: float | None = 30.0
    output_dir: str | None = None
    retries: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)


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


def error_kind(exc: BaseException) -> str:
    """A short name for what went wrong, as the report shows it."""
    if isinstance(exc, ConnectFailed) and isinstance(exc.reason, BaseException):
        return type(exc.reason).__name__
    name = type(exc).__name__
    return name[4:] if name in ("HTTPConnectTimeout", "HTTPReadTimeout") else name


def fetch_one(client: Client, url: str, options: FetchOptions) -> Generator[Any, Any, Result]:
    """Fetch ``url`` (retrying as asked); the outcome as a :class:`Result`, never an exception."""
    if isinstance(url, OverlongLine):
        return Result(url, None, 0, 0.0, "LineTooLong", f"line too long (over {MAX_LINE} bytes): skipped")
    started = time.perf_counter()
    attempt = 0
    while True:
        attempt += 1
        try:
            response = yield client.urlopen(url, headers=dict(options.headers) or None)
            with response:
                if options.output_dir is not None:
                    size = yield from _save(response, options.output_dir, url)
                else:
                    size = 0
                    for wait_for_chunk in response.read():
                        size += len((yield wait_for_chunk))
            return Result(url, response.status, size, (time.perf_counter() - started) * 1000)
        except HTTPError as exc:
            if exc.code >= 500 and attempt <= options.retries:
                continue
            return Result(url, exc.code, 0, _ms(started), "HTTPError", f"{exc.code} {exc.msg}")
        except _NOT_RETRIED as exc:
            return Result(url, None, 0, _ms(started), error_kind(exc), str(exc))
        except Exception as exc:  # every failure is this URL's result
            if attempt <= options.retries:
                continue
            return Result(url, None, 0, _ms(started), error_kind(exc), str(exc) or repr(exc))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _save(response: Any, directory: str, url: str) -> Generator[Any, Any, int]:
    """Stream the body into ``directory``; the file appears only once it is complete."""
    final = os.path.join(directory, safe_file_name(url))
    fd, partial = tempfile.mkstemp(dir=directory, prefix=".partial-")
    size = 0
    try:
        with os.fdopen(fd, "wb") as file:
            for wait_for_chunk in response.read():
                chunk = yield wait_for_chunk
                file.write(chunk)
                size += len(chunk)
        os.replace(partial, final)
    except BaseException:
        os.unlink(partial)
        raise
    return size


def fetch_all(source: UrlSource, options: FetchOptions, reporter: Any) -> Generator[Any, Any, int]:
    """The main task: fetch everything, report as it completes; return the exit status.

    This task is the dispatcher: it takes a slot (one of ``concurrency``),
    waits for the next URL and starts a worker with both. A worker goes on
    with the URLs read meanwhile, and ends, giving its slot back, when none
    is ready: waiting for the input is the dispatcher's job alone. So workers
    are started as URLs arrive, a steady stream keeps the same ones busy, and
    never more than ``concurrency`` fetch at once.
    """
    concurrency = max(options.concurrency, 1)
    client = Client(
        limits=PoolLimits(max_connections=concurrency, max_per_host=concurrency),
        timeout=Timeout(connect=options.timeout, read=options.timeout, total=None, pool=None),
    )
    slots = Semaphore(concurrency)
    workers: set[Task[None]] = set()
    failures: list[BaseException] = []  # of the workers themselves (a reporter that broke, say)

    def worker(url: str | None) -> Generator[Any, Any, None]:
        try:
            while url is not None:
                reporter.started(url)
                reporter.result((yield from fetch_one(client, url, options)))
                if reporter.output_closed:  # nobody reads the results any more: no more URLs
                    source.close()
                    return
                url = source.get_ready()
        finally:
            slots.release()

    def finished(each: Task[None]) -> None:
        workers.discard(each)
        if not each.cancelled() and each.exception() is not None:
            failures.append(each.exception())  # type: ignore[arg-type]
            source.close()  # the dispatcher may be waiting for input: it raises this now

    try:
        while True:
            yield slots.acquire()
            url = source.get()
            if isinstance(url, Future):  # nothing read yet: wait for the input, not blocking the loop
                url = yield url
            if url is None or failures:
                slots.release()
                break
            each = Task(worker(url), name="fetch worker")
            workers.add(each)
            each.add_done_callback(finished)  # type: ignore[arg-type]  # called with each: a Task
        if failures:
            raise failures[0]
        while workers:
            yield next(iter(workers))  # raises a worker's failure
    finally:
        source.close()  # on Ctrl-C: no new requests,
        for each in list(workers):  # and those in flight are cancelled (their partial files removed)
            each.cancel()
        client.close()
    return 1 if reporter.summary.failed else 0


def stdin_or_file(name: str | None) -> TextIO | None:
    """``-i -`` is stdin; ``-i FILE`` opens the file (streamed, never read whole)."""
    if name is None:
        return None
    if name == "-":
        return sys.stdin
    return open(name, encoding="utf-8", errors="replace")  # closed by UrlSource once read
