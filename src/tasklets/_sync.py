"""Synchronisation primitives whose waits are futures.

``yield event.wait()``, ``yield lock.acquire()``, ``item = yield queue.get()``:
each wait returns a fresh :class:`Future`, so it can also be combined
(``with_timeout(queue.get(), 5)``) or waited on from plain code. Each wait
gets its own future because a waiting task that is cancelled cancels the
future it waits on, which must not disturb the other waiters.

They are safe to use from several threads (state sits behind a small lock)
and fair: waiters are served first come, first served. A waiter whose future
was cancelled is skipped. A future that was resolved (the lock handed over,
an item delivered) is delivered to its task even if the task is cancelled at
that moment: the cancellation lands at the task's next wait, so no lock and no
item is ever lost.

A cancelled waiter is also dropped as the queue of waiters grows: a task
polling ``with_timeout(event.wait(), 1)`` leaves a cancelled future behind
each time, and no ``set()`` may ever come to skip them. Each wait that has to
queue behind others compares the queue's length with a threshold; past it,
:func:`_drop_cancelled` sweeps the queue and sets the threshold to twice what
is still live (at least ``_PRUNE_MIN``). The sweeps cost O(1) per wait, and a
queue never grows past twice the most waiters it ever had live at once (or
``_PRUNE_MIN``). Nothing is added to the waits that need not queue, nor to
handing over.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Any, Generic, TypeVar

from ._exceptions import InvalidStateError
from ._future import Future, done_future

__all__ = ["Event", "Lock", "Semaphore", "Queue", "QueueEmpty", "QueueFull"]

T = TypeVar("T")

#: Raised by ``Queue.get_nowait`` on an empty queue (the stdlib's own class).
QueueEmpty = queue.Empty
#: Raised by ``Queue.put_nowait`` on a full queue (the stdlib's own class).
QueueFull = queue.Full


#: A queue of waiters is never swept for cancelled ones below this length.
_PRUNE_MIN = 16


def _drop_cancelled(waiters: deque[Any], pairs: bool = False) -> int:
    """Remove the done (cancelled) waiters from ``waiters``, in place and in order; the next threshold.

    ``pairs``: the entries are ``(future, item)`` (a queue's putters). A
    served waiter has already left the queue, so a done one was cancelled.
    """
    if pairs:
        live = [entry for entry in waiters if not entry[0].done()]
    else:
        live = [waiter for waiter in waiters if not waiter.done()]
    if len(live) < len(waiters):
        waiters.clear()
        waiters.extend(live)
    return max(_PRUNE_MIN, 2 * len(live))


def _hand_over(waiters: deque[Future[Any]], value: Any) -> bool:
    """Resolve the oldest live waiter with ``value``; False if none is left."""
    while waiters:
        waiter = waiters.popleft()
        try:
            waiter.set_result(value)
        except InvalidStateError:
            continue  # cancelled meanwhile: skip it
        return True
    return False


class Event:
    """A flag that tasks can wait to see set."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # a waiter's callback may call back in
        self._flag = False
        self._waiters: deque[Future[bool]] = deque()
        self._prune_at = _PRUNE_MIN

    def __repr__(self) -> str:
        return f"<Event {'set' if self._flag else 'unset'} waiters={len(self._waiters)}>"

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._flag

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        with self._lock:
            self._flag = True
            waiters, self._waiters = self._waiters, deque()
        while _hand_over(waiters, True):
            pass

    def clear(self) -> None:
        """Unset the flag; later waits block again."""
        with self._lock:
            self._flag = False

    def wait(self) -> Future[bool]:
        """A future that resolves to True once the flag is set."""
        with self._lock:
            if self._flag:
                return done_future(True)
            waiter: Future[bool] = Future()
            waiters = self._waiters
            if waiters and len(waiters) >= self._prune_at:
                self._prune_at = _drop_cancelled(waiters)
            waiters.append(waiter)
            return waiter


class Semaphore:
    """A counter of available slots; ``acquire()`` waits for one.

    ``with (yield sem.acquire()):`` holds a slot for the block; ``async with
    sem:`` does the same in an ``async def`` task.
    """

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError(f"Semaphore value must be >= 0, got {value!r}")
        self._lock = threading.RLock()  # a waiter's callback may call back in
        self._value = value
        self._waiters: deque[Future[Any]] = deque()
        self._prune_at = _PRUNE_MIN

    def __repr__(self) -> str:
        return f"<{type(self).__name__} value={self._value} waiters={len(self._waiters)}>"

    def locked(self) -> bool:
        """True when ``acquire()`` would have to wait."""
        return self._value == 0

    def acquire(self) -> Future[Any]:
        """A future that resolves (to this object, a context manager) once a slot is held."""
        with self._lock:
            if self._value > 0 and not self._waiters:
                self._value -= 1
                return done_future(self)
            waiter: Future[Any] = Future()
            waiters = self._waiters
            if waiters and len(waiters) >= self._prune_at:
                self._prune_at = _drop_cancelled(waiters)
            waiters.append(waiter)
            return waiter

    def release(self) -> None:
        """Give a slot back: to the oldest waiter if there is one."""
        with self._lock:
            if not _hand_over(self._waiters, self):
                self._value += 1

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    async def __aenter__(self) -> Any:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()


class Lock(Semaphore):
    """A mutual-exclusion lock; ``acquire()`` returns a future, ``release()`` hands over fairly."""

    def __init__(self) -> None:
        super().__init__(1)

    def release(self) -> None:
        """Release the lock, handing it to the oldest waiter if there is one.

        Raises:
            RuntimeError: the lock is not held.
        """
        with self._lock:
            if self._value:
                raise RuntimeError(f"release() of {self!r}, which is not locked")
            if not _hand_over(self._waiters, self):
                self._value = 1


class Queue(Generic[T]):
    """A FIFO queue; ``get()`` and ``put()`` return futures.

    Args:
        maxsize: how many items it holds before ``put()`` waits (0: no limit).
    """

    def __init__(self, maxsize: int = 0) -> None:
        self._lock = threading.RLock()  # a waiter's callback may call back in
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._getters: deque[Future[T]] = deque()
        self._putters: deque[tuple[Future[None], T]] = deque()
        self._prune_getters_at = self._prune_putters_at = _PRUNE_MIN

    def __repr__(self) -> str:
        return (
            f"<Queue size={len(self._items)} maxsize={self.maxsize} "
            f"getters={len(self._getters)} putters={len(self._putters)}>"
        )

    def qsize(self) -> int:
        """Number of items in the queue."""
        return len(self._items)

    def empty(self) -> bool:
        """True if there is no item."""
        return not self._items

    def full(self) -> bool:
        """True if ``put()`` would wait."""
        return 0 < self.maxsize <= len(self._items)

    def put(self, item: T) -> Future[None]:
        """A future that resolves once ``item`` is in the queue (or taken by a getter)."""
        with self._lock:
            if self._try_put(item):
                return done_future(None)
            waiter: Future[None] = Future()
            putters = self._putters
            if putters and len(putters) >= self._prune_putters_at:
                self._prune_putters_at = _drop_cancelled(putters, pairs=True)
            putters.append((waiter, item))
            return waiter

    def put_nowait(self, item: T) -> None:
        """Put ``item`` without waiting. Raises :data:`QueueFull` if full."""
        with self._lock:
            if not self._try_put(item):
                raise QueueFull(f"{self!r} is full")

    def _try_put(self, item: T) -> bool:
        if _hand_over(self._getters, item):
            return True
        if self.maxsize <= 0 or len(self._items) < self.maxsize:
            self._items.append(item)
            return True
        return False

    def get(self) -> Future[T]:
        """A future of the next item, resolved as soon as there is one."""
        with self._lock:
            if self._items:
                item = self._items.popleft()
                self._admit_putter()
                return done_future(item)
            waiter: Future[T] = Future()
            getters = self._getters
            if getters and len(getters) >= self._prune_getters_at:
                self._prune_getters_at = _drop_cancelled(getters)
            getters.append(waiter)
            return waiter

    def get_nowait(self) -> T:
        """The next item without waiting. Raises :data:`QueueEmpty` if there is none."""
        with self._lock:
            if not self._items:
                raise QueueEmpty(f"{self!r} is empty")
            item = self._items.popleft()
            self._admit_putter()
            return item

    def _admit_putter(self) -> None:
        while self._putters and not self.full():
            waiter, item = self._putters.popleft()
            if waiter.done():
                continue  # cancelled: its item never enters
            try:
                waiter.set_result(None)
            except InvalidStateError:
                continue
            self._items.append(item)
