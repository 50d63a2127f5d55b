"""Run CPython's own ``test_concurrent_futures``, with ``tasklets.Future`` in place of the stdlib's or stock.

Usage: ``python _cpython_futures_suite.py OUTPUT [CLASS...]`` writes one
JSON object, ``{test id: outcome}``, to the file OUTPUT (the CLASS names
select some test classes). ``TASKLETS_SUITE_DIR`` names the suite's folder
when the interpreter's ``test`` package lacks it (Debian ships it apart, in
``libpython3.X-testsuite``); ``TASKLETS_SWAP_FUTURE=1`` swaps the future in,
here and in the pool's worker processes (which start this file again as
their main module: hence the work at the top level and the ``__main__``
guard).
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures._base
import importlib
import json
import os
import sys
import unittest

SUITE = "test.test_concurrent_futures"

if os.environ.get("TASKLETS_SWAP_FUTURE") == "1":
    import tasklets

    # Every stdlib executor makes its futures as ``_base.Future()``; the suite imports the name from there.
    concurrent.futures._base.Future = tasklets.Future  # type: ignore[misc]
    concurrent.futures.Future = tasklets.Future  # type: ignore[misc]

_extra = os.environ.get("TASKLETS_SUITE_DIR")
if _extra:
    import test

    test.__path__.append(_extra)  # the suite's folder, for this process and the pool's workers


class _Outcomes(unittest.TextTestResult):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.outcomes: dict[str, str] = {}

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self.outcomes[test.id()] = "ok"

    def addFailure(self, test: unittest.TestCase, err: object) -> None:
        super().addFailure(test, err)  # type: ignore[arg-type]
        self.outcomes[test.id()] = "FAIL"

    def addError(self, test: unittest.TestCase, err: object) -> None:
        super().addError(test, err)  # type: ignore[arg-type]
        self.outcomes[test.id()] = "ERROR"

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self.outcomes[test.id()] = "skipped"

    def addExpectedFailure(self, test: unittest.TestCase, err: object) -> None:
        super().addExpectedFailure(test, err)  # type: ignore[arg-type]
        self.outcomes[test.id()] = "expected failure"

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self.outcomes[test.id()] = "unexpected success"


def main() -> None:
    output = sys.argv[1]
    module = importlib.import_module(SUITE)
    loader = unittest.TestLoader()
    if len(sys.argv) > 2:  # only some of its test classes
        loader.testNamePatterns = [f"*.{name}.*" for name in sys.argv[2:]]
    suite = loader.loadTestsFromModule(module)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=1, resultclass=_Outcomes)
    result = runner.run(suite)
    with open(output, "w") as file:  # not stdout: the suite's own subprocesses write there
        json.dump(result.outcomes, file)  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
