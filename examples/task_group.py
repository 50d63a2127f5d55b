"""Structured concurrency with ``TaskGroup``: children succeed together or are cancelled together.

A group is itself a future: waiting on it (``yield group``) closes it to new
children and resolves with the children's results, in spawn order. When a
child fails, the group cancels the others and fails with an
``ExceptionGroup`` of every error, which ``except*`` takes apart. In an
``async def`` task, ``async with TaskGroup()`` waits for the children on exit.

Run it:  python examples/task_group.py
"""

from __future__ import annotations

import tasklets
from tasklets import TaskGroup


def job(name: str, seconds: float, fail: bool = False):
    """A child: a plain generator function (TaskGroup.spawn runs it as a task)."""
    try:
        yield tasklets.sleep(seconds)
    except tasklets.Cancelled:
        print(f"  {name}: cancelled")
        raise
    if fail:
        raise ValueError(f"{name} failed")
    return f"{name} done"


def all_succeed():
    with TaskGroup() as group:  # if this block raises, the children are cancelled
        for i, seconds in enumerate([0.03, 0.01, 0.02]):
            group.spawn(job, f"child{i}", seconds)
    results = yield group  # closes the group; results in spawn order
    print("all succeed:", results)


def one_fails():
    with TaskGroup() as group:
        group.spawn(job, "quick", 0.01)
        group.spawn(job, "broken", 0.02, fail=True)
        group.spawn(job, "slow", 5)  # cancelled when "broken" fails
    try:
        yield group
    except* ValueError as eg:
        print("one fails:", [str(e) for e in eg.exceptions])


async def async_style():
    async with TaskGroup() as group:  # waits for the children on exit
        first = group.spawn(job, "async-a", 0.01)
        second = group.spawn(job, "async-b", 0.02)
    print("async with:", first.result(), "/", second.result())


def wait_for(group: TaskGroup):
    return (yield group)


def cancel_the_parent():
    """Cancelling the task that waits on a group cancels the group's children too."""
    group = TaskGroup()
    group.spawn(job, "orphan-1", 5)
    group.spawn(job, "orphan-2", 5)
    waiter = tasklets.spawn(wait_for, group)
    yield tasklets.sleep(0.01)
    waiter.cancel()
    yield tasklets.wait([waiter])
    print("parent cancelled: group.cancelled() =", group.cancelled())


def main():
    yield from all_succeed()
    yield from one_fails()
    yield tasklets.spawn(async_style)
    yield from cancel_the_parent()


if __name__ == "__main__":
    tasklets.run(main)
