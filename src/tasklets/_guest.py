"""Guest mode: tasks of plain code running inside a foreign asyncio loop (uvloop, Jupyter's, stock asyncio).

Theory of operation
-------------------
A task function called where no tasklets loop runs would start its task on
the default background loop. When the calling thread runs an asyncio loop
that is not a tasklets one, the task runs *on that loop* instead: one
:class:`GuestLoop` per foreign loop stands in for a tasklets loop. It owns
no poller, waker or thread; it has the kernel's ready queue, and the first
callback put on it schedules one ``drain`` on the foreign loop
(``call_soon``, or ``call_soon_threadsafe`` from another thread). ``drain``
runs what was ready, like one kernel iteration, with the guest marked as
the thread's loop, so the tasks inside see a tasklets loop (their waits,
timers, ``current_task()``, ``BlockingResultError``). Timers, readers and
writers are the foreign loop's own.

To asyncio the guest's tasks are tasks of the foreign loop: they are in
``asyncio.all_tasks()``, their ``get_loop()`` is the foreign loop, and each
step makes the task ``asyncio.current_task()`` there (``asyncio.timeout()``,
anyio's cancel scopes and sniffio ask it). The steps run in ``drain``, a
plain callback of the foreign loop, so no asyncio task is current then.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from . import _context
from ._loop import Loop

__all__ = ["GuestLoop", "guest_loop_for"]

logger = logging.getLogger("tasklets")

_guests: weakref.WeakKeyDictionary[Any, GuestLoop] = weakref.WeakKeyDictionary()
_guests_lock = threading.Lock()


def guest_loop_for(host: Any) -> GuestLoop:
    """The guest loop that runs tasks on the running asyncio loop ``host``."""
    guest = _guests.get(host)
    if guest is None:
        with _guests_lock:
            guest = _guests.get(host)
            if guest is None:
                guest = _guests[host] = GuestLoop(host)
    return guest


class _GuestQueue(deque):  # type: ignore[type-arg]
    """The ready queue: the first callback appended schedules a drain on the host loop."""

    def __init__(self, guest: GuestLoop) -> None:
        super().__init__()
        self._guest = weakref.ref(guest)

    def append(self, callback: Callable[[], object]) -> None:
        deque.append(self, callback)
        guest = self._guest()
        if guest is not None and not guest._drain_scheduled:
            guest._schedule_drain()


class GuestLoop(Loop):
    """A tasklets loop whose iterations are callbacks of a foreign asyncio loop, ``host``."""

    def __init__(self, host: Any) -> None:  # no Loop.__init__: the host polls, times and wakes
        self._host = host
        self._debug = False
        self._ready = _GuestQueue(self)
        self._drain_scheduled = False
        self._tasks = set()
        self._current_task = None
        self._closed = False
        self._stopping = False
        self._signal_handlers = {}
        self._close_callbacks = []
        self._thread_id = threading.get_ident()  # made by a task function called on the host's thread
        self.time = host.time

    def __repr__(self) -> str:
        return f"<tasklets guest loop on {self._host!r}>"

    @property
    def host(self) -> Any:
        """The foreign asyncio loop this guest runs in (what ``get_loop()`` of its tasks returns)."""
        return self._host

    def _schedule_drain(self) -> None:
        self._drain_scheduled = True
        try:
            if threading.get_ident() == self._thread_id:
                self._host.call_soon(self._drain)
            else:
                self._host.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the host loop is closed: nothing will run here again
            self._drain_scheduled = False

    def _drain(self) -> None:
        self._drain_scheduled = False
        ready = self._ready
        outer = _context.thread_context.loop
        _context.thread_context.loop = self
        try:
            for _ in range(len(ready)):
                callback = ready.popleft()
                try:
                    callback()
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException:
                    logger.exception("exception in callback %s on %r", callback, self)
                del callback
        finally:
            _context.thread_context.loop = outer
        if ready and not self._drain_scheduled:
            self._schedule_drain()

    # -- the kernel's interface, served by the host loop ---------------------------------------

    def _enqueue(self, callback: Callable[[], object]) -> None:
        self._ready.append(callback)

    def _wake(self) -> None:
        pass  # the host is woken by call_soon_threadsafe in _schedule_drain

    def call_soon(self, callback: Callable[..., object], *args: Any) -> Any:
        return self._host.call_soon(callback, *args)

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> Any:
        return self._host.call_soon_threadsafe(callback, *args)

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Any:
        return self._host.call_later(delay, callback, *args)

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> Any:
        return self._host.call_at(when, callback, *args)

    def add_reader(self, fd: int, callback: Callable[..., object], *args: Any) -> Any:
        return self._host.add_reader(fd, callback, *args)

    def add_writer(self, fd: int, callback: Callable[..., object], *args: Any) -> Any:
        return self._host.add_writer(fd, callback, *args)

    def remove_reader(self, fd: int) -> bool:
        return bool(self._host.remove_reader(fd))

    def remove_writer(self, fd: int) -> bool:
        return bool(self._host.remove_writer(fd))

    # The host's loop is the only poller here: net's registrations go to it as well.
    watch_reader, watch_writer, unwatch_reader, unwatch_writer = add_reader, add_writer, remove_reader, remove_writer

    def is_running(self) -> bool:
        return bool(self._host.is_running())

    def is_closed(self) -> bool:
        return bool(self._host.is_closed())

    def run_forever(self) -> None:
        raise RuntimeError(f"{self!r} runs inside its host loop; run that instead")

    def close(self) -> None:
        pass  # it owns nothing; the host closes itself
