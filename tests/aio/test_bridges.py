"""tasklets futures awaited from asyncio, uvloop and trio; asyncio futures yielded by tasks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

import tasklets
from tasklets import BadYieldError, BlockingResultError, Future, LoopError

from ._shared import foreign_runners


@tasklets.task
def double(x: int):
    yield tasklets.sleep(0.001)
    return 2 * x


@tasklets.task
def fail():
    yield tasklets.sleep(0)
    raise ValueError("boom")


@tasklets.task
def wait_forever(started: Future[None], cleaned: Future[str]):
    started.set_result(None)
    try:
        yield Future()
    finally:
        cleaned.set_result("cleaned up")


@pytest.mark.parametrize("run", foreign_runners())
class TestAwaitFromAsyncio:
    """A coroutine run by asyncio or uvloop awaits a tasklets future like its own."""

    def test_result_and_exception(self, run) -> None:
        async def main():
            assert await double(21) == 42
            with pytest.raises(ValueError, match="boom"):
                await fail()
            return "ok"

        assert run(main()) == "ok"

    def test_cancelling_the_asyncio_task_cancels_the_tasklets_task(self, run) -> None:
        async def main():
            started, cleaned = Future(), Future()
            job = wait_forever(started, cleaned)
            awaiting = asyncio.ensure_future(_await(job))
            await started
            await asyncio.sleep(0)  # one iteration: `awaiting` takes its first step and waits on the job
            awaiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await awaiting
            assert await cleaned == "cleaned up"
            return job

        job = run(main())
        assert job.cancelled()

    def test_a_cancelled_tasklets_task_cancels_the_await(self, run) -> None:
        async def main():
            started, cleaned = Future(), Future()
            job = wait_forever(started, cleaned)
            await started
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await job

        run(main())

    def test_asyncio_timeout_cancels_the_task(self, run) -> None:
        async def main():
            started, cleaned = Future(), Future()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(_await(wait_forever(started, cleaned)), 0.01)
            return await cleaned

        assert run(main()) == "cleaned up"

    def test_result_blocks_no_asyncio_loop(self, run) -> None:
        async def main():
            pending: Future[int] = Future()
            with pytest.raises(BlockingResultError, match="asyncio loop"):
                pending.result()
            started, cleaned = Future(), Future()
            job = wait_forever(started, cleaned)
            await started
            with pytest.raises(BlockingResultError):
                job.result()
            job.cancel()
            return await cleaned

        assert run(main()) == "cleaned up"


async def _await(future):
    return await future


class TestAwaitFromTrio:
    def test_result(self) -> None:
        trio = pytest.importorskip("trio")

        async def main():
            return await double(4)

        assert trio.run(main) == 8

    def test_a_cancel_scope_cancels_the_task(self) -> None:
        trio = pytest.importorskip("trio")
        started, cleaned = Future(), Future()

        async def main():
            job = wait_forever(started, cleaned)
            with trio.move_on_after(0.01) as scope:
                await job
            assert scope.cancelled_caught
            return job

        job = trio.run(main)
        assert cleaned.result(timeout=30) == "cleaned up"
        assert job.cancelled()


def test_awaiting_outside_any_driver_says_what_drives_futures() -> None:
    pending: Future[int] = Future()
    coro = _await(pending)
    with pytest.raises(LoopError, match="tasklets task, or in a coroutine run by asyncio"):
        coro.send(None)


def test_cancel_takes_asyncio_s_message_argument() -> None:
    future: Future[int] = Future()
    assert future.cancel(msg="stop") is True
    assert future.cancelled()


@pytest.fixture
def foreign_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A stock asyncio loop running in a thread of its own."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="foreign-asyncio-loop")
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


class TestYieldingAsyncioFutures:
    """A task may yield (or await) an asyncio future whose loop runs."""

    def test_of_another_running_loop(self, foreign_loop) -> None:
        async def later(value):
            await asyncio.sleep(0.001)
            return value

        def main():
            concurrent = asyncio.run_coroutine_threadsafe(_make_task(later, "from afar"), foreign_loop)
            foreign = yield concurrent  # an asyncio Task of the foreign loop
            return (yield foreign)

        assert tasklets.run(main) == "from afar"

    def test_cancelling_the_task_cancels_the_asyncio_future_on_its_own_thread(self, foreign_loop) -> None:
        # What the asyncio future's own done-callback saw, on its loop's thread. (Its callbacks run one
        # loop iteration after its cancel(): wait for this one, not for a callback queued behind the cancel.)
        observed: Future[tuple[bool, str]] = Future()

        def main():
            made: Future[asyncio.Future[None]] = Future()

            def make() -> None:
                fut = foreign_loop.create_future()
                fut.add_done_callback(lambda f: observed.set_result((f.cancelled(), threading.current_thread().name)))
                made.set_result(fut)

            foreign_loop.call_soon_threadsafe(make)
            fut = yield made
            waiter = tasklets.spawn(_yield_it, fut)
            yield tasklets.sleep(0.01)
            waiter.cancel()
            yield tasklets.wait([waiter])
            return waiter.cancelled(), (yield tasklets.with_timeout(observed, 30))  # a bound, not a timing

        assert tasklets.run(main) == (True, (True, "foreign-asyncio-loop"))

    def test_of_a_loop_that_is_not_running_is_a_bad_yield(self) -> None:
        idle = asyncio.new_event_loop()
        try:
            fut = idle.create_future()

            def main():
                yield fut

            with pytest.raises(BadYieldError, match="not running"):
                tasklets.run(main)
        finally:
            idle.close()

    def test_an_async_def_task_awaits_a_foreign_asyncio_future(self, foreign_loop) -> None:
        async def main():
            fut = await tasklets.wrap_future(_on(foreign_loop, _make_future))
            foreign_loop.call_soon_threadsafe(fut.set_result, "set over there")
            return await fut

        assert tasklets.run(main) == "set over there"


async def _make_task(fn, *args):
    return asyncio.ensure_future(fn(*args))


async def _make_future():
    return asyncio.get_running_loop().create_future()


def _on(loop, fn):
    """A tasklets future of ``fn()`` run on the asyncio ``loop``."""
    return asyncio.run_coroutine_threadsafe(fn(), loop)


def _yield_it(fut):
    return (yield fut)
