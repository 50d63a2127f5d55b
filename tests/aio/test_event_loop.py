"""tasklets.asyncio.EventLoop: one loop for tasklets tasks and asyncio code."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

import pytest

import tasklets
import tasklets.asyncio
from _signal_steps import signal_at_step
from tasklets import Future
from tasklets.asyncio import EventLoop, new_event_loop


def test_cancelled_is_asyncio_s_cancelled_error() -> None:
    assert tasklets.Cancelled is asyncio.CancelledError


class TestTheLoopOfEveryTask:
    """run() and the default loop are asyncio loops: asyncio code works inside any task."""

    def test_run_uses_an_event_loop(self) -> None:
        def main():
            yield tasklets.sleep(0)
            loop = asyncio.get_running_loop()
            return loop is tasklets.current_loop(), isinstance(loop, EventLoop)

        assert tasklets.run(main) == (True, True)

    def test_the_default_loop_is_an_event_loop(self) -> None:
        @tasklets.task
        async def where():
            await asyncio.sleep(0)
            return type(asyncio.get_running_loop())

        assert where().result(timeout=30) is EventLoop

    def test_a_plain_loop_makes_no_asyncio_tasks(self) -> None:
        loop = tasklets.Loop()
        try:

            def main():
                yield tasklets.sleep(0)
                return asyncio.current_task(loop)

            job = tasklets.Task(main(), loop=loop)
            assert asyncio.all_tasks(loop) == set()
            assert loop.run_until_complete(job) is None
        finally:
            loop.close()


class TestLoopFactory:
    def test_asyncio_runner(self) -> None:
        async def main():
            await asyncio.sleep(0)
            return type(asyncio.get_running_loop())

        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            assert runner.run(main()) is EventLoop

    @pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is 3.12+")
    def test_asyncio_run(self) -> None:
        async def main():
            return type(asyncio.get_running_loop())

        assert asyncio.run(main(), loop_factory=new_event_loop) is EventLoop  # type: ignore[call-arg]

    def test_repr(self) -> None:
        loop = new_event_loop()
        try:
            assert repr(loop) == "<tasklets.asyncio.EventLoop running=False closed=False debug=False>"
        finally:
            loop.close()


class TestCallbacks:
    @pytest.mark.parametrize("schedule", ["call_soon", "call_later", "add_reader"])
    def test_a_failing_callback_goes_to_the_exception_handler_as_on_stock(self, schedule: str) -> None:
        assert _report_of_a_failing_callback(new_event_loop, schedule) == _report_of_a_failing_callback(
            asyncio.new_event_loop, schedule
        )


def _fails(tag: str) -> None:
    raise ValueError(tag)


def _report_of_a_failing_callback(factory, schedule: str) -> tuple[str, str, bool]:
    import socket

    loop = factory()
    seen: list[dict] = []
    loop.set_exception_handler(lambda _, context: (seen.append(context), loop.stop()))
    a, b = socket.socketpair()
    try:
        if schedule == "call_soon":
            handle = loop.call_soon(_fails, "x")
        elif schedule == "call_later":
            handle = loop.call_later(0.001, _fails, "x")
        else:
            b.send(b"!")
            loop.add_reader(a.fileno(), _fails, "x")
            handle = None
        loop.run_forever()
    finally:
        a.close()
        b.close()
        loop.close()
    [context] = seen
    return context["message"], repr(context["exception"]), handle is None or context["handle"] is handle


class TestTasksAreAsyncioTasks:
    """While a task steps on an EventLoop it is asyncio.current_task(), with asyncio.Task's methods."""

    def test_current_task_and_task_methods(self) -> None:
        async def body():
            me = asyncio.current_task()
            assert me is tasklets.current_task()
            assert me.get_loop() is asyncio.get_running_loop()
            assert me.get_coro() is not None
            me.set_name("renamed")
            return me.get_name(), me.cancelling()

        assert tasklets.run(body) == ("renamed", 0)

    def test_all_tasks_lists_tasks_until_they_finish(self) -> None:
        def main():
            release: Future[None] = Future()

            async def waits():
                await release
                return asyncio.current_task() in asyncio.all_tasks()

            job = tasklets.spawn(waits)
            yield tasklets.sleep(0)
            listed = job in asyncio.all_tasks()
            release.set_result(None)
            inside = yield job
            return listed, inside, job in asyncio.all_tasks()

        assert tasklets.run(main) == (True, True, False)

    @pytest.mark.parametrize("pending", [1, 3])
    def test_runner_shutdown_cancels_pending_tasks(self, pending: int) -> None:
        # asyncio.Runner cancels and gathers all_tasks() outside the loop,
        # where (with a loop factory) there is no current event loop.
        cleaned: list[int] = []

        async def forever(n: int):
            try:
                await Future()
            finally:
                cleaned.append(n)

        async def main():
            jobs = [tasklets.spawn(forever, n) for n in range(pending)]
            jobs.append(asyncio.ensure_future(asyncio.sleep(3600)))
            await asyncio.sleep(0.001)
            return jobs

        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            jobs = runner.run(main())
        assert sorted(cleaned) == list(range(pending)) and all(job.cancelled() for job in jobs)

    def test_cancelling_counts_and_uncancel_takes_back(self) -> None:
        def main():
            started: Future[None] = Future()

            async def victim():
                started.set_result(None)
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    me = asyncio.current_task()
                    counts = [me.cancelling()]
                    counts.append(me.uncancel())
                    return counts

            job = tasklets.spawn(victim)
            yield started
            job.cancel()
            return (yield job)

        assert tasklets.run(main) == [1, 0]

    def test_asyncio_timeout_inside_a_task(self) -> None:
        async def main():
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(10)
            async with asyncio.timeout(10):
                await asyncio.sleep(0)
            return asyncio.current_task().cancelling()

        assert tasklets.run(main) == 0

    def test_wait_for_inside_a_task(self) -> None:
        async def main():
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.sleep(10), 0.01)
            return await asyncio.wait_for(asyncio.sleep(0, "in time"), 10)

        assert tasklets.run(main) == "in time"

    def test_task_group_inside_a_task(self) -> None:
        async def fails():
            await asyncio.sleep(0)
            raise ValueError("child failed")

        async def main():
            async with asyncio.TaskGroup() as group:
                a = group.create_task(asyncio.sleep(0.001, "a"))
                b = group.create_task(asyncio.sleep(0, "b"))
            results = [a.result(), b.result()]
            with pytest.raises(ExceptionGroup) as caught:
                async with asyncio.TaskGroup() as group:
                    group.create_task(fails())
                    group.create_task(asyncio.sleep(10))
            assert caught.group_contains(ValueError) if hasattr(caught, "group_contains") else True
            return results, asyncio.current_task().cancelling()

        # cancelling() after a failed group is 1 on 3.11/3.12 and 0 on 3.13, as on stock asyncio.
        assert tasklets.run(main) == asyncio.run(main())

    def test_cancelling_a_task_inside_a_task_group(self) -> None:
        def main():
            entered: Future[None] = Future()

            async def in_group():
                async with asyncio.TaskGroup() as group:
                    group.create_task(asyncio.sleep(10))
                    entered.set_result(None)
                    await asyncio.sleep(10)

            job = tasklets.spawn(in_group)
            yield entered
            job.cancel()
            yield tasklets.wait([job])
            return job.cancelled()

        assert tasklets.run(main) is True

    def test_streams_inside_tasks(self) -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        async def main():
            server = await asyncio.start_server(echo, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"hello\n")
                line = await reader.readline()
                writer.close()
                await writer.wait_closed()
                return line
            finally:
                server.close()
                await server.wait_closed()

        assert tasklets.run(main) == b"hello\n"


class TestGeneratorTasksYieldAsyncioFutures:
    def test_futures_and_tasks_of_the_same_loop(self) -> None:
        def main():
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            loop.call_later(0.001, fut.set_result, "future")
            first = yield fut
            second = yield asyncio.ensure_future(asyncio.sleep(0.001, "task"))
            both = yield [asyncio.ensure_future(asyncio.sleep(0, 1)), tasklets.sleep(0, 2)]
            return first, second, both

        assert tasklets.run(main) == ("future", "task", [1, 2])

    def test_cancelling_the_task_cancels_the_asyncio_task_it_waits_on(self) -> None:
        def main():
            inner = asyncio.ensure_future(asyncio.sleep(10))

            def waiter():
                yield inner

            job = tasklets.spawn(waiter)
            yield tasklets.sleep(0.001)
            job.cancel()
            yield tasklets.wait([job])
            yield tasklets.sleep(0)  # the cancel reaches the asyncio task on its next step
            try:
                yield inner
            except asyncio.CancelledError:
                pass
            return job.cancelled(), inner.cancelled()

        assert tasklets.run(main) == (True, True)


class TestDebugMode:
    """Debug mode from either side: tasklets' TASKLETS_DEBUG, asyncio's PYTHONASYNCIODEBUG, debug=True."""

    @pytest.mark.parametrize("variable", ["TASKLETS_DEBUG", "PYTHONASYNCIODEBUG"])
    def test_from_the_environment(self, variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(variable, "1")
        monkeypatch.setattr(asyncio.coroutines, "_is_debug_mode", lambda: variable == "PYTHONASYNCIODEBUG")

        async def main():
            await asyncio.sleep(0)
            return asyncio.get_running_loop().get_debug()

        assert tasklets.run(main) is True

    def test_debug_true_checks_the_thread(self) -> None:
        loop = new_event_loop(debug=True)
        try:

            def main():
                yield tasklets.sleep(0)
                return loop.call_soon(lambda: None) is not None

            assert loop.run_until_complete(tasklets.Task(main(), loop=loop)) is True
        finally:
            loop.close()


class TestSignalHandlers:
    """Found by the Ctrl-C campaign: asyncio's close shut the self-pipe while it was still the wake-up fd."""

    def _wakeup_fd(self) -> int:
        fd = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(fd)
        return fd

    def test_close_gives_the_wakeup_fd_back_before_the_self_pipe_closes(self) -> None:
        loop = tasklets.asyncio.new_event_loop()
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        assert self._wakeup_fd() == loop._csock.fileno()  # type: ignore[attr-defined]
        seen: list[int] = []
        close_self_pipe = loop._close_self_pipe  # type: ignore[attr-defined]

        def spy() -> None:
            seen.append(self._wakeup_fd())
            close_self_pipe()

        loop._close_self_pipe = spy  # type: ignore[attr-defined]
        loop.close()
        assert seen == [-1]  # a signal arriving as the pipe closes writes nowhere, not to a closed fd
        assert self._wakeup_fd() == -1

    def test_remove_gives_back_the_handler_found(self) -> None:
        def mine(signum: int, frame: object) -> None:
            pass

        previous = signal.signal(signal.SIGUSR1, mine)
        try:
            loop = tasklets.asyncio.new_event_loop()
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)  # replaced: still gives back `mine`
            assert loop.remove_signal_handler(signal.SIGUSR1)
            assert signal.getsignal(signal.SIGUSR1) is mine
            assert not loop.remove_signal_handler(signal.SIGUSR1)
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
            loop.close()
            assert signal.getsignal(signal.SIGUSR1) is mine
        finally:
            signal.signal(signal.SIGUSR1, previous)

    def test_a_signal_that_cannot_be_caught_leaves_nothing_behind(self) -> None:
        loop = tasklets.asyncio.new_event_loop()
        try:
            with pytest.raises(RuntimeError):
                loop.add_signal_handler(signal.SIGKILL, lambda: None)
            assert self._wakeup_fd() == -1
        finally:
            loop.close()


@pytest.mark.parametrize("make", [tasklets.Loop, new_event_loop], ids=["Loop", "EventLoop"])
def test_a_signal_at_any_step_of_adding_or_removing_a_handler_is_heard_once(make: Callable[[], Any]) -> None:
    """Found by the Ctrl-C campaign: a Ctrl-C that landed inside add_signal_handler was lost.

    asyncio's add_signal_handler installs a no-op Python handler and reads the
    signal from the self-pipe later; the EventLoop put its own handler in a
    few steps after, so a signal in between reached neither. Removing one
    dropped the handle before giving the signal back. Here the signal is
    raised at every bytecode step of both, in turn: the handler found before
    or the loop's callback hears it, exactly once.
    """
    heard: list[str] = []

    def before(signum: int, frame: object) -> None:
        heard.append("before")

    def run_once() -> None:
        done = Future[None]()
        loop.call_soon(done.set_result, None)  # behind any callback the signal queued
        loop.run_until_complete(done)

    previous = signal.signal(signal.SIGUSR1, before)
    loop = make()
    try:
        for adding in (True, False):
            for step in range(1000):
                heard.clear()
                if not adding:
                    loop.add_signal_handler(signal.SIGUSR1, heard.append, "loop")
                if adding:
                    fired = signal_at_step(
                        step, signal.SIGUSR1, lambda: loop.add_signal_handler(signal.SIGUSR1, heard.append, "loop")
                    )
                else:
                    fired = signal_at_step(step, signal.SIGUSR1, lambda: loop.remove_signal_handler(signal.SIGUSR1))
                run_once()
                if adding:
                    loop.remove_signal_handler(signal.SIGUSR1)
                if not fired:
                    break
                assert len(heard) == 1, f"{'adding' if adding else 'removing'}, signal at step {step}: heard {heard}"
            assert 5 < step < 1000
            assert signal.getsignal(signal.SIGUSR1) is before
    finally:
        loop.close()
        signal.signal(signal.SIGUSR1, previous)


def test_watch_reader_is_the_kernel_s_own_and_add_reader_keeps_asyncio_s_contract() -> None:
    """tasklets.net registers with watch_reader: on an EventLoop that is the kernel's own (no Handle, no
    context copy per readiness event); add_reader stays asyncio's, running the callback in the context
    it was registered from."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="the loop's")
    loop = new_event_loop()
    a, b = socket.socketpair()
    b.send(b"x")  # readable from now on
    seen: list[tuple[str, str]] = []

    def registered_from_a_context(how: str, register: Callable[..., object], remove: Callable[[int], object]) -> None:
        done = Future[None]()

        def on_readable() -> None:
            remove(a.fileno())
            seen.append((how, var.get()))
            done.set_result(None)

        def register_there() -> None:
            var.set("the registrant's")
            register(a.fileno(), on_readable)

        contextvars.copy_context().run(register_there)
        loop.run_until_complete(done)

    try:
        registered_from_a_context("add_reader", loop.add_reader, loop.remove_reader)
        registered_from_a_context("watch_reader", loop.watch_reader, loop.unwatch_reader)
        assert seen == [("add_reader", "the registrant's"), ("watch_reader", "the loop's")]
        assert EventLoop.watch_reader is tasklets.Loop.add_reader
    finally:
        loop.close()
        a.close()
        b.close()
