"""A worker process that dies mid-batch: its URLs are fetched again elsewhere, each reported once.

The batch holding a "poison" URL kills its worker (``os._exit``) on its first
attempt, after fetching half its URLs: those results die with the process.
The scheduler runs the batch again on a live worker (the nanny restarts the
dead one meanwhile). A marker file makes the kill happen exactly once, so
the test is bounded and deterministic.

A batch that kills every worker it runs on is given up after Dask's allowed
failures (``KilledWorker``): its URLs are reported as failures of that kind,
once each, and the rest of the run is unaffected.

This module has a cluster of its own (the kills must not disturb the other
tests), configured so that only the batch at fault is blamed: one thread per
worker, and no task queued on a worker beyond the one it runs
(``worker-saturation: 1.0``), since the scheduler counts a failure against
every task assigned to a worker that dies; and one allowed failure, so the
batch that always kills is given up at its second kill.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from _dask_support import (  # noqa: E402
    BOUND,
    NO_DEFAULT_HTTP_PORT,
    Server,
    always_killing_batch,
    killing_batch,
    size_of,
)

from tasklets.cli._dask_fetch import run_dask_fetch  # noqa: E402
from tasklets.cli._fetch import FetchOptions, UrlSource  # noqa: E402
from tasklets.cli._report import Reporter, Summary  # noqa: E402


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """This module's cluster: 2 workers of 1 thread, nothing queued on them, one allowed failure."""
    import dask

    config = {"distributed.scheduler.allowed-failures": 1, "distributed.scheduler.worker-saturation": 1.0}
    with (
        dask.config.set(config),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs=NO_DEFAULT_HTTP_PORT,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.wait_for_workers(2, timeout=BOUND)
        yield client


def _fetch_with_a_kill(client: Any, server: Server, marker: Path, *, count: int, batch: int, poison: int) -> list[dict]:
    import io

    urls = [server.url(f"/n/{i}") for i in range(count)]
    out = io.StringIO()
    reporter = Reporter(Summary(), as_json=True, out=out, err=out)
    status = run_dask_fetch(
        None,  # type: ignore[arg-type]
        UrlSource(urls, None),
        FetchOptions(concurrency=8, timeout=BOUND),
        reporter,
        client=client,
        batch_size=batch,
        max_in_flight=4,
        batch_function=functools.partial(killing_batch, poison=urls[poison], marker=str(marker)),
    )
    assert status == 0
    assert marker.exists(), "no worker was killed: the test proved nothing"
    assert (reporter.summary.done, reporter.summary.failed) == (count, 0)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _check(server: Server, records: list[dict], *, count: int, batch: int, poison: int) -> None:
    reported = Counter(record["url"] for record in records)
    assert sorted(reported) == sorted(server.url(f"/n/{i}") for i in range(count))  # nothing lost
    assert max(reported.values()) == 1  # nothing twice
    for record in records:
        number = int(record["url"].rsplit("/", 1)[1])
        assert (record["status"], record["bytes"], record["error"]) == (200, size_of(number), None)
    # The dead attempt did fetch the first half of the poison batch; the retry fetched it again.
    first = poison // batch * batch
    for i in range(first, first + batch // 2):
        assert server.seen[f"/n/{i}"] >= 2, f"/n/{i} was fetched only once: the batch was not retried"


def test_a_killed_worker_loses_nothing_and_repeats_nothing(dask_client, server, tmp_path: Path) -> None:
    count, batch, poison = 600, 40, 250
    records = _fetch_with_a_kill(dask_client, server, tmp_path / "killed", count=count, batch=batch, poison=poison)
    _check(server, records, count=count, batch=batch, poison=poison)
    dask_client.wait_for_workers(2, timeout=BOUND)  # the nanny brought the worker back


@pytest.mark.slow
def test_a_killed_worker_in_a_long_run(dask_client, server, tmp_path: Path) -> None:
    count, batch, poison = 6000, 100, 3333
    records = _fetch_with_a_kill(dask_client, server, tmp_path / "killed", count=count, batch=batch, poison=poison)
    _check(server, records, count=count, batch=batch, poison=poison)


def test_a_batch_that_kills_every_worker_is_reported_failed_once(dask_client, server) -> None:
    import io

    count, batch, poison = 200, 20, 105
    urls = [server.url(f"/n/{i}") for i in range(count)]
    out = io.StringIO()
    reporter = Reporter(Summary(), as_json=True, out=out, err=out)
    status = run_dask_fetch(
        None,  # type: ignore[arg-type]
        UrlSource(urls, None),
        FetchOptions(concurrency=8, timeout=BOUND),
        reporter,
        client=dask_client,
        batch_size=batch,
        max_in_flight=2,
        batch_function=functools.partial(always_killing_batch, poison=urls[poison]),
    )
    assert status == 1
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(record["url"] for record in records) == sorted(urls)  # each once, none lost
    doomed = set(urls[poison // batch * batch : poison // batch * batch + batch])
    for record in records:
        if record["url"] in doomed:
            assert record["error"].startswith("KilledWorker: "), record
        else:
            number = int(record["url"].rsplit("/", 1)[1])
            assert (record["status"], record["bytes"], record["error"]) == (200, size_of(number), None)
    assert (reporter.summary.done, reporter.summary.failed) == (count, batch)
    dask_client.wait_for_workers(2, timeout=BOUND)
