"""Combinators over futures of mixed origin: wait_first, wait, gather, with_timeout, sleep, to_thread."""

from __future__ import annotations

import concurrent.futures as cf
import threading

import pytest

import tasklets
from tasklets import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, Future

from .test_future import MinimalFuture


class ForeignFuture:
    """A future-like object of no known library: add_done_callback, result, done, ..."""

    def __init__(self) -> None:
        self._callbacks: list = []
        self._value: object = None
        self._error: BaseException | None = None
        self._done = False
        self._lock = threading.Lock()

    def add_done_callback(self, fn) -> None:
        with self._lock:
            if not self._done:
                self._callbacks.append(fn)
                return
        fn(self)

    def done(self) -> bool:
        return self._done

    def cancelled(self) -> bool:
        return False

    def cancel(self) -> bool:
        return False

    def result(self, timeout=None):
        if self._error is not None:
            raise self._error
        return self._value

    def exception(self, timeout=None):
        return self._error

    def complete(self, value=None, error: BaseException | None = None) -> None:
        with self._lock:
            self._value, self._error, self._done = value, error, True
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(self)


def _first_watched_completes(count: int, error: BaseException | None = None) -> list[Future]:
    """``count`` pending futures; the first one a callback is registered on completes at once.

    ``wait()`` registers on a set, in no fixed order: this way an input done
    from the start is always the first registered, whatever the order.
    """
    watched: list[Future] = []

    class FirstWatched(Future):
        def add_done_callback(self, fn) -> None:
            if not watched:
                watched.append(self)
                if error is None:
                    self.set_result("first")
                else:
                    self.set_exception(error)
            super().add_done_callback(fn)

    return [FirstWatched() for _ in range(count)]


def _finish_after(seconds, value=None, error=None):
    yield tasklets.sleep(seconds)
    if error is not None:
        raise error
    return value


def _mixed(pool: cf.ThreadPoolExecutor, release: threading.Event):
    """Four pending futures of four origins; returns them and a function completing the foreign one."""
    ours = Future()
    a_task = tasklets.spawn(_finish_after, 2, "task")
    executor = pool.submit(lambda: (release.wait(30), "executor")[1])
    foreign = ForeignFuture()
    return ours, a_task, executor, foreign


class TestWaitFirst:
    """wait_first: the first outcome, and .completed names the winner."""

    def test_in_a_task_with_mixed_origins(self, vrun) -> None:
        release = threading.Event()

        def main():
            with cf.ThreadPoolExecutor(1) as pool:
                ours, a_task, executor, foreign = _mixed(pool, release)
                first = tasklets.wait_first([ours, a_task, executor, foreign])
                value = yield first
                assert first.completed is a_task and value == "task"
                tasklets.current_loop().call_soon(foreign.complete, "foreign")
                second = tasklets.wait_first([ours, executor, foreign])
                assert (yield second) == "foreign" and second.completed is foreign
                release.set()
                third = tasklets.wait_first([ours, executor])
                assert (yield third) == "executor" and third.completed is executor
                return True

        assert vrun(main)

    def test_in_plain_code(self) -> None:
        a, b = Future(), ForeignFuture()
        gate = threading.Event()
        with cf.ThreadPoolExecutor(1) as pool:
            first = tasklets.wait_first([a, b, pool.submit(gate.wait, 30)])
            assert not first.done()
            threading.Thread(target=b.complete, args=("b",)).start()
            assert first.result(timeout=30) == "b"
            assert first.completed is b
            a.set_result("a")
            assert first.result() == "b"  # a later completion changes nothing
            gate.set()

    def test_the_first_exception_is_the_outcome(self, vrun) -> None:
        def main():
            failing = tasklets.spawn(_finish_after, 1, error=KeyError("first"))
            slow = tasklets.sleep(5)
            first = tasklets.wait_first([slow, failing])
            try:
                yield first
            except KeyError:
                outcome = first.completed is failing, not slow.done()
                slow.cancel()  # its timer, left armed, would fail the strict run
                return outcome

        assert vrun(main) == (True, True)

    def test_an_already_done_input_wins_at_once(self) -> None:
        done, pending = Future(), Future()
        done.set_result("done")
        first = tasklets.wait_first([pending, done])
        assert first.done() and first.result() == "done" and first.completed is done
        assert not pending._callbacks  # detached from the loser

    def test_the_losers_are_detached(self) -> None:
        inputs = [Future() for _ in range(5)]
        first = tasklets.wait_first(inputs)
        inputs[2].set_result(2)
        assert first.result(timeout=0) == 2
        assert all(not f._callbacks for f in inputs)

    def test_cancelling_the_wait_detaches_but_leaves_the_inputs(self) -> None:
        inputs = [Future() for _ in range(3)]
        first = tasklets.wait_first(inputs)
        assert first.cancel()
        assert all(not f._callbacks and not f.done() for f in inputs)

    def test_bad_inputs(self) -> None:
        with pytest.raises(ValueError):
            tasklets.wait_first([])
        with pytest.raises(TypeError, match="takes futures"):
            tasklets.wait_first([Future(), 3])

        def gen():
            yield None

        with pytest.raises(TypeError, match="spawn"):
            tasklets.wait_first([gen()])


class TestWait:
    """wait(fs, timeout, return_when): a future of (done, not_done)."""

    def test_all_completed(self, vrun) -> None:
        def main():
            with cf.ThreadPoolExecutor(1) as pool:
                fs = [tasklets.sleep(3), tasklets.spawn(_finish_after, 1), pool.submit(pow, 2, 2), tasklets.sleep(2)]
                done, not_done = yield tasklets.wait(fs, return_when=ALL_COMPLETED)
            return done == set(fs), not_done, tasklets.current_loop().time()

        assert vrun(main) == (True, set(), 3)

    def test_first_completed(self, vrun) -> None:
        def main():
            slow, fast = tasklets.sleep(3), tasklets.sleep(1)
            done, not_done = yield tasklets.wait([slow, fast], return_when=FIRST_COMPLETED)
            slow.cancel()
            return done == {fast}, not_done == {slow}, tasklets.current_loop().time()

        assert vrun(main) == (True, True, 1)

    def test_first_exception(self, vrun) -> None:
        def main():
            ok = tasklets.spawn(_finish_after, 1, "ok")
            failing = tasklets.spawn(_finish_after, 2, error=ValueError("x"))
            slow = tasklets.sleep(10)
            done, not_done = yield tasklets.wait([ok, failing, slow], return_when=FIRST_EXCEPTION)
            assert failing.exception() is not None
            slow.cancel()
            return done == {ok, failing}, not_done == {slow}, tasklets.current_loop().time()

        assert vrun(main) == (True, True, 2)

    def test_first_exception_without_any_waits_for_all(self, vrun) -> None:
        def main():
            fs = [tasklets.sleep(1), tasklets.sleep(2)]
            done, not_done = yield tasklets.wait(fs, return_when=FIRST_EXCEPTION)
            return len(done), len(not_done), tasklets.current_loop().time()

        assert vrun(main) == (2, 0, 2)

    def test_timeout_returns_what_is_done(self, vrun) -> None:
        def main():
            fast, never = tasklets.sleep(1), Future()
            done, not_done = yield tasklets.wait([fast, never, fast], timeout=5)  # duplicates count once
            return done == {fast}, not_done == {never}, tasklets.current_loop().time()

        assert vrun(main) == (True, True, 5)

    def test_in_plain_code_with_a_timeout(self) -> None:
        a, b = Future(), Future()
        a.set_result(1)
        done, not_done = tasklets.wait([a, b], timeout=0.01).result(timeout=30)
        assert done == {a} and not_done == {b}
        assert not b._callbacks  # the timed-out wait detached

    def test_in_plain_code_with_a_foreign_thread(self) -> None:
        with cf.ThreadPoolExecutor(2) as pool:
            ours = Future()
            theirs = pool.submit(ours.set_result, "x")
            done, not_done = tasklets.wait([ours, theirs]).result(timeout=30)
        assert done == {ours, theirs} and not not_done

    def test_an_input_done_at_once_leaves_no_callback_on_the_others(self) -> None:
        for return_when, error in ((FIRST_COMPLETED, None), (FIRST_EXCEPTION, KeyError("k"))):
            inputs = _first_watched_completes(5, error)
            done, not_done = tasklets.wait(inputs, return_when=return_when).result(timeout=0)
            assert len(done) == 1 and len(not_done) == 4
            assert all(not f._callbacks for f in inputs)

    def test_empty_and_bad_arguments(self) -> None:
        assert tasklets.wait([]).result(timeout=0) == (set(), set())
        with pytest.raises(ValueError, match="return_when"):
            tasklets.wait([Future()], return_when="SOMETIMES")


class TestGather:
    """gather: the list of results in input order; fails on the first exception."""

    def test_results_in_input_order_not_completion_order(self, vrun) -> None:
        def main():
            with cf.ThreadPoolExecutor(1) as pool:
                foreign = ForeignFuture()
                tasklets.current_loop().call_later(2.5, foreign.complete, "foreign")
                inputs = [tasklets.sleep(3, "slow"), tasklets.spawn(_finish_after, 1, "task"), pool.submit(abs, -1)]
                return (yield tasklets.gather([*inputs, foreign]))

        assert vrun(main) == ["slow", "task", 1, "foreign"]

    def test_plain_code(self) -> None:
        with cf.ThreadPoolExecutor(2) as pool:
            ours = Future()
            gathered = tasklets.gather([ours, pool.submit(pow, 3, 3)])
            pool.submit(ours.set_result, "ours")
            assert gathered.result(timeout=30) == ["ours", 27]

    def test_first_exception_fails_without_waiting_for_the_rest(self, vrun) -> None:
        def main():
            never = Future()
            try:
                yield tasklets.gather([never, tasklets.spawn(_finish_after, 1, error=OSError("io"))])
            except OSError as exc:
                return str(exc), never.done(), tasklets.current_loop().time()

        assert vrun(main) == ("io", False, 1)

    def test_cancelling_gather_cancels_the_inputs(self) -> None:
        a, b, c = Future(), Future(), Future()
        a.set_result(1)
        gathered = tasklets.gather([a, b, c])
        assert gathered.cancel()
        assert b.cancelled() and c.cancelled() and a.result() == 1

    def test_a_cancelled_input_cancels_gather(self) -> None:
        a, b = Future(), Future()
        gathered = tasklets.gather([a, b])
        b.cancel()
        assert gathered.cancelled()

    def test_empty(self) -> None:
        assert tasklets.gather([]).result(timeout=0) == []

    def test_an_early_failure_leaves_no_callback_on_the_other_inputs(self) -> None:
        before, after = Future(), Future()
        for _ in range(100):
            failed = Future()
            failed.set_exception(ValueError("early"))
            with pytest.raises(ValueError):
                tasklets.gather([before, failed, after]).result(timeout=0)
        assert not before._callbacks and not after._callbacks
        assert not before.done() and not after.done()  # a failure does not cancel the others


class TestMinimalFutures:
    """Inputs with nothing but add_done_callback, result and done (no cancelled(), exception(), cancel())."""

    def test_wait_first_gather_and_with_timeout_take_their_outcome(self) -> None:
        inputs = [MinimalFuture() for _ in range(3)]
        first = tasklets.wait_first([Future(), inputs[0]])
        gathered = tasklets.gather([inputs[1]])
        timed = tasklets.with_timeout(inputs[2], 3600)
        for i, f in enumerate(inputs):
            f.complete(i)
        assert first.result(timeout=0) == 0 and first.completed is inputs[0]
        assert gathered.result(timeout=0) == [1]
        assert timed.result(timeout=0) == 2

    def test_a_failure_is_what_result_raises(self) -> None:
        failing = [MinimalFuture() for _ in range(3)]
        other = Future()
        gathered = tasklets.gather([failing[0], other])
        waited = tasklets.wait([failing[1], other], return_when=FIRST_EXCEPTION)
        timed = tasklets.with_timeout(failing[2], 3600)
        for f in failing:
            f.complete(error=KeyError("k"))
        assert isinstance(gathered.exception(timeout=0), KeyError)
        assert waited.result(timeout=0) == ({failing[1]}, {other})
        assert isinstance(timed.exception(timeout=0), KeyError)

    def test_a_cancelled_error_from_result_is_a_cancellation(self) -> None:
        cancelled, other = MinimalFuture(), Future()
        gathered = tasklets.gather([cancelled, other])
        wrapped = tasklets.wrap_future(cancelled)
        cancelled.complete(error=cf.CancelledError())
        assert gathered.cancelled() and other.cancelled()
        assert wrapped.cancelled()

    def test_with_timeout_leaves_an_uncancellable_future_running(self, vrun, caplog) -> None:
        never = MinimalFuture()

        def main():
            with pytest.raises(TimeoutError):
                yield tasklets.with_timeout(never, 5)
            return tasklets.current_loop().time()

        assert vrun(main) == 5
        assert not never.done() and caplog.records == []


class TestWithTimeout:
    """with_timeout: the result, or TimeoutError and the input cancelled."""

    def test_result_in_time(self, vrun) -> None:
        def main():
            return (yield tasklets.with_timeout(tasklets.sleep(1, "in time"), 2)), tasklets.current_loop().time()

        assert vrun(main) == ("in time", 1)

    def test_timeout_cancels_the_future(self, vrun) -> None:
        def main():
            never = Future()
            try:
                yield tasklets.with_timeout(never, 30)
            except tasklets.TimeoutError as exc:
                assert isinstance(exc, TimeoutError)
                return never.cancelled(), tasklets.current_loop().time()

        assert vrun(main) == (True, 30)

    def test_timeout_cancels_a_task_which_may_clean_up(self, vrun) -> None:
        cleaned: list[float] = []

        def slow():
            try:
                yield tasklets.sleep(100)
            except tasklets.Cancelled:
                cleaned.append(tasklets.current_loop().time())
                raise

        def main():
            t = tasklets.spawn(slow)
            with pytest.raises(TimeoutError):
                yield tasklets.with_timeout(t, 5)
            yield tasklets.wait([t])
            return t.cancelled()

        assert vrun(main) is True
        assert cleaned == [5]

    def test_the_exception_of_the_future_passes_through(self, vrun) -> None:
        def main():
            with pytest.raises(KeyError):
                yield tasklets.with_timeout(tasklets.spawn(_finish_after, 1, error=KeyError("k")), 5)
            return tasklets.current_loop().time()

        assert vrun(main) == 1

    def test_plain_code(self) -> None:
        never = Future()
        with pytest.raises(TimeoutError):
            tasklets.with_timeout(never, 0.01).result(timeout=30)
        assert never.cancelled()
        quick = Future()
        quick.set_result("quick")
        assert tasklets.with_timeout(quick, 30).result(timeout=30) == "quick"

    def test_rejects_a_non_future(self) -> None:
        with pytest.raises(TypeError):
            tasklets.with_timeout(42, 1)


class TestSleep:
    """sleep(seconds, result) resolves after the delay on the loop's clock."""

    def test_sleep_returns_its_result_after_the_delay(self, vrun) -> None:
        def main():
            loop = tasklets.current_loop()
            value = yield tasklets.sleep(2.5, "rested")
            return value, loop.time()

        assert vrun(main) == ("rested", 2.5)

    def test_sleep_zero_lets_other_tasks_run(self, vrun) -> None:
        order: list[str] = []

        def other():
            order.append("other")
            yield None

        def main():
            tasklets.spawn(other)
            order.append("main before")
            yield tasklets.sleep(0)
            order.append("main after")

        vrun(main)
        assert order == ["main before", "other", "main after"]

    def test_cancelling_a_sleep_cancels_its_timer(self, vrun) -> None:
        def main():
            loop = tasklets.current_loop()
            nap = tasklets.sleep(10)
            assert nap.cancel()
            yield tasklets.sleep(1)
            return all(entry[2].cancelled() for entry in loop._timers)

        assert vrun(main) is True

    def test_sleep_in_plain_code(self) -> None:
        assert tasklets.sleep(0.001, "x").result(timeout=30) == "x"
        assert tasklets.sleep(0, "zero").result(timeout=30) == "zero"


class TestToThread:
    """to_thread runs a blocking call in the default pool."""

    def test_runs_in_another_thread_with_args_and_kwargs(self, vrun) -> None:
        def work(a, *, b):
            return a + b, threading.get_ident()

        def main():
            value, worker = yield tasklets.to_thread(work, 1, b=2)
            return value, worker != threading.get_ident(), threading.get_ident()

        value, elsewhere, _ = vrun(main)
        assert value == 3 and elsewhere

    def test_exception_passes_through(self) -> None:
        def fail():
            raise ZeroDivisionError("to_thread")

        with pytest.raises(ZeroDivisionError, match="to_thread"):
            tasklets.to_thread(fail).result(timeout=30)

    def test_is_a_tasklets_future(self) -> None:
        f = tasklets.to_thread(sum, [1, 2, 3])
        assert isinstance(f, Future)
        assert f.result(timeout=30) == 6

    def test_a_cancelled_call_never_runs(self) -> None:
        gate = threading.Event()
        ran: list[int] = []
        # Fill every worker so the next call stays queued.
        workers = tasklets._where.default_executor()._max_workers
        blockers = [tasklets.to_thread(gate.wait, 30) for _ in range(workers)]
        queued = tasklets.to_thread(ran.append, 1)
        assert queued.cancel()
        gate.set()
        tasklets.gather(blockers).result(timeout=30)
        with pytest.raises(cf.CancelledError):
            queued.result()
        assert ran == []
