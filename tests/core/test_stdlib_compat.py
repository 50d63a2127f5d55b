"""``tasklets.Future`` as a drop-in ``concurrent.futures.Future``: the stdlib's formats, and CPython's own suite.

``test_concurrent_futures`` (the interpreter's, or Debian's
``libpython3.X-testsuite`` where the interpreter has none) is run twice in
subprocesses, stock and with ``tasklets.Future`` swapped in for the stdlib's
future, and must give the same outcome for every test.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys
import sysconfig

import pytest

import tasklets

RUNNER = pathlib.Path(__file__).with_name("_cpython_futures_suite.py")
SRC = str(pathlib.Path(tasklets.__file__).resolve().parent.parent)
#: Seconds one run of the suite may take (it takes 60-120 s on a quiet machine of two cores).
SUITE_LIMIT = 1200


def _futures() -> dict[str, concurrent.futures.Future[object]]:
    pending: tasklets.Future[object] = tasklets.Future()
    running: tasklets.Future[object] = tasklets.Future()
    running.set_running_or_notify_cancel()
    cancelled: tasklets.Future[object] = tasklets.Future()
    cancelled.cancel()
    raised: tasklets.Future[object] = tasklets.Future()
    raised.set_exception(OSError("boom"))
    returned: tasklets.Future[object] = tasklets.Future()
    returned.set_result(42)
    return {"pending": pending, "running": running, "cancelled": cancelled, "raised": raised, "returned": returned}


class TestTheStdlibsFormats:
    def test_repr(self) -> None:
        futures = _futures()
        assert re.fullmatch(r"<Future at 0x[0-9a-f]+ state=pending>", repr(futures["pending"]))
        assert re.fullmatch(r"<Future at 0x[0-9a-f]+ state=running>", repr(futures["running"]))
        assert re.fullmatch(r"<Future at 0x[0-9a-f]+ state=cancelled>", repr(futures["cancelled"]))
        assert re.fullmatch(r"<Future at 0x[0-9a-f]+ state=finished raised OSError>", repr(futures["raised"]))
        assert re.fullmatch(r"<Future at 0x[0-9a-f]+ state=finished returned int>", repr(futures["returned"]))

    def test_repr_is_the_stdlibs_for_every_state(self) -> None:
        stock: dict[str, concurrent.futures.Future[object]] = {}
        for state, ours in _futures().items():
            theirs: concurrent.futures.Future[object] = concurrent.futures.Future()
            if state == "running":
                theirs.set_running_or_notify_cancel()
            elif state == "cancelled":
                theirs.cancel()
            elif state == "raised":
                theirs.set_exception(OSError("boom"))
            elif state == "returned":
                theirs.set_result(42)
            stock[state] = theirs
            assert repr(ours).replace(f"{id(ours):#x}", "ID") == repr(theirs).replace(f"{id(theirs):#x}", "ID")

    def test_a_task_adds_its_details_after_the_stdlibs_state(self) -> None:
        def main() -> object:
            yield None
            return 7

        task = tasklets.spawn(main, name="seven")
        assert task.result(timeout=30) == 7
        assert re.fullmatch(r"<Task 'seven' state=finished returned int>", repr(task))

    @pytest.mark.parametrize("second", ["set_result", "set_exception"])
    def test_setting_an_outcome_twice(self, second: str) -> None:
        returned, raised = _futures()["returned"], _futures()["raised"]
        for done, state in ((returned, "returned int"), (raised, "raised OSError")):
            with pytest.raises(concurrent.futures.InvalidStateError) as caught:
                getattr(done, second)(ValueError() if second == "set_exception" else 1)
            assert re.match(rf"FINISHED: <Future at 0x[0-9a-f]+ state=finished {state}>", str(caught.value))

    def test_setting_the_outcome_of_a_cancelled_future(self) -> None:
        cancelled = _futures()["cancelled"]
        with pytest.raises(concurrent.futures.InvalidStateError, match=r"^CANCELLED_AND_NOTIFIED: <Future at 0x"):
            cancelled.set_result(1)


def _suite_location() -> tuple[str | None, str | None]:
    """``(None, None)`` when the interpreter has the suite; ``(None, folder)`` for Debian's copy; else a reason."""
    if importlib.util.find_spec("test") is None:
        return "this interpreter has no 'test' package (CPython's own test suites)", None
    try:
        if importlib.util.find_spec("test.test_concurrent_futures") is not None:
            return None, None
    except ImportError:
        pass
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    folder = pathlib.Path(sysconfig.get_config_var("prefix") or "/usr") / "lib" / f"python{version}" / "test"
    for candidate in (folder, pathlib.Path(f"/usr/lib/python{version}/test")):
        if (candidate / "test_concurrent_futures.py").is_file():
            return None, str(candidate)
    return (
        f"this interpreter's 'test' package lacks test_concurrent_futures, and no copy is installed "
        f"(Debian: apt-get install libpython{version}-testsuite)",
        None,
    )


#: Where tasklets.Future departs from the stdlib on purpose: a cancelled future goes straight to
#: CANCELLED_AND_NOTIFIED (the stdlib's goes to CANCELLED, and to CANCELLED_AND_NOTIFIED only when an
#: executor later calls set_running_or_notify_cancel), because concurrent.futures.wait and as_completed
#: count a cancelled future as done only in that state. test_cancel asserts the internal state.
#: Tests are named by class and method: the suite is one module on 3.11 and a package from 3.12 on.
DEPARTURES = {"FutureTests.test_cancel": ("ok", "FAIL")}


def _by_class_and_method(outcomes: dict[str, str]) -> dict[str, str]:
    return {".".join(test.split(".")[-2:]): outcome for test, outcome in outcomes.items()}


def _start_suite(swap: bool, folder: str | None, output: pathlib.Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "TASKLETS_SWAP_FUTURE": "1" if swap else "0"}
    if folder is not None:
        env["TASKLETS_SUITE_DIR"] = folder
    return subprocess.Popen(
        [sys.executable, str(RUNNER), str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(output.parent),
    )


def _outcomes(run: subprocess.Popen[str], output: pathlib.Path) -> dict[str, str]:
    try:
        _, err = run.communicate(timeout=SUITE_LIMIT)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert output.exists(), f"the suite wrote no results (exit {run.returncode}): {err[-3000:]}"
    outcomes: dict[str, str] = json.loads(output.read_text())
    assert len(outcomes) > 100, f"the suite ran only {len(outcomes)} tests: {err[-3000:]}"
    return outcomes


@pytest.mark.timeout(2 * SUITE_LIMIT)
def test_cpython_test_concurrent_futures_gives_the_same_results_with_tasklets_future(tmp_path: pathlib.Path) -> None:
    reason, folder = _suite_location()
    if reason is not None:
        pytest.skip(reason)
    (tmp_path / "stock").mkdir()
    (tmp_path / "swapped").mkdir()
    # Both at once: most of the suite's time is spent waiting on pools and timeouts.
    stock_run = _start_suite(False, folder, tmp_path / "stock" / "outcomes.json")
    swapped_run = _start_suite(True, folder, tmp_path / "swapped" / "outcomes.json")
    stock = _by_class_and_method(_outcomes(stock_run, tmp_path / "stock" / "outcomes.json"))
    swapped = _by_class_and_method(_outcomes(swapped_run, tmp_path / "swapped" / "outcomes.json"))
    differences = {
        test: (stock.get(test, "not run"), swapped.get(test, "not run"))
        for test in sorted(set(stock) | set(swapped))
        if stock.get(test) != swapped.get(test)
    }
    assert differences == DEPARTURES, f"stock vs tasklets.Future: {differences}"
    assert swapped["FutureTests.test_repr"] == "ok"


def test_why_a_cancelled_future_is_cancelled_and_notified_at_once() -> None:
    """The departure above: concurrent.futures.wait sees our cancelled future as done; the stdlib's, never."""
    ours: tasklets.Future[object] = tasklets.Future()
    theirs: concurrent.futures.Future[object] = concurrent.futures.Future()
    ours.cancel()
    theirs.cancel()
    done, _ = concurrent.futures.wait([ours], timeout=0)
    assert done == {ours}
    done, not_done = concurrent.futures.wait([theirs], timeout=0)
    assert done == set() and not_done == {theirs}  # until an executor's set_running_or_notify_cancel
