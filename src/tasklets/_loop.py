"""The event loop: a small kernel of callbacks, timers, readiness and wake-ups.

Theory of operation
-------------------
One iteration (of ``_run_until_stopped``) does three things, in order:

1. **Poll** the OS for readiness. If callbacks are ready the poll does not
   block, and on a busy loop it is skipped unless ``_POLL_INTERVAL`` seconds
   have passed since the last one (the clock itself is read only every few
   iterations when no timer is pending): a task switch then costs a deque
   pop and a generator send rather than a system call, yet sockets are still
   serviced every half millisecond or so. Ready descriptors enqueue their
   callbacks.
2. **Expire timers**: every timer due by now is moved to the ready queue.
3. **Run** exactly the callbacks that were ready when the iteration began
   (those they enqueue wait for the next iteration). This is the only place
   callbacks run.

Other threads hand work over with ``call_soon_threadsafe``: ``deque.append``
is atomic, and the first hand-over since the loop last drained its waker
writes one byte to a socket pair, so a sleeping poll returns at once while a
burst of hand-overs costs one system call. The same socket receives signal
numbers through ``signal.set_wakeup_fd``.

Combinators, timeouts, streams and the HTTP client are built on the public
methods below; none of them lives in here.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _context
from ._clock import Clock, SystemClock
from ._exceptions import LoopError
from ._loop_statistics import LoopStatistics
from ._poller import make_poller

if TYPE_CHECKING:
    from ._future import Future
    from ._task import Task

__all__ = ["Loop", "LoopStatistics", "Handle", "TimerHandle"]

logger = logging.getLogger("tasklets")

_POLL_INTERVAL = 0.0005  # how long a busy loop may go without looking at its sockets
# A busy loop with no timers reads the clock (to decide whether to poll) only
# every this many iterations: a task switch is then a deque pop and a send.
_UNCLOCKED_ITERATIONS = 8
_CANCELLED_TIMER_SHARE = 0.5  # rebuild the timer heap once this share of it is cancelled timers
_MIN_CANCELLED_TIMERS_FOR_REBUILD = 100

_get_ident = threading.get_ident


def _debug_from_environment() -> bool:
    return os.environ.get("TASKLETS_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def _do_nothing(*args: Any) -> None: ...


class Handle(functools.partial):  # type: ignore[type-arg]
    """A callback scheduled on a loop; ``cancel()`` stops it from running.

    A handle *is* the callable the loop runs, ``Handle(callback, *args)``: a
    ``functools.partial``, made and called in C. That saves a Python frame
    on every callback the loop runs, the busiest line of the library.
    """

    _cancelled = False

    def cancel(self) -> None:
        """Stop the callback from running (a no-op once it ran)."""
        if not self._cancelled:
            # Swap in a do-nothing callback, dropping what it kept alive (typeshed lacks partial.__setstate__).
            self.__setstate__((_do_nothing, (), None, None))  # type: ignore[attr-defined]
            self._cancelled = True

    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""
        return self._cancelled

    def __repr__(self) -> str:
        if self._cancelled:
            return f"<{type(self).__name__} cancelled>"
        return f"<{type(self).__name__} {_describe_callback(self.func)}>"

    def __reduce__(self) -> Any:
        raise TypeError(f"{self!r} cannot be pickled")


class TimerHandle(Handle):
    """A callback due at ``when`` on its loop's clock (``when`` and ``_loop`` set by ``Loop.call_at``)."""

    when: float
    _loop: Loop | None

    def cancel(self) -> None:
        """Stop the timer; the loop forgets it lazily."""
        if not self._cancelled:
            loop = self._loop
            super().cancel()
            if loop is not None:
                loop._timer_cancelled()


def _describe_callback(callback: object) -> str:
    self = getattr(callback, "__self__", None)
    name = getattr(callback, "__qualname__", None) or repr(callback)
    if self is not None and not isinstance(self, type):
        return f"{name} of {self!r}"
    return name


class Loop:
    """One event loop, run by one thread at a time.

    Args:
        clock: where time comes from (tests pass a ``VirtualClock``).
        debug: report callbacks slower than ``slow_callback_duration`` and
            calls from the wrong thread; defaults to ``TASKLETS_DEBUG``.
    """

    slow_callback_duration = 0.1

    def __init__(self, *, clock: Clock | None = None, debug: bool | None = None) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._virtual_clock = clock is not None and not isinstance(clock, SystemClock)
        self.time: Callable[[], float] = self._clock.time
        self._debug = _debug_from_environment() if debug is None else debug
        self._ready: deque[Callable[[], object]] = deque()
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._timer_seq = itertools.count()
        self._cancelled_timers = 0
        self._poller = make_poller()
        self._READABLE = self._poller.READABLE
        self._WRITABLE = self._poller.WRITABLE
        self._io_handlers: dict[int, list[Handle | None]] = {}  # fd -> [reader, writer]
        self._stopping = False
        self._closed = False
        self._thread_id: int | None = None
        #: Every task not yet done, so none is collected while it waits.
        self._tasks: set[Task[Any]] = set()
        #: The task being stepped right now (read by ``tasklets.current_task()``).
        self._current_task: Task[Any] | None = None
        self._signal_handlers: dict[int, Handle] = {}
        self._previous_signal_handlers: dict[int, Any] = {}
        self._close_callbacks: list[Callable[[], object]] = []
        self._previous_wakeup_fd: int | None = None
        self._waker_read, self._waker_write = socket.socketpair()
        self._waker_read.setblocking(False)
        self._waker_write.setblocking(False)
        self._wake_pending = False
        self.add_reader(self._waker_read.fileno(), self._drain_waker)
        if self._debug:
            self.call_soon = self._call_soon_checked  # type: ignore[method-assign]

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._thread_id is not None else "idle"
        return f"<tasklets.Loop {state} at {id(self):#x}>"

    # -- scheduling callbacks ---------------------------------------------------------

    def call_soon(self, callback: Callable[..., object], *args: Any) -> Handle:
        """Run ``callback(*args)`` in the next iteration. Loop thread only."""
        handle = Handle(callback, *args)
        self._ready.append(handle)
        return handle

    def _call_soon_checked(self, callback: Callable[..., object], *args: Any) -> Handle:
        self._check_thread("call_soon")
        return Loop.call_soon(self, callback, *args)

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> Handle:
        """Run ``callback(*args)`` on the loop; callable from any thread, wakes a sleeping loop."""
        if self._closed:
            raise LoopError(f"{self!r} is closed; cannot schedule {_describe_callback(callback)}")
        handle = Handle(callback, *args)
        self._ready.append(handle)
        if self._thread_id != _get_ident():
            self._wake()
        return handle

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` after ``delay`` seconds. Loop thread only."""
        return self.call_at(self.time() + delay, callback, *args)

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` once ``self.time()`` reaches ``when``. Loop thread only."""
        if self._debug:
            self._check_thread("call_at")
        timer = TimerHandle(callback, *args)
        timer.when = when
        timer._loop = self
        heapq.heappush(self._timers, (when, next(self._timer_seq), timer))
        return timer

    def _enqueue(self, callback: Callable[[], object]) -> None:
        """Put a zero-argument callable on the ready queue from any thread.

        The fast hand-over used by tasks and futures: no Handle is made, and
        the loop is woken only when the caller is another thread.
        """
        self._ready.append(callback)
        if self._thread_id != _get_ident():
            self._wake()

    def _wake(self) -> None:
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._waker_write.send(b"\0")
            except OSError:
                pass  # the buffer is full (a wake-up is pending anyway) or we are closing

    def _drain_waker(self) -> None:
        # Clear the flag only after reading: cleared first, a hand-over racing
        # with the read (recv releases the GIL) would see it clear, write a
        # byte we then swallow, and leave it set with nothing in the socket,
        # so no later hand-over would ever wake us. A hand-over that sees the
        # flag still set here appended before we clear it, and the next
        # iteration's look at the ready queue finds its callback.
        try:
            while self._waker_read.recv(4096):
                pass
        except OSError:
            pass
        self._wake_pending = False

    def _timer_cancelled(self) -> None:
        self._cancelled_timers += 1
        if (
            self._cancelled_timers > _MIN_CANCELLED_TIMERS_FOR_REBUILD
            and self._cancelled_timers > _CANCELLED_TIMER_SHARE * len(self._timers)
        ):
            # In place: the running loop holds this list in a local.
            self._timers[:] = [entry for entry in self._timers if not entry[2]._cancelled]
            heapq.heapify(self._timers)
            self._cancelled_timers = 0

    # -- readiness ----------------------------------------------------------------------

    def add_reader(self, fd: int, callback: Callable[..., object], *args: Any) -> Handle:
        """Call ``callback(*args)`` whenever ``fd`` is readable (replacing any reader)."""
        return self._set_io_handler(fd, 0, Handle(callback, *args))

    def add_writer(self, fd: int, callback: Callable[..., object], *args: Any) -> Handle:
        """Call ``callback(*args)`` whenever ``fd`` is writable (replacing any writer)."""
        return self._set_io_handler(fd, 1, Handle(callback, *args))

    def remove_reader(self, fd: int) -> bool:
        """Stop watching ``fd`` for reading; True if a reader was registered."""
        return self._clear_io_handler(fd, 0)

    def remove_writer(self, fd: int) -> bool:
        """Stop watching ``fd`` for writing; True if a writer was registered."""
        return self._clear_io_handler(fd, 1)

    # The kernel's own, under names tasklets.asyncio.EventLoop leaves alone (it gives add_reader
    # & co. asyncio's contract, a context copy per callback): for code that owns its fd, as net.
    watch_reader, watch_writer, unwatch_reader, unwatch_writer = add_reader, add_writer, remove_reader, remove_writer

    def _set_io_handler(self, fd: int, direction: int, handle: Handle) -> Handle:
        if self._closed:
            raise LoopError(f"{self!r} is closed; cannot watch fd {fd}")
        if not isinstance(fd, int):
            fd = fd.fileno()
        handlers = self._io_handlers.get(fd)
        if handlers is None:  # registered before recorded: epoll refuses some fds (regular files)
            self._poller.register(fd, self._poller.WRITE if direction else self._poller.READ)
            handlers = self._io_handlers[fd] = [None, None]
            handlers[direction] = handle
        else:
            previous = handlers[direction]
            handlers[direction] = handle
            if previous is None:
                self._poller.modify(fd, self._io_mask(handlers))
            else:
                previous.cancel()
        return handle

    def _clear_io_handler(self, fd: int, direction: int) -> bool:
        if not isinstance(fd, int):
            fd = fd.fileno()
        handlers = self._io_handlers.get(fd)
        if handlers is None or handlers[direction] is None:
            return False
        handlers[direction].cancel()  # type: ignore[union-attr]
        handlers[direction] = None
        if handlers[0] is None and handlers[1] is None:
            del self._io_handlers[fd]
            self._poller.unregister(fd)
        else:
            self._poller.modify(fd, self._io_mask(handlers))
        return True

    def _io_mask(self, handlers: list[Handle | None]) -> int:
        return (self._poller.READ if handlers[0] is not None else 0) | (
            self._poller.WRITE if handlers[1] is not None else 0
        )

    # -- signals --------------------------------------------------------------------------

    def add_signal_handler(self, sig: int, callback: Callable[..., object], *args: Any) -> Handle:
        """Run ``callback(*args)`` on the loop when signal ``sig`` arrives.

        Only the main thread may install signal handlers (a rule of CPython).
        The OS-level handler only records the signal; the callback runs as an
        ordinary loop callback, so it may do anything a callback may do.
        """
        if threading.current_thread() is not threading.main_thread():
            raise LoopError("signal handlers can only be installed from the main thread")
        if self._closed:
            raise LoopError(f"{self!r} is closed; cannot handle signal {sig}")
        if self._previous_wakeup_fd is None:
            self._previous_wakeup_fd = signal.set_wakeup_fd(self._waker_write.fileno())
        handle = Handle(callback, *args)
        if sig not in self._signal_handlers:
            self._previous_signal_handlers[sig] = signal.getsignal(sig)
        self._signal_handlers[sig] = handle
        signal.signal(sig, self._on_signal)
        return handle

    def remove_signal_handler(self, sig: int) -> bool:
        """Give ``sig`` back to the handler it had before ``add_signal_handler``; True if we handled it."""
        if sig not in self._signal_handlers:
            return False
        # Straight back, not via the default handler (run() counts Ctrl-C in its
        # own); and before the handle goes, so no signal falls between the two.
        previous = self._previous_signal_handlers.pop(sig, None)
        if previous is None:  # installed from outside Python
            previous = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        signal.signal(sig, previous)
        del self._signal_handlers[sig]
        if not self._signal_handlers and self._previous_wakeup_fd is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            self._previous_wakeup_fd = None
        return True

    def _on_signal(self, signum: int, frame: object) -> None:
        handle = self._signal_handlers.get(signum)
        if handle is not None:
            # Runs in the main thread between two bytecodes, maybe in the middle
            # of a callback: only enqueue. set_wakeup_fd already woke the poll.
            self._ready.append(handle)

    # -- running ---------------------------------------------------------------------------

    def run_forever(self) -> None:
        """Run callbacks until ``stop()`` is called."""
        if self._closed:
            raise LoopError(f"{self!r} is closed; create a new Loop")
        if self._thread_id is not None:
            raise LoopError(f"{self!r} is already running")
        outer = _context.thread_context.loop
        if outer is not None:
            raise LoopError(
                f"cannot run {self!r}: {outer!r} already runs in this thread. "
                "Yield the work to the running loop instead of starting another."
            )
        self._thread_id = _get_ident()
        _context.thread_context.loop = self
        try:
            if self._debug:
                self._run_until_stopped_debug()
            else:
                self._run_until_stopped()
        finally:
            self._stopping = False
            self._thread_id = None
            _context.thread_context.loop = None

    def run_until_complete(self, future: Future[Any]) -> Any:
        """Run until ``future`` is done and return its result (or raise its exception)."""

        def stop_when_done(_: object) -> None:
            self.stop()

        future.add_done_callback(stop_when_done)
        try:
            self.run_forever()
        finally:
            remove = getattr(future, "remove_done_callback", None)  # futures of other origins have none
            if remove is not None:
                remove(stop_when_done)
        if not future.done():
            raise LoopError(f"{self!r} stopped before {future!r} completed")
        return future.result()

    def stop(self) -> None:
        """Make ``run_forever`` return after the current iteration; callable from any thread."""
        self._stopping = True
        if self._thread_id is not None and self._thread_id != _get_ident():
            self._wake()

    def is_running(self) -> bool:
        """Whether a thread is inside ``run_forever`` right now."""
        return self._thread_id is not None

    def is_closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def is_loop_thread(self) -> bool:
        """Whether the calling thread is the one running this loop right now."""
        return self._thread_id == _get_ident()

    def is_foreign_thread(self) -> bool:
        """Whether another thread runs this loop right now.

        Then what is meant for the loop must be handed over with
        ``call_soon_threadsafe``. An idle loop is nobody's: the caller may
        act on it directly (it is neither foreign nor the loop thread).
        """
        thread_id = self._thread_id
        return thread_id is not None and thread_id != _get_ident()

    def statistics(self) -> LoopStatistics:
        """What the loop holds now: its tasks not yet done, descriptor registrations, armed timers.

        A snapshot for tests and monitoring (a finished test expects all three
        empty); read it on the loop's thread, or while the loop is idle, for a
        consistent view. The loop's own wake-up socket is not counted.
        """
        waker = self._waker_read.fileno() if not self._closed else -1
        registrations = {
            fd: tuple(handle for handle in pair if handle is not None)
            for fd, pair in self._io_handlers.items()
            if fd != waker
        }
        return LoopStatistics(
            tasks=tuple(task for task in self._tasks if not task.done()),
            registrations=registrations,
            timers=tuple(entry[2] for entry in self._timers if not entry[2]._cancelled),
            ready=len(self._ready),
        )

    def close(self) -> None:
        """Release the poller, the waker and signal handlers; the loop cannot run again."""
        if self._thread_id is not None:
            raise LoopError(f"cannot close {self!r} while it runs")
        if self._closed:
            return
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logger.exception("exception in close callback %s of %r", _describe_callback(callback), self)
        for sig in list(self._signal_handlers):
            self.remove_signal_handler(sig)
        self._closed = True
        self._ready.clear()
        self._timers.clear()
        self._io_handlers.clear()
        self._poller.close()
        self._waker_read.close()
        self._waker_write.close()

    def add_close_callback(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` when the loop is closed, before its poller goes.

        What outlives single tasks (a connection pool, say) uses this to
        release its sockets with the loop that watches them.
        """
        self._close_callbacks.append(callback)

    def _check_thread(self, what: str) -> None:
        if self._thread_id is not None and self._thread_id != _get_ident():
            raise LoopError(f"{what}() called from a thread that does not run {self!r}; use call_soon_threadsafe()")

    # -- one iteration -----------------------------------------------------------------------

    def _poll(self, timeout: float | None) -> bool:
        """Wait for readiness up to ``timeout`` and enqueue the handlers; True if any fired."""
        events = self._poller.poll(timeout)
        if not events:
            return False
        handlers = self._io_handlers
        ready = self._ready
        readable = self._READABLE
        writable = self._WRITABLE
        for fd, mask in events:
            pair = handlers.get(fd)
            if pair is None:
                continue
            reader, writer = pair
            if reader is not None and mask & readable:
                ready.append(reader)
            if writer is not None and mask & writable:
                ready.append(writer)
        return True

    def _expire_timers(self, now: float) -> None:
        timers = self._timers
        ready = self._ready
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)[2]
            if timer._cancelled:
                self._cancelled_timers -= 1
            else:
                timer._loop = None  # it fires now: a later cancel() has nothing to account for
                ready.append(timer)

    def _wait_for_events(self) -> float:
        """Nothing is ready: block until I/O, a hand-over or the next timer; return the time."""
        timers = self._timers
        while timers and timers[0][2]._cancelled:
            heapq.heappop(timers)
            self._cancelled_timers -= 1
        deadline = timers[0][0] if timers else None
        timeout = None if deadline is None else max(0.0, deadline - self.time())
        if self._virtual_clock:
            if not self._poll(self._clock.sleep_time(timeout)) and not self._ready:
                self._clock.idle(deadline)
        else:
            self._poll(timeout)
        return self.time()

    def _run_until_stopped(self) -> None:
        """The loop itself: iterations fused into one frame, hot names held in locals."""
        ready = self._ready
        popleft = ready.popleft
        timers = self._timers
        clock = self.time
        poll = self._poll
        next_poll = 0.0
        unclocked = _UNCLOCKED_ITERATIONS  # busy iterations since the clock was read; at the limit, the first polls
        while not self._stopping:
            # 1. readiness: never block while callbacks wait; poll a busy loop at intervals.
            if ready:
                if timers or unclocked >= _UNCLOCKED_ITERATIONS:
                    unclocked = 0
                    now = clock()
                    if now >= next_poll:
                        poll(0)
                        next_poll = now + _POLL_INTERVAL
                    # 2. timers that are due.
                    if timers and timers[0][0] <= now:
                        self._expire_timers(now)
                else:
                    unclocked += 1
            else:
                now = self._wait_for_events()
                next_poll = now + _POLL_INTERVAL
                unclocked = 0
                if timers and timers[0][0] <= now:
                    self._expire_timers(now)
            # 3. exactly the callbacks that are ready now.
            for _ in range(len(ready)):
                callback = popleft()
                try:
                    callback()
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException:
                    logger.exception("exception in callback %s on %r", _describe_callback(callback), self)
                del callback  # now, not at the next pop: what it alone kept alive (a failed task) goes at once

    def _run_until_stopped_debug(self) -> None:
        """The same loop, timing every callback to report the slow ones."""
        ready = self._ready
        perf_counter = time.perf_counter
        while not self._stopping:
            if ready:
                self._poll(0)
                now = self.time()
            else:
                now = self._wait_for_events()
            self._expire_timers(now)
            for _ in range(len(ready)):
                callback = ready.popleft()
                started = perf_counter()
                try:
                    callback()
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException:
                    logger.exception("exception in callback %s on %r", _describe_callback(callback), self)
                took = perf_counter() - started
                if took >= self.slow_callback_duration:
                    logger.warning(
                        "slow callback: %s blocked %r for %.3f s", _describe_callback(callback), self, took
                    )
                del callback
