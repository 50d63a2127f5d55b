"""TaskGroup: children that succeed together or are cancelled together; the group is a future."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading

import pytest

import tasklets
from tasklets import Cancelled, Future, TaskGroup

from .test_future import MinimalFuture


def _after(seconds, value=None, error=None, log=None):
    try:
        yield tasklets.sleep(seconds)
    except Cancelled:
        if log is not None:
            log.append(("cancelled", value, tasklets.current_loop().time()))
        raise
    if error is not None:
        raise error
    return value


def _forever():
    yield Future()


class TestTaskGroup:
    """Generator tasks use ``with`` + ``yield group``; async def tasks use ``async with``."""

    def test_is_a_future_of_the_results_in_spawn_order(self, vrun) -> None:
        def main():
            with TaskGroup() as group:
                group.spawn(_after, 3, "a")
                group.spawn(_after, 1, "b")
                group.add(tasklets.sleep(2, "c"))
            assert isinstance(group, Future) and isinstance(group, cf.Future)
            return (yield group), tasklets.current_loop().time()

        assert vrun(main) == (["a", "b", "c"], 3)

    def test_a_failing_child_cancels_the_others_and_fails_the_group(self, vrun) -> None:
        log: list[tuple] = []

        def main():
            with TaskGroup() as group:
                slow = group.spawn(_after, 100, "slow", log=log)
                group.spawn(_after, 2, error=ValueError("child failed"))
                also_slow = group.spawn(_after, 50, "also slow", log=log)
            errors = ()
            try:
                yield group
            except* ValueError as eg:
                errors = eg.exceptions
            return errors, slow.cancelled(), also_slow.cancelled(), tasklets.current_loop().time()

        errors, slow_cancelled, also_cancelled, now = vrun(main)
        assert [str(e) for e in errors] == ["child failed"]
        assert slow_cancelled and also_cancelled and now == 2
        assert sorted(log) == [("cancelled", "also slow", 2), ("cancelled", "slow", 2)]

    def test_the_group_fails_with_an_exception_group_of_every_error(self, vrun) -> None:
        def stubborn_failure():
            try:
                yield tasklets.sleep(100)
            except Cancelled:
                raise KeyError("while cleaning up") from None

        def main():
            group = TaskGroup()
            group.spawn(stubborn_failure)
            group.spawn(_after, 1, error=ValueError("first"))
            try:
                yield group
            except ExceptionGroup as eg:
                return sorted(type(e).__name__ for e in eg.exceptions), group.exception() is eg

        assert vrun(main) == (["KeyError", "ValueError"], True)

    def test_a_child_failing_with_a_base_exception_still_ends_the_group(self, vrun) -> None:
        class Stop(BaseException):
            pass

        def stopper():
            yield tasklets.sleep(1)
            raise Stop("not an Exception")

        def main():
            group = TaskGroup()
            group.spawn(stopper)
            group.spawn(_after, 10, "slow")
            try:
                yield group
            except BaseExceptionGroup as eg:
                return type(eg) is BaseExceptionGroup, [type(e).__name__ for e in eg.exceptions]

        assert vrun(main) == (True, ["Stop"])

    def test_an_error_in_the_with_body_cancels_the_children(self, vrun) -> None:
        log: list[tuple] = []

        def main():
            group = TaskGroup()
            try:
                with group:
                    group.spawn(_after, 10, "child", log=log)
                    yield tasklets.sleep(1)
                    raise RuntimeError("body failed")
            except RuntimeError:
                pass
            yield tasklets.wait([group])
            return group.cancelled()

        assert vrun(main) is True
        assert log == [("cancelled", "child", 1)]

    def test_async_with_waits_for_the_children(self, vrun) -> None:
        async def main():
            async with TaskGroup() as group:
                a = group.spawn(_after, 2, "a")
                b = group.spawn(_after, 1, "b")
            assert a.done() and b.done()
            return group.result(), tasklets.current_loop().time()

        assert vrun(main) == (["a", "b"], 2)

    def test_async_with_raises_the_exception_group(self, vrun) -> None:
        log: list[tuple] = []

        async def main():
            errors: list[str] = []
            try:
                async with TaskGroup() as group:
                    group.spawn(_after, 1, error=OSError("io"))
                    group.spawn(_after, 9, "other", log=log)
            except* OSError as eg:
                errors = [str(e) for e in eg.exceptions]
            return errors, tasklets.current_loop().time()

        assert vrun(main) == (["io"], 1)
        assert log == [("cancelled", "other", 1)]

    def test_async_with_body_error_cancels_children_and_propagates(self, vrun) -> None:
        log: list[tuple] = []

        async def main():
            try:
                async with TaskGroup() as group:
                    group.spawn(_after, 9, "child", log=log)
                    await tasklets.sleep(1)
                    raise LookupError("body")
            except LookupError as exc:
                return str(exc), group.cancelled()

        assert vrun(main) == ("body", True)
        assert log == [("cancelled", "child", 1)]

    def test_cancelling_a_task_in_async_with_cancels_the_children_and_waits_for_them(
        self, vrun, caplog: pytest.LogCaptureFixture
    ) -> None:
        log: list[tuple] = []

        def child():
            try:
                yield tasklets.sleep(100)
            except Cancelled:
                yield tasklets.sleep(1)  # slow cleanup
                log.append(("child cleaned up", tasklets.current_loop().time()))
                raise

        async def parent():
            try:
                async with TaskGroup() as group:
                    group.spawn(child)
            except Cancelled:
                log.append(("parent cancelled", tasklets.current_loop().time(), group.cancelled()))
                raise

        def main():
            p = tasklets.spawn(parent)
            yield tasklets.sleep(1)
            p.cancel()
            yield tasklets.wait([p])
            return p.cancelled()

        with caplog.at_level(logging.ERROR, logger="tasklets"):
            assert vrun(main) is True
        assert log == [("child cleaned up", 2), ("parent cancelled", 2, True)]
        assert caplog.records == []

    def test_waiting_closes_the_group(self, vrun) -> None:
        def main():
            group = TaskGroup()
            group.spawn(_after, 1, "x")
            result = yield group
            with pytest.raises(tasklets.LoopError, match="closed"):
                group.spawn(_after, 1, "too late")
            return result

        assert vrun(main) == ["x"]

    def test_an_empty_group_completes(self, vrun) -> None:
        def main():
            return (yield TaskGroup())

        assert vrun(main) == []

    def test_cancel_the_group(self, vrun) -> None:
        log: list[tuple] = []

        def main():
            group = TaskGroup()
            group.spawn(_after, 5, "a", log=log)
            group.spawn(_after, 6, "b", log=log)
            yield tasklets.sleep(1)
            assert group.cancel()
            yield tasklets.wait([group])
            return group.cancelled()

        assert vrun(main) is True
        assert sorted(log) == [("cancelled", "a", 1), ("cancelled", "b", 1)]

    def test_cancelling_the_waiting_task_cancels_the_children(self, vrun) -> None:
        log: list[tuple] = []

        def parent():
            with TaskGroup() as group:
                group.spawn(_after, 5, "child", log=log)
            yield group

        def main():
            p = tasklets.spawn(parent)
            yield tasklets.sleep(1)
            p.cancel()
            yield tasklets.wait([p])
            yield tasklets.sleep(1)
            return p.cancelled()

        assert vrun(main) is True
        assert log == [("cancelled", "child", 1)]

    def test_adopted_executor_future_failure_fails_the_group(self, vrun) -> None:
        def main():
            with cf.ThreadPoolExecutor(1) as pool:
                group = TaskGroup()
                group.add(pool.submit(int, "not a number"))
                slow = group.spawn(_forever)  # no timer: the virtual clock must not run ahead of the pool
                failed = False
                try:
                    yield group
                except* ValueError:
                    failed = True
                return failed, slow.cancelled()

        assert vrun(main) == (True, True)

    def test_plain_code_waits_with_result(self) -> None:
        group = TaskGroup()
        group.spawn(_after, 0.001, "bg")
        group.add(tasklets.to_thread(pow, 2, 5))
        assert group.result(timeout=30) == ["bg", 32]

    def test_concurrent_futures_wait_closes_the_group_and_sees_it_complete(self) -> None:
        finished = TaskGroup()
        finished.add(Future()).set_result("x")
        done, not_done = cf.wait([finished], timeout=0)  # the group was never closed: cf.wait closes it
        assert done == {finished} and not not_done and finished.result(timeout=0) == ["x"]

        group = TaskGroup()
        child = group.add(Future())
        done, not_done = cf.wait([group], timeout=0)
        assert not done and not_done == {group}
        with pytest.raises(tasklets.LoopError, match="closed"):
            group.add(Future())
        completer = threading.Thread(target=child.set_result, args=("y",))
        completer.start()
        assert list(cf.as_completed([group], timeout=30)) == [group]
        completer.join(30)
        assert group.result(timeout=0) == ["y"]


class TestChildrenOfAnyOrigin:
    """Children with nothing but add_done_callback, result and done (no cancelled(), exception(), cancel())."""

    def test_results_and_cancellations(self) -> None:
        group = TaskGroup()
        ok, cancelled, ours = group.add(MinimalFuture()), group.add(MinimalFuture()), group.add(Future())
        group.close()
        ok.complete("ok")
        cancelled.complete(error=cf.CancelledError())  # result() raising CancelledError: cancelled
        assert not group.done()
        ours.set_result("ours")
        assert group.result(timeout=0) == ["ok", None, "ours"]

    def test_a_failing_child_fails_the_group_and_cancels_what_can_be_cancelled(self) -> None:
        group = TaskGroup()
        stuck, ours, failing = group.add(MinimalFuture()), group.add(Future()), group.add(Future())
        group.close()
        failing.set_exception(ValueError("first"))
        assert ours.cancelled()  # the uncancellable child before it did not stop the cancelling
        assert not group.done()  # the group still waits for its every child
        stuck.complete(error=KeyError("late"))  # result() raising: a failure
        with pytest.raises(ExceptionGroup) as caught:
            group.result(timeout=0)
        assert [type(e) for e in caught.value.exceptions] == [ValueError, KeyError]
