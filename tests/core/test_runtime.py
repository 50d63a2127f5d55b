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


# -- Ctrl-C in every phase of run() -------------------------------------------------------------

# The prologue of every child below: SIGINT never lost, nothing left open.
# ResourceWarning is shown (it is ignored by default) and the descriptors
# open after the KeyboardInterrupt are compared with those before run().
WINDOW_PROLOGUE = textwrap.dedent(
    """
    import gc, os, signal, socket, sys, time, warnings
    warnings.simplefilter("always", ResourceWarning)
    import tasklets
    from tasklets import _runtime

    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    def interrupt_me():
        os.kill(os.getpid(), signal.SIGINT)

    def finish(run, *args):
        before = open_fds()
        started = time.monotonic()
        try:
            result = run(*args)
        except KeyboardInterrupt:
            took = time.monotonic() - started
            gc.collect()
            print(f"KeyboardInterrupt after {took:.1f} s, {open_fds() - before} fds left", flush=True)
            sys.exit(3)
        print(f"run returned {result!r}", flush=True)
    """
)


def _run_child(script: str, *, interrupt_after: str | None = None, interrupts: int = 1) -> tuple[int, list[str], str]:
    """Run ``script``; send ``interrupts`` SIGINTs once it printed ``interrupt_after`` (each after the next line)."""
    child = subprocess.Popen(
        [sys.executable, "-c", WINDOW_PROLOGUE + textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC, "TASKLETS_DEBUG": ""},
    )
    lines: list[str] = []
    try:
        if interrupt_after is not None:
            for _ in range(interrupts):
                line = child.stdout.readline()  # type: ignore[union-attr]
                lines.append(line.strip())
                assert line.strip() == interrupt_after, (lines, child.stderr.read() if not line else "")  # type: ignore[union-attr]
                child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    return child.returncode, lines + out.splitlines(), err


def _assert_interrupted(code: int, lines: list[str], err: str, *, within: float = 30.0) -> None:
    assert code == 3, (lines, err)
    last = lines[-1]
    assert last.startswith("KeyboardInterrupt after") and last.endswith(", 0 fds left"), (lines, err)
    assert float(last.split()[2]) < within, (lines, err)
    assert "ResourceWarning" not in err and "Traceback" not in err and "Exception ignored" not in err, err


class TestCtrlCInEveryPhase:
    """Ctrl-C always ends run() with KeyboardInterrupt, promptly, and leaks nothing of the loop."""

    def test_while_leftover_tasks_clean_up(self) -> None:
        code, lines, err = _run_child(
            """
            def leftover():
                try:
                    yield tasklets.Future()
                except tasklets.Cancelled:
                    print("cleaning up", flush=True)
                    yield tasklets.sleep(0.5)  # clean-up that takes a while
                    print("cleaned up", flush=True)
                    raise

            def main():
                tasklets.spawn(leftover)
                yield None
                return "main done"

            finish(tasklets.run, main)
            """,
            interrupt_after="cleaning up",
        )
        assert lines[:2] == ["cleaning up", "cleaned up"], (lines, err)
        _assert_interrupted(code, lines, err)

    def test_while_a_stubborn_leftover_holds_the_grace_period(self) -> None:
        # It swallows every cancellation: the Ctrl-C cuts the (here hour-long) grace period short.
        code, lines, err = _run_child(
            """
            _runtime.LEFTOVER_GRACE = 3600.0

            def stubborn():
                while True:
                    try:
                        yield tasklets.Future()
                    except tasklets.Cancelled:
                        print("ignoring the cancellation", flush=True)

            def main():
                tasklets.spawn(stubborn, name="stubborn")
                yield None

            finish(tasklets.run, main)
            """,
            interrupt_after="ignoring the cancellation",
        )
        _assert_interrupted(code, lines, err, within=30.0)

    def test_while_the_loop_closes(self) -> None:
        code, lines, err = _run_child(
            """
            def main():
                tasklets.current_loop().add_close_callback(interrupt_me)
                yield None
                return "main done"

            finish(tasklets.run, main)
            """
        )
        _assert_interrupted(code, lines, err)

    def test_while_the_loop_is_made(self) -> None:
        # The Ctrl-C lands right after the loop's waker socket pair is made (its poller already is).
        code, lines, err = _run_child(
            """
            made = socket.socketpair

            def socketpair(*args):
                pair = made(*args)
                interrupt_me()
                return pair

            socket.socketpair = socketpair

            def main():
                print("main ran", flush=True)
                yield None

            finish(tasklets.run, main)
            """
        )
        assert "main ran" not in lines
        _assert_interrupted(code, lines, err)

    def test_while_main_is_being_made(self) -> None:
        code, lines, err = _run_child(
            """
            def main():
                interrupt_me()
                return body()

            def body():
                print("body started", flush=True)
                yield tasklets.Future()

            finish(tasklets.run, main)
            """
        )
        assert "body started" not in lines  # cancelled before its first step
        _assert_interrupted(code, lines, err)

    def test_in_a_loop_of_short_runs_none_is_lost(self) -> None:
        # Each run() is interrupted by itself at a different moment; each must raise.
        code, lines, err = _run_child(
            """
            def leftover(where):
                try:
                    yield tasklets.Future()
                finally:
                    if where == "cleanup":
                        interrupt_me()
                    yield None

            def main(i, where):
                loop = tasklets.current_loop()
                tasklets.spawn(leftover, where)
                if where == "main":
                    interrupt_me()
                elif where == "after main":
                    loop.call_soon(interrupt_me)  # runs once main returned
                elif where == "close":
                    loop.add_close_callback(interrupt_me)
                yield None
                return i

            lost = []
            for i, where in enumerate(["main", "after main", "cleanup", "close"] * 15):
                try:
                    tasklets.run(main, i, where)
                except KeyboardInterrupt:
                    continue
                lost.append((i, where))
            print(f"lost {lost}", flush=True)
            finish(tasklets.run, main, -1, "close")
            """
        )
        assert lines[0] == "lost []", (lines, err)
        _assert_interrupted(code, lines, err)

    def test_at_every_line_run_executes_none_is_lost(self) -> None:
        # The campaign found a Ctrl-C lost inside the loop's add_signal_handler,
        # and one raised inside a finalizer as run() let go of its loop. Here
        # run() is repeated with the signal raised at each of its lines in turn
        # (those of the loop, the tasks and asyncio below it included).
        code, lines, err = _run_child(
            f"""
            sys.path.insert(0, {str(pathlib.Path(__file__).parent.parent)!r})
            from _signal_steps import signal_at_step

            def leftover():
                try:
                    yield tasklets.Future()
                finally:
                    yield None  # a clean-up that takes a step

            def main():
                tasklets.spawn(leftover)
                yield tasklets.sleep(0)
                return 1

            before = open_fds()
            lost = []
            for step in range(100_000):
                result = []
                try:
                    if not signal_at_step(step, signal.SIGINT, lambda: result.append(tasklets.run(main))):
                        break
                except KeyboardInterrupt:
                    continue
                lost.append((step, result))
            print(f"{{step}} steps, lost at {{lost[:10]}}, {{open_fds() - before}} fds left", flush=True)
            """
        )
        assert code == 0 and len(lines) == 1, (lines, err)
        assert lines[0].endswith(" steps, lost at [], 0 fds left") and int(lines[0].split()[0]) > 500, (lines, err)
        assert not err, err

    @pytest.mark.parametrize(
        "clean_up",
        [
            "yield tasklets.Future()  # a clean-up that never ends",
            "time.sleep(3600)  # blocks the loop itself",
        ],
        ids=["a clean-up that waits", "a callback that blocks"],
    )
    def test_a_second_ctrl_c_interrupts(self, clean_up: str) -> None:
        code, lines, err = _run_child(
            f"""
            def main():
                try:
                    print("ready", flush=True)
                    yield tasklets.Future()
                except tasklets.Cancelled:
                    print("ready", flush=True)
                    {clean_up}

            finish(tasklets.run, main)
            """,
            interrupt_after="ready",
            interrupts=2,
        )
        _assert_interrupted(code, lines, err)
