"""as_completed and map_unordered: results in the order they finish, in O(n)."""

from __future__ import annotations

import concurrent.futures as cf
import gc
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

import tasklets
from tasklets import Future, SignalFuture


class CountingFuture(Future):
    """A future that counts every done-callback registered on any instance."""

    registrations = 0

    def add_done_callback(self, fn) -> None:
        type(self).registrations += 1
        super().add_done_callback(fn)


def _after(seconds, value=None, error=None):
    yield tasklets.sleep(seconds)
    if error is not None:
        raise error
    return value


def _slow_calls() -> tuple[list[tasklets.Task], Callable[[Any], tasklets.Task]]:
    """A ``fn`` for map_unordered whose calls each take 100 s, and the list of the calls it started."""
    calls: list[tasklets.Task] = []

    def start(i: Any) -> tasklets.Task:
        calls.append(tasklets.spawn(_after, 100, i))
        return calls[-1]

    return calls, start


class TestAsCompleted:
    """The ordinary iterator yields signal futures; async for yields the originals."""

    def test_in_a_task_signals_resolve_in_completion_order(self, vrun) -> None:
        def main():
            with cf.ThreadPoolExecutor(1) as pool:
                gate = threading.Event()
                executor = pool.submit(lambda: (gate.wait(30), "executor")[1])
                fs = {
                    tasklets.spawn(_after, 3, "three"): "three",
                    tasklets.sleep(1, "one"): "one",
                    tasklets.spawn(_after, 2, error=KeyError("two")): "two",
                    executor: "executor",
                }
                seen = []
                for signal in tasklets.as_completed(fs):
                    assert isinstance(signal, SignalFuture)
                    try:
                        value = yield signal
                    except KeyError:
                        value = "failed"
                    seen.append((fs[signal.completed], value))
                    if len(seen) == 3:
                        gate.set()
                return seen

        assert vrun(main) == [("one", "one"), ("two", "failed"), ("three", "three"), ("executor", "executor")]

    def test_signals_are_handed_out_at_once_and_resolve_in_order(self) -> None:
        fs = [Future() for _ in range(3)]
        signals = list(tasklets.as_completed(fs))
        gc.collect()  # the iterator is gone; the signals it handed out must still resolve
        assert len(signals) == 3 and not any(s.done() for s in signals)
        assert all(s.completed is None for s in signals)
        fs[2].set_result("c")
        fs[0].set_exception(ValueError("a"))
        assert signals[0].result(timeout=0) == "c" and signals[0].completed is fs[2]
        assert isinstance(signals[1].exception(timeout=0), ValueError) and signals[1].completed is fs[0]
        assert not signals[2].done()
        fs[1].cancel()
        assert signals[2].cancelled() and signals[2].completed is fs[1]

    def test_in_plain_code_with_threads(self) -> None:
        fs = [Future() for _ in range(4)]
        order = [3, 1, 0, 2]

        def complete() -> None:
            for i in order:
                fs[i].set_result(i)

        iterator = tasklets.as_completed(fs)  # watching before any completes, so it sees their order
        threading.Thread(target=complete).start()
        results = []
        for signal in iterator:
            results.append((signal.result(timeout=30), signal.completed))
        assert results == [(i, fs[i]) for i in order]

    def test_async_for_yields_the_original_futures(self, vrun) -> None:
        async def main():
            fs = [tasklets.sleep(3, "c"), tasklets.sleep(1, "a"), tasklets.spawn(_after, 2, "b")]
            seen = []
            async for f in tasklets.as_completed(fs):
                assert f.done()
                seen.append((fs.index(f), f.result()))
            return seen

        assert vrun(main) == [(1, "a"), (2, "b"), (0, "c")]

    def test_async_for_with_a_timeout(self, vrun) -> None:
        async def main():
            seen = []
            try:
                async for f in tasklets.as_completed([Future(), tasklets.sleep(1, "in time")], timeout=3):
                    seen.append(f.result())
            except tasklets.TimeoutError:
                seen.append(("timeout", tasklets.current_loop().time()))
            return seen

        assert vrun(main) == ["in time", ("timeout", 3)]

    def test_duplicates_count_once(self, vrun) -> None:
        def main():
            a, b = tasklets.sleep(1, "a"), tasklets.sleep(2, "b")
            results = []
            for signal in tasklets.as_completed([a, b, a, a, b]):
                results.append((yield signal))
            return results

        assert vrun(main) == ["a", "b"]

    def test_empty_input(self) -> None:
        assert list(tasklets.as_completed([])) == []

    def test_a_failed_task_handed_out_is_retrieved(self, vrun, caplog: pytest.LogCaptureFixture) -> None:
        # The task fails before the iteration asks for it: its exception goes
        # to a fresh signal (the matcher's fast path), and the signal's taker
        # has it, so the task must not report it as never retrieved.
        def main():
            failing = tasklets.spawn(_after, 0, error=ValueError("boom"))
            yield tasklets.sleep(1)
            assert failing.done()
            caught = []
            for signal in tasklets.as_completed([failing]):
                try:
                    yield signal
                except ValueError as exc:
                    caught.append(str(exc))
            return caught

        with caplog.at_level(logging.ERROR, logger="tasklets"):
            assert vrun(main) == ["boom"]
            gc.collect()
        assert "never retrieved" not in caplog.text

    def test_timeout_hands_out_what_finished_then_fails_then_stops(self, vrun) -> None:
        def main():
            fast, slow, never = tasklets.sleep(1, "fast"), tasklets.sleep(100, "slow"), Future()
            outcomes = []
            for signal in tasklets.as_completed([never, slow, fast], timeout=5):
                try:
                    outcomes.append((yield signal))
                except tasklets.TimeoutError:
                    outcomes.append(("timeout", tasklets.current_loop().time()))
            slow.cancel()  # its timer, left armed, would fail the strict run
            return outcomes

        assert vrun(main) == ["fast", ("timeout", 5)]

    def test_timeout_in_plain_code(self) -> None:
        done, never = Future(), Future()
        done.set_result("done")
        outcomes = []
        for signal in tasklets.as_completed([never, done], timeout=0.01):
            try:
                outcomes.append(signal.result(timeout=30))
            except TimeoutError:
                outcomes.append("timeout")
        assert outcomes == ["done", "timeout"]
        assert not never._callbacks

    def test_one_callback_per_input_in_all(self, vrun) -> None:
        n = 200
        CountingFuture.registrations = 0

        def main():
            fs = [CountingFuture() for _ in range(n)]
            loop = tasklets.current_loop()
            for i, f in enumerate(reversed(fs)):
                loop.call_later(i + 1, f.set_result, i)
            results = []
            for signal in tasklets.as_completed(fs):
                results.append((yield signal))
            return results

        assert vrun(main) == list(range(n))
        assert CountingFuture.registrations == n  # not n * (n + 1) / 2 as in the seed

    def test_abandoned_iteration_detaches_its_callbacks(self) -> None:
        fs = [Future() for _ in range(10)]
        iterator = tasklets.as_completed(fs, timeout=60)
        first = next(iterator)
        assert all(len(f._callbacks) == 1 for f in fs)
        fs[4].set_result(4)
        assert first.result(timeout=0) == 4
        del iterator, first
        gc.collect()
        assert all(not f._callbacks for f in fs)

    def test_breaking_out_of_the_loop_in_a_task_detaches(self, vrun) -> None:
        fs = [Future() for _ in range(10)]

        def main():
            loop = tasklets.current_loop()
            loop.call_later(1, fs[7].set_result, "seven")
            for signal in tasklets.as_completed(fs):
                value = yield signal
                break
            del signal
            gc.collect()
            return value

        assert vrun(main) == "seven"
        assert all(not f._callbacks for f in fs)

    def test_a_cancelled_signal_gives_way_to_the_next_one(self) -> None:
        fs = [Future(), Future()]
        iterator = tasklets.as_completed(fs)
        first = next(iterator)
        first.cancel()  # its waiter gave up (a task cancelled, a with_timeout expired)
        fs[0].set_result("a")
        second = next(iterator)
        assert second.result(timeout=0) == "a" and second.completed is fs[0]
        assert first.completed is None
        third = next(iterator)  # the cancelled signal did not use up an input
        fs[1].set_result("b")
        assert third.result(timeout=0) == "b" and third.completed is fs[1]
        assert list(iterator) == []

    def test_an_input_waits_for_a_later_request_when_the_waiting_one_is_cancelled(self) -> None:
        fs = [Future(), Future()]
        iterator = tasklets.as_completed(fs)
        first = next(iterator)
        first.cancel()
        fs[1].set_result("b")  # completes while only a cancelled signal waits
        assert first.cancelled() and first.completed is None
        assert next(iterator).result(timeout=0) == "b"

    def test_a_signal_cancelled_as_it_is_answered_hands_the_input_on(self, monkeypatch) -> None:
        from tasklets import _matcher

        settle = _matcher._settle
        fs = [Future(), Future()]
        iterator = tasklets.as_completed(fs)
        first, second = next(iterator), next(iterator)

        def cancelled_meanwhile(request, *args):
            if request is first:
                first.cancel()  # as another thread could, between the matcher's pop and its answer
            return settle(request, *args)

        monkeypatch.setattr(_matcher, "_settle", cancelled_meanwhile)
        fs[1].set_result("b")
        assert first.cancelled() and first.completed is None
        assert second.result(timeout=0) == "b" and second.completed is fs[1]
        third = next(iterator)  # one more, for the signal that gave way
        fs[0].set_result("a")
        assert third.result(timeout=0) == "a"
        assert list(iterator) == []

    def test_with_timeout_on_each_signal_loses_no_result(self, vrun) -> None:
        def main():
            fs = [tasklets.sleep(1, "a"), tasklets.sleep(3, "b")]
            got = []
            for signal in tasklets.as_completed(fs):
                try:
                    got.append((yield tasklets.with_timeout(signal, 1.5)))
                except tasklets.TimeoutError:
                    got.append(("timeout", tasklets.current_loop().time()))
            return got

        assert vrun(main) == ["a", ("timeout", 2.5), "b"]

    def test_after_the_timeout_a_failed_or_cancelled_input_does_not_end_the_iteration(self, vrun) -> None:
        def main():
            failed, cancelled, fine, never = Future(), Future(), Future(), Future()
            loop = tasklets.current_loop()
            loop.call_later(1, failed.set_exception, KeyError("failed"))
            loop.call_later(2, cancelled.cancel)
            loop.call_later(3, fine.set_result, "fine")
            iterator = tasklets.as_completed([failed, cancelled, fine, never], timeout=5)
            yield tasklets.sleep(10)  # the deadline passes while nobody waits
            outcomes = []
            for signal in iterator:
                try:
                    outcomes.append((yield signal))
                except KeyError:
                    outcomes.append("failed")
                except tasklets.CancelledError:
                    outcomes.append("cancelled")
                except tasklets.TimeoutError:
                    outcomes.append("timeout")
            return outcomes

        assert vrun(main) == ["failed", "cancelled", "fine", "timeout"]

    def test_cancelling_the_consuming_task_detaches(self, vrun) -> None:
        fs = [Future() for _ in range(5)]

        def consumer():
            got = []
            for signal in tasklets.as_completed(fs, timeout=3600):
                got.append((yield signal))  # cancelled while waiting here
            return got

        def main():
            task = tasklets.spawn(consumer)
            yield tasklets.sleep(1)
            assert all(len(f._callbacks) == 1 for f in fs)
            task.cancel()
            yield tasklets.wait([task], timeout=10)
            gc.collect()
            return task.cancelled(), tasklets.current_loop().time()

        assert vrun(main) == (True, 1)
        assert all(not f._callbacks for f in fs)

    def test_dropping_the_iterator_after_its_signal_timed_out_detaches(self, vrun) -> None:
        fs = [Future() for _ in range(5)]

        def main():
            iterator = tasklets.as_completed(fs)
            with pytest.raises(tasklets.TimeoutError):
                yield tasklets.with_timeout(next(iterator), 1)
            del iterator
            gc.collect()

        vrun(main)
        assert all(not f._callbacks for f in fs)

    def test_signals_all_cancelled_after_the_iterator_is_gone_detach_at_the_next_completion(self) -> None:
        fs = [Future() for _ in range(5)]
        signals = list(tasklets.as_completed(fs))
        gc.collect()
        for signal in signals:
            signal.cancel()
        fs[0].set_result("nobody wants this")
        assert all(not f._callbacks for f in fs)

    def test_close_detaches_and_ends_the_iteration(self) -> None:
        fs = [Future() for _ in range(3)]
        iterator = tasklets.as_completed(fs)
        iterator.close()
        assert all(not f._callbacks for f in fs)
        assert list(iterator) == []

    def test_rejects_non_futures(self) -> None:
        with pytest.raises(TypeError):
            tasklets.as_completed([Future(), "not a future"])


class TestMapUnordered:
    """map_unordered(fn, items, limit=N): at most N at once, completion order, lazy input."""

    def test_at_most_limit_calls_run_at_once_and_results_come_in_completion_order(self, vrun) -> None:
        running = [0]
        peak = [0]
        delays = [5, 1, 4, 2, 3, 1, 6, 2, 1, 3]

        def work(i):
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            try:
                yield tasklets.sleep(delays[i])
            finally:
                running[0] -= 1
            return i

        def main():
            finished = []
            for signal in tasklets.map_unordered(work, range(len(delays)), limit=3):
                value = yield signal
                assert signal.item == value and signal.completed is not None
                finished.append((tasklets.current_loop().time(), value))
            return finished

        finished = vrun(main)
        assert peak[0] == 3
        assert sorted(v for _, v in finished) == list(range(len(delays)))
        times = [t for t, _ in finished]
        assert times == sorted(times)  # handed out as they complete
        # Completion order is not input order: item 1 (1 s) beats item 0 (5 s).
        assert [v for _, v in finished].index(1) < [v for _, v in finished].index(0)

    def test_completion_order_without_a_binding_limit(self, vrun) -> None:
        def main():
            results = []
            for signal in tasklets.map_unordered(lambda d: tasklets.sleep(d, d), [3, 1, 2], limit=10):
                results.append((yield signal))
            return results

        assert vrun(main) == [1, 2, 3]

    def test_an_endless_input_is_read_lazily(self, vrun) -> None:
        pulled = []

        def items():
            for i in itertools.count():
                pulled.append(i)
                yield i

        started = []

        def work(i):
            started.append(i)
            yield tasklets.sleep(1 + i % 3)
            return i

        def main():
            got = []
            for signal in tasklets.map_unordered(work, items(), limit=4):
                got.append((yield signal))
                if len(got) == 10:
                    break
            return got

        got = vrun(main)
        assert len(got) == 10
        assert len(pulled) <= 10 + 4 + 1
        assert len(started) <= 10 + 4

    def test_dropping_the_iterator_cancels_the_running_calls(self, vrun) -> None:
        started: list[tasklets.Task] = []

        def work(i):
            yield tasklets.sleep(1 if i == 0 else 100)
            return i

        def start(i):
            started.append(tasklets.spawn(work, i))
            return started[-1]

        def main():
            iterator = tasklets.map_unordered(start, range(10), limit=3)
            first = yield next(iterator)
            del iterator
            gc.collect()
            yield tasklets.sleep(1)
            # Checked here, before run() cancels whatever main leaves behind.
            return first, [t.cancelled() for t in started]

        first, cancelled = vrun(main)
        assert first == 0
        assert cancelled[0] is False and all(cancelled[1:]) and 3 <= len(cancelled) <= 4

    def test_signals_handed_out_still_resolve_after_the_iterator_is_dropped(self, vrun) -> None:
        def main():
            signals = list(tasklets.map_unordered(lambda d: tasklets.sleep(d, d), [3, 1, 2, 5], limit=2))
            gc.collect()
            return (yield signals)

        assert vrun(main) == [1, 3, 2, 5]  # 2 starts only at t=1, when 1 frees its slot

    def test_fn_may_return_a_value_a_generator_or_a_future_and_may_fail(self, vrun) -> None:
        def fn(kind):
            if kind == "value":
                return "value"
            if kind == "generator":
                return _after(1, "generator")
            if kind == "future":
                return tasklets.sleep(2, "future")
            raise LookupError(kind)

        def main():
            outcomes = set()
            for signal in tasklets.map_unordered(fn, ["value", "generator", "future", "boom"], limit=2):
                try:
                    outcomes.add((yield signal))
                except LookupError as exc:
                    outcomes.add(f"error {exc.args[0]} for {signal.item}")
            return outcomes

        assert vrun(main) == {"value", "generator", "future", "error boom for boom"}

    def test_plain_code_with_to_thread(self) -> None:
        running = [0]
        peak = [0]
        lock = threading.Lock()

        def work(i):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                return i * i
            finally:
                with lock:
                    running[0] -= 1

        signals = tasklets.map_unordered(lambda i: tasklets.to_thread(work, i), range(20), limit=2)
        results = {s.result(timeout=30) for s in signals}
        assert results == {i * i for i in range(20)}
        assert peak[0] <= 2

    def test_async_for_yields_done_signals(self, vrun) -> None:
        async def main():
            seen = []
            async for signal in tasklets.map_unordered(lambda d: tasklets.sleep(d, d * 10), [2, 1], limit=2):
                assert signal.done()
                seen.append((signal.item, signal.result()))
            return seen

        assert vrun(main) == [(1, 10), (2, 20)]

    def test_with_timeout_on_each_signal_loses_no_result(self, vrun) -> None:
        def main():
            got = []
            for signal in tasklets.map_unordered(lambda d: tasklets.sleep(d, d), [1, 3], limit=2):
                try:
                    value = yield tasklets.with_timeout(signal, 1.5)
                    got.append((signal.item, value))
                except tasklets.TimeoutError:
                    got.append(("timeout", tasklets.current_loop().time()))
            return got

        assert vrun(main) == [(1, 1), ("timeout", 2.5), (3, 3)]

    def test_cancelling_the_consumer_cancels_the_running_calls_at_once(self, vrun) -> None:
        started: list[int] = []
        calls: list[tasklets.Task] = []

        def work(i):
            started.append(i)
            yield tasklets.sleep(100 * (i + 1))
            return i

        def start(i):
            calls.append(tasklets.spawn(work, i))
            return calls[-1]

        def consumer():
            got = []
            for signal in tasklets.map_unordered(start, range(10), limit=3):
                got.append((yield signal))  # cancelled while waiting here
            return got

        def main():
            task = tasklets.spawn(consumer)
            yield tasklets.sleep(1)
            task.cancel()
            yield tasklets.wait([task], timeout=10)
            gc.collect()
            yield tasklets.wait(calls, timeout=10)
            cancelled_at = tasklets.current_loop().time()
            yield tasklets.sleep(500)  # long past every call's end: nothing more starts
            return cancelled_at, [c.cancelled() for c in calls], started

        assert vrun(main) == (1, [True, True, True], [0, 1, 2])

    def test_dropping_the_iterator_after_its_signal_timed_out_cancels_the_calls(self, vrun) -> None:
        calls, start = _slow_calls()

        def main():
            iterator = tasklets.map_unordered(start, range(10), limit=2)
            with pytest.raises(tasklets.TimeoutError):
                yield tasklets.with_timeout(next(iterator), 1)
            del iterator
            gc.collect()
            yield tasklets.wait(calls, timeout=10)
            return tasklets.current_loop().time(), [c.cancelled() for c in calls]

        assert vrun(main) == (1, [True, True])

    def test_close_cancels_the_running_calls_and_the_waiting_signals(self, vrun) -> None:
        calls, start = _slow_calls()

        def main():
            iterator = tasklets.map_unordered(start, range(10), limit=2)
            signals = [next(iterator) for _ in range(4)]
            yield tasklets.sleep(1)
            iterator.close()
            yield tasklets.wait(signals + calls, timeout=10)
            return (
                tasklets.current_loop().time(),
                [s.cancelled() for s in signals],
                [c.cancelled() for c in calls],
                list(iterator),
            )

        assert vrun(main) == (1, [True] * 4, [True, True], [])

    def test_calls_done_at_once_with_signals_requested_ahead_do_not_recurse(self, vrun) -> None:
        n = 3000

        def fn(i):
            if i < 2:
                return tasklets.sleep(1, i)  # the rest start as these finish, with signals waiting
            if i % 2:
                done = Future()
                done.set_result(i)
                return done
            return i

        def main():
            signals = list(tasklets.map_unordered(fn, range(n), limit=2))
            _, pending = yield tasklets.wait(signals, timeout=10)
            return len(pending), sorted(s.result() for s in signals if s.done())

        assert vrun(main) == (0, list(range(n)))

    def test_an_error_from_the_items_reaches_the_consumer_after_the_finished_results(self, vrun) -> None:
        calls: list[tasklets.Task] = []

        def items():
            yield 1
            yield 2
            yield 3
            raise OSError("input broke")

        def start(i):
            calls.append(tasklets.spawn(_after, i, i))
            return calls[-1]

        def main():
            got = []
            iterator = tasklets.map_unordered(start, items(), limit=2)
            try:
                for signal in iterator:
                    got.append((yield signal))
            except OSError as exc:
                got.append(("raised", str(exc), tasklets.current_loop().time()))
            assert list(iterator) == []  # the iteration is over
            yield tasklets.wait(calls, timeout=10)
            return got, [c.cancelled() for c in calls], tasklets.current_loop().time()

        # Item 2 frees its slot at t=2; reading the next item fails: item 3 (running) is cancelled.
        assert vrun(main) == ([1, 2, ("raised", "input broke", 2)], [False, False, True], 2)

    def test_an_error_from_the_items_fails_the_waiting_signals_then_ends(self, vrun) -> None:
        def items():
            yield 0
            yield 1
            raise OSError("input broke")

        def main():
            iterator = tasklets.map_unordered(lambda i: tasklets.sleep(1 + i, i), items(), limit=1)
            first = next(iterator)  # waits for item 0, running
            second = next(iterator)  # waits; item 1 is read, not started (the limit)
            assert list(iterator) == []  # reading item 2 fails: the waiting signals get the error
            done, _ = yield tasklets.wait([first, second], timeout=10)
            return [type(s.exception()).__name__ for s in (first, second)], len(done), tasklets.current_loop().time()

        assert vrun(main) == (["OSError", "OSError"], 2, 0)

    def test_an_error_from_the_items_comes_after_the_results_already_complete(self, vrun) -> None:
        def items():
            yield 1
            yield 2
            raise OSError("input broke")

        def main():
            iterator = tasklets.map_unordered(lambda i: tasklets.sleep(i, i), items(), limit=2)
            yield tasklets.sleep(3)  # both done before anyone asks: the error comes when item 1 frees its slot
            signals = list(iterator)
            return [s.result() for s in signals[:2]], type(signals[2].exception()).__name__, len(signals)

        assert vrun(main) == ([1, 2], "OSError", 3)

    def test_an_error_from_the_items_ends_async_for(self, vrun) -> None:
        def items():
            yield 1
            raise OSError("input broke")

        async def main():
            seen = []
            try:
                async for signal in tasklets.map_unordered(lambda i: tasklets.sleep(i, i), items(), limit=1):
                    seen.append(signal.result())
            except OSError as exc:
                seen.append(str(exc))
            return seen

        assert vrun(main) == [1, "input broke"]

    def test_async_for_consumer_cancelled_cancels_the_calls(self, vrun) -> None:
        calls, start = _slow_calls()

        async def consumer():
            async for signal in tasklets.map_unordered(start, range(10), limit=2):
                signal.result()

        def main():
            task = tasklets.spawn(consumer)
            yield tasklets.sleep(1)
            task.cancel()
            yield tasklets.wait([task], timeout=10)
            gc.collect()
            yield tasklets.wait(calls, timeout=10)
            return tasklets.current_loop().time(), [c.cancelled() for c in calls]

        assert vrun(main) == (1, [True, True])

    def test_limit_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="limit"):
            tasklets.map_unordered(lambda x: x, [1], limit=0)
