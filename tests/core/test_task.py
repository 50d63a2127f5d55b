"""Tasks: the @task decorator, the yield protocol, cancellation, and no lost work."""

from __future__ import annotations

import concurrent.futures as cf
import gc
import logging
import threading
import weakref

import pytest

import tasklets
from tasklets import Cancelled, Future, Task, task
from tasklets.testing import VirtualClock


class TestMakingTasks:
    """@task, spawn and Task(): calling returns a running Task at once."""

    def test_task_decorates_generator_functions_and_returns_a_task_at_once(self, vrun) -> None:
        started: list[str] = []

        @task
        def double(x):
            started.append("double")
            yield None
            return 2 * x

        def main():
            t = double(21)
            assert isinstance(t, Task) and isinstance(t, Future) and isinstance(t, cf.Future)
            assert started == []  # scheduled, not run inline
            assert t.loop is tasklets.current_loop()
            return (yield t)

        assert vrun(main) == 42

    def test_task_decorates_async_def(self, vrun) -> None:
        @task
        async def add(a, b):
            await tasklets.sleep(1)
            return a + b

        def main():
            return (yield add(1, 2))

        assert vrun(main) == 3

    def test_task_rejects_an_ordinary_function(self) -> None:
        def plain():
            return 1

        with pytest.raises(TypeError, match="neither"):
            task(plain)

    def test_task_with_a_name(self, vrun) -> None:
        @task(name="worker")
        def work():
            yield None
            return tasklets.current_task().name

        def main():
            return (yield work())

        assert vrun(main) == "worker"

    def test_spawn_runs_generator_functions_async_defs_and_task_functions(self, vrun) -> None:
        def gen(x):
            yield None
            return x

        async def coro(x):
            return x

        @task
        def decorated(x):
            yield None
            return x

        def main():
            tasks = [tasklets.spawn(gen, 1), tasklets.spawn(coro, 2), tasklets.spawn(decorated, 3, name="three")]
            assert tasks[2].name == "three"
            return (yield tasks)

        assert vrun(main) == [1, 2, 3]

    def test_task_constructor_refuses_a_function(self) -> None:
        def gen():
            yield None

        with pytest.raises(TypeError, match="generator or a coroutine"):
            Task(gen)  # type: ignore[arg-type]

    def test_outside_any_loop_a_task_runs_on_the_default_background_loop(self) -> None:
        @task
        def where():
            yield tasklets.sleep(0)
            return threading.current_thread().name, tasklets.current_loop()

        thread_name, loop = where().result(timeout=30)
        assert thread_name == "tasklets-default-loop"
        assert loop is tasklets.default_loop()
        assert threading.current_thread().name != thread_name

    def test_plain_code_gets_the_exception_of_a_background_task(self) -> None:
        @task
        def fail():
            yield None
            raise ValueError("from the background")

        with pytest.raises(ValueError, match="from the background"):
            fail().result(timeout=30)

    def test_return_value_and_exception_with_traceback(self, vrun) -> None:
        def inner_failure():
            raise KeyError("deep")

        @task
        def failing():
            yield None
            inner_failure()

        def main():
            t = failing()
            try:
                yield t
            except KeyError as exc:
                return exc

        exc = vrun(main)
        import traceback

        names = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
        assert "inner_failure" in names and "failing" in names


class TestRun:
    """tasklets.run() runs a fresh loop in this thread."""

    def test_run_returns_the_result(self) -> None:
        def main(a, b):
            yield tasklets.sleep(0)
            return a * b

        assert tasklets.run(main, 6, 7) == 42

    def test_run_accepts_async_def_task_functions_and_plain_functions(self) -> None:
        async def amain(x):
            return x + 1

        @task
        def tmain(x):
            yield None
            return x + 2

        assert tasklets.run(amain, 1) == 2
        assert tasklets.run(tmain, 1) == 3
        assert tasklets.run(lambda: "plain") == "plain"

    def test_run_raises_the_main_exception(self) -> None:
        def main():
            yield None
            raise LookupError("nope")

        with pytest.raises(LookupError, match="nope"):
            tasklets.run(main)

    def test_run_inside_a_running_loop_is_refused(self, vrun) -> None:
        def inner():
            yield None

        def main():
            with pytest.raises(tasklets.LoopError):
                tasklets.run(inner)
            yield None
            return "ok"

        assert vrun(main) == "ok"

    def test_run_raises_what_fn_raises_before_any_task_starts(self) -> None:
        def not_a_generator():
            raise ArithmeticError("synchronous")

        with pytest.raises(ArithmeticError, match="synchronous"):
            tasklets.run(not_a_generator)

    def test_run_cancels_leftover_tasks_and_lets_them_clean_up(self) -> None:
        cleaned: list[str] = []

        def straggler():
            try:
                yield Future()  # never completes
            except Cancelled:
                cleaned.append("straggler")
                raise

        def main():
            tasklets.spawn(straggler)
            yield None
            return "main done"

        assert tasklets.run(main, clock=VirtualClock()) == "main done"  # tasklets.run's own cleanup, not a strict run
        assert cleaned == ["straggler"]


class TestYieldProtocol:
    """What a task may yield, and on which thread it resumes."""

    def test_resumed_on_the_loop_thread_whatever_completes_the_future(self, vrun) -> None:
        class Foreign:
            """A future-like object that is no concurrent.futures.Future at all."""

            def __init__(self):
                self._callbacks = []
                self._value = None
                self._done = False

            def add_done_callback(self, fn):
                self._callbacks.append(fn)

            def done(self):
                return self._done

            def result(self, timeout=None):
                return self._value

            def exception(self, timeout=None):
                return None

            def cancelled(self):
                return False

            def complete(self, value):
                self._value, self._done = value, True
                for fn in self._callbacks:
                    fn(self)

        def main():
            loop_thread = threading.get_ident()
            seen = []
            with cf.ThreadPoolExecutor(2) as pool:
                value = yield pool.submit(threading.get_ident)
                assert value != loop_thread
                seen.append(threading.get_ident())
                ours = Future()
                pool.submit(ours.set_result, "ours")
                assert (yield ours) == "ours"
                seen.append(threading.get_ident())
                foreign = Foreign()
                pool.submit(foreign.complete, "foreign")
                assert (yield foreign) == "foreign"
                seen.append(threading.get_ident())
                assert (yield tasklets.to_thread(pow, 3, 2)) == 9
                seen.append(threading.get_ident())
            return loop_thread, seen

        loop_thread, seen = vrun(main)
        assert seen == [loop_thread] * 4

    def test_a_task_on_another_loop_can_be_yielded(self, vrun) -> None:
        def elsewhere():
            yield None
            return threading.get_ident()

        def main():
            other = Task(elsewhere(), loop=tasklets.default_loop())
            other_thread = yield other
            return other_thread, threading.get_ident()

        other_thread, loop_thread = vrun(main)
        assert other_thread != loop_thread

    def test_helpers_compose_with_yield_from_and_await(self, vrun) -> None:
        def gen_helper(x):
            yield tasklets.sleep(1)
            return x * 2

        async def async_helper(x):
            await tasklets.sleep(1)
            return x + 1

        def gen_main():
            return (yield from gen_helper(5))

        async def async_main():
            return await async_helper(await tasklets.sleep(1, 10))

        assert vrun(gen_main) == 10
        assert vrun(async_main) == 11

    def test_yield_none_gives_other_tasks_a_turn(self, vrun) -> None:
        order: list[str] = []

        def worker(name):
            for i in range(3):
                order.append(f"{name}{i}")
                yield None

        def main():
            yield [tasklets.spawn(worker, "a"), tasklets.spawn(worker, "b")]

        vrun(main)
        assert order == ["a0", "b0", "a1", "b1", "a2", "b2"]

    def test_yield_a_list_or_tuple_of_futures_gives_the_list_of_results(self, vrun) -> None:
        def main():
            done = Future()
            done.set_result("done")
            with cf.ThreadPoolExecutor(1) as pool:
                from_list = yield [tasklets.sleep(2, "slow"), tasklets.sleep(1, "fast"), done, pool.submit(abs, -4)]
            from_tuple = yield (tasklets.sleep(1, "x"), tasklets.sleep(1, "y"))
            empty = yield []
            return from_list, from_tuple, empty

        assert vrun(main) == (["slow", "fast", "done", 4], ["x", "y"], [])

    def test_yield_a_list_fails_on_the_first_exception(self, vrun) -> None:
        def fail_after(seconds, exc):
            yield tasklets.sleep(seconds)
            raise exc

        def main():
            slow_failure = tasklets.spawn(fail_after, 10, KeyError("second"))
            slow = tasklets.sleep(100)
            try:
                yield [slow, tasklets.spawn(fail_after, 1, ValueError("first")), slow_failure]
            except ValueError as exc:
                now = tasklets.current_loop().time()
                slow_failure.cancel()
                slow.cancel()
                return str(exc), now

        message, now = vrun(main)
        assert message == "first" and now == 1  # did not wait for the others

    @pytest.mark.parametrize(
        "make_bad, expected",
        [
            (lambda: 42, "42"),
            (lambda: "text", "'text'"),
            (lambda: (x for x in ()), "yield from"),
            (lambda: [Future(), 1], "1"),
        ],
        ids=["int", "str", "generator", "list-with-non-future"],
    )
    def test_bad_yield_throws_bad_yield_error_into_the_task(self, vrun, make_bad, expected) -> None:
        def main():
            try:
                yield make_bad()
            except tasklets.BadYieldError as exc:
                assert isinstance(exc, TypeError)
                return str(exc)
            return "no error"

        message = vrun(main)
        assert expected in message
        assert "main" in message  # names the task

    def test_bad_yield_of_a_generator_explains_yield_from(self, vrun) -> None:
        def helper():
            yield None

        def main():
            try:
                yield helper()
            except TypeError as exc:
                return str(exc)

        message = vrun(main)
        assert "generator" in message and "yield from" in message and "helper" in message

    def test_bad_yield_of_a_coroutine_explains_task(self, vrun) -> None:
        async def helper():
            return 1

        def main():
            try:
                yield helper()
            except TypeError as exc:
                return str(exc)

        message = vrun(main)
        assert "coroutine" in message and "@tasklets.task" in message

    def test_an_uncaught_bad_yield_fails_the_task(self, vrun) -> None:
        def main():
            yield object()

        with pytest.raises(tasklets.BadYieldError, match="not something a task can wait on"):
            vrun(main)


class TestCancellation:
    """task.cancel() throws Cancelled at the current yield."""

    def test_cancel_throws_cancelled_at_the_yield_and_cancels_the_awaited_future(self, vrun) -> None:
        awaited = Future()
        seen: list[str] = []

        def victim():
            try:
                yield awaited
            except Exception:
                seen.append("except Exception caught it")  # must not happen
            except Cancelled as exc:
                seen.append(f"cancelled: {exc}")
                raise

        def main():
            t = tasklets.spawn(victim)
            yield None  # let it reach its yield
            assert t.cancel("stop it")
            yield tasklets.wait([t])
            return t

        t = vrun(main)
        assert seen == ["cancelled: stop it"]
        assert awaited.cancelled()
        assert t.cancelled() and t.done()
        with pytest.raises(cf.CancelledError):
            t.result()
        assert not issubclass(Cancelled, Exception) and issubclass(Cancelled, BaseException)

    def test_cancelled_async_def_task(self, vrun) -> None:
        seen: list[str] = []

        async def victim():
            try:
                await tasklets.sleep(100)
            except Cancelled:
                seen.append("cleanup")
                await tasklets.sleep(1)  # cleanup may wait
                seen.append("cleaned")
                raise

        def main():
            t = tasklets.spawn(victim)
            yield tasklets.sleep(1)
            t.cancel()
            yield tasklets.wait([t])
            return t.cancelled(), tasklets.current_loop().time()

        assert vrun(main) == (True, 2)
        assert seen == ["cleanup", "cleaned"]

    def test_a_task_may_swallow_the_cancellation(self, vrun) -> None:
        def stubborn():
            try:
                yield Future()
            except Cancelled:
                pass
            yield tasklets.sleep(1)
            return "carried on"

        def main():
            t = tasklets.spawn(stubborn)
            yield None
            t.cancel()
            return (yield t)

        assert vrun(main) == "carried on"

    def test_cancel_before_the_first_step(self, vrun) -> None:
        ran: list[str] = []

        def never():
            ran.append("ran")
            yield None

        def main():
            t = tasklets.spawn(never)
            assert t.cancel()
            yield tasklets.wait([t])
            return t.cancelled()

        assert vrun(main) is True
        assert ran == []

    def test_cancel_a_done_task_returns_false(self, vrun) -> None:
        def quick():
            yield None
            return 1

        def main():
            t = tasklets.spawn(quick)
            yield t
            return t.cancel(), t.result()

        assert vrun(main) == (False, 1)

    def test_cancelling_a_task_cancels_the_task_it_waits_on(self, vrun) -> None:
        def child():
            yield Future()

        def parent(holder):
            holder.append(tasklets.spawn(child))
            yield holder[0]

        def main():
            holder: list[Task] = []
            p = tasklets.spawn(parent, holder)
            yield tasklets.sleep(1)
            p.cancel()
            yield tasklets.wait([p, holder[0]])
            return p.cancelled(), holder[0].cancelled()

        assert vrun(main) == (True, True)

    def test_a_task_cancelling_itself_is_cancelled_at_its_next_wait(self, vrun) -> None:
        steps: list[str] = []

        def selfish():
            tasklets.current_task().cancel()
            steps.append("after cancel")
            try:
                yield tasklets.sleep(100)
            except Cancelled:
                steps.append("cancelled at the wait")
                raise

        def main():
            t = tasklets.spawn(selfish)
            yield tasklets.wait([t])
            return t.cancelled(), tasklets.current_loop().time()

        assert vrun(main) == (True, 0)
        assert steps == ["after cancel", "cancelled at the wait"]

    def test_late_completion_of_an_abandoned_foreign_future_is_ignored(self, vrun) -> None:
        release = threading.Event()
        then = Future()

        def slow():
            release.wait(30)
            return "late"

        def victim(running, log):
            try:
                yield running  # an executor future already running cannot be cancelled
            except Cancelled:
                log.append("cancelled")
            log.append((yield then))  # must get then's result, never running's
            return "victim done"

        def main():
            log: list[str] = []
            with cf.ThreadPoolExecutor(1) as pool:
                running = pool.submit(slow)
                t = tasklets.spawn(victim, running, log)
                yield None
                assert t.cancel()
                yield None
                assert log == ["cancelled"] and not running.cancelled()
                release.set()  # the abandoned future completes while the victim waits on `then`
                assert (yield running) == "late"  # its stale wake-up was queued before ours
                yield None
                then.set_result("then")
                return log, (yield t)

        assert vrun(main) == (["cancelled", "then"], "victim done")

    def test_cancelling_a_task_cancels_the_executor_future_it_waits_on(self, vrun) -> None:
        """A queued (not yet running) executor future can be cancelled: the task's cancel reaches it."""
        release = threading.Event()

        def waiter(queued, log):
            try:
                yield queued
            except Cancelled:
                log.append("cancelled")
                raise

        def main():
            log: list[str] = []
            with cf.ThreadPoolExecutor(1) as pool:
                try:
                    busy = pool.submit(release.wait, 30)  # the one worker is taken...
                    queued = pool.submit(abs, -1)  # ...so this one waits in the queue
                    t = tasklets.spawn(waiter, queued, log)
                    yield None
                    assert t.cancel()
                    try:
                        yield t
                    except cf.CancelledError:
                        pass
                finally:
                    release.set()  # (also when a check failed: the pool's exit waits for its worker)
                busy.result(10)
            return log, t.cancelled(), queued.cancelled()

        assert vrun(main) == (["cancelled"], True, True)

    def test_a_foreign_future_already_done_is_read_off_the_loop(self, vrun) -> None:
        """Its result() might block (it is no future of ours): it is read in the thread pool."""
        read_on: list[int] = []

        class DoneForeign:
            def add_done_callback(self, fn):
                fn(self)

            def done(self):
                return True

            def result(self, timeout=None):
                read_on.append(threading.get_ident())
                return "ready"

        def main():
            return (yield DoneForeign()), threading.get_ident()

        value, loop_thread = vrun(main)
        assert value == "ready"
        assert read_on and loop_thread not in read_on

    def test_async_def_tasks_await_executor_futures_through_wrap_future(self, vrun) -> None:
        release = threading.Event()

        async def main():
            with cf.ThreadPoolExecutor(1) as pool:
                assert await tasklets.wrap_future(pool.submit(pow, 2, 5)) == 32
                busy = pool.submit(release.wait, 30)
                try:
                    queued = pool.submit(abs, -1)
                    wrapper = tasklets.wrap_future(queued)
                    assert wrapper.cancel()  # cancelling the wrapper cancels what it follows...
                    await tasklets.wait([queued], timeout=10)  # ...from the thread pool (it has a callback: ours)
                finally:
                    release.set()  # (also when a check failed: the pool's exit waits for its worker)
                await tasklets.wrap_future(busy)
                return queued.cancelled()

        assert vrun(main) is True

    def test_a_resolved_wait_is_delivered_and_cancellation_lands_at_the_next_wait(self, vrun) -> None:
        lock = tasklets.Lock()
        log: list[str] = []

        def contender():
            yield lock.acquire()  # queued behind main
            log.append("got the lock")
            try:
                yield tasklets.sleep(100)
            except Cancelled:
                log.append("cancelled at the next wait")
                lock.release()
                raise

        def main():
            yield lock.acquire()
            t = tasklets.spawn(contender)
            yield None  # contender now waits for the lock
            lock.release()  # hands the lock to contender: its wait is resolved...
            t.cancel()  # ...before it could run again
            yield tasklets.wait([t])
            return t.cancelled(), lock.locked()

        assert vrun(main) == (True, False)
        assert log == ["got the lock", "cancelled at the next wait"]

    def test_a_delivered_queue_item_is_not_lost_on_cancellation(self, vrun) -> None:
        q = tasklets.Queue()
        received: list[str] = []

        def consumer():
            received.append((yield q.get()))
            yield Future()

        def main():
            t = tasklets.spawn(consumer)
            yield None
            q.put_nowait("item")
            t.cancel()
            yield tasklets.wait([t])
            return t.cancelled(), q.qsize()

        assert vrun(main) == (True, 0)
        assert received == ["item"]

    def test_cancelling_a_task_waiting_on_a_list_cancels_every_future_in_it(self, vrun) -> None:
        a, b = Future(), tasklets.sleep(100)

        def victim():
            yield [a, b]

        def main():
            t = tasklets.spawn(victim)
            yield None
            t.cancel()
            yield tasklets.wait([t])
            return t.cancelled(), a.cancelled(), b.cancelled()

        assert vrun(main) == (True, True, True)

    def test_cancelling_a_task_waiting_on_with_timeout_cancels_the_inner_future(self, vrun) -> None:
        inner = Future()

        def victim():
            yield tasklets.with_timeout(inner, 100)

        def main():
            t = tasklets.spawn(victim)
            yield tasklets.sleep(1)
            t.cancel()
            yield tasklets.wait([t])
            return t.cancelled(), inner.cancelled(), tasklets.current_loop().time()

        assert vrun(main) == (True, True, 1)

    def test_cancel_from_another_thread(self, vrun) -> None:
        seen: list[int] = []

        def victim():
            try:
                yield Future()
            except Cancelled:
                seen.append(threading.get_ident())
                raise

        def main():
            t = tasklets.spawn(victim)
            yield None
            canceller = tasklets.to_thread(t.cancel)
            assert (yield canceller) is True
            yield tasklets.wait([t])
            return t.cancelled(), threading.get_ident()

        cancelled, loop_thread = vrun(main)
        assert cancelled and seen == [loop_thread]

    def test_cancellations_racing_with_completions_on_another_thread(self, vrun) -> None:
        # Each task is cancelled while a thread completes the future it waits
        # on: it either sees Cancelled at that wait, or gets the value and sees
        # Cancelled at its next wait. Never both, never neither, never a hang.
        n = 500

        def victim(f):
            try:
                value = yield f
            except Cancelled:
                raise
            try:
                yield None
            except Cancelled:
                return value
            return "cancellation lost"

        def main():
            futures = [Future() for _ in range(n)]
            tasks = [tasklets.spawn(victim, f) for f in futures]
            yield None  # all wait now

            def complete_all():
                for i, f in enumerate(futures):
                    try:
                        f.set_result(i)
                    except cf.InvalidStateError:
                        pass  # the cancellation got there first and cancelled it

            completer = threading.Thread(target=complete_all)
            completer.start()
            for t in tasks:
                t.cancel()
            yield tasklets.wait(tasks)
            completer.join()
            return futures, tasks

        futures, tasks = vrun(main)
        for i, (f, t) in enumerate(zip(futures, tasks)):
            assert t.done()
            if t.cancelled():
                assert f.cancelled()  # else its value would have been delivered
            else:
                assert t.result() == i and f.result() == i  # delivered, then cancelled at the next wait

    def test_cancel_a_background_task_from_plain_code(self) -> None:
        started = threading.Event()

        @task
        def forever():
            started.set()
            yield Future()

        t = forever()
        assert started.wait(30)
        assert t.cancel()
        with pytest.raises(cf.CancelledError):
            t.result(timeout=30)


class TestNoLostWork:
    """The loop keeps tasks alive; failures nobody looked at are logged."""

    def test_pending_tasks_are_kept_alive_by_the_loop(self, vrun) -> None:
        finished: list[int] = []
        refs: list[weakref.ref] = []

        def worker(i):
            yield tasklets.sleep(i + 1)
            finished.append(i)

        def main():
            for i in range(5):
                refs.append(weakref.ref(tasklets.spawn(worker, i)))  # no strong reference kept
            gc.collect()
            assert all(r() is not None for r in refs)
            yield tasklets.sleep(10)

        vrun(main)
        assert finished == [0, 1, 2, 3, 4]
        gc.collect()
        assert all(r() is None for r in refs)  # and released once done

    def test_an_unretrieved_exception_is_logged_with_name_and_traceback(
        self, vrun, caplog: pytest.LogCaptureFixture
    ) -> None:
        def doomed():
            yield None
            raise ValueError("nobody asked")

        def main():
            tasklets.spawn(doomed, name="doomed-task")
            yield tasklets.sleep(1)

        with caplog.at_level(logging.ERROR, logger="tasklets"):
            vrun(main)
            gc.collect()
        records = [r for r in caplog.records if "never retrieved" in r.getMessage()]
        assert len(records) == 1
        assert "doomed-task" in records[0].getMessage()
        assert records[0].exc_info is not None and records[0].exc_info[0] is ValueError
        assert "nobody asked" in caplog.text and "Traceback" in caplog.text and "in doomed" in caplog.text

    def test_a_retrieved_exception_is_not_logged(self, vrun, caplog: pytest.LogCaptureFixture) -> None:
        def doomed():
            yield None
            raise ValueError("seen")

        def main():
            t = tasklets.spawn(doomed)
            try:
                yield t
            except ValueError:
                pass

        with caplog.at_level(logging.ERROR, logger="tasklets"):
            vrun(main)
            gc.collect()
        assert "never retrieved" not in caplog.text

    def test_name_and_repr_show_where_the_task_is_suspended(self, vrun) -> None:
        import inspect

        def sleeper():
            yield tasklets.sleep(5)  # the line the repr should show

        line = inspect.getsourcelines(sleeper)[1] + 1

        def main():
            t = tasklets.spawn(sleeper, name="napper")
            yield None
            text = repr(t)
            yield t
            return text, repr(t)

        pending_repr, done_repr = vrun(main)
        assert "'napper'" in pending_repr and "pending" in pending_repr
        assert f"{__file__}:{line}" in pending_repr
        assert "waiting on" in pending_repr
        assert "napper" in done_repr and "returned" in done_repr and __file__ not in done_repr

    def test_the_repr_shows_the_tasks_line_under_await_and_yield_from(self, vrun) -> None:
        """``await f`` and ``yield from f`` go through Future.__iter__: the repr skips it."""
        import inspect

        async def awaiting():
            await tasklets.sleep(5)  # the line the repr should show

        def yielding_from():
            yield from tasklets.sleep(5)  # the line the repr should show

        lines = [inspect.getsourcelines(fn)[1] + 1 for fn in (awaiting, yielding_from)]

        def main():
            tasks = [tasklets.spawn(awaiting), tasklets.spawn(yielding_from)]
            yield None
            texts = [repr(t) for t in tasks]
            yield tasks
            return texts

        for text, line in zip(vrun(main), lines, strict=True):
            assert f"{__file__}:{line}" in text, text
            assert "_future.py" not in text

    def test_default_names_are_unique_and_use_the_function_name(self, vrun) -> None:
        def job():
            yield None

        def main():
            a, b = tasklets.spawn(job), tasklets.spawn(job)
            yield [a, b]
            return a.name, b.name

        a, b = vrun(main)
        assert a != b and "job" in a and "job" in b

    def test_current_task(self, vrun) -> None:
        assert tasklets.current_task() is None

        def main():
            me = tasklets.current_task()
            child = tasklets.spawn(child_fn)
            return me, (yield child), child

        def child_fn():
            yield None
            return tasklets.current_task()

        me, seen_by_child, child = vrun(main)
        assert isinstance(me, Task) and seen_by_child is child and me is not child
