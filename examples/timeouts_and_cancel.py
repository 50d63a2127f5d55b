"""Timeouts and cancellation: ``with_timeout``, ``wait(timeout=)``, ``task.cancel()``.

* ``with_timeout(f, s)`` gives ``f``'s result, or raises ``tasklets.TimeoutError``
  after ``s`` seconds and cancels ``f``;
* ``wait(fs, timeout=s)`` resolves with ``(done, not_done)`` after at most ``s``;
* ``task.cancel()`` throws ``tasklets.Cancelled`` into the task at its current
  ``yield``. It is a ``BaseException``: ``except Exception`` does not swallow
  it, ``try/finally`` cleans up, and the cancelled task's ``result()`` raises
  ``concurrent.futures.CancelledError``.

Run it:  python examples/timeouts_and_cancel.py
"""

from __future__ import annotations

import concurrent.futures

import tasklets


@tasklets.task
def worker(name: str, seconds: float, log: list[str]):
    """Sleep for ``seconds``; record how it ended."""
    try:
        yield tasklets.sleep(seconds)
        log.append(f"{name} finished")
        return name
    except Exception:
        log.append(f"{name} failed")  # never reached by a cancellation
        raise
    except tasklets.Cancelled:
        log.append(f"{name} cancelled, cleaning up")
        raise  # re-raise: the task ends cancelled
    finally:
        log.append(f"{name} finally")


@tasklets.task
def main():
    log: list[str] = []

    # 1. with_timeout: the result in time, or TimeoutError (the slow task is cancelled).
    fast = yield tasklets.with_timeout(worker("fast", 0.05, log), 1.0)
    print("with_timeout, in time:", fast)
    slow = worker("slow", 10, log)
    try:
        yield tasklets.with_timeout(slow, 0.1)
    except TimeoutError as exc:  # tasklets.TimeoutError subclasses the builtin
        print("with_timeout, too slow:", type(exc).__name__)
    # Cancelling a task is a request: it ends once it has handled Cancelled at its yield.
    yield tasklets.wait([slow])
    print("slow.cancelled() =", slow.cancelled())

    # 2. wait with a timeout: what is done by then, and what is not (still running).
    tasks = [worker(f"w{i}", 0.1 * i, log) for i in range(1, 5)]
    done, not_done = yield tasklets.wait(tasks, timeout=0.25)
    print(f"wait(timeout=0.25): {len(done)} done, {len(not_done)} not done")
    for t in not_done:
        t.cancel()

    # 3. Cancel a task directly; waiting on it raises CancelledError.
    victim = worker("victim", 10, log)
    yield tasklets.sleep(0.01)  # let it start and reach its yield
    victim.cancel()
    try:
        yield victim
    except concurrent.futures.CancelledError:
        print("victim.cancelled() =", victim.cancelled())

    # 4. The first of several, and cancel the rest.
    racers = [worker("tortoise", 0.3, log), worker("hare", 0.02, log)]
    winner = yield tasklets.wait_first(racers)
    for r in racers:
        r.cancel()
    print("wait_first winner:", winner)

    # 5. Timeouts on the network: a read that waits too long fails with ReadTimeout.
    server = yield tasklets.start_server(silent_handler, "127.0.0.1", 0)
    stream = yield tasklets.open_connection("127.0.0.1", server.port, timeout=5)
    with stream:
        stream.timeout = 0.1  # every read and write of this stream
        try:
            yield stream.read()
        except tasklets.ReadTimeout as exc:  # also a TimeoutError
            print("stream read:", type(exc).__name__)
    server.close(cancel_handlers=True)  # stop listening, cancel the silent handler
    yield server.wait_closed()

    yield tasklets.sleep(0)  # let the cancelled tasks log their clean-up
    print("log:", "; ".join(line for line in log if "cancelled" in line or "failed" in line))


def silent_handler(stream: tasklets.Stream):
    """A server that never answers (until it is cancelled)."""
    yield tasklets.sleep(60)


if __name__ == "__main__":
    tasklets.run(main)
