"""tasklets.run(), Ctrl-C handling, the default background loop, current_loop()."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Generator
from typing import Any

import pytest

import tasklets

SRC = str(pathlib.Path(tasklets.__file__).resolve().parent.parent)

CTRL_C_CHILD = textwrap.dedent(
    """
    import sys
    import tasklets

    def main():
        print("ready", flush=True)
        try:
            yield tasklets.Future()  # waits forever
        except Exception:
            print("except Exception caught the cancellation", flush=True)
        except tasklets.Cancelled as exc:
            print(f"cancelled: {exc}", flush=True)
            yield tasklets.sleep(0.01)  # cleanup may still wait on things
            print("cleaned up", flush=True)
            raise

    try:
        tasklets.run(main)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
        sys.exit(3)
    print("run returned", flush=True)
    """
)


def _interrupt_child(script: str) -> tuple[int, list[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC, "TASKLETS_DEBUG": ""},
    )
    try:
        first = child.stdout.readline()  # the child is inside its main task, SIGINT handled
        assert first == "ready\n", (first, child.stderr.read() if first == "" else "")
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    return child.returncode, [first.strip(), *out.splitlines()], err


class TestCtrlC:
    """SIGINT cancels the main task, lets it clean up, then raises KeyboardInterrupt."""

    def test_sigint_cancels_main_lets_it_clean_up_then_raises_keyboard_interrupt(self) -> None:
        code, lines, err = _interrupt_child(CTRL_C_CHILD)
        assert lines == ["ready", "cancelled: KeyboardInterrupt", "cleaned up", "KeyboardInterrupt"], err
        assert code == 3, err

    def test_sigint_raises_keyboard_interrupt_even_if_main_swallows_the_cancellation(self) -> None:
        script = CTRL_C_CHILD.replace("            raise\n", "            return 'swallowed'\n")
        code, lines, err = _interrupt_child(script)
        assert lines == ["ready", "cancelled: KeyboardInterrupt", "cleaned up", "KeyboardInterrupt"], err
        assert code == 3

    def test_run_restores_the_sigint_handler(self) -> None:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            pytest.skip("SIGINT is not at its default handler in this process")

        def main():
            yield None
            return signal.getsignal(signal.SIGINT)

        during = tasklets.run(main)
        assert during is not signal.default_int_handler  # run() handles Ctrl-C itself
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class TestRunAndLoops:
    """run() in any thread, and the loops tasks find."""

    def test_run_in_a_non_main_thread(self) -> None:
        def main(x):
            yield tasklets.sleep(0)
            return x, threading.current_thread().name

        results: list[object] = []
        worker = threading.Thread(target=lambda: results.append(tasklets.run(main, 5)), name="runner")
        worker.start()
        worker.join(30)
        assert results == [(5, "runner")]

    def test_each_run_uses_a_fresh_loop_that_is_closed_afterwards(self) -> None:
        def main():
            yield None
            return tasklets.current_loop()

        first, second = tasklets.run(main), tasklets.run(main)
        assert first is not second
        assert first.is_closed() and second.is_closed()
        with pytest.raises(tasklets.LoopError):
            first.run_forever()

    def test_current_loop_outside_a_loop_raises(self) -> None:
        with pytest.raises(tasklets.LoopError, match=r"tasklets\.run"):
            tasklets.current_loop()

    def test_default_loop_is_one_running_background_loop(self) -> None:
        loop = tasklets.default_loop()
        assert loop is tasklets.default_loop()
        seen = tasklets.Future()
        loop.call_soon_threadsafe(lambda: seen.set_result((tasklets.current_loop(), threading.current_thread())))
        current, thread = seen.result(timeout=30)
        assert current is loop and thread.daemon and loop.is_running()

    def test_run_with_the_virtual_clock_and_debug(self) -> None:
        from tasklets.testing import VirtualClock

        clock = VirtualClock(start=100.0)

        def main():
            yield tasklets.sleep(60)
            return tasklets.current_loop().time()

        assert tasklets.run(main, clock=clock, debug=True) == 160.0


def test_run_does_not_wait_forever_for_a_task_that_swallows_cancellation(caplog: pytest.LogCaptureFixture) -> None:
    """A leftover task that ignores Cancelled and waits on is abandoned after the grace period, with a warning."""
    from tasklets.testing import VirtualClock

    never = tasklets.Event()
    saw_cancel = []

    def stubborn() -> Generator[Any, Any, None]:
        while True:  # swallows every cancellation and waits on regardless
            try:
                yield never.wait()
            except tasklets.Cancelled:
                saw_cancel.append(True)

    def main() -> Generator[Any, Any, str]:
        tasklets.spawn(stubborn, name="stubborn")
        yield None
        return "done"

    with caplog.at_level("WARNING", logger="tasklets"):
        assert tasklets.run(main, clock=VirtualClock()) == "done"
    assert saw_cancel == [True, True, True]  # three rounds of cancellation, then it is abandoned
    assert "stubborn" in caplog.text and "abandoned" in caplog.text
