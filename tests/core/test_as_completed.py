"""as_completed and map_unordered: results in the order they finish, in O(n)."""

from __future__ import annotations

import concurrent.futures as cf
import gc
import itertools
import threading

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

    def test_timeout_hands_out_what_finished_then_fails_then_stops(self, vrun) -> None:
        def main():
            fast, slow, never = tasklets.sleep(1, "fast"), tasklets.sleep(100, "slow"), Future()
            outcomes = []
            for signal in tasklets.as_completed([never, slow, fast], timeout=5):
                try:
                    outcomes.append((yield signal))
                except tasklets.TimeoutError:
                    outcomes.append(("timeout", tasklets.current_loop().time()))
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

    def test_limit_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="limit"):
            tasklets.map_unordered(lambda x: x, [1], limit=0)
