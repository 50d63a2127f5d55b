"""CPython's own test_asyncio, whole, with the tasklets loop as the loop every test makes.

Runs ``tests/aio/cpython_suite.py`` twice at once in subprocesses of the
Python running pytest, on stock asyncio and on ``tasklets.asyncio.EventLoop``,
and requires no failure and no error on ours and every test that passes on
stock to pass on ours. (Ours runs more tests: the loop-parametrised classes
get a tasklets twin.) About 3.5 minutes on an idle machine, 8 on a loaded one.
Other versions: see the README ("CPython's asyncio tests").
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).with_name("cpython_suite.py")

try:
    import test.test_asyncio  # noqa: F401  (Lib/test; some distributions leave it out)
except ImportError:  # pragma: no cover
    HAVE_SUITE = False
else:
    HAVE_SUITE = True


@pytest.mark.skipif(not HAVE_SUITE, reason="this Python has no Lib/test/test_asyncio")
@pytest.mark.timeout(2400)
def test_cpython_test_asyncio_passes_on_the_tasklets_loop_as_on_stock() -> None:
    runs = {
        loop: subprocess.Popen(
            [sys.executable, str(SCRIPT), "--json", *(["--stock"] if loop == "stock" else [])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for loop in ("stock", "tasklets")
    }
    summaries = {}
    for loop, process in runs.items():
        out, err = process.communicate(timeout=2300)
        assert out.strip(), f"the {loop} run printed no summary:\n{err[-5000:]}"
        summaries[loop] = json.loads(out.strip().splitlines()[-1])
    ours, stock = summaries["tasklets"], summaries["stock"]
    assert ours["failures"] == [] and ours["errors"] == [], (ours["failures"], ours["errors"])
    missing = sorted(set(stock["passed_ids"]) - set(ours["passed_ids"]))
    assert missing == [], f"passed on stock asyncio, not on the tasklets loop: {missing}"
    assert ours["passed"] > 2000  # the whole suite ran, not a corner of it
