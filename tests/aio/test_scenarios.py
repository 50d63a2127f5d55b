"""asyncio libraries inside tasklets tasks, and tasklets inside asyncio servers: one thread each.

The servers are real and not ours: aiohttp's web server, uvicorn serving
FastAPI. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator

import pytest

import tasklets
from tasklets import BlockingResultError, Future

from ._shared import anyio_group_then_move_on_after

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback only: no proxy from the environment may carry a request."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")


@contextlib.asynccontextmanager
async def aiohttp_site(entered: asyncio.Event | None = None) -> AsyncIterator[str]:
    """aiohttp's web server on a free loopback port: /hello answers, /slow never does."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def slow(request: web.Request) -> web.Response:
        if entered is not None:
            entered.set()
        await asyncio.sleep(3600)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


class TestAiohttpInTasks:
    def test_client_session_in_a_task(self) -> None:
        @tasklets.task
        async def fetch(url: str) -> str:
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                return await response.text()

        async def main():
            async with aiohttp_site() as base:
                return await fetch(base + "/hello")

        assert tasklets.run(main) == "hello"

    def test_its_timeout_raises(self) -> None:
        async def main():
            async with aiohttp_site() as base:
                timeout = aiohttp.ClientTimeout(total=0.05)
                async with aiohttp.ClientSession(timeout=timeout) as session:
                    with pytest.raises(asyncio.TimeoutError):
                        await session.get(base + "/slow")
            return "timed out"

        assert tasklets.run(main) == "timed out"

    def test_cancelling_the_task_mid_request_closes_the_session(self, caplog: pytest.LogCaptureFixture) -> None:
        @tasklets.task
        async def fetch(url: str) -> str:
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                return await response.text()

        async def main():
            entered = asyncio.Event()
            async with aiohttp_site(entered) as base:
                job = fetch(base + "/slow")
                await entered.wait()  # the request is with the server
                job.cancel()
                await tasklets.wait([job])
                return job.cancelled()

        with caplog.at_level(logging.ERROR):
            assert tasklets.run(main) is True
            gc.collect()
        assert not [r for r in caplog.records if "nclosed" in r.getMessage()]

    def test_urlopen_async_and_aiohttp_in_one_gather(self) -> None:
        async def with_aiohttp(url: str) -> bytes:
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                return await response.read()

        def with_tasklets(url: str):
            response = yield tasklets.urlopen_async(url, timeout=10)
            return (yield from response.read())

        async def main():
            async with aiohttp_site() as base:
                return await tasklets.gather(
                    [tasklets.spawn(with_tasklets, base + "/hello"), tasklets.spawn(with_aiohttp, base + "/hello")]
                )

        assert tasklets.run(main) == [b"hello", b"hello"]

    def test_a_generator_task_yields_aiohttp_s_futures(self) -> None:
        async def get(session: aiohttp.ClientSession, url: str) -> str:
            async with session.get(url) as response:
                return await response.text()

        async def main():
            async with aiohttp_site() as base, aiohttp.ClientSession() as session:

                def generator_task():
                    one = yield asyncio.ensure_future(get(session, base + "/hello"))
                    both = yield [asyncio.ensure_future(get(session, base + "/hello")) for _ in range(2)]
                    return [one, *both]

                return await tasklets.spawn(generator_task)

        assert tasklets.run(main) == ["hello"] * 3


class TestHttpxAndAnyioInTasks:
    def test_httpx_async_client(self) -> None:
        httpx = pytest.importorskip("httpx")

        async def main():
            async with aiohttp_site() as base, httpx.AsyncClient(trust_env=False) as client:
                response = await client.get(base + "/hello")
                with pytest.raises(httpx.TimeoutException):
                    await client.get(base + "/slow", timeout=0.05)
                return response.text

        assert tasklets.run(main) == "hello"

    def test_anyio_task_group_and_move_on_after(self) -> None:
        anyio = pytest.importorskip("anyio")

        async def main():
            return await anyio_group_then_move_on_after(anyio, anyio.sleep)

        assert tasklets.run(main) == (["a", "b"], True)

    def test_anyio_cancel_scope_cancels_an_awaited_task(self) -> None:
        anyio = pytest.importorskip("anyio")

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
            with anyio.move_on_after(0.01):
                await job
            return await cleaned, job.cancelled()

        assert tasklets.run(main) == ("cleaned", True)


class TestTornadoInTasks:
    def test_async_http_client(self) -> None:
        httpclient = pytest.importorskip("tornado.httpclient")

        async def main():
            async with aiohttp_site() as base:
                client = httpclient.AsyncHTTPClient(force_instance=True)
                try:
                    response = await client.fetch(base + "/hello")
                finally:
                    client.close()
                return response.body

        assert tasklets.run(main) == b"hello"


@tasklets.task
def _work(arrived: list[int], everyone: tasklets.Event, size: int):
    arrived.append(1)
    if len(arrived) == size:
        everyone.set()
    yield everyone.wait()  # all handlers are in at once, or none gets out
    yield tasklets.sleep(0.2)
    return len(arrived)


class TestFastAPIUnderUvicorn:
    """Handlers await task functions directly on the tasklets loop, concurrently; result() refuses at once."""

    def test_ten_concurrent_handlers_await_tasks(self) -> None:
        fastapi = pytest.importorskip("fastapi")
        uvicorn = pytest.importorskip("uvicorn")
        httpx = pytest.importorskip("httpx")
        size = 10
        arrived: list[int] = []
        everyone = tasklets.Event()
        app = fastapi.FastAPI()

        @app.get("/work")
        async def work() -> dict[str, object]:
            seen = await _work(arrived, everyone, size)
            return {"seen": seen, "loop": type(asyncio.get_running_loop()).__name__}

        @app.get("/blocking")
        async def blocking() -> dict[str, str]:
            pending: Future[None] = Future()
            try:
                pending.result()
            except BlockingResultError as exc:
                return {"refused": type(exc).__name__}
            return {"refused": "no"}

        async def main():
            server = uvicorn.Server(
                uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", loop="none")
            )
            serving = asyncio.ensure_future(server.serve())
            try:
                while not server.started:
                    await asyncio.sleep(0.01)
                port = server.servers[0].sockets[0].getsockname()[1]
                base = f"http://127.0.0.1:{port}"
                async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                    started = time.perf_counter()
                    responses = await asyncio.gather(*(client.get(base + "/work") for _ in range(size)))
                    elapsed = time.perf_counter() - started
                    refused = (await client.get(base + "/blocking")).json()
            finally:
                server.should_exit = True
                await serving
            return [r.json() for r in responses], refused, elapsed

        bodies, refused, elapsed = tasklets.run(main)
        assert bodies == [{"seen": size, "loop": "EventLoop"}] * size
        assert refused == {"refused": "BlockingResultError"}
        assert elapsed < 2.0  # ten 0.2 s handlers one after another would take 2 s (and never meet)


APP = '''
import asyncio
import tasklets

@tasklets.task
def double(x):
    yield tasklets.sleep(0.001)
    return 2 * x

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"{await double(21)} {type(asyncio.get_running_loop()).__module__}".encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
'''


def test_uvicorn_command_line_with_the_tasklets_loop(tmp_path) -> None:
    """``uvicorn --loop tasklets.asyncio:new_event_loop`` serves on the tasklets loop."""
    import socket
    import subprocess
    import sys
    import urllib.request

    pytest.importorskip("uvicorn")
    (tmp_path / "tasklets_app.py").write_text(APP)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    command = [sys.executable, "-m", "uvicorn", "tasklets_app:app", "--app-dir", str(tmp_path),
               "--fd", str(listener.fileno()), "--loop", "tasklets.asyncio:new_event_loop", "--log-level", "warning"]
    child = subprocess.Popen(command, pass_fds=[listener.fileno()], stderr=subprocess.PIPE, text=True)
    listener.close()  # the child has its own copy
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{port}/", timeout=30) as response:
            body = response.read()
    finally:
        child.terminate()
        _, err = child.communicate(timeout=30)
    assert body == b"42 tasklets._aio_loop", err
