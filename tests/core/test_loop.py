"""The event loop: callbacks, timers, wake-ups, signals, readiness, debug mode."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import signal
import socket
import threading
import time

import pytest

import tasklets
from tasklets import Future, Loop
from tasklets.testing import VirtualClock


def _run_until(loop: Loop, future: tasklets.Future, *, guard: float = 30.0):
    """Run ``loop`` until ``future`` is done; a far-off guard timer fails a hung test."""

    def give_up() -> None:
        if not future.done():
            future.set_exception(AssertionError(f"guard timer fired after {guard} s"))

    guard_timer = loop.call_later(guard, give_up)
    try:
        return loop.run_until_complete(future)
    finally:
        guard_timer.cancel()


class TestCallbacks:
    """call_soon runs callbacks in order, one iteration at a time."""

    def test_call_soon_runs_in_fifo_order_with_args(self, loop: Loop) -> None:
        calls: list[object] = []
        for i in range(5):
            loop.call_soon(calls.append, i)
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert calls == [0, 1, 2, 3, 4]

    def test_callbacks_scheduled_by_callbacks_run_in_the_next_iteration(self, loop: Loop) -> None:
        calls: list[str] = []

        def first() -> None:
            calls.append("first")
            loop.call_soon(calls.append, "scheduled by first")

        loop.call_soon(first)
        loop.call_soon(calls.append, "second")
        loop.call_soon(lambda: loop.call_soon(loop.stop))
        loop.run_forever()
        assert calls == ["first", "second", "scheduled by first"]

    def test_a_cancelled_handle_does_not_run(self, loop: Loop) -> None:
        calls: list[str] = []
        handle = loop.call_soon(calls.append, "cancelled")
        loop.call_soon(calls.append, "kept")
        handle.cancel()
        assert handle.cancelled() and "cancelled" in repr(handle)
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert calls == ["kept"]

    def test_a_failing_callback_is_logged_and_the_loop_goes_on(
        self, loop: Loop, caplog: pytest.LogCaptureFixture
    ) -> None:
        calls: list[str] = []

        def boom() -> None:
            raise RuntimeError("callback failed")

        loop.call_soon(boom)
        loop.call_soon(calls.append, "after")
        loop.call_soon(loop.stop)
        with caplog.at_level(logging.ERROR, logger="tasklets"):
            loop.run_forever()
        assert calls == ["after"]
        assert "callback failed" in caplog.text and "boom" in caplog.text

    def test_current_loop_and_current_task_inside_callbacks(self, loop: Loop) -> None:
        seen: list[object] = []
        loop.call_soon(lambda: seen.extend([tasklets.current_loop(), tasklets.current_task(), loop.is_running()]))
        loop.call_soon(loop.stop)
        assert not loop.is_running()
        loop.run_forever()
        assert seen == [loop, None, True]
        assert not loop.is_running()

    def test_run_until_complete_returns_the_result_or_raises(self, loop: Loop) -> None:
        f = tasklets.Future()
        loop.call_soon(f.set_result, "value")
        assert loop.run_until_complete(f) == "value"
        g = tasklets.Future()
        loop.call_soon(g.set_exception, KeyError("key"))
        with pytest.raises(KeyError):
            loop.run_until_complete(g)

    def test_run_until_complete_accepts_an_executor_future(self, loop: Loop) -> None:
        with cf.ThreadPoolExecutor(1) as pool:
            assert loop.run_until_complete(pool.submit(pow, 2, 10)) == 1024

    def test_stop_before_the_future_completes_is_an_error(self, loop: Loop) -> None:
        loop.call_soon(loop.stop)
        with pytest.raises(tasklets.LoopError, match="stopped before"):
            loop.run_until_complete(tasklets.Future())

    def test_a_closed_loop_refuses_work(self) -> None:
        loop = Loop()
        loop.close()
        loop.close()  # idempotent
        assert loop.is_closed() and "closed" in repr(loop)
        with pytest.raises(tasklets.LoopError):
            loop.run_forever()
        with pytest.raises(tasklets.LoopError):
            loop.call_soon_threadsafe(print)

    def test_a_running_loop_cannot_be_closed_or_run_again(self, loop: Loop) -> None:
        errors: list[type[BaseException]] = []

        def misuse() -> None:
            for action in (loop.close, loop.run_forever):
                try:
                    action()
                except tasklets.LoopError as exc:
                    errors.append(type(exc))
            loop.stop()

        loop.call_soon(misuse)
        loop.run_forever()
        assert errors == [tasklets.LoopError, tasklets.LoopError]

    def test_a_second_loop_cannot_run_inside_the_first(self, loop: Loop) -> None:
        other = Loop()
        errors: list[str] = []

        def nested() -> None:
            try:
                other.run_forever()
            except tasklets.LoopError as exc:
                errors.append(str(exc))
            loop.stop()

        loop.call_soon(nested)
        loop.run_forever()
        other.close()
        assert len(errors) == 1 and "already runs in this thread" in errors[0]


class TestTimers:
    """call_later/call_at fire in deadline order; cancelled timers never fire."""

    def test_timers_fire_in_deadline_order_then_scheduling_order(self) -> None:
        clock = VirtualClock()
        loop = Loop(clock=clock)
        fired: list[tuple[str, float]] = []

        def record(name: str) -> None:
            fired.append((name, loop.time()))

        loop.call_later(3, record, "c")
        loop.call_later(1, record, "a1")
        loop.call_at(2, record, "b")
        loop.call_at(1, record, "a2")  # same deadline as a1: scheduled later, fires later
        loop.call_later(0, record, "now")
        loop.call_soon(record, "soon")
        loop.call_later(4, loop.stop)
        loop.run_forever()
        loop.close()
        assert fired == [("soon", 0), ("now", 0), ("a1", 1), ("a2", 1), ("b", 2), ("c", 3)]
        assert clock.time() == 4

    def test_timer_handles_carry_their_deadline_and_can_be_cancelled(self) -> None:
        loop = Loop(clock=VirtualClock(start=10))
        fired: list[str] = []
        keep = loop.call_later(2, fired.append, "kept")
        drop = loop.call_at(11, fired.append, "dropped")
        assert keep.when == 12 and drop.when == 11
        drop.cancel()
        drop.cancel()  # harmless twice
        assert drop.cancelled() and not keep.cancelled()
        loop.call_later(5, loop.stop)
        loop.run_forever()
        keep.cancel()  # harmless after it fired
        loop.close()
        assert fired == ["kept"]

    def test_many_cancellations_rebuild_the_heap(self) -> None:
        loop = Loop(clock=VirtualClock())
        fired: list[int] = []
        handles = [loop.call_later(1 + i, fired.append, i) for i in range(400)]
        for i, handle in enumerate(handles):
            if i % 8:
                handle.cancel()
        # 350 of 400 cancelled: the heap was rebuilt rather than left to hold them all.
        assert len(loop._timers) < 200
        loop.call_later(1000, loop.stop)
        loop.run_forever()
        loop.close()
        assert fired == list(range(0, 400, 8))

    def test_cancelling_a_timer_from_inside_another_timer(self) -> None:
        loop = Loop(clock=VirtualClock())
        fired: list[str] = []
        later = loop.call_later(2, fired.append, "later")
        loop.call_later(1, later.cancel)
        loop.call_later(3, loop.stop)
        loop.run_forever()
        loop.close()
        assert fired == []

    def test_real_clock_timer_fires_no_earlier_than_its_delay(self, loop: Loop) -> None:
        done = tasklets.Future()
        start = loop.time()
        loop.call_later(0.02, lambda: done.set_result(loop.time()))
        fired_at = _run_until(loop, done)
        assert fired_at - start >= 0.02


class TestThreadSafety:
    """call_soon_threadsafe hands work over from any thread and wakes a sleeping loop."""

    def test_call_soon_threadsafe_wakes_a_sleeping_loop_at_once(self, loop: Loop) -> None:
        asleep = threading.Event()
        woken = tasklets.Future()

        def other_thread() -> None:
            asleep.wait(30)
            loop.call_soon_threadsafe(woken.set_result, threading.get_ident())

        loop.call_soon(asleep.set)  # after this the loop has nothing to do but a far-off timer
        far_timer = loop.call_later(60, woken.set_result, "timer")
        helper = threading.Thread(target=other_thread)
        started = time.monotonic()
        helper.start()
        result = _run_until(loop, woken, guard=120)
        elapsed = time.monotonic() - started
        helper.join()
        far_timer.cancel()
        assert result == helper.ident
        assert elapsed < 10  # woken by the hand-over, not by the 60 s timer

    def test_no_wake_up_is_lost_in_a_ping_pong_with_another_thread(self, loop: Loop) -> None:
        # The other thread hands over its next callback the moment the loop
        # answers the previous one, so hand-overs race with the loop draining
        # its waker; a lost wake-up leaves the loop asleep and a round unanswered.
        rounds = 2000
        answered = threading.Event()
        all_done = tasklets.Future()
        count = [0]

        def answer() -> None:
            count[0] += 1
            answered.set()

        def ping() -> None:
            for _ in range(rounds):
                answered.clear()
                loop.call_soon_threadsafe(answer)
                if not answered.wait(10):
                    break
            loop.call_soon_threadsafe(all_done.set_result, count[0])

        pinger = threading.Thread(target=ping)
        pinger.start()
        try:
            assert _run_until(loop, all_done, guard=15) == rounds
        finally:
            pinger.join()

    def test_many_threads_hand_over_work(self, loop: Loop) -> None:
        counts: list[int] = []
        all_done = tasklets.Future()
        total = 4 * 250

        def add(i: int) -> None:
            counts.append(i)
            if len(counts) == total and not all_done.done():
                all_done.set_result(None)

        def hand_over() -> None:
            for i in range(250):
                loop.call_soon_threadsafe(add, i)

        threads = [threading.Thread(target=hand_over) for _ in range(4)]
        for t in threads:
            t.start()
        _run_until(loop, all_done)
        for t in threads:
            t.join()
        assert sorted(counts) == sorted(list(range(250)) * 4)

    def test_stop_from_another_thread(self, loop: Loop) -> None:
        running = threading.Event()
        loop.call_soon(running.set)
        stopper = threading.Thread(target=lambda: (running.wait(30), loop.stop()))
        stopper.start()
        guard = loop.call_later(60, loop.stop)
        started = time.monotonic()
        loop.run_forever()
        stopper.join()
        guard.cancel()
        assert time.monotonic() - started < 10

    def test_debug_mode_refuses_call_soon_from_a_foreign_thread(self) -> None:
        loop = Loop(debug=True)
        errors: list[BaseException] = []
        finished = tasklets.Future()

        def foreign() -> None:
            try:
                loop.call_soon(print)
            except tasklets.LoopError as exc:
                errors.append(exc)
            loop.call_soon_threadsafe(finished.set_result, None)

        loop.call_soon(lambda: threading.Thread(target=foreign).start())
        _run_until(loop, finished)
        loop.close()
        assert len(errors) == 1 and "call_soon_threadsafe" in str(errors[0])


class TestSignals:
    """Signal handlers run as ordinary callbacks on the loop (main thread only)."""

    def test_signal_handler_runs_on_the_loop(self, loop: Loop) -> None:
        got = tasklets.Future()
        loop.add_signal_handler(signal.SIGUSR1, lambda: got.set_result(threading.get_ident()))
        try:
            assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN)
            loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
            assert _run_until(loop, got) == threading.get_ident()
        finally:
            assert loop.remove_signal_handler(signal.SIGUSR1)
        assert not loop.remove_signal_handler(signal.SIGUSR1)
        assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL

    def test_signal_handler_in_a_task_under_run(self) -> None:
        def main():
            loop = tasklets.current_loop()
            got = Future()
            loop.add_signal_handler(signal.SIGUSR1, lambda: got.set_result(tasklets.current_task()))
            try:
                os.kill(os.getpid(), signal.SIGUSR1)
                in_task = yield got
            finally:
                loop.remove_signal_handler(signal.SIGUSR1)
            return in_task

        assert tasklets.run(main) is None  # ran as a plain loop callback, not inside the task
        assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL

    def test_a_signal_from_another_thread_wakes_a_sleeping_loop(self, loop: Loop) -> None:
        asleep = threading.Event()
        got = tasklets.Future()
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, "signal")
        try:
            loop.call_soon(asleep.set)
            sender = threading.Thread(target=lambda: (asleep.wait(30), os.kill(os.getpid(), signal.SIGUSR1)))
            started = time.monotonic()
            sender.start()
            assert _run_until(loop, got, guard=60) == "signal"
            sender.join()
            assert time.monotonic() - started < 10
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    def test_close_removes_signal_handlers(self) -> None:
        loop = Loop()
        loop.add_signal_handler(signal.SIGUSR2, print)
        loop.close()
        assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL

    def test_signal_handlers_only_from_the_main_thread(self, loop: Loop) -> None:
        errors: list[BaseException] = []

        def install() -> None:
            try:
                loop.add_signal_handler(signal.SIGUSR1, print)
            except tasklets.LoopError as exc:
                errors.append(exc)

        worker = threading.Thread(target=install)
        worker.start()
        worker.join()
        assert len(errors) == 1


class TestReadiness:
    """add_reader/add_writer watch descriptors; remove_* stops watching."""

    def test_reader_fires_when_data_arrives_and_stops_after_removal(self, loop: Loop) -> None:
        a, b = socket.socketpair()
        a.setblocking(False)
        received = tasklets.Future()
        try:

            def on_readable() -> None:
                data = a.recv(100)
                assert loop.remove_reader(a.fileno())
                received.set_result(data)

            loop.add_reader(a.fileno(), on_readable)
            loop.call_soon(b.send, b"ping")
            assert _run_until(loop, received) == b"ping"
            assert not loop.remove_reader(a.fileno())  # already removed
        finally:
            a.close()
            b.close()

    def test_writer_fires_when_writable(self, loop: Loop) -> None:
        a, b = socket.socketpair()
        writable = tasklets.Future()
        try:

            def on_writable(sock: socket.socket) -> None:
                sock.send(b"pong")
                loop.remove_writer(sock)
                writable.set_result(b.recv(100))

            loop.add_writer(a, on_writable, a)  # a socket object works as well as its fd
            assert _run_until(loop, writable) == b"pong"
            assert not loop.remove_writer(a.fileno())
        finally:
            a.close()
            b.close()

    def test_reader_and_writer_on_one_fd_are_independent(self, loop: Loop) -> None:
        a, b = socket.socketpair()
        a.setblocking(False)
        events: list[str] = []
        finished = tasklets.Future()
        try:

            def on_writable() -> None:
                events.append("writable")
                loop.remove_writer(a.fileno())  # the reader stays
                b.send(b"x")

            def on_readable() -> None:
                events.append(f"readable {a.recv(10)!r}")
                loop.remove_reader(a.fileno())
                finished.set_result(None)

            loop.add_reader(a.fileno(), on_readable)
            loop.add_writer(a.fileno(), on_writable)
            _run_until(loop, finished)
            assert events == ["writable", "readable b'x'"]
        finally:
            a.close()
            b.close()

    def test_adding_a_reader_replaces_the_previous_one(self, loop: Loop) -> None:
        a, b = socket.socketpair()
        a.setblocking(False)
        got = tasklets.Future()
        calls: list[str] = []
        try:
            loop.add_reader(a.fileno(), calls.append, "old")
            loop.add_reader(a.fileno(), lambda: (calls.append("new"), a.recv(10), got.set_result(None)))
            b.send(b"x")
            _run_until(loop, got)
            loop.remove_reader(a.fileno())
            assert calls == ["new"]
        finally:
            a.close()
            b.close()

    def test_a_closed_loop_refuses_readers(self) -> None:
        loop = Loop()
        loop.close()
        with pytest.raises(tasklets.LoopError):
            loop.add_reader(0, print)


class TestDebugMode:
    """Slow callbacks are reported in debug mode (debug=True or TASKLETS_DEBUG=1)."""

    @staticmethod
    def _run_a_slow_callback(loop: Loop) -> None:
        def slow_callback() -> None:
            time.sleep(0.03)  # the work itself is slow; nothing waits for anything to settle

        loop.slow_callback_duration = 0.02
        loop.call_soon(slow_callback)
        loop.call_soon(loop.stop)
        loop.run_forever()
        loop.close()

    def test_debug_true_reports_a_slow_callback(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING, logger="tasklets"):
            self._run_a_slow_callback(Loop(debug=True))
        assert "slow callback" in caplog.text and "slow_callback" in caplog.text

    def test_tasklets_debug_environment_variable(
        self, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TASKLETS_DEBUG", "1")
        with caplog.at_level(logging.WARNING, logger="tasklets"):
            self._run_a_slow_callback(Loop())
        assert "slow callback" in caplog.text

    def test_no_report_without_debug(self, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("TASKLETS_DEBUG", raising=False)
        with caplog.at_level(logging.WARNING, logger="tasklets"):
            self._run_a_slow_callback(Loop())
        assert "slow callback" not in caplog.text

    def test_debug_loop_runs_tasks_and_timers_like_the_fast_loop(self) -> None:
        order: list[str] = []

        def worker(name, delay):
            yield tasklets.sleep(delay)
            order.append(name)

        def main():
            yield [tasklets.spawn(worker, "b", 2), tasklets.spawn(worker, "a", 1), tasklets.spawn(worker, "c", 3)]

        tasklets.run(main, clock=VirtualClock(), debug=True)
        assert order == ["a", "b", "c"]


class TestSeams:
    """What other layers and tests may ask of a loop: whose thread this is, and what it holds."""

    def test_an_idle_loop_is_nobodys_thread(self, loop: Loop) -> None:
        assert not loop.is_loop_thread() and not loop.is_foreign_thread()

    def test_the_running_thread_is_the_loop_thread_and_any_other_is_foreign(self, loop: Loop) -> None:
        seen: Future[tuple[bool, bool, bool, bool]] = Future()

        def on_loop() -> None:
            from_other: cf.Future[tuple[bool, bool]] = cf.Future()
            thread = threading.Thread(
                target=lambda: from_other.set_result((loop.is_loop_thread(), loop.is_foreign_thread()))
            )
            thread.start()
            thread.join(10)
            seen.set_result((loop.is_loop_thread(), loop.is_foreign_thread(), *from_other.result(0)))

        loop.call_soon(on_loop)
        assert _run_until(loop, seen) == (True, False, False, True)

    def test_statistics_count_tasks_registrations_and_armed_timers(self, loop: Loop) -> None:
        assert loop.statistics().is_empty()  # its own waker is not counted
        reader, writer = socket.socketpair()
        try:
            loop.add_reader(reader.fileno(), lambda: None)
            timer = loop.call_later(5, lambda: None)
            cancelled = loop.call_later(6, lambda: None)
            cancelled.cancel()
            release: Future[None] = Future()

            def waits():
                yield release

            task = tasklets.Task(waits(), loop=loop)
            stats = loop.statistics()
            assert stats.tasks == (task,)
            assert list(stats.registrations) == [reader.fileno()]
            assert stats.timers == (timer,)
            assert not stats.is_empty() and len(stats.describe()) == 3
            release.set_result(None)
            _run_until(loop, task)
            loop.remove_reader(reader.fileno())
            timer.cancel()
            assert loop.statistics().is_empty() and loop.statistics().describe() == []
        finally:
            reader.close()
            writer.close()
