"""A task yields the futures of a Dask cluster: native ``distributed.Future``s and its executor's.

Results, remote exceptions (of their own type) and cancellation flow through
the stepper and every combinator; the task always resumes on its own loop
thread, and the loop never waits on a Dask call (see ``Handshake``).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from _dask_support import (  # noqa: E402
    BOUND,
    RemoteError,
    boom,
    inc,
    make_handshake,
    open_handshake,
    wait_for_event,
    wait_then_report_cancel,
    where,
    write_marker,
)

import tasklets  # noqa: E402


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def _settle(futures: list[Any]) -> None:
    """Wait (bounded) until every Dask future is done, cancelled ones included.

    ``distributed.wait`` would raise for the cancelled ones; ``tasklets.wait`` just waits.
    """
    _, not_done = tasklets.wait(futures, timeout=BOUND).result(timeout=BOUND * 2)
    assert not not_done, f"still pending after {BOUND} s: {not_done}"


def _on_scheduler(client: Any, key: str) -> bool:
    """Whether the scheduler still knows the task ``key``."""
    return bool(client.run_on_scheduler(lambda dask_scheduler: key in dask_scheduler.tasks))


def _until_scheduler_forgets(client: Any, key: str) -> None:
    """Wait (bounded) until the scheduler has dropped ``key``: from then on it can never run."""
    deadline = time.monotonic() + BOUND
    while _on_scheduler(client, key):
        assert time.monotonic() < deadline, f"the scheduler still holds {key!r} after {BOUND} s"


class TestYieldingDaskFutures:
    def test_native_and_executor_futures_resume_the_task_on_its_loop_thread(self, dask_client) -> None:
        executor = dask_client.get_executor(pure=False)

        def main():
            loop_thread = threading.get_ident()
            threads = set()
            values = []
            for i in range(3):
                values.append((yield dask_client.submit(inc, i, pure=False)))
                threads.add(threading.get_ident())
                values.append((yield executor.submit(inc, 10 + i)))
                threads.add(threading.get_ident())
            done = dask_client.submit(inc, 100, pure=False)
            distributed.wait([done], timeout=BOUND)  # already done at the yield
            values.append((yield done))
            threads.add(threading.get_ident())
            return loop_thread, threads, values

        loop_thread, threads, values = tasklets.run(main)
        assert threads == {loop_thread}
        assert values == [1, 11, 2, 12, 3, 13, 101]

    def test_a_task_on_the_default_loop_from_plain_code(self, dask_client) -> None:
        @tasklets.task
        def double_inc(x):
            y = yield dask_client.submit(inc, x, pure=False)
            return (yield dask_client.submit(inc, y, pure=False)), threading.current_thread().name

        assert double_inc(1).result(timeout=BOUND) == (3, "tasklets-default-loop")

    @pytest.mark.parametrize(
        ("kind", "already_done"),
        [("native", False), ("native", True), ("executor", False)],
        ids=["native-pending", "native-done", "executor"],
    )
    def test_the_loop_runs_while_a_result_is_fetched(self, dask_client, kind, already_done) -> None:
        # Unpickling the result needs another task of the same loop to run:
        # were the loop fetching it (blocked in distributed's result()), it
        # could not, and the fetch would fail after a bounded wait. (An
        # executor future is fetched by Dask itself, on its own I/O thread,
        # before it completes: "done" has no meaning for it here.)
        name = _unique("handshake")
        arrived, go = open_handshake(name)
        if kind == "native":
            future = dask_client.submit(make_handshake, name, pure=False)
        else:
            future = dask_client.get_executor(pure=False).submit(make_handshake, name)

        def helper():
            assert (yield tasklets.to_thread(arrived.wait, BOUND)), "the result never started to arrive"
            go.set()

        def main():
            if already_done and kind == "native":
                # done, but its value not fetched yet: that is the stepper's job
                distributed.wait([future], timeout=BOUND)
                assert future.done()
            helping = tasklets.spawn(helper)
            value = yield future
            yield helping
            return value

        assert tasklets.run(main) == f"handshake {name}"


class TestRemoteExceptions:
    @pytest.mark.parametrize("kind", ["native", "executor"])
    def test_the_original_exception_type_is_caught_in_the_task(self, dask_client, kind) -> None:
        submit = (
            (lambda *a: dask_client.submit(*a, pure=False))
            if kind == "native"
            else dask_client.get_executor(pure=False).submit
        )

        def main():
            try:
                yield submit(boom, "remote trouble")
            except RemoteError as exc:
                caught = exc
            else:
                raise AssertionError("no exception")
            after = yield submit(inc, 1)  # the task goes on
            return caught, after

        caught, after = tasklets.run(main)
        assert type(caught) is RemoteError and caught.args == ("remote trouble",)
        assert after == 2

    def test_an_escaping_remote_exception_fails_the_task(self, dask_client) -> None:
        @tasklets.task
        def main():
            yield dask_client.submit(boom, "escapes", pure=False)

        with pytest.raises(RemoteError, match="escapes"):
            main().result(timeout=BOUND)


class TestCombinators:
    def test_as_completed_over_native_and_executor_futures(self, dask_client) -> None:
        executor = dask_client.get_executor(pure=False)

        def main():
            futures = {dask_client.submit(inc, i, pure=False): i for i in range(10)}
            futures.update({executor.submit(inc, i): i for i in range(10, 20)})
            seen = {}
            for signal in tasklets.as_completed(futures):
                value = yield signal
                seen[futures[signal.completed]] = value
            failed = []
            for signal in tasklets.as_completed([dask_client.submit(boom, "x", pure=False), executor.submit(inc, 1)]):
                try:
                    failed.append((yield signal))
                except RemoteError as exc:
                    failed.append(type(exc).__name__)
            return seen, sorted(map(str, failed))

        seen, failed = tasklets.run(main)
        assert seen == {i: i + 1 for i in range(20)}
        assert failed == ["2", "RemoteError"]

    def test_async_for_as_completed_yields_the_originals(self, dask_client) -> None:
        async def main():
            futures = [dask_client.submit(inc, i, pure=False) for i in range(6)]
            seen = []
            async for future in tasklets.as_completed(futures):
                assert future in futures
                seen.append(future.status)
            return seen

        assert tasklets.run(main) == ["finished"] * 6

    def test_wait_first_names_the_winner(self, dask_client) -> None:
        gate = _unique("gate")
        event = distributed.Event(gate, client=dask_client)

        def main():
            held = dask_client.submit(wait_for_event, gate, pure=False)
            quick = dask_client.get_executor(pure=False).submit(inc, 41)
            first = tasklets.wait_first([held, quick])
            value = yield first
            assert first.completed is quick
            event.set()
            return value, (yield held)

        assert tasklets.run(main) == (42, gate)

    def test_gather_and_a_yielded_list(self, dask_client) -> None:
        executor = dask_client.get_executor(pure=False)

        def main():
            mixed = [dask_client.submit(inc, 1, pure=False), executor.submit(inc, 2), tasklets.to_thread(inc, 3)]
            gathered = yield tasklets.gather(mixed)
            listed = yield [dask_client.submit(inc, i, pure=False) for i in range(5)]
            try:
                yield [dask_client.submit(inc, 0, pure=False), dask_client.submit(boom, "in a list", pure=False)]
            except RemoteError as exc:
                failure = str(exc)
            return gathered, listed, failure

        assert tasklets.run(main) == ([2, 3, 4], [1, 2, 3, 4, 5], "in a list")

    def test_map_unordered_over_dask_submissions(self, dask_client) -> None:
        def main():
            results = {}
            for signal in tasklets.map_unordered(
                lambda i: dask_client.submit(inc, i, pure=False), range(40), limit=5
            ):
                results[signal.item] = yield signal
            return results

        assert tasklets.run(main) == {i: i + 1 for i in range(40)}


class TestCancellation:
    def test_cancelling_the_task_cancels_the_remote_work(self, dask_client, tmp_path) -> None:
        # ``work`` cannot start before ``gate`` ends, and ``gate`` waits for an
        # event we set only once the scheduler has dropped ``work``: had the
        # cancellation not reached the scheduler, ``work`` would run and leave
        # its marker.
        name = _unique("gate")
        marker = tmp_path / "work-ran"
        gate = dask_client.submit(wait_for_event, name, pure=False)
        work = dask_client.submit(write_marker, gate, str(marker), pure=False)

        def waiter():
            return (yield work)

        def main():
            running = tasklets.spawn(waiter)
            yield None  # now it waits on ``work``
            running.cancel()
            yield tasklets.wait([running])
            return running.cancelled()

        assert tasklets.run(main)
        _settle([work])
        assert work.cancelled()
        _until_scheduler_forgets(dask_client, work.key)
        distributed.Event(name, client=dask_client).set()
        assert gate.result(timeout=BOUND) == name
        assert not marker.exists()

    def test_cancelling_a_task_waiting_on_a_list_cancels_every_future(self, dask_client) -> None:
        name = _unique("gate")
        gate = dask_client.submit(wait_for_event, name, pure=False)
        futures = [dask_client.submit(inc, gate, pure=False) for _ in range(2)]  # inc(str) would fail: never runs

        def waiter():
            return (yield futures)

        def main():
            running = tasklets.spawn(waiter)
            yield None
            running.cancel()
            yield tasklets.wait([running])
            return running.cancelled()

        assert tasklets.run(main)
        _settle(futures)
        assert all(f.cancelled() for f in futures)
        distributed.Event(name, client=dask_client).set()
        assert gate.result(timeout=BOUND) == name

    def test_cancelling_the_task_cancels_an_executor_future(self, dask_client) -> None:
        name = _unique("gate")
        executor = dask_client.get_executor(pure=False)
        held = executor.submit(wait_for_event, name)

        def waiter():
            return (yield held)

        def main():
            running = tasklets.spawn(waiter)
            yield None
            running.cancel()
            yield tasklets.wait([running])
            yield tasklets.wait([held], timeout=BOUND)  # cancelled from the thread pool, a moment later
            return running.cancelled(), held.cancelled()

        assert tasklets.run(main) == (True, True)
        distributed.Event(name, client=dask_client).set()

    def test_a_list_that_fails_by_dasks_cancel_cancels_the_rest_remotely(self, dask_client) -> None:
        """Dask cancels one executor future (on its I/O thread); the yielded list cancels the other, remotely too."""
        name = _unique("gate")
        executor = dask_client.get_executor(pure=False)
        remote = []
        for _ in range(2):
            before = set(executor._futures)
            local = executor.submit(wait_for_event, name)
            (dask_future,) = set(executor._futures) - before
            remote.append((local, dask_future))
        (first, first_remote), (second, second_remote) = remote

        def waiter():
            try:
                yield [first, second]
            except BaseException as exc:
                return type(exc).__name__

        def main():
            running = tasklets.spawn(waiter)
            yield None
            dask_client.cancel([first_remote])  # as a scheduler that drops the work would
            outcome = yield running
            yield tasklets.wait([second], timeout=BOUND)
            return outcome, second.cancelled()

        try:
            assert tasklets.run(main) == ("CancelledError", True)
            deadline = time.monotonic() + BOUND
            while second_remote.status != "cancelled" and time.monotonic() < deadline:  # bounded: Dask's own pace
                time.sleep(0.01)
            assert second_remote.status == "cancelled"
        finally:
            distributed.Event(name, client=dask_client).set()

    def test_cancelling_never_blocks_the_loop_while_dasks_thread_is_busy(self, dask_client) -> None:
        """An executor future's cancel() runs Dask's callback, which waits for Dask's I/O thread: not on the loop."""
        name = _unique("gate")
        executor = dask_client.get_executor(pure=False)
        held = executor.submit(wait_for_event, name)

        def waiter():
            return (yield held)

        def main():
            running = tasklets.spawn(waiter)
            yield None
            dask_client.loop.add_callback(time.sleep, 1.0)  # Dask's I/O thread is busy for a second
            started = time.monotonic()
            running.cancel()
            took = time.monotonic() - started
            yield tasklets.wait([running])
            yield tasklets.wait([held], timeout=BOUND)
            return took, held.cancelled()

        try:
            took, cancelled = tasklets.run(main)
        finally:
            distributed.Event(name, client=dask_client).set()
        assert took < 0.5, f"the loop was blocked {took:.2f} s cancelling a Dask executor future"
        assert cancelled


class TestRunOnWorkers:
    def test_every_worker_runs_the_task_on_its_default_loop(self, dask_client) -> None:
        from tasklets.dask import run_on_workers

        results = run_on_workers(dask_client, where, "hello").result(timeout=BOUND)
        assert sorted(results) == sorted(dask_client.scheduler_info(n_workers=-1)["workers"])
        pids = {pid for pid, _, _ in results.values()}
        assert len(pids) == 2 and os.getpid() not in pids
        assert {(thread, tag) for _, thread, tag in results.values()} == {("tasklets-default-loop", "hello")}

    def test_yielded_in_a_task(self, dask_client) -> None:
        from tasklets.dask import run_on_workers

        def main():
            return (yield run_on_workers(dask_client, where, tag="kw"))

        results = tasklets.run(main)
        assert len(results) == 2 and all(tag == "kw" for _, _, tag in results.values())

    def test_cancelling_the_dask_task_cancels_the_task_on_the_worker(self, dask_client, server) -> None:
        from tasklets.dask import run_task

        name = uuid.uuid4().hex
        started, cancelled = f"/started/{name}", f"/cancelled/{name}"
        future = dask_client.submit(
            run_task, wait_then_report_cancel, server.url(started), server.url(cancelled), pure=False
        )
        server.wait_for(started)
        future.cancel()
        server.wait_for(cancelled)  # the worker's task was cancelled at its yield, and said so

    def test_run_task_refuses_a_loop_thread(self) -> None:
        from tasklets.dask import run_task

        def main():
            with pytest.raises(tasklets.LoopError):
                run_task(where, "x")
            yield None

        tasklets.run(main)

