"""Plain synchronous code calling task functions: no loop to start, just ``.result()``.

A ``@task`` function called outside any loop starts on the process's default
background loop (a daemon thread started on first use). What it returns is a
``concurrent.futures.Future``, so plain code waits for it with ``.result()``,
or hands it to ``concurrent.futures.wait`` / ``as_completed``, exactly as it
would a thread pool's future.

Run it:  python examples/sync_facade.py
"""

from __future__ import annotations

import concurrent.futures
import time

import tasklets


@tasklets.task
def slow_square(x: int, delay: float):
    """A task: wait ``delay`` seconds without blocking any thread, then square ``x``."""
    yield tasklets.sleep(delay)
    return x * x


@tasklets.task
def sum_of_squares(numbers: list[int]):
    """A task that starts other tasks and waits for all of them."""
    squares = yield [slow_square(n, 0.05) for n in numbers]  # a list: wait for all
    return sum(squares)


def main() -> None:
    # 1. Call a task function from plain code and block on its result.
    print("slow_square(7) =", slow_square(7, 0.1).result())

    # 2. A task that runs other tasks: still one .result() call.
    print("sum_of_squares(1..10) =", sum_of_squares(list(range(1, 11))).result(timeout=5))

    # 3. The futures are concurrent.futures futures: the stdlib's helpers accept them.
    futures = {slow_square(n, delay): n for n, delay in [(1, 0.3), (2, 0.1), (3, 0.2)]}
    order = [futures[f] for f in concurrent.futures.as_completed(futures)]
    print("concurrent.futures.as_completed order:", order)

    # 4. ... and so do the tasklets combinators, used from plain code.
    started = time.perf_counter()
    results = tasklets.gather([slow_square(n, 0.2) for n in range(5)]).result()
    print(f"gather: {results} in {time.perf_counter() - started:.1f} s (the five ran concurrently)")

    first = tasklets.wait_first([slow_square(10, 0.3), slow_square(20, 0.05)])
    print("wait_first:", first.result(), "from", first.completed.name.split("-")[0])

    # 5. Blocking code run in the default thread pool, waited on the same way.
    print("to_thread:", tasklets.to_thread(sorted, [3, 1, 2]).result())

    # 6. Inside a task, .result() on a pending future would block the loop that
    #    must complete it: tasklets raises BlockingResultError instead of hanging.
    print("inside a task:", blocking_inside_a_task().result())


@tasklets.task
def blocking_inside_a_task():
    pending = tasklets.sleep(0.01, result="slept")
    try:
        pending.result()
    except tasklets.BlockingResultError:
        pass  # the fix the error message suggests: yield it
    return (yield pending)


if __name__ == "__main__":
    main()
