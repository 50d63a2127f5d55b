"""Guest mode: a task function called inside a running foreign asyncio loop runs on that loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

import tasklets
from tasklets import BlockingResultError, Future

from ._shared import anyio_group_then_move_on_after, foreign_runners


@tasklets.task
def where():
    yield tasklets.sleep(0.001)
    return threading.current_thread(), asyncio.get_running_loop(), type(tasklets.current_loop()).__name__


@pytest.mark.parametrize("run", foreign_runners())
class TestGuestMode:
    def test_tasks_run_on_the_calling_loop_not_the_background_thread(self, run) -> None:
        async def main():
            thread, loop, kind = await where()
            return thread is threading.current_thread(), loop is asyncio.get_running_loop(), kind

        assert run(main()) == (True, True, "GuestLoop")

    def test_tasklets_streams_on_the_host_loop(self, run) -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        @tasklets.task
        def client(port: int):
            stream = yield tasklets.open_connection("127.0.0.1", port, timeout=10)
            try:
                yield stream.write(b"ping\n")
                return (yield stream.read_until(b"\n"))
            finally:
                yield stream.close()

        async def main():
            server = await asyncio.start_server(echo, "127.0.0.1", 0)
            try:
                return await client(server.sockets[0].getsockname()[1])
            finally:
                server.close()
                await server.wait_closed()

        assert run(main()) == b"ping\n"

    def test_result_in_the_host_loop_refuses_and_cancel_reaches_the_task(self, run) -> None:
        async def main():
            started, cleaned = Future(), Future()

            @tasklets.task
            def forever():
                started.set_result(None)
                try:
                    yield Future()
                finally:
                    cleaned.set_result("cleaned")

            job = forever()
            await started
            with pytest.raises(BlockingResultError):
                job.result()
            awaiting = asyncio.ensure_future(_await(job))
            await asyncio.sleep(0)
            awaiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await awaiting
            return await cleaned, job.cancelled()

        assert run(main()) == ("cleaned", True)

    def test_the_guest_task_is_asyncio_s_current_task(self, run) -> None:
        @tasklets.task
        async def inside():
            await asyncio.sleep(0)
            me = asyncio.current_task()
            return me is tasklets.current_task(), me.get_loop() is asyncio.get_running_loop()

        async def main():
            host_task = asyncio.current_task()
            seen = await inside()
            return seen, asyncio.current_task() is host_task

        assert run(main()) == ((True, True), True)

    def test_asyncio_timeout_in_a_guest_task(self, run) -> None:
        @tasklets.task
        async def bounded():
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.01):
                    await tasklets.sleep(3600)
            async with asyncio.timeout(10):
                await asyncio.sleep(0)
            return asyncio.current_task().cancelling()

        async def main():
            return await bounded()

        assert run(main()) == 0

    def test_anyio_task_group_and_move_on_after_in_a_guest_task(self, run) -> None:
        anyio = pytest.importorskip("anyio")

        @tasklets.task
        async def body():
            return await anyio_group_then_move_on_after(anyio, tasklets.sleep)

        async def main():
            return await body()

        assert run(main()) == (["a", "b"], True)

    def test_sniffio_names_asyncio_in_a_guest_task(self, run) -> None:
        # What httpx and anyio ask to choose their backend.
        sniffio = pytest.importorskip("sniffio")

        @tasklets.task
        async def which():
            await asyncio.sleep(0)
            return sniffio.current_async_library()

        async def main():
            return await which()

        assert run(main()) == "asyncio"

    def test_all_tasks_lists_guest_tasks_until_they_finish(self, run) -> None:
        release: Future[None] = Future()

        @tasklets.task
        async def waits():
            await release
            return asyncio.current_task() in asyncio.all_tasks()

        async def main():
            job = waits()
            await asyncio.sleep(0.001)
            listed = job in asyncio.all_tasks()
            release.set_result(None)
            inside = await job
            return listed, inside, job in asyncio.all_tasks()

        assert run(main()) == (True, True, False)

    def test_the_host_s_shutdown_cancels_a_pending_guest_task(self, run) -> None:
        # asyncio.run and uvloop.run cancel and gather all_tasks() once main
        # returns, outside the loop (uvloop.run with no current event loop).
        cleaned: list[str] = []
        jobs = []

        @tasklets.task
        async def forever():
            try:
                await Future()
            finally:
                cleaned.append("cleaned")

        async def main():
            jobs.append(forever())
            await asyncio.sleep(0.001)

        run(main())
        assert cleaned == ["cleaned"] and jobs[0].cancelled()


async def _await(future):
    return await future


def test_plain_code_still_uses_the_default_loop() -> None:
    thread, _, kind = where().result(timeout=30)
    assert thread.name == "tasklets-default-loop" and kind == "EventLoop"
