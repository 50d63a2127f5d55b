"""tasklets.testing.VirtualClock: long timeouts tested in milliseconds."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import tasklets
from tasklets import Future
from tasklets.testing import LeftBehind, VirtualClock, run_strict, stream_pair


class TestVirtualClock:
    """The clock jumps to the next deadline whenever the loop is idle."""

    def test_a_one_hour_timeout_takes_milliseconds(self) -> None:
        clock = VirtualClock()

        def main():
            never = Future()
            try:
                yield tasklets.with_timeout(never, 3600)
            except tasklets.TimeoutError:
                return "timed out", tasklets.current_loop().time(), never.cancelled()

        started = time.perf_counter()
        outcome = tasklets.run(main, clock=clock)
        elapsed = time.perf_counter() - started
        assert outcome == ("timed out", 3600, True)
        assert clock.time() == 3600
        assert elapsed < 5  # an hour of virtual time, almost no real time

    def test_a_day_of_timers_fires_in_order(self) -> None:
        clock = VirtualClock(start=1000)
        fired: list[float] = []

        def ticker(period, count):
            for _ in range(count):
                yield tasklets.sleep(period)
                fired.append(tasklets.current_loop().time() - 1000)

        def main():
            yield [tasklets.spawn(ticker, 3600, 24), tasklets.spawn(ticker, 86400, 1)]

        tasklets.run(main, clock=clock)
        assert fired == sorted(fired) and len(fired) == 25
        assert fired[-1] == 86400 and clock.time() == 1000 + 86400

    def test_time_stands_still_while_tasks_are_busy(self) -> None:
        clock = VirtualClock()

        def main():
            loop = tasklets.current_loop()
            before = loop.time()
            for _ in range(100):
                yield None
            return loop.time() - before

        assert tasklets.run(main, clock=clock) == 0

    def test_jump_moves_time_forward(self) -> None:
        clock = VirtualClock(start=5)
        assert clock.time() == 5 and "5.0" in repr(clock)
        clock.jump(2.5)
        assert clock.time() == 7.5
        with pytest.raises(ValueError, match="forward"):
            clock.jump(-1)

    def test_a_manual_jump_fires_what_is_due(self) -> None:
        clock = VirtualClock()

        def main():
            nap = tasklets.sleep(10, "woke")
            clock.jump(10)
            return (yield nap), tasklets.current_loop().time()

        assert tasklets.run(main, clock=clock) == ("woke", 10)

    def test_a_positive_threshold_lets_thread_work_finish_before_jumping(self) -> None:
        clock = VirtualClock(autojump_threshold=5.0)

        def main():
            value = yield tasklets.with_timeout(tasklets.to_thread(sum, range(10)), 3600)
            return value, tasklets.current_loop().time()

        assert tasklets.run(main, clock=clock) == (45, 0)

    def test_loop_with_a_virtual_clock(self) -> None:
        clock = VirtualClock()
        loop = tasklets.Loop(clock=clock)
        fired: list[float] = []
        loop.call_later(7200, lambda: (fired.append(loop.time()), loop.stop()))
        started = time.perf_counter()
        loop.run_forever()
        loop.close()
        assert fired == [7200] and time.perf_counter() - started < 5


class TestThreadsAndTheVirtualClock:
    """The clock holds still while the default thread pool works for the loop."""

    def test_a_timeout_does_not_expire_while_a_thread_is_about_to_answer(self) -> None:
        def slow() -> str:
            time.sleep(0.05)  # real work a thread does; the loop is idle meanwhile
            return "answered"

        def main():
            return (yield tasklets.with_timeout(tasklets.to_thread(slow), 10)), tasklets.current_loop().time()

        assert tasklets.run(main, clock=VirtualClock()) == ("answered", 0.0)

    def test_a_thread_blocked_for_good_holds_the_clock_no_longer_than_its_grace(self) -> None:
        release = threading.Event()

        def main():
            blocked = tasklets.to_thread(release.wait, 30)
            try:
                yield tasklets.with_timeout(blocked, 10)
            except tasklets.TimeoutError:
                return tasklets.current_loop().time()
            finally:
                release.set()

        assert tasklets.run(main, clock=VirtualClock(thread_grace=0.05)) == 10.0


class TestRunStrict:
    """tasklets.testing.run_strict fails a test on what it leaves behind."""

    def test_a_leftover_task_timer_and_registration_fail_the_test_by_name(self) -> None:
        a, b = socket.socketpair()

        def forgotten():
            yield Future()

        def main():
            loop = tasklets.current_loop()
            tasklets.Task(forgotten(), name="forgotten")
            loop.call_later(60, lambda: None)
            loop.add_reader(a.fileno(), lambda: None)
            yield None

        try:
            with pytest.raises(LeftBehind, match=r"forgotten.*registrations.*armed timers"):
                run_strict(main, clock=VirtualClock())
        finally:
            a.close()
            b.close()

    def test_a_clean_test_returns_its_result(self) -> None:
        def main():
            left, right = stream_pair(loop=tasklets.current_loop())
            yield left.write(b"ping")
            got = yield right.read_exactly(4)
            left.close()
            right.close()
            yield left.wait_closed()
            yield right.wait_closed()
            return got

        assert run_strict(main, clock=VirtualClock(), check_descriptors=True) == b"ping"
