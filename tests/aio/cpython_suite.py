"""Run CPython's own ``Lib/test/test_asyncio`` with the tasklets loop as the loop every test makes.

Usage (any Python 3.11+ whose ``Lib/test`` is installed and that has h11,
which ``import tasklets`` needs; tasklets itself is imported from ``src/``)::

    python tests/aio/cpython_suite.py                 # with tasklets.asyncio.EventLoop
    python tests/aio/cpython_suite.py --stock         # stock asyncio, for comparison
    python tests/aio/cpython_suite.py --compare       # both, one after the other; exit 1 on any difference
    python tests/aio/cpython_suite.py -k test_sendfile --verbose

How the loop is swapped in: the default policy's loop factory becomes
``EventLoop``, so ``asyncio.new_event_loop()``, ``asyncio.run()``,
``asyncio.Runner`` and ``IsolatedAsyncioTestCase`` make ours; and every
loop-parametrised test class (``EPollEventLoopTests`` of test_events,
test_sendfile, test_sock_lowlevel, ...: connections, servers, SSL, sendfile,
streams, subprocesses) gets a twin whose ``create_event_loop`` returns ours.

Network resources stay off (as under ``python -m test`` without ``-u``):
nothing but loopback is contacted. The last line printed is a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio  # before tasklets (and so before _asyncio): see tasklets.asyncio
import faulthandler
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import unittest

SRC = pathlib.Path(__file__).resolve().parents[2] / "src"


def _install_tasklets_loop() -> type:
    sys.path.insert(0, str(SRC))
    from tasklets.asyncio import EventLoop

    policy_class = type(asyncio.get_event_loop_policy())
    policy_class._loop_factory = EventLoop  # type: ignore[attr-defined]
    asyncio.DefaultEventLoopPolicy._loop_factory = EventLoop  # type: ignore[attr-defined]
    return EventLoop


def _twin_loop_classes(suite_module: object, event_loop: type) -> list[type]:
    """For each loop-parametrised test class of a module, a twin that runs on ``event_loop``."""
    twins = []
    for name in ("EPollEventLoopTests",):
        base = getattr(suite_module, name, None)
        if isinstance(base, type) and issubclass(base, unittest.TestCase):
            twin = type(
                "Tasklets" + name,
                (base,),
                {"create_event_loop": lambda self: event_loop(), "__module__": base.__module__},
            )
            twins.append(twin)
    return twins


def _load(stock: bool, keyword: str | None) -> unittest.TestSuite:
    from test import support

    support.use_resources = []  # no network: loopback only, as `python -m test` without -u
    import test.test_asyncio as package

    event_loop = None if stock else _install_tasklets_loop()
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    directory = pathlib.Path(package.__file__).parent
    for path in sorted(directory.glob("test_*.py")):
        name = f"test.test_asyncio.{path.stem}"
        if keyword and keyword not in name:
            continue
        try:
            module = __import__(name, fromlist=["*"])
        except unittest.SkipTest:
            continue  # test_windows_events and the like
        suite.addTests(loader.loadTestsFromModule(module))
        if event_loop is not None:
            for twin in _twin_loop_classes(module, event_loop):
                suite.addTests(loader.loadTestsFromTestCase(twin))
    return suite


class _Result(unittest.TextTestResult):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.passed: list[str] = []

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self.passed.append(test.id())


def _run(stock: bool, keyword: str | None, verbose: bool) -> dict[str, object]:
    suite = _load(stock, keyword)
    faulthandler.dump_traceback_later(1800, exit=True)  # a hung test must not hang CI
    started = time.monotonic()
    runner = unittest.TextTestRunner(verbosity=2 if verbose else 1, resultclass=_Result, stream=sys.stderr)
    result = runner.run(suite)
    faulthandler.cancel_dump_traceback_later()
    return {
        "python": sys.version.split()[0],
        "loop": "stock" if stock else "tasklets",
        "run": result.testsRun,
        "passed": len(result.passed),  # type: ignore[attr-defined]
        "failures": [test.id() for test, _ in result.failures],
        "errors": [test.id() for test, _ in result.errors],
        "unexpected_successes": [test.id() for test in result.unexpectedSuccesses],
        "skipped": len(result.skipped),
        "passed_ids": sorted(result.passed),  # type: ignore[attr-defined]
        "seconds": round(time.monotonic() - started, 1),
    }


def _summary_of(argv: list[str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, __file__, "--json", *argv], stdout=subprocess.PIPE, text=True, check=False)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stock", action="store_true", help="run with stock asyncio loops")
    parser.add_argument("--compare", action="store_true", help="run stock and tasklets; fail on any difference")
    parser.add_argument("-k", dest="keyword", help="only test modules whose name contains this")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the full summary (with every passed id)")
    args = parser.parse_args()
    extra = ["-k", args.keyword] if args.keyword else []
    if args.compare:
        stock = _summary_of(["--stock", *extra])
        ours = _summary_of(extra)
        only_stock = sorted(set(stock["passed_ids"]) - set(ours["passed_ids"]))  # type: ignore[arg-type]
        for summary in (stock, ours):
            print({k: v for k, v in summary.items() if k != "passed_ids"})
        print("passed on stock, not on tasklets:", only_stock)
        same = not only_stock and not ours["failures"] and not ours["errors"]
        return 0 if same else 1
    summary = _run(args.stock, args.keyword, args.verbose)
    if args.json:
        print(json.dumps(summary))
    else:
        print(json.dumps({k: v for k, v in summary.items() if k != "passed_ids"}))
    return 0 if not summary["failures"] and not summary["errors"] else 1


if __name__ == "__main__":
    # Some tests write files named after test.support.TESTFN into the current directory.
    with tempfile.TemporaryDirectory(prefix="tasklets-test-asyncio-") as scratch:
        os.chdir(scratch)
        sys.exit(main())
