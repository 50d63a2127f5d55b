"""The futures' mutex: a one-item list, whose item is the right to enter.

Theory of operation
-------------------
Every future of a loop is locked at least twice (a task registers its
wake-up on it, then the I/O completes it), and ``threading.Lock.acquire()``
spends more on parsing its optional arguments than on locking: an echo
server's two locks per message were a tenth of its instructions. A list's
``pop()`` and ``append()`` are each one operation that the interpreter never
interleaves with another thread's operation on the same list (under the
GIL, and under the free-threaded build's per-object locks), so::

    mutex.pop()          # take it; IndexError: another thread holds it
    mutex.append(True)   # give it back

is a lock at a fraction of the price. What it guards is short (a state
change, and the wake-up of threads blocked on the future, if any; callbacks
run after the mutex is given back), so a thread that finds it taken yields
its time slice until the holder gives it back (:func:`take`) rather than
sleeping on a kernel object.
:class:`MutexLock` presents a mutex as a lock, for the ``threading.Condition``
that blocking ``result()`` calls and ``concurrent.futures.wait`` sleep on:
holding the condition's lock is holding the future's mutex.
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["new_mutex", "take", "MutexLock", "BlockingWaiters"]

#: The longest pause between two looks at a taken mutex: its holder needs it for microseconds.
_MAX_PAUSE = 1e-4


def new_mutex() -> list[bool]:
    """A mutex nobody holds."""
    return [True]


def take(mutex: list[bool], timeout: float = -1) -> bool:
    """Take ``mutex``, waiting for its holder if need be; False if ``timeout`` (≥ 0) seconds pass first."""
    try:
        mutex.pop()
        return True
    except IndexError:
        pass
    deadline = None if timeout < 0 else time.monotonic() + timeout
    pause = 0.0
    while True:
        # sleep(0) lets the holder, which waits for the interpreter, run its few bytecodes;
        # the pauses grow in case the holder itself is waiting (for the CPU, say).
        time.sleep(pause)
        try:
            mutex.pop()
            return True
        except IndexError:
            pass
        if deadline is not None and time.monotonic() >= deadline:
            return False
        pause = min(pause * 2 or 1e-6, _MAX_PAUSE)


class MutexLock:
    """A mutex with the interface of a ``threading.Lock``, for ``threading.Condition``."""

    __slots__ = ("_mutex",)

    def __init__(self, mutex: list[bool]) -> None:
        self._mutex = mutex

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking:
            try:
                self._mutex.pop()
                return True
            except IndexError:
                return False
        return take(self._mutex, timeout)

    def release(self) -> None:
        if self._mutex:
            raise RuntimeError("release unlocked lock")
        self._mutex.append(True)

    def locked(self) -> bool:
        return not self._mutex

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


class BlockingWaiters:
    """What threads blocked on a future need: a condition and the stdlib's waiters."""

    __slots__ = ("cond", "waiters")

    def __init__(self, mutex: list[bool]) -> None:
        self.cond = threading.Condition(MutexLock(mutex))  # type: ignore[arg-type]  # a lock in all but name
        self.waiters: list[Any] = []

    def wake(self, future: Any, how: str) -> None:
        """Called with the future's mutex held, once it is done."""
        self.cond.notify_all()
        for waiter in self.waiters:
            getattr(waiter, how)(future)
