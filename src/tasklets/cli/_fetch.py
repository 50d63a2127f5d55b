"""``tasklets fetch``: many URLs at once, each reported the moment it completes.

Worker tasks take URLs from a :class:`~._source.UrlSource`, started as URLs
arrive and never more than ``concurrency`` (nor more than the URLs seen:
``-c 1000000`` over three URLs costs three tasks), so at most that many
fetches run, while the pool holds at most ``per_host`` connections to any one
host (a list of 10,000 URLs on one server does not open 64 connections to it
unless asked). Starts are paced when ``--rate`` or ``--rate-per-host`` asks
(:mod:`._pace`), and failures retried as the library's
:class:`~tasklets.http.Retry` policy decides.

A fetch never raises: every failure, an invalid URL included, becomes a
:class:`Result` of that URL. With ``-o DIR`` a body is streamed into a hidden
temporary file in DIR and renamed into place only once complete, so an
interrupted or failed fetch leaves no partial file behind; with
``--continue`` it goes to ``NAME.part`` instead, kept on failure, and the next
run asks for the rest with ``Range``.
"""

from __future__ import annotations

import http
import os
import random
import re
import ssl
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from .._combinators import sleep
from .._exceptions import BodyTooLarge, ConnectFailed, HTTPError
from .._future import Future
from .._sync import Semaphore
from .._task import Task
from .._where import current_loop
from ..http import Client, PoolLimits, Response, Retry, Timeout
from ._names import safe_file_name
from ._pace import Pacer
from ._report import Result
from ._source import MAX_LINE, OverlongLine, UrlSource

__all__ = ["DEFAULT_PER_HOST", "FetchOptions", "Fetcher", "fetch_all", "fetch_one"]

#: Connections to one host at most, unless ``--per-host`` says otherwise (what browsers allow, and then some).
DEFAULT_PER_HOST = 8
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read, not changed: the only way to read it (at import, before any thread of ours writes a file)
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)")


@dataclass
class FetchOptions:
    """What ``tasklets fetch`` was asked to do (plain data: it travels to Dask workers)."""

    concurrency: int = 64
    timeout: float | None = 30.0
    output_dir: str | None = None
    retries: int = 0
    retry_on: frozenset[int] | None = None
    retry_backoff: float = 0.5
    headers: list[tuple[str, str]] = field(default_factory=list)
    per_host: int = DEFAULT_PER_HOST
    rate: float | None = None
    rate_per_host: float | None = None
    max_size: int | None = None
    proxy: str | None = None
    cacert: str | None = None
    insecure: bool = False
    resume: bool = False
    no_clobber: bool = False

    def retry_policy(self) -> Retry:
        """The library's retry policy, as ``--retries``, ``--retry-on`` and ``--retry-backoff`` set it."""
        if self.retry_on is None:
            return Retry(self.retries, backoff_factor=self.retry_backoff)
        return Retry(self.retries, backoff_factor=self.retry_backoff, statuses=self.retry_on)

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context ``--cacert`` or ``--insecure`` asks for; None for the default (verification on)."""
        if self.insecure:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if self.cacert is not None:
            return ssl.create_default_context(cafile=self.cacert)
        return None

    def client(self) -> Client:
        """A client configured as asked: limits, timeouts, TLS, proxy."""
        concurrency = max(self.concurrency, 1)
        proxies: str | dict[str, str] | None = "env"
        if self.proxy is not None:
            proxies = {"http": self.proxy, "https": self.proxy}
        return Client(
            limits=PoolLimits(max_connections=concurrency, max_per_host=min(max(self.per_host, 1), concurrency)),
            timeout=Timeout(connect=self.timeout, read=self.timeout, total=None, pool=None),
            context=self.tls_context(),
            proxies=proxies,
        )


def error_kind(exc: BaseException) -> str:
    """A short name for what went wrong, as the report shows it."""
    if isinstance(exc, ConnectFailed) and isinstance(exc.reason, BaseException):
        return type(exc.reason).__name__
    name = type(exc).__name__
    return name[4:] if name in ("HTTPConnectTimeout", "HTTPReadTimeout") else name


class _StartOver(Exception):
    """The server did not resume where the partial file ends: fetch the whole body again (not a failure)."""


@dataclass(slots=True)
class _Fetched:
    response: Response | HTTPError  # an HTTPError for a 416 that says the partial file is whole
    size: int
    path: str | None


class Fetcher:
    """Fetches URLs with one client, one retry policy and the run's pacing.

    Args:
        client: the client to fetch with.
        options: what the user asked for.
        received: called with the size of each chunk of body as it arrives (for the progress line).
    """

    def __init__(self, client: Client, options: FetchOptions, *, received: Callable[[int], None] | None = None) -> None:
        self.client = client
        self.options = options
        self.policy = options.retry_policy()
        self.received = received
        self._pacers = [
            (Pacer(rate), per_host)
            for rate, per_host in ((options.rate, False), (options.rate_per_host, True))
            if rate is not None
        ]

    def fetch(self, url: str) -> Generator[Any, Any, Result]:
        """Fetch ``url`` (paced, retried as asked); the outcome as a :class:`Result`, never an exception."""
        if isinstance(url, OverlongLine):
            message = f"line too long (over {MAX_LINE} bytes): skipped"
            return Result(url, error_kind="LineTooLong", error=message, error_class="LineTooLong", redirects=None)
        started = time.perf_counter()
        final = None
        if self.options.output_dir is not None:
            final = os.path.join(self.options.output_dir, safe_file_name(url))
            if (self.options.no_clobber or self.options.resume) and os.path.exists(final):
                return Result(url, skipped=f"{final!r} exists", path=final, attempts=0, redirects=None)
        attempt = 0
        while True:
            attempt += 1
            if self._pacers:
                yield from self._pace(url)
            try:
                fetched = yield from self._attempt(url, final)
            except Exception as exc:  # every failure is this URL's result, or a retry
                delay = self.policy.next_delay(
                    attempt=attempt, method="GET", error=exc, now=time.time(), random=random.random()
                )
                if delay is not None:
                    if delay > 0:
                        yield sleep(delay)
                    continue
                return _failure(url, exc, attempt, started)
            response = fetched.response
            return Result(
                url,
                response.status,
                fetched.size,
                _ms(started),
                final_url=response.url,
                redirects=_redirects(response),
                content_type=response.headers.get("Content-Type"),
                path=fetched.path,
                attempts=attempt,
            )

    def _pace(self, url: str) -> Generator[Any, Any, None]:
        now = current_loop().time()
        host = _host(url)
        wait = max(pacer.reserve(host if per_host else "", now) for pacer, per_host in self._pacers)
        if wait > 0:
            yield sleep(wait)

    def _attempt(self, url: str, final: str | None) -> Generator[Any, Any, _Fetched]:
        options = self.options
        headers = dict(options.headers)
        part = None
        if final is not None and options.resume:
            part = final + ".part"
            headers["Accept-Encoding"] = "identity"  # byte offsets of the representation itself
        for _ in range(2):  # a second time only when the server would not resume
            offset = _size(part) if part is not None else 0
            if offset:
                headers["Range"] = f"bytes={offset}-"
            else:
                headers.pop("Range", None)
            try:
                response = yield self.client.urlopen(url, headers=headers or None)
            except HTTPError as exc:
                if part is not None and offset and exc.code == 416:
                    exc.close()
                    if _complete_length(exc.headers) == offset:  # the part was whole: the last run ended at its end
                        os.replace(part, final)  # type: ignore[arg-type]
                        return _Fetched(exc, 0, final)
                    os.unlink(part)
                    continue
                raise
            with response:
                self._check_declared_size(response, already=offset if response.status == 206 else 0)
                if final is None:
                    size = yield from self._write(response, None)
                    return _Fetched(response, size, None)
                if part is None:
                    size = yield from self._save(response, final)
                    return _Fetched(response, size, final)
                try:
                    size = yield from self._resume(response, part, offset)
                except _StartOver:
                    os.unlink(part)
                    continue
                os.replace(part, final)
                return _Fetched(response, size, final)
        raise _StartOver(f"{url}: the server would not resume, nor send the whole body")

    def _check_declared_size(self, response: Any, *, already: int = 0) -> None:
        """Refuse a body whose ``Content-Length`` and the ``already`` bytes of a resumed file exceed --max-size."""
        limit = self.options.max_size
        if limit is None or response.headers.get("Content-Encoding") not in (None, "identity"):
            return
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and already + int(declared) > limit:
            raise BodyTooLarge(
                f"the body of {response.url} is {already + int(declared)} bytes, over the --max-size of {limit} bytes"
            )

    def _write(self, response: Any, file: Any | None, *, already: int = 0) -> Generator[Any, Any, int]:
        """Stream the body into ``file`` (or nowhere: None); its size. Past --max-size, counting the
        ``already`` bytes of a resumed file (the limit bounds the file), :class:`BodyTooLarge`."""
        size = 0
        limit = self.options.max_size
        room = None if limit is None else limit - already
        for wait_for_chunk in response.read():
            chunk = yield wait_for_chunk
            size += len(chunk)
            if room is not None and size > room:
                raise BodyTooLarge(f"the body of {response.url} is over the --max-size of {limit} bytes")
            if file is not None:
                file.write(chunk)
            if self.received is not None:
                self.received(len(chunk))
        return size

    def _save(self, response: Any, final: str) -> Generator[Any, Any, int]:
        """Stream the body into a hidden file next to ``final``; renamed into place only once complete."""
        fd, partial = tempfile.mkstemp(dir=os.path.dirname(final) or ".", prefix=".partial-")
        try:
            os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 is for secrets: a download gets what open() would give
            with os.fdopen(fd, "wb") as file:
                size = yield from self._write(response, file)
            os.replace(partial, final)
        except BaseException:
            os.unlink(partial)
            raise
        return size

    def _resume(self, response: Any, part: str, offset: int) -> Generator[Any, Any, int]:
        """Stream the body into ``part``: appended when the server resumed at ``offset``, from scratch otherwise.

        What this attempt wrote stays on failure or interruption (the next
        run resumes from it), except past ``--max-size``, where the part is
        cut back to what it was.
        """
        if response.status == 206:
            match = _CONTENT_RANGE.fullmatch((response.headers.get("Content-Range") or "").strip())
            if not offset or match is None or match[1] is None or int(match[1]) != offset:
                raise _StartOver()
            mode = "ab"
        else:  # a 200: the server ignored Range, and sends the whole body
            mode, offset = "wb", 0
        with open(part, mode, buffering=0) as file:  # on disk as it comes: a crash keeps what arrived
            try:
                return (yield from self._write(response, file, already=offset))
            except BodyTooLarge:
                file.truncate(offset)
                raise


def fetch_one(client: Client, url: str, options: FetchOptions) -> Generator[Any, Any, Result]:
    """Fetch ``url`` as :meth:`Fetcher.fetch` does, with a fetcher of its own."""
    return (yield from Fetcher(client, options).fetch(url))


def _failure(url: str, exc: BaseException, attempts: int, started: float) -> Result:
    if isinstance(exc, HTTPError):
        headers = exc.headers
        exc.close()
        return Result(
            url,
            exc.code,
            0,
            _ms(started),
            "HTTPError",
            f"{exc.code} {_reason(exc.code, exc.msg)}".rstrip(),
            final_url=exc.url,
            redirects=_redirects(exc),
            content_type=headers.get("Content-Type") if headers is not None else None,
            attempts=attempts,
            error_class="HTTPError",
        )
    return Result(
        url,
        None,
        0,
        _ms(started),
        error_kind(exc),
        str(exc) or repr(exc),
        redirects=None,
        attempts=attempts,
        error_class=type(exc).__name__,
    )


def _reason(status: int, reason: str | None) -> str:
    """The reason phrase sent, or the standard one when the server sent none (hypercorn, HTTP/2 gateways)."""
    if reason:
        return reason
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _redirects(response: Response | HTTPError) -> int | None:
    """The redirects followed to ``response``: its ``history`` (the redirect responses); None for an
    ``HTTPError`` made without a response (not by our client)."""
    if isinstance(response, HTTPError):
        if not isinstance(response.response, Response):
            return None
        response = response.response
    return len(response.history)


def _complete_length(headers: Any) -> int | None:
    """The complete length a 416's ``Content-Range: bytes */LENGTH`` gives, or None."""
    match = _CONTENT_RANGE.fullmatch(((headers.get("Content-Range") if headers is not None else None) or "").strip())
    if match is None or not match[2].isdigit():
        return None
    return int(match[2])


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _host(url: str) -> str:
    try:
        return (urllib.parse.urlsplit(url).hostname or "").rstrip(".")
    except ValueError:  # an invalid URL fails at its request: it is paced with the others meanwhile
        return ""


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


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
    client = options.client()
    fetcher = Fetcher(client, options, received=reporter.received)
    slots = Semaphore(concurrency)
    workers: set[Task[None]] = set()
    failures: list[BaseException] = []  # of the workers themselves (a reporter that broke, say)

    def worker(url: str | None) -> Generator[Any, Any, None]:
        try:
            while url is not None:
                reporter.started(url)
                reporter.result((yield from fetcher.fetch(url)))
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
