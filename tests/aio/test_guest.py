"""Guest mode: a task function called inside a running foreign asyncio loop runs on that loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

import tasklets
from tasklets import BlockingResultError, Future


def _runners() -> list[object]:
    runners: list[object] = [pytest.param(asyncio.run, id="asyncio")]
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the test extra
        pass
    else:
        runners.append(pytest.param(uvloop.run, id="uvloop"))
    return runners


@tasklets.task
def where():
    yield tasklets.sleep(0.001)
    return threading.current_thread(), asyncio.get_running_loop(), type(tasklets.current_loop()).__name__


@pytest.mark.parametrize("run", _runners())
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


async def _await(future):
    return await future


def test_plain_code_still_uses_the_default_loop() -> None:
    thread, _, kind = where().result(timeout=30)
    assert thread.name == "tasklets-default-loop" and kind == "EventLoop"
