"""Fixtures of the Dask tests: a real ``distributed.LocalCluster`` per module, and the HTTP server.

Every test module starts with ``pytest.importorskip("distributed")``, so the
whole directory is skipped cleanly where Dask is not installed; nothing here
imports it at module level.

Warnings: the suite runs under ``filterwarnings = error`` and needs no filter
(distributed 2026.8). The usual noise of a ``LocalCluster`` is avoided at
its source rather than filtered: ``dashboard_address=None`` (no bokeh),
``scheduler_kwargs=NO_DEFAULT_HTTP_PORT`` (see ``_dask_support``), loopback
only, and every client and cluster closed by its context manager (no
"unclosed" ``ResourceWarning``). ``dashboard_address=None`` alone does not
free port 8787: the scheduler still starts its HTTP server (health,
metrics) there, and warns "Port 8787 is already in use" when anything holds
it (another cluster, another run of these tests at the same time): a
warning made an error here, so the cluster failed to start. The one
warning seen while writing these tests, ``RuntimeWarning: coroutine
'Future._result' was never awaited``, was a real bug (``gather`` read a Dask
future's result on Dask's own I/O thread, where ``result()`` returns a
coroutine), fixed in the library: a blanket filter would have hidden it. If
a future version of distributed warns, filter that one message here, by
category and module, with the reason.
"""

from __future__ import annotations

import pathlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _dask_support import BOUND, NO_DEFAULT_HTTP_PORT, Server

# The command-line tests here drive ``tasklets`` as tests/cli does, with its
# helpers (``cli._cli_support``, the name pytest gives it from tests/).
_TESTS = str(pathlib.Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the ``slow`` tests only when asked for (``-m slow``); the default run is bounded."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    here = pathlib.Path(__file__).parent
    skip = pytest.mark.skip(reason="slow: select it with -m slow")
    for item in items:
        if "slow" in item.keywords and here in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """A client of a fresh local cluster: 2 worker processes of 2 threads, on 127.0.0.1, no dashboard."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs=NO_DEFAULT_HTTP_PORT,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.wait_for_workers(2, timeout=BOUND)
        yield client


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """The test server (see ``_dask_support``), its held requests released and stopped at the end of the module."""
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), name="dask-test-server", daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release()
        srv.shutdown()
        srv.server_close()
        thread.join(BOUND)
