"""Kernel edge cases: waits without bound, refused descriptors, fork."""

from __future__ import annotations

import math
import os
import socket
import sys
import tempfile
import warnings

import pytest

import tasklets
from tasklets import Future, Loop
from tasklets.testing import VirtualClock


def _readable_pair() -> tuple[socket.socket, socket.socket]:
    """A socket pair whose reading end is already readable: the first poll returns at once."""
    r, w = socket.socketpair()
    w.send(b"x")
    return r, w


class TestUnboundedWaits:
    """A timer at any distance, even infinity, is a wait the poller can make."""

    def test_a_timer_at_infinity_is_the_next_deadline_without_overflow(self, loop: Loop) -> None:
        r, w = _readable_pair()
        fired: list[str] = []
        try:
            loop.call_later(math.inf, fired.append, "never")
            loop.add_reader(r.fileno(), loop.stop)  # nothing is ready: the loop polls with the inf timer first
            loop.run_forever()
            loop.remove_reader(r.fileno())
        finally:
            r.close()
            w.close()
        assert fired == []

    @pytest.mark.parametrize("delay", [1e12, 1e300, sys.float_info.max])
    def test_with_timeout_of_any_finite_length(self, delay: float) -> None:
        r, w = _readable_pair()

        def main():
            loop = tasklets.current_loop()
            f: Future[str] = Future()
            loop.add_reader(r.fileno(), lambda: f.done() or f.set_result("read"))
            try:
                return (yield tasklets.with_timeout(f, delay))
            finally:
                loop.remove_reader(r.fileno())

        try:
            assert tasklets.run(main) == "read"
        finally:
            r.close()
            w.close()

    def test_virtual_clock_waits_for_real_events_rather_than_jump_to_infinity(self) -> None:
        clock = VirtualClock(autojump_threshold=0)
        assert clock.sleep_time(math.inf) is None  # block until I/O or a hand-over, as a real clock would
        clock.idle(math.inf)
        assert clock.time() == 0.0
        clock.idle(5.0)
        assert clock.time() == 5.0


class TestRefusedDescriptor:
    """epoll refuses regular files; the refusal must not leave a phantom registration behind."""

    def test_a_refused_fd_is_refused_again_not_silently_accepted(self, loop: Loop) -> None:
        if not hasattr(__import__("select"), "epoll"):
            pytest.skip("only epoll refuses regular files")
        with tempfile.TemporaryFile() as f:
            for _ in range(2):
                with pytest.raises(PermissionError):
                    loop.add_reader(f.fileno(), lambda: None)
            assert loop.remove_reader(f.fileno()) is False


@tasklets.task
def _double(x: int):
    yield tasklets.sleep(0)
    return 2 * x


def _in_child(body) -> int:
    """Fork; run ``body()`` in the child and return its exit status (0: body returned True)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded, use of fork()": we know
        pid = os.fork()
    if pid == 0:
        code = 3
        try:
            code = 0 if body() else 1
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
class TestFork:
    """A forked child starts with no loop of the parent's: it can run its own and use the default one."""

    def test_plain_code_in_a_child_gets_a_default_loop_of_its_own(self) -> None:
        assert _double(1).result(timeout=30) == 2  # the parent's default loop is up
        assert _in_child(lambda: _double(21).result(timeout=30) == 42) == 0

    def test_a_child_forked_from_a_task_can_run_a_loop(self) -> None:
        def child() -> bool:
            return tasklets.run(_double, 4) == 8 and _double(5).result(timeout=30) == 10

        def main():
            yield tasklets.sleep(0)
            return _in_child(child)

        assert tasklets.run(main) == 0


class TestFirstIterationPolls:
    """A busy loop polls at intervals, but a loop (re)entered polls at once (as asyncio's does)."""

    def test_readers_due_when_the_loop_starts_run_with_the_first_callbacks(self, loop: Loop) -> None:
        r, w = _readable_pair()
        seen: list[str] = []
        try:
            loop.add_reader(r.fileno(), seen.append, "reader")
            loop.call_soon(loop.stop)  # ready at once: without the first poll the reader waits for the next run
            loop.run_forever()
            loop.remove_reader(r.fileno())
        finally:
            r.close()
            w.close()
        assert seen == ["reader"]


class TestCallbacksAreDroppedOnceRun:
    def test_what_a_callback_alone_kept_alive_is_freed_before_the_next_callback_runs(self, loop: Loop) -> None:
        import weakref

        class Payload:
            def __call__(self) -> None:
                pass

        payload = Payload()
        alive = weakref.ref(payload)
        seen: list[bool] = []
        loop.call_soon(payload)
        del payload
        loop.call_soon(lambda: seen.append(alive() is None))
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert seen == [True]
