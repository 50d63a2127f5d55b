"""Structured concurrency: a group of tasks that is itself a future.

A :class:`TaskGroup` owns the tasks spawned through it. It completes once it
is closed (no more children) and every child has finished, with the list of
the children's results in spawn order. When a child fails, the group cancels
the others and fails with an :class:`ExceptionGroup` of every error, so
``except*`` picks out the ones a caller handles.

Waiting on the group (``yield group``, ``await group``, ``result()``,
``add_done_callback``, ``concurrent.futures.wait`` or ``as_completed``)
closes it: once you wait, no more children can join. The stdlib's waits call
none of the future's methods, so the group closes when they first take its
``_condition``; an open group has no callbacks or waiters yet, so completing
it there wakes nobody in the middle of their locking. In a generator task::

    with TaskGroup() as group:          # on an exception: cancel the children
        for url in urls:
            group.spawn(fetch, url)
    pages = yield group

and in an ``async def`` task, ``async with TaskGroup() as group:`` waits for
the children on exit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from concurrent.futures._base import PENDING
from typing import Any

from ._exceptions import Cancelled, LoopError
from ._future import Future, cancel_soon, read_outcome
from ._task import Task, spawn

__all__ = ["TaskGroup"]


class TaskGroup(Future[list[Any]]):
    """A set of child tasks that succeed together or are cancelled together."""

    _plain_callbacks = False  # waiting on the group must go through add_done_callback (it closes)

    __slots__ = ("_children", "_group_lock", "_open", "_pending", "_errors", "_cancelling")

    def __init__(self) -> None:
        super().__init__()
        self._children: list[Any] = []
        self._group_lock = threading.Lock()
        self._open = True
        self._pending = 0
        self._errors: list[BaseException] = []
        self._cancelling = False

    def __repr__(self) -> str:
        return f"<TaskGroup {self._describe_state()} children={len(self._children)} pending={self._pending}>"

    # -- adding children ---------------------------------------------------------------------------

    def spawn(self, fn: Callable[..., Any], /, *args: Any, name: str | None = None, **kwargs: Any) -> Task[Any]:
        """Start ``fn(*args, **kwargs)`` as a child task (see :func:`tasklets.spawn`)."""
        self._check_open()
        child = spawn(fn, *args, name=name, **kwargs)
        self.add(child)
        return child

    def add(self, future: Any) -> Any:
        """Adopt a future of any origin as a child: its failure fails the group."""
        with self._group_lock:
            self._check_open()
            self._children.append(future)
            self._pending += 1
        future.add_done_callback(self._child_done)
        if self._cancelling:
            cancel_soon(future)
        return future

    def _check_open(self) -> None:
        if not self._open:
            raise LoopError(f"{self!r} is closed: it was waited on or cancelled; spawn children before that")

    def close(self) -> None:
        """Accept no more children; the group completes when the running ones finish."""
        with self._group_lock:
            self._open = False
            finished = self._pending == 0
        if finished:
            self._finish()

    # -- children finishing --------------------------------------------------------------------------

    def _child_done(self, child: Any) -> None:
        _, error, cancelled = read_outcome(child)  # a child of any origin may lack cancelled() and exception()
        if cancelled:
            error = None
        with self._group_lock:
            self._pending -= 1
            if error is not None:
                self._errors.append(error)
            first_failure = error is not None and not self._cancelling
            if first_failure:
                self._cancelling = True
            finished = self._pending == 0 and not self._open
        if first_failure:
            self._cancel_children()
        if finished:
            self._finish()

    def _cancel_children(self) -> None:
        for child in list(self._children):
            if not child.done():
                cancel_soon(child)  # a foreign child's cancel() may block, or be missing

    def _finish(self) -> None:
        if self._state is not PENDING:
            return
        if self._errors:
            # BaseExceptionGroup: an ExceptionGroup when every error is an Exception, and able
            # to hold a child's BaseException too (ExceptionGroup would refuse it with a TypeError).
            self.set_exception(BaseExceptionGroup(f"{len(self._errors)} task(s) of the group failed", self._errors))
        elif self._cancelling:
            Future.cancel(self)
        else:
            # Every child succeeded or was cancelled (None): a failure would be in _errors.
            self.set_result([read_outcome(c)[0] for c in self._children])

    def cancel(self, msg: Any = None) -> bool:
        """Cancel every child; the group ends cancelled once they have all finished (``msg``: as Future's)."""
        if self.done():
            return self.cancelled()
        with self._group_lock:
            self._cancelling = True
            self._open = False
            finished = self._pending == 0
        self._cancel_children()
        if finished:
            self._finish()
        return True

    # -- waiting closes the group ------------------------------------------------------------------------

    @property
    def _condition(self) -> threading.Condition:  # type: ignore[override]  # a property, as on Future
        """Taken first by ``concurrent.futures.wait``/``as_completed`` and blocking waits: they close the group."""
        if self._open:
            self.close()
        return super()._condition

    def add_done_callback(self, fn: Callable[[Any], object]) -> None:
        if self._open:
            self.close()
        super().add_done_callback(fn)

    def result(self, timeout: float | None = None) -> list[Any]:
        if self._open:
            self.close()
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if self._open:
            self.close()
        return super().exception(timeout)

    def __iter__(self) -> Generator[Any, None, list[Any]]:
        if self._open:
            self.close()
        return (yield from super().__iter__())

    __await__ = __iter__

    # -- context managers ------------------------------------------------------------------------------------

    def __enter__(self) -> TaskGroup:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            self.cancel()
        else:
            self.close()

    async def __aenter__(self) -> TaskGroup:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            self.cancel()
        self.close()
        try:
            await self._finished()  # wait for the children (also after an error), without raising here
        except Cancelled:
            # The task waiting for the children is cancelled: so are they, and
            # it still waits for them to finish before the cancellation goes on.
            self.cancel()
            await self._finished()
            raise
        if exc is None and not self.cancelled() and self.exception() is not None:
            raise self.exception()  # type: ignore[misc]

    def _finished(self) -> Future[None]:
        """A future that resolves to None once the group is done, whatever its outcome."""
        waiter: Future[None] = Future()

        def wake(_: object) -> None:
            if not waiter.done():
                waiter.set_result(None)

        Future.add_done_callback(self, wake)
        return waiter
