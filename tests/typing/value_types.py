"""Checked by mypy (tests/test_project.py), never run: the public combinators keep their value types."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Generator
from typing import Any, assert_type

import tasklets
from tasklets import Future, SignalFuture, Task


def ints() -> list[Future[int]]:
    return [Future(), Future()]


@tasklets.task
def answer() -> Generator[Any, Any, int]:
    yield None
    return 42


def count() -> Generator[Any, Any, int]:
    yield None
    return 1


async def name() -> str:
    return "x"


def check() -> None:
    assert_type(tasklets.gather(ints()), Future[list[int]])
    assert_type(tasklets.wait_first(ints()), SignalFuture[int])
    assert_type(tasklets.with_timeout(Future[str](), 1.0), Future[str])
    executor_future: concurrent.futures.Future[bytes] = concurrent.futures.Future()
    assert_type(tasklets.wrap_future(executor_future), Future[bytes])
    assert_type(tasklets.wait(ints()), Future[concurrent.futures._base.DoneAndNotDoneFutures[int]])
    assert_type(tasklets.sleep(1, "done"), Future[str])
    assert_type(tasklets.to_thread(len, "abc"), Future[int])
    assert_type(answer(), Task[int])
    assert_type(tasklets.gather([answer(), answer()]), Future[list[int]])
    assert_type(tasklets.spawn(count), Task[int])
    assert_type(tasklets.spawn(name), Task[str])
    for signal in tasklets.as_completed(ints()):
        assert_type(signal, SignalFuture[int])
