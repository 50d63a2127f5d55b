"""``tasklets fetch --dask``: the URL stream sharded across the workers of a Dask cluster.

Theory of operation
-------------------
The coordinator (this process) runs one task on its own loop. It cuts the URL
stream (the same :class:`UrlSource` as a local run: read in a thread, a
bounded number of URLs ahead) into *batches* of up to ``batch_size`` URLs and
submits each batch as one Dask task, :func:`fetch_batch`. A worker runs it in
one of its executor threads, which hands the batch to the worker process's
default tasklets loop (:func:`tasklets.dask.run_task`): up to ``-c`` fetches
at once, each :func:`fetch_one` exactly as a local run does, through one
keep-alive pool per worker process (``-c`` connections at most, shared by
the batches running there). The batch returns its :class:`Result` records in
the order they completed; the coordinator prints them when the batch comes
back, so lines appear in completion order, batch by batch, in the same
formats, with the same summary and exit status as a local run.

Memory stays flat: at most ``max_in_flight`` batches (by default twice the
cluster's worker threads) are submitted and not yet reported; a slot frees
only when a batch's results are printed, and only then is the next batch
read from the input. Each batch is waited on by a small task of its own
that yields the Dask future: the future's result is fetched on Dask's
callback thread, never on the loop.

Lost work
---------
A worker that dies mid-batch loses the results it had (they were never sent),
and the scheduler runs the whole batch again on another worker (Dask's own
rescheduling, up to ``distributed.scheduler.allowed-failures`` times; a batch
that kills that many workers fails with ``KilledWorker`` and its URLs are
reported as failures of that kind). A batch the scheduler drops otherwise (a
``FutureCancelledError`` we did not ask for: the scheduler restarted, the
connection to it was lost and re-established) is submitted again, up to
``BATCH_ATTEMPTS`` times in all. Results come back per batch, once: a URL is
printed exactly once, whatever was retried (a URL may be *fetched* more than
once, as with ``--retries``). Every returned batch is reconciled with the
URLs sent, so even a misbehaving worker cannot make a URL vanish or appear
twice.

Local clusters
--------------
``--dask local:N`` starts a ``distributed.LocalCluster`` of N worker
processes (2 threads each) on 127.0.0.1 only, without a dashboard, and
closes it at the end. The summary's clock starts once the cluster is
ready, so its rate is that of the fetch alone. ``-o DIR`` is written by the workers, on their file
system: with a remote cluster, DIR is a directory of the workers' machines.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import itertools
import logging
import re
import signal
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

from .._future import Future
from .._runtime import run
from .._sync import Semaphore
from .._task import Task
from ..dask import run_task
from ..http import Client
from ._fetch import Fetcher, FetchOptions
from ._report import Result
from ._source import UrlSource

__all__ = [
    "BATCH_ATTEMPTS",
    "DEFAULT_BATCH_SIZE",
    "DaskTarget",
    "DaskUnavailable",
    "connect",
    "dask_fetch_all",
    "fetch_batch",
    "parse_dask_target",
    "run_dask_fetch",
]

#: URLs per Dask task: large enough that the scheduler's few milliseconds per
#: task are amortised, small enough that results stream back steadily.
DEFAULT_BATCH_SIZE = 128
#: Submissions of one batch in all when the scheduler drops it (see "Lost work").
BATCH_ATTEMPTS = 3
#: Worker threads of each process of ``--dask local:N``: one batch finishing
#: its slowest URLs while the next one starts.
LOCAL_THREADS_PER_WORKER = 2
#: Seconds to wait for a remote scheduler before giving up.
CONNECT_TIMEOUT = 10.0

_LOCAL = re.compile(r"local:(\d+)")


class DaskUnavailable(RuntimeError):
    """The cluster cannot be used: ``distributed`` is missing, or the scheduler is unreachable."""


@dataclass(frozen=True)
class DaskTarget:
    """Where to run: a scheduler's address, or a local cluster of ``local_workers`` processes."""

    address: str | None = None
    local_workers: int | None = None

    def __str__(self) -> str:
        return self.address if self.address is not None else f"local:{self.local_workers}"


def parse_dask_target(text: str) -> DaskTarget:
    """``local:N`` or a scheduler address (``tcp://host:port``, ``host:port``).

    Raises:
        ValueError: neither (the message says what is expected).
    """
    text = text.strip()
    local = _LOCAL.fullmatch(text)
    if local is not None:
        workers = int(local.group(1))
        if not 1 <= workers <= 256:
            raise ValueError(f"local:N needs 1 to 256 workers, got {workers}")
        return DaskTarget(local_workers=workers)
    if text.startswith("local"):
        raise ValueError(f"expected local:N (N worker processes), got {text!r}")
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"expected a scheduler address (tcp://host:port) or local:N, got {text!r}")
    return DaskTarget(address=text)


# -- the worker side ---------------------------------------------------------------------------------

# One HTTP client (one keep-alive pool) per worker process and fetch settings,
# used only on the process's default loop: shared by the batches running there.
_process_clients: dict[tuple[Any, ...], Client] = {}


def _process_client(options: FetchOptions) -> Client:
    key = (
        options.concurrency,
        options.per_host,
        options.timeout,
        options.proxy,
        options.cacert,
        options.insecure,
    )
    client = _process_clients.get(key)
    if client is None:
        client = _process_clients[key] = options.client()
    return client


def fetch_batch(urls: list[str], options: FetchOptions) -> list[Result]:
    """The Dask task: fetch ``urls`` on this worker's loop, up to ``options.concurrency`` at once.

    Runs in a worker's executor thread and blocks it while the batch runs on
    the process's default loop (see :mod:`tasklets.dask`).

    Returns:
        One :class:`Result` per URL, in the order the fetches completed.
    """
    return run_task(_fetch_batch, urls, options)  # type: ignore[no-any-return]


def _fetch_batch(urls: list[str], options: FetchOptions) -> Generator[Any, Any, list[Result]]:
    fetch = Fetcher(_process_client(options), options).fetch
    results: list[Result] = []
    todo = iter(urls)  # shared by the fetchers: each URL is taken once

    def fetcher() -> Generator[Any, Any, None]:
        for url in todo:
            results.append((yield from fetch(url)))

    fetchers = [Task(fetcher(), name="dask batch fetcher") for _ in range(min(max(options.concurrency, 1), len(urls)))]
    try:
        for each in fetchers:
            yield each
    finally:
        for each in fetchers:
            each.cancel()
    return results


def dask_setup(worker: Any) -> None:
    """Set up a worker process of ``--dask local:N`` (a Dask preload: Dask calls it by this name).

    Ctrl-C on a terminal reaches every process of the group, the workers
    included; it is the coordinator's to handle (it cancels the batches out
    and closes the cluster), so the workers ignore it instead of dying with
    a traceback each.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# -- the coordinator ----------------------------------------------------------------------------------


class _Batches:
    """The URL stream cut into batches; never holds a ready URL back to fill a batch."""

    def __init__(self, source: UrlSource, size: int) -> None:
        self.source = source
        self.size = size
        self.waiting: Future[str | None] | None = None  # a get() that must be consumed: it will carry a URL
        self.ended = False

    def next(self) -> Generator[Any, Any, list[str]]:
        """The next batch (empty at the end of the input)."""
        urls: list[str] = []
        while len(urls) < self.size and not self.ended:
            url: str | None
            if self.waiting is not None:
                if urls and not self.waiting.done():
                    break  # the input is slow: send what we have; this URL starts the next batch
                url = yield self.waiting
                self.waiting = None
            else:
                got = self.source.get()
                if isinstance(got, Future):
                    self.waiting = got
                    continue
                url = got
            if url is None:
                self.ended = True
            else:
                urls.append(url)
        return urls


def _reconcile(urls: list[str], results: list[Result]) -> list[Result]:
    """Exactly one result per URL sent, in the order returned; a missing one becomes a failure."""
    by_url: dict[str, deque[Result]] = defaultdict(deque)
    for result in results:
        by_url[result.url].append(result)
    wanted: dict[str, int] = defaultdict(int)
    for url in urls:
        wanted[url] += 1
    kept: list[Result] = []
    for result in results:
        if wanted[result.url] > 0:
            wanted[result.url] -= 1
            kept.append(result)
    for url, missing in wanted.items():
        kept.extend(Result(url, None, 0, 0.0, "LostResult", "the worker returned no result") for _ in range(missing))
    return kept


def _failed(urls: list[str], exc: BaseException) -> list[Result]:
    kind = type(exc).__name__
    text = str(exc) or repr(exc)
    return [Result(url, None, 0, 0.0, kind, text) for url in urls]


def dask_fetch_all(
    client: Any,
    source: UrlSource,
    options: FetchOptions,
    reporter: Any,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_in_flight: int = 4,
    batch_function: Callable[[list[str], FetchOptions], list[Result]] = fetch_batch,
    attempts: int = BATCH_ATTEMPTS,
) -> Generator[Any, Any, int]:
    """The coordinator's main task: shard, submit, report as batches return; the exit status.

    Args:
        client: a connected ``distributed.Client``.
        source: the URLs.
        options: the fetch settings, sent to the workers with every batch.
        reporter: what prints the results (see ``_report``).
        batch_size: URLs per Dask task.
        max_in_flight: batches submitted and not yet reported, at most.
        batch_function: what a worker runs on a batch (:func:`fetch_batch`;
            importable by the workers).
        attempts: submissions of a batch in all, when the scheduler drops it.
    """
    if batch_size < 1 or max_in_flight < 1 or attempts < 1:
        raise ValueError("batch_size, max_in_flight and attempts must be at least 1")
    run_id = uuid.uuid4().hex[:12]
    slots = Semaphore(max_in_flight)
    batches = _Batches(source, batch_size)
    waiters: set[Task[None]] = set()
    failures: list[BaseException] = []  # of the waiters themselves (a reporter that broke, say)

    def finished(waiter: Task[None]) -> None:
        waiters.discard(waiter)
        if not waiter.cancelled() and waiter.exception() is not None:
            failures.append(waiter.exception())  # type: ignore[arg-type]

    def run_batch(number: int, urls: list[str]) -> Generator[Any, Any, None]:
        try:
            results: list[Result] | None = None
            for attempt in range(1, attempts + 1):
                future = client.submit(
                    batch_function, urls, options, key=f"tasklets-fetch-{run_id}-{number}-{attempt}", pure=False
                )
                try:
                    results = _reconcile(urls, (yield future))
                except concurrent.futures.CancelledError as exc:  # dropped by the scheduler, not by us
                    if attempt < attempts:
                        continue
                    results = _failed(urls, exc)
                except Exception as exc:  # KilledWorker, or the batch function itself failed
                    results = _failed(urls, exc)
                break
            assert results is not None
            for result in results:
                reporter.result(result)
        finally:
            slots.release()

    try:
        for number in itertools.count():
            yield slots.acquire()
            if failures:
                raise failures[0]
            urls = yield from batches.next()
            if not urls:
                slots.release()
                break
            for url in urls:
                reporter.started(url)
            waiter = Task(run_batch(number, urls), name=f"dask batch {number}")
            waiters.add(waiter)
            waiter.add_done_callback(finished)  # type: ignore[arg-type]  # called with waiter: a Task
        while waiters:
            yield next(iter(waiters))
        if failures:
            raise failures[0]
    finally:
        source.close()
        for waiter in list(waiters):  # Ctrl-C: their Dask futures are cancelled with them
            waiter.cancel()
    return 1 if reporter.summary.failed else 0


@contextlib.contextmanager
def connect(target: DaskTarget) -> Iterator[Any]:
    """A ``distributed.Client`` for ``target`` (and its local cluster), closed on the way out.

    Raises:
        DaskUnavailable: ``distributed`` is not installed, or the scheduler cannot be reached.
    """
    try:
        from distributed import Client as DaskClient
        from distributed import LocalCluster
    except ImportError:
        raise DaskUnavailable("--dask needs Dask's distributed: pip install 'tasklets[dask]'") from None
    with contextlib.ExitStack() as stack:
        if target.local_workers is not None:
            cluster = stack.enter_context(
                LocalCluster(  # type: ignore[no-untyped-call]  # distributed's constructor is unannotated
                    n_workers=target.local_workers,
                    threads_per_worker=LOCAL_THREADS_PER_WORKER,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    # The scheduler serves HTTP anyway, by default on port 8787, warning on
                    # stderr when that is taken: any free loopback port instead.
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    silence_logs=logging.ERROR,
                    preload=[__name__],  # see dask_setup
                )
            )
            client = stack.enter_context(DaskClient(cluster))  # type: ignore[no-untyped-call]
        else:
            try:
                client = stack.enter_context(DaskClient(target.address, timeout=CONNECT_TIMEOUT))  # type: ignore[no-untyped-call]
            except (OSError, TimeoutError, ValueError) as exc:
                raise DaskUnavailable(f"cannot reach the Dask scheduler at {target.address!r}: {exc}") from None
        yield client


def run_dask_fetch(
    target: DaskTarget | str,
    source: UrlSource,
    options: FetchOptions,
    reporter: Any,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_in_flight: int | None = None,
    batch_function: Callable[[list[str], FetchOptions], list[Result]] = fetch_batch,
    client: Any = None,
) -> int:
    """``tasklets fetch --dask``: connect, fetch everything on the cluster, report; the exit status.

    Args:
        target: ``local:N``, a scheduler address, or a :class:`DaskTarget`
            (ignored when ``client`` is given).
        source: the URLs.
        options: the fetch settings.
        reporter: what prints the results.
        batch_size: URLs per Dask task.
        max_in_flight: batches out at once (default: twice the cluster's worker threads).
        batch_function: what a worker runs on a batch.
        client: an already connected ``distributed.Client`` to use (and leave open).

    Raises:
        DaskUnavailable: no ``distributed``, or no scheduler at that address.
        KeyboardInterrupt: after Ctrl-C, once the batches out were cancelled.
    """
    if client is None:
        if isinstance(target, str):
            target = parse_dask_target(target)
        with connect(target) as connected:
            return run_dask_fetch(
                target,
                source,
                options,
                reporter,
                batch_size=batch_size,
                max_in_flight=max_in_flight,
                batch_function=batch_function,
                client=connected,
            )
    if max_in_flight is None:
        threads = sum(client.nthreads().values())
        max_in_flight = max(2, 2 * threads)
    summary = getattr(reporter, "summary", None)
    if summary is not None:  # the clock starts once the cluster is there: the rate is the fetch's own
        summary.started = time.perf_counter()
    main = functools.partial(
        dask_fetch_all,
        client,
        source,
        options,
        reporter,
        batch_size=batch_size,
        max_in_flight=max_in_flight,
        batch_function=batch_function,
    )
    return run(main)  # type: ignore[no-any-return]
