"""The same library with ``async def``: ``await``, ``async for`` and ``async with``.

Coming from asyncio, you can keep writing coroutines: an ``async def``
decorated with ``@tasklets.task`` (or passed to ``tasklets.run``/``spawn``)
is a task, and ``await`` works on any tasklets future and on another task.
A thread pool's ``concurrent.futures.Future`` has no ``__await__``: ``await
tasklets.wrap_future(f)`` gives its value (``await tasklets.gather(fs)`` the
values of several), or write that task as a generator and ``yield f``.
``async for`` over ``as_completed`` yields the original futures as they finish; ``async with`` works for ``TaskGroup``,
``Semaphore``/``Lock`` and streams.

Run it:  python examples/async_def.py
"""

from __future__ import annotations

import concurrent.futures
import time

import tasklets


@tasklets.task
async def fetch(name: str, seconds: float, limiter: tasklets.Semaphore) -> str:
    async with limiter:  # at most N at once, like asyncio.Semaphore
        await tasklets.sleep(seconds)
    return f"{name} ({seconds:.2f} s)"


def blocking_work(n: int) -> int:
    time.sleep(0.05)
    return n * 2


def echo(stream: tasklets.Stream):
    """A generator handler serves async clients just as well."""
    data = yield stream.read_until(b"\n")
    yield stream.write(data)


async def main() -> None:
    limiter = tasklets.Semaphore(2)

    # await a task, and a list of them (gather) - asyncio.gather's twin.
    print("awaited:", await fetch("one", 0.01, limiter))
    print("gathered:", await tasklets.gather([fetch(n, 0.02, limiter) for n in "abc"]))

    # async for over as_completed: the original futures, in completion order.
    tasks = [fetch(n, s, limiter) for n, s in [("slow", 0.15), ("fast", 0.01), ("mid", 0.05)]]
    async for task in tasklets.as_completed(tasks):
        print("completed:", task.result())

    # Executors' futures: wrap_future makes one awaitable; gather awaits several.
    with concurrent.futures.ThreadPoolExecutor() as pool:
        print("from a thread pool:", await tasklets.wrap_future(pool.submit(blocking_work, 21)))
        print("several:", await tasklets.gather([pool.submit(blocking_work, n) for n in range(3)]))
    print("to_thread:", await tasklets.to_thread(blocking_work, 5))  # a tasklets future: awaitable

    # Structured concurrency: async with waits for the children on exit.
    async with tasklets.TaskGroup() as group:
        for n in range(3):
            group.spawn(fetch, f"child{n}", 0.01, limiter)
    print("group:", group.result())

    # A timeout (asyncio.wait_for's twin).
    try:
        await tasklets.with_timeout(tasklets.sleep(10), 0.05)
    except TimeoutError:
        print("timed out, as expected")

    # Streams: await reads and writes, async with closes.
    server = await tasklets.start_server(echo, "127.0.0.1", 0)
    async with server:
        async with await tasklets.open_connection("127.0.0.1", server.port) as stream:
            await stream.write(b"ping\n")
            print("stream:", await stream.read_until(b"\n"))


if __name__ == "__main__":
    tasklets.run(main)
