"""``tasklets fetch``: many URLs at once, each reported the moment it completes.

The URL stream (arguments, then a file or stdin) is consumed lazily by
``map_unordered``: at most ``concurrency`` fetches are started and not yet
reported, so memory stays flat whatever the number of URLs. A fetch never
raises: every failure, an invalid URL included, becomes a :class:`Result` of
that URL. With ``-o DIR`` a body is streamed into a hidden temporary file in
DIR and renamed into place only once complete, so an interrupted or failed
fetch leaves no partial file behind.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from .._as_completed import map_unordered
from .._exceptions import ConnectFailed, HTTPError, InvalidURL
from .._task import Task
from ..http import Client, PoolLimits, Timeout
from ._names import safe_file_name
from ._report import Result

__all__ = ["FetchOptions", "read_urls", "fetch_all", "fetch_one"]

# Failures worth another try: the network's, and the server's 5xx.
_NOT_RETRIED = (InvalidURL,)


@dataclass
class FetchOptions:
    """What ``tasklets fetch`` was asked to do."""

    concurrency: int = 64
    timeout: float | None = 30.0
    output_dir: str | None = None
    retries: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)


def read_urls(arguments: Iterable[str], input_file: TextIO | None) -> Iterator[str]:
    """The URLs of the command line, then those of ``input_file``, one per line, lazily.

    Blank lines and lines starting with ``#`` are skipped.
    """
    yield from arguments
    if input_file is not None:
        for line in input_file:
            url = line.strip()
            if url and not url.startswith("#"):
                yield url


def error_kind(exc: BaseException) -> str:
    """A short name for what went wrong, as the report shows it."""
    if isinstance(exc, ConnectFailed) and isinstance(exc.reason, BaseException):
        return type(exc.reason).__name__
    name = type(exc).__name__
    return name[4:] if name in ("HTTPConnectTimeout", "HTTPReadTimeout") else name


def fetch_one(client: Client, url: str, options: FetchOptions) -> Generator[Any, Any, Result]:
    """Fetch ``url`` (retrying as asked); the outcome as a :class:`Result`, never an exception."""
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
        except Exception as exc:  # noqa: BLE001 - every failure is this URL's result
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


def fetch_all(urls: Iterable[str], options: FetchOptions, reporter: Any) -> Generator[Any, Any, int]:
    """The main task: fetch everything, report as it completes; return the exit status."""
    client = Client(
        limits=PoolLimits(max_connections=max(options.concurrency, 1), max_per_host=max(options.concurrency, 1)),
        timeout=Timeout(connect=options.timeout, read=options.timeout, total=None, pool=None),
    )

    def start(url: str) -> Task[Result]:
        reporter.started(url)
        return Task(fetch_one(client, url, options), name=f"fetch {url}")

    results = map_unordered(start, urls, limit=max(options.concurrency, 1))
    try:
        for signal in results:
            reporter.result((yield signal))
    finally:
        results.close()  # on Ctrl-C: no new requests, and those in flight are cancelled
        client.close()
    return 1 if reporter.summary.failed else 0


def stdin_or_file(name: str | None) -> TextIO | None:
    """``-i -`` is stdin; ``-i FILE`` opens the file (streamed, never read whole)."""
    if name is None:
        return None
    if name == "-":
        return sys.stdin
    return open(name, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by the caller
