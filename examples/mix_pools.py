"""One task waiting on a thread pool, a process pool and its own timers, all at once.

A task yields futures of any origin: ``ThreadPoolExecutor.submit`` and
``ProcessPoolExecutor.submit`` return ``concurrent.futures.Future`` objects,
and a task can yield them directly, alone, in a list, or through
``as_completed``/``wait_first``. Blocking I/O goes to threads, CPU-bound
work to processes, and the task just waits for whichever is ready.

Run it:  python examples/mix_pools.py
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import os
import tempfile
import time

import tasklets


def read_file(path: str) -> bytes:
    """Blocking I/O: belongs in a thread."""
    with open(path, "rb") as f:
        return f.read()


def slow_hash(data: bytes, rounds: int) -> str:
    """CPU-bound work: belongs in a process (it would hold the GIL in a thread)."""
    digest = data
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()[:16]


@tasklets.task
def hash_files(paths: list[str], threads, processes):
    # Read every file in the thread pool; a list of futures resumes us with all results.
    contents = yield [threads.submit(read_file, p) for p in paths]
    print(f"read {len(contents)} files in threads ({sum(map(len, contents))} bytes)")

    # Hash them in the process pool, handling each digest as soon as it is ready.
    future_to_path = {processes.submit(slow_hash, data, 20_000): p for p, data in zip(paths, contents)}
    digests = {}
    for signal in tasklets.as_completed(future_to_path):
        digest = yield signal                      # the next process to finish
        path = future_to_path[signal.completed]    # which one it was
        digests[os.path.basename(path)] = digest
        print(f"hashed {os.path.basename(path)} in a process: {digest}")

    # Meanwhile our own timers, tasks and executors mix freely in one wait.
    ticker = tasklets.sleep(0.01, result="timer")
    pid = processes.submit(os.getpid)
    results = yield [ticker, pid, tasklets.to_thread(len, digests)]
    print(f"one wait on a timer, a process and a thread: {results[0]!r}, "
          f"pid {'differs' if results[1] != os.getpid() else 'same'}, {results[2]} digests")
    return digests


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(4):
            path = os.path.join(tmp, f"file{i}.bin")
            with open(path, "wb") as f:
                f.write(os.urandom(1024 * (i + 1)))
            paths.append(path)

        # "spawn" starts clean worker processes; forking a process that already
        # runs threads (as a tasklets loop does) is unsafe on some platforms.
        context = multiprocessing.get_context("spawn")
        started = time.perf_counter()
        with (
            concurrent.futures.ThreadPoolExecutor(max_workers=4) as threads,
            concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as processes,
        ):
            digests = tasklets.run(hash_files, paths, threads, processes)
        print(f"done: {len(digests)} files in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":  # required: process-pool workers re-import this module
    main()
