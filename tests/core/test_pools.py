"""Thread pools, process pools and tasklets futures, mixed in one task and across threads."""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
import operator
import threading
import time
from collections.abc import Iterator

import pytest

import tasklets
from tasklets import Future


@pytest.fixture(scope="module")
def processes() -> Iterator[cf.ProcessPoolExecutor]:
    """One process pool for the module (spawned: forking a threaded process is unsafe)."""
    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@pytest.fixture
def threads() -> Iterator[cf.ThreadPoolExecutor]:
    with cf.ThreadPoolExecutor(4) as pool:
        yield pool


class TestMixedPools:
    """A task yields thread-pool, process-pool and tasklets futures alike."""

    def test_one_task_waits_on_threads_processes_and_timers(self, processes, threads) -> None:
        def main():
            loop_thread = threading.get_ident()
            resumed_on = []
            by_process = yield processes.submit(math.factorial, 20)
            resumed_on.append(threading.get_ident())
            by_thread = yield threads.submit(operator.mul, 6, 7)
            resumed_on.append(threading.get_ident())
            together = yield [
                processes.submit(pow, 2, 64),
                threads.submit(str.upper, "mixed"),
                tasklets.sleep(0.001, "timer"),
                tasklets.to_thread(len, "abc"),
            ]
            resumed_on.append(threading.get_ident())
            return by_process, by_thread, together, resumed_on == [loop_thread] * 3

        assert tasklets.run(main) == (math.factorial(20), 42, [2**64, "MIXED", "timer", 3], True)

    def test_an_exception_from_a_process_is_thrown_into_the_task(self, processes) -> None:
        def main():
            try:
                yield processes.submit(math.factorial, -1)
            except ValueError as exc:
                return "caught", str(exc)

        outcome, message = tasklets.run(main)
        assert outcome == "caught" and "negative" in message

    def test_wait_first_between_a_process_and_a_gated_thread(self, processes, threads) -> None:
        gate = threading.Event()

        def main():
            by_process = processes.submit(pow, 3, 4)
            by_thread = threads.submit(lambda: (gate.wait(30), "thread")[1])
            first = tasklets.wait_first([by_thread, by_process])
            value = yield first
            winner = first.completed
            gate.set()  # the thread could not have finished before this
            rest = yield by_thread
            return value, winner is by_process, rest

        assert tasklets.run(main) == (81, True, "thread")

    def test_as_completed_over_both_pools(self, processes, threads) -> None:
        def main():
            fs = {processes.submit(math.factorial, n): ("process", n) for n in (5, 10, 15)}
            fs.update({threads.submit(math.factorial, n): ("thread", n) for n in (6, 7)})
            seen = {}
            for signal in tasklets.as_completed(fs):
                value = yield signal
                seen[fs[signal.completed]] = value
            return seen

        seen = tasklets.run(main)
        assert seen == {
            ("process", 5): 120,
            ("process", 10): math.factorial(10),
            ("process", 15): math.factorial(15),
            ("thread", 6): 720,
            ("thread", 7): 5040,
        }

    def test_map_unordered_over_a_process_pool(self, processes) -> None:
        def main():
            results = []
            for signal in tasklets.map_unordered(lambda n: processes.submit(pow, n, 2), range(8), limit=2):
                value = yield signal
                results.append((signal.item, value))
            return sorted(results)

        assert tasklets.run(main) == [(n, n * n) for n in range(8)]

    def test_plain_code_gathers_processes_threads_and_tasks(self, processes, threads) -> None:
        @tasklets.task
        def background(x):
            yield tasklets.sleep(0)
            return x + 1

        gathered = tasklets.gather([processes.submit(abs, -5), threads.submit(abs, -6), background(6)])
        assert gathered.result(timeout=30) == [5, 6, 7]
        done, not_done = cf.wait([processes.submit(time.sleep, 0.01), background(1)], timeout=30)
        assert len(done) == 2 and not not_done


class TestCrossThreadCompletion:
    """Many futures completed on many threads: every waiter is resumed, on its loop."""

    def test_a_task_gathers_futures_completed_by_a_thread_pool(self, threads) -> None:
        n = 2000

        def main():
            fs = [Future() for _ in range(n)]
            for i, f in enumerate(fs):
                threads.submit(f.set_result, i)
            return (yield fs)

        assert tasklets.run(main) == list(range(n))

    def test_many_tasks_each_wait_on_a_future_completed_elsewhere(self, threads) -> None:
        n = 1000
        resumed: list[int] = []

        def waiter(f):
            value = yield f
            resumed.append(threading.get_ident())
            return value

        def main():
            fs = [Future() for _ in range(n)]
            tasks = [tasklets.spawn(waiter, f) for f in fs]
            yield None  # every task now waits on its future
            for i, f in enumerate(fs):
                threads.submit(f.set_result, i)
            results = yield tasks
            return results, threading.get_ident()

        results, loop_thread = tasklets.run(main)
        assert results == list(range(n))
        assert set(resumed) == {loop_thread}

    def test_as_completed_over_futures_completed_by_threads(self, threads) -> None:
        n = 500

        def main():
            fs = [Future() for _ in range(n)]
            iterator = tasklets.as_completed(fs)
            for i, f in enumerate(fs):
                threads.submit(f.set_result, i)
            seen = []
            for signal in iterator:
                seen.append((yield signal))
            return seen

        assert sorted(tasklets.run(main)) == list(range(n))

    def test_blocking_waiters_on_several_threads(self, threads) -> None:
        @tasklets.task
        def producer(fs):
            for i, f in enumerate(fs):
                yield None
                f.set_result(i)

        fs = [Future() for _ in range(200)]
        readers = [threads.submit(lambda f=f: f.result(timeout=30)) for f in fs]
        producer(fs)
        assert [r.result(timeout=30) for r in readers] == list(range(200))
