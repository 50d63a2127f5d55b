"""tasklets.Future: a concurrent.futures.Future that works across threads and in tasks."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import threading

import pytest

import tasklets
from tasklets import Future
from tasklets._future import copy_outcome, read_outcome


class TestStdlibContract:
    """The stdlib's own helpers and blocking waits work on our futures."""

    def test_is_a_concurrent_futures_future(self) -> None:
        f = Future()
        assert isinstance(f, cf.Future)
        assert not f.done() and not f.running() and not f.cancelled()

    def test_set_result_and_result(self) -> None:
        f = Future()
        f.set_result(42)
        assert f.done() and f.result() == 42 and f.exception() is None

    def test_set_exception_keeps_the_exception(self) -> None:
        f = Future()
        error = ValueError("boom")
        f.set_exception(error)
        assert f.exception() is error
        with pytest.raises(ValueError, match="boom"):
            f.result()

    def test_completing_twice_is_an_invalid_state(self) -> None:
        f = Future()
        f.set_result(1)
        with pytest.raises(cf.InvalidStateError):
            f.set_result(2)
        with pytest.raises(cf.InvalidStateError):
            f.set_exception(ValueError())
        assert f.result() == 1

    def test_cancel(self) -> None:
        f = Future()
        assert f.cancel() and f.cancelled() and f.done()
        assert f.cancel()  # idempotent
        with pytest.raises(cf.CancelledError):
            f.result()
        with pytest.raises(cf.CancelledError):
            f.exception()

    def test_cannot_cancel_a_finished_or_running_future(self) -> None:
        done = Future()
        done.set_result(None)
        assert not done.cancel()
        running = Future()
        assert running.set_running_or_notify_cancel()
        assert running.running() and not running.cancel()
        cancelled = Future()
        cancelled.cancel()
        assert not cancelled.set_running_or_notify_cancel()

    def test_blocking_result_from_another_thread(self) -> None:
        f = Future()
        got: list[object] = []
        reader = threading.Thread(target=lambda: got.append(f.result(timeout=30)))
        reader.start()
        f.set_result("hello")
        reader.join(30)
        assert got == ["hello"]

    def test_blocking_result_times_out(self) -> None:
        f = Future()
        with pytest.raises(TimeoutError):
            f.result(timeout=0.01)
        with pytest.raises(cf.TimeoutError):
            f.exception(timeout=0)

    def test_blocking_result_sees_a_cancellation_from_another_thread(self) -> None:
        f = Future()
        outcome: list[type[BaseException]] = []

        def wait() -> None:
            try:
                f.result(timeout=30)
            except BaseException as exc:
                outcome.append(type(exc))

        reader = threading.Thread(target=wait)
        reader.start()
        f.cancel()
        reader.join(30)
        assert outcome == [cf.CancelledError]

    def test_concurrent_futures_wait_all_completed(self) -> None:
        fs = [Future() for _ in range(5)]

        def complete() -> None:
            for i, f in enumerate(fs):
                if i == 3:
                    f.cancel()
                else:
                    f.set_result(i)

        worker = threading.Thread(target=complete)
        worker.start()
        done, not_done = cf.wait(fs, timeout=30)
        worker.join()
        assert done == set(fs) and not not_done

    def test_concurrent_futures_wait_first_completed_and_first_exception(self) -> None:
        a, b, c = Future(), Future(), Future()
        threading.Thread(target=b.set_result, args=(1,)).start()
        done, not_done = cf.wait([a, b, c], timeout=30, return_when=cf.FIRST_COMPLETED)
        assert b in done and a in not_done and c in not_done
        threading.Thread(target=c.set_exception, args=(KeyError("k"),)).start()
        done, not_done = cf.wait([a, b, c], timeout=30, return_when=cf.FIRST_EXCEPTION)
        assert done == {b, c} and not_done == {a}
        done, not_done = cf.wait([a], timeout=0.01)
        assert not done and not_done == {a}

    def test_concurrent_futures_as_completed_in_completion_order(self) -> None:
        fs = [Future() for _ in range(4)]
        fs[2].set_result(2)  # done before the iteration starts: handed out first
        iterator = cf.as_completed(fs, timeout=30)
        assert next(iterator) is fs[2]
        for i in (0, 3, 1):  # each completed by another thread while the iterator waits
            completer = threading.Thread(target=fs[i].set_result, args=(i,))
            completer.start()
            assert next(iterator) is fs[i]
            completer.join()
        with pytest.raises(StopIteration):
            next(iterator)

    def test_concurrent_futures_as_completed_mixes_with_executor_futures(self) -> None:
        with cf.ThreadPoolExecutor(2) as pool:
            ours = Future()
            theirs = pool.submit(pow, 2, 8)
            ours_done = pool.submit(ours.set_result, "ours")
            results = {f.result() for f in cf.as_completed([ours, theirs, ours_done], timeout=30)}
        assert results == {"ours", 256, None}

    def test_callbacks_run_once_in_registration_order(self) -> None:
        f = Future()
        calls: list[tuple[str, object]] = []
        f.add_done_callback(lambda g: calls.append(("a", g)))
        f.add_done_callback(lambda g: calls.append(("b", g)))
        f.set_result(None)
        f.add_done_callback(lambda g: calls.append(("late", g)))  # done: runs at once
        assert calls == [("a", f), ("b", f), ("late", f)]

    def test_remove_done_callback(self) -> None:
        f = Future()
        calls: list[str] = []

        def cb(_: object) -> None:
            calls.append("cb")

        f.add_done_callback(cb)
        f.add_done_callback(cb)
        assert f.remove_done_callback(cb) == 2
        assert f.remove_done_callback(cb) == 0
        f.set_result(None)
        assert calls == []

    def test_a_failing_callback_is_logged_and_the_others_still_run(self, caplog: pytest.LogCaptureFixture) -> None:
        f = Future()
        calls: list[str] = []

        def bad(_: object) -> None:
            raise RuntimeError("bad callback")

        f.add_done_callback(bad)
        f.add_done_callback(lambda _: calls.append("good"))
        f.set_result(None)
        assert calls == ["good"]
        assert "bad callback" in caplog.text

    def test_repr_shows_state(self) -> None:
        f = Future()
        assert "pending" in repr(f)
        f.set_exception(KeyError())
        assert "KeyError" in repr(f)


class MinimalFuture:
    """The least ``is_future_like`` lets through: add_done_callback, result and done; no cancelled()/exception().

    Like the stdlib's futures it logs, rather than raises, a failing callback:
    a combinator whose callback breaks then simply never resolves.
    """

    def __init__(self) -> None:
        self._callbacks: list = []
        self._value: object = None
        self._error: BaseException | None = None
        self._done = False

    def add_done_callback(self, fn) -> None:
        if self._done:
            fn(self)
        else:
            self._callbacks.append(fn)

    def done(self) -> bool:
        return self._done

    def result(self, timeout=None):
        if self._error is not None:
            raise self._error
        return self._value

    def complete(self, value=None, error: BaseException | None = None) -> None:
        self._value, self._error, self._done = value, error, True
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            try:
                fn(self)
            except Exception:
                logging.getLogger("test").exception("callback failed")


class TestOutcomeOfAnyOrigin:
    """read_outcome/copy_outcome need no more of a future than result(): raising is failure, CancelledError cancels."""

    def test_read_outcome_of_every_kind(self) -> None:
        ok, failed, cancelled = MinimalFuture(), MinimalFuture(), MinimalFuture()
        ok.complete("v")
        failed.complete(error=KeyError("k"))
        cancelled.complete(error=cf.CancelledError())
        assert read_outcome(ok) == ("v", None, False)
        value, exc, was_cancelled = read_outcome(failed)
        assert value is None and isinstance(exc, KeyError) and not was_cancelled
        value, exc, was_cancelled = read_outcome(cancelled)
        assert value is None and isinstance(exc, cf.CancelledError) and was_cancelled

    def test_read_outcome_asks_cancelled_where_it_exists(self) -> None:
        ours, theirs = Future(), cf.Future()
        ours.set_exception(cf.CancelledError("failed with it, not cancelled"))
        theirs.cancel()
        _, exc, was_cancelled = read_outcome(ours)
        assert isinstance(exc, cf.CancelledError) and not was_cancelled
        _, exc, was_cancelled = read_outcome(theirs)
        assert isinstance(exc, cf.CancelledError) and was_cancelled

    def test_copy_outcome_from_a_minimal_future(self) -> None:
        sources = [MinimalFuture() for _ in range(3)]
        sources[0].complete("v")
        sources[1].complete(error=KeyError("k"))
        sources[2].complete(error=cf.CancelledError())
        targets = [Future() for _ in sources]
        for source, target in zip(sources, targets):
            copy_outcome(source, target)
        assert targets[0].result(timeout=0) == "v"
        assert isinstance(targets[1].exception(timeout=0), KeyError)
        assert targets[2].cancelled()


class TestInsideTasks:
    """A task waits with ``yield``/``yield from``/``await``; ``result()`` there refuses to block."""

    def test_yield_from_and_await_return_the_result(self, vrun) -> None:
        def gen_main():
            done = Future()
            done.set_result("ready")
            later = tasklets.sleep(1, "later")
            return (yield from done), (yield from later)

        async def async_main():
            return await tasklets.sleep(1, "awaited")

        assert vrun(gen_main) == ("ready", "later")
        assert vrun(async_main) == "awaited"

    def test_yield_from_raises_the_exception(self, vrun) -> None:
        def main():
            f = Future()
            tasklets.current_loop().call_soon(f.set_exception, KeyError("gone"))
            try:
                yield from f
            except KeyError as exc:
                return exc.args[0]

        assert vrun(main) == "gone"

    def test_result_on_a_pending_future_in_a_loop_thread_raises_and_names_it(self, vrun) -> None:
        pending = Future()

        def main():
            try:
                pending.result()
            except tasklets.BlockingResultError as exc:
                return str(exc)
            yield

        message = vrun(main)
        assert repr(pending) in message and "yield" in message
        assert issubclass(tasklets.BlockingResultError, tasklets.LoopError)

    def test_result_on_a_done_future_in_a_loop_thread_is_fine(self, vrun) -> None:
        def main():
            f = Future()
            f.set_result(3)
            return f.result() + f.result(timeout=0)
            yield

        assert vrun(main) == 6


@pytest.mark.usefixtures("busy_switching")
class TestCrossThreadCompletion:
    """Completing futures on one thread while another registers callbacks loses nothing."""

    N = 3000

    def test_callbacks_added_on_the_loop_while_a_thread_completes_are_never_lost(self, vrun) -> None:
        n = 1000
        futures = [Future() for _ in range(n)]
        go = threading.Event()
        registered = [0] * n
        hits = [0] * n
        lock = threading.Lock()

        def complete_all() -> None:
            go.wait(30)
            for i, f in enumerate(futures):
                while not registered[i]:  # complete it only once the loop thread is at it
                    os.sched_yield()
                f.set_result(i)

        def count(f: Future) -> None:
            with lock:
                hits[f.result()] += 1

        def main():
            worker = threading.Thread(target=complete_all)
            worker.start()
            go.set()
            for i, f in enumerate(futures):
                # Keep registering on this future until the other thread has
                # completed it (and once more after), so every completion
                # lands in the middle of registrations. At most 200 per future.
                while registered[i] < 200:
                    finished = f.done()
                    f.add_done_callback(count)
                    registered[i] += 1
                    if finished:
                        break
            yield tasklets.to_thread(worker.join)

        vrun(main)
        assert hits == registered  # each callback ran exactly once
        assert sum(registered) >= 2 * n

    def test_tasks_waiting_on_futures_a_thread_completes_all_wake(self, vrun) -> None:
        futures = [Future() for _ in range(self.N)]
        go = threading.Event()

        def complete_all() -> None:
            go.wait(30)
            for i, f in enumerate(futures):
                f.set_result(i)

        @tasklets.task
        def waiter(f):
            return (yield f)

        def main():
            worker = threading.Thread(target=complete_all)
            worker.start()
            go.set()
            tasks = [waiter(f) for f in futures]  # each registers its callback when first stepped
            results = yield tasks
            worker.join()
            return results

        assert vrun(main) == list(range(self.N))

    def test_one_task_yielding_futures_a_thread_completes(self, vrun) -> None:
        futures = [Future() for _ in range(self.N)]

        def complete_all() -> None:
            for i, f in enumerate(futures):
                f.set_result(i)

        def main():
            worker = threading.Thread(target=complete_all)
            worker.start()
            total = 0
            for f in futures:
                total += yield f
            worker.join()
            return total

        assert vrun(main) == sum(range(self.N))

    def test_many_futures_completed_by_many_threads_are_seen_by_blocking_waiters(self) -> None:
        futures = [Future() for _ in range(500)]
        with cf.ThreadPoolExecutor(4) as pool:
            for i, f in enumerate(futures):
                pool.submit(f.set_result, i)
            done, not_done = cf.wait(futures, timeout=30)
        assert len(done) == 500
        assert not not_done
        assert [f.result(timeout=0) for f in futures] == list(range(500))


class TestCompletionStep:
    """``_try_complete``: the one step that completes a future for someone else, unless it is done."""

    def test_it_completes_runs_callbacks_and_wakes_blocked_waiters(self) -> None:
        future: Future[int] = Future()
        seen: list[object] = []
        future.add_done_callback(lambda f: seen.append(f.result()))
        waiter = threading.Thread(target=lambda: seen.append(("blocked", future.result(10))))
        waiter.start()
        assert future._try_complete(7, None, before=lambda: seen.append("before"))
        waiter.join(10)
        assert seen[0] == "before" and 7 in seen and ("blocked", 7) in seen

    def test_a_future_cancelled_meanwhile_is_left_alone_and_before_does_not_run(self) -> None:
        future: Future[int] = Future()
        future.cancel()
        ran: list[str] = []
        assert not future._try_complete(7, None, before=lambda: ran.append("before"))
        assert future.cancelled() and ran == []

    def test_it_completes_with_an_exception_or_a_cancellation(self) -> None:
        failed: Future[int] = Future()
        assert failed._try_complete(None, ValueError("no"))
        assert isinstance(failed.exception(0), ValueError)
        cancelled: Future[int] = Future()
        assert cancelled._try_complete(None, None, cancel=True)
        assert cancelled.cancelled()
