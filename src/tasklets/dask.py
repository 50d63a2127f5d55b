"""Run tasks on the workers of a Dask ``distributed`` cluster (``pip install 'tasklets[dask]'``).

Nothing here is needed to *wait* on Dask work: a task may yield the futures
of a ``distributed.Client`` (``client.submit(...)``) or of its executor
(``client.get_executor(pure=False).submit(...)``) like any other future, and
combine them with ``as_completed``, ``wait_first``, ``gather`` and
``map_unordered``. This module goes the other way: it runs *tasks* on the
workers, so that each worker does asynchronous I/O while the coordinator
only hands out shards of work.

How a task runs on a worker
---------------------------
Dask runs a submitted function in one of the worker's executor threads,
which is no loop thread. :func:`run_task` calls the task function there; the
task starts on the worker process's *default background loop*
(:func:`tasklets.default_loop`, a daemon thread started on first use and
shared by every Dask task of that process), and the executor thread blocks
on the task's result. So:

* one Dask task occupies one worker thread while its tasklets task runs, but
  the I/O itself is multiplexed on the loop: a single Dask task may keep
  hundreds of connections busy;
* Dask tasks running at once in one worker process (``threads_per_worker``
  > 1) share that loop, and may share anything kept per process (a
  connection pool, say; see ``tasklets.cli._dask_fetch``);
* Dask cannot interrupt a running thread, so :func:`run_task` watches its
  Dask task: once the scheduler no longer wants it (cancelled, released, or
  the worker closing), the tasklets task is cancelled, and the I/O stops at
  its next ``yield`` instead of running to its end;
* the function must be importable by the workers (a module-level function
  of an installed module), as for any Dask task; its arguments and result
  travel by pickle.

Coordinator side, :func:`run_on_workers` submits one such task per worker,
pinned to it, and returns a :class:`tasklets.Future` of ``{address:
result}``, so it serves both as ``yield run_on_workers(...)`` in a task and
``run_on_workers(...).result()`` in plain code. It never blocks a loop on a
Dask call: the blocking parts (listing the workers, submitting) run in the
default thread pool, and the results arrive through Dask's callback thread.
"""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

from . import _context
from ._combinators import gather, to_thread
from ._exceptions import LoopError
from ._future import Future, cancel_soon
from ._task import Task, spawn

__all__ = ["run_task", "run_on_workers", "WATCH_INTERVAL"]

T = TypeVar("T")

#: Seconds between two checks, by :func:`run_task`, that its Dask task is still wanted.
WATCH_INTERVAL = 0.25

# The worker-side states of a Dask task that no longer wants its result.
_UNWANTED = frozenset({"cancelled", "released", "forgotten"})


def run_task(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Run the task function ``fn(*args, **kwargs)`` on this process's default loop; block for its result.

    Meant to be what a Dask worker runs (``client.submit(run_task, fn,
    ...)``): it is called in a worker's executor thread, which runs no loop,
    so the task starts on the process's default background loop and this
    thread waits. Inside a Dask task, the tasklets task is cancelled as soon
    as the scheduler stops wanting the Dask task (it was cancelled, or the
    worker is closing); outside Dask it just runs to its end.

    Args:
        fn: a ``@task`` function, generator function or ``async def`` function.
        *args: its positional arguments.
        **kwargs: its keyword arguments.

    Returns:
        What the task returned; its exception is raised as is.

    Raises:
        LoopError: called on a thread that runs a tasklets loop (it would block it).
    """
    if _context.thread_context.loop is not None:
        raise LoopError(
            "run_task() blocks until the task is done, so it cannot run on a loop thread; "
            "yield the task (tasklets.spawn(fn, ...)) instead"
        )
    running: Task[Any] = spawn(fn, *args, **kwargs)  # on the default loop: this thread runs none
    still_wanted = _dask_task_watch()
    try:
        if still_wanted is not None:
            while not running.done():
                concurrent.futures.wait([running], timeout=WATCH_INTERVAL)
                if not running.done() and not still_wanted():
                    running.cancel("the Dask task was cancelled")
                    break
        return running.result()
    except BaseException:
        running.cancel()  # interrupted while waiting (the worker is going away): stop the I/O too
        raise


def _dask_task_watch() -> Callable[[], bool] | None:
    """Inside a Dask task, a function telling whether the scheduler still wants it; else None."""
    try:
        from distributed.worker import get_worker, thread_state  # type: ignore[attr-defined]
    except ImportError:
        return None
    key = getattr(thread_state, "key", None)
    if key is None:
        return None
    try:
        worker = get_worker()
    except ValueError:  # not in a worker after all
        return None

    def still_wanted() -> bool:
        if worker.status.name in ("stopping", "stopped", "closing", "closing_gracefully", "closed", "failed"):
            return False
        state = worker.state.tasks.get(key)
        return state is not None and state.state not in _UNWANTED

    return still_wanted


def run_on_workers(
    client: Any,
    fn: Callable[..., Any],
    /,
    *args: Any,
    workers: Sequence[str] | None = None,
    **kwargs: Any,
) -> Future[dict[str, Any]]:
    """Run the task function ``fn(*args, **kwargs)`` on every worker's own loop, all at once.

    One Dask task per worker, pinned to it, runs :func:`run_task`: the task
    runs on that worker process's default loop, doing its I/O there. Inside
    a running loop this starts a task on it; in plain code, on the default
    loop; nothing blocks the loop.

    Cancelling the returned future cancels the Dask tasks still running, and
    so (see :func:`run_task`) the tasklets tasks on the workers. A worker
    that leaves the cluster while its task runs leaves the task without a
    worker to run on: wrap the wait in :func:`tasklets.with_timeout` if that
    may happen.

    Args:
        client: a ``distributed.Client``.
        fn: a ``@task`` function, generator function or ``async def``
            function, importable by the workers.
        *args: its positional arguments (pickled, sent to every worker).
        workers: the addresses of the workers to run on (default: all of
            them, as the scheduler knows them now).
        **kwargs: its keyword arguments.

    Returns:
        A future of ``{worker address: what the task returned there}``; it
        fails with the first exception raised on a worker.
    """
    return spawn(_run_on_workers, client, fn, args, kwargs, None if workers is None else list(workers))


def _run_on_workers(
    client: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], workers: list[str] | None
) -> Generator[Any, Any, dict[str, Any]]:
    submitted: dict[str, Any] = yield to_thread(_submit_to_each, client, fn, args, kwargs, workers)
    futures = list(submitted.values())
    try:
        results = yield gather(futures)
    finally:
        for future in futures:
            if not future.done():
                cancel_soon(future)
    return dict(zip(submitted, results))


def _submit_to_each(
    client: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], workers: list[str] | None
) -> dict[str, Any]:
    """Submit ``run_task(fn, ...)`` to each worker (blocking: runs in the thread pool)."""
    if workers is None:
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    name = getattr(fn, "__name__", "task")
    run = uuid.uuid4().hex[:12]
    return {
        address: client.submit(
            _run_task_packed,
            fn,
            args,
            kwargs,
            key=f"tasklets-run-{name}-{run}-{n}",
            workers=[address],
            allow_other_workers=False,
            pure=False,
        )
        for n, address in enumerate(workers)
    }


def _run_task_packed(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # The task's own keyword arguments travel packed: client.submit keeps `key`, `workers`... for itself.
    return run_task(fn, *args, **kwargs)
