"""The tasklets kernel as an asyncio event loop.

Theory of operation
-------------------
:class:`EventLoop` is both a :class:`tasklets.Loop` and an asyncio
``SelectorEventLoop``, as uvloop is an asyncio loop with libuv underneath.
asyncio's loop is split in two: a *core* (ready queue, timers, selector,
self-pipe, signals, ``run_forever``) and everything built on it (transports,
servers, ``sock_*``, SSL, subprocesses, ``sendfile``, executors, async
generator hooks). This class keeps all of the second and replaces the core
with the kernel:

* ``call_soon``/``call_soon_threadsafe`` append to the kernel's ready queue
  an asyncio ``Handle`` that is also callable, so the kernel runs it like any
  callback (in its context, with asyncio's exception handler);
* ``call_at`` pushes a callable ``TimerHandle`` on the kernel's timer heap,
  and its ``cancel()`` is counted by the kernel's lazy timer cleanup;
* the *selector* is :class:`_KernelSelector`: asyncio's ``_add_reader`` and
  friends register ``(reader, writer)`` handles with it unchanged, and it maps
  them onto the kernel's per-fd readers and writers, so readiness goes
  straight from epoll to the ready queue without ``_process_events``;
* the self-pipe *is* the kernel's waker (asyncio's signal handling writes
  signal numbers into it through ``signal.set_wakeup_fd``);
* ``run_forever`` is the kernel's loop wrapped in asyncio's bookkeeping
  (running loop, async generator hooks, coroutine origin tracking).

Tasklets tasks and asyncio tasks then share one thread, one ready queue and
one poller: ``asyncio.get_running_loop()`` inside a tasklets task is this
loop, and an asyncio coroutine may await a tasklets future directly.
"""

from __future__ import annotations

import asyncio  # before anything that could import _asyncio (see the module tasklets.asyncio)
import collections.abc
import errno
import heapq
import selectors
import signal
import sys
import threading
from asyncio import events, format_helpers
from collections.abc import Callable, Mapping
from concurrent.futures import Future as _CfFuture
from contextvars import copy_context as _copy_context
from typing import Any

from . import _context
from ._clock import Clock
from ._exceptions import LoopError
from ._loop import Handle as _KernelHandle
from ._loop import Loop

__all__ = ["EventLoop", "new_event_loop"]

_EVENT_READ = selectors.EVENT_READ
_EVENT_WRITE = selectors.EVENT_WRITE


def _report_failure(handle: Any, exc: BaseException) -> None:
    """What asyncio's ``Handle._run`` does when its callback raises: tell the loop's exception handler."""
    debug = {"debug": handle._loop.get_debug()} if sys.version_info >= (3, 13) else {}
    source = format_helpers._format_callback_source(handle._callback, handle._args, **debug)
    context = {"message": f"Exception in callback {source}", "exception": exc, "handle": handle}
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    handle._loop.call_exception_handler(context)


class _Handle(events.Handle):
    """An asyncio handle the kernel can call: it runs unless cancelled.

    ``__call__`` is ``Handle._run`` inlined (one Python frame less on every
    callback the loop runs), with its report of a failure.
    """

    __slots__ = ()

    def __call__(self) -> None:
        if not self._cancelled:
            try:
                self._context.run(self._callback, *self._args)  # type: ignore[attr-defined]
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                _report_failure(self, exc)
        # As in Handle._run: a traceback that captured this frame (through a
        # coroutine's f_back) must not keep the handle, and so its task, alive.
        self = None  # type: ignore[assignment]


class _When(float):
    """A timer's due time that is also asyncio's ``when()``: ``handle.when`` and ``handle.when()`` both work."""

    __slots__ = ()

    def __call__(self) -> float:
        return float(self)


class _TimerHandle(events.TimerHandle):
    """An asyncio timer handle the kernel can call.

    ``when`` serves both contracts: tasklets' ``TimerHandle.when`` is an
    attribute, asyncio's a method.
    """

    __slots__ = ()

    @property
    def when(self) -> _When:
        return _When(self._when)  # type: ignore[attr-defined]

    __call__ = _Handle.__call__


_new_handle = object.__new__


# An asyncio handle made elsewhere (readers, writers, signal handlers) runs
# through _Handle's __call__, a plain function here: one frame, as our own.
_run_handle = _Handle.__call__


def _fileobj_to_fd(fileobj: Any) -> int:
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


class _KeyMap(Mapping[Any, selectors.SelectorKey]):
    """``get_map()`` of the selector: keys by fd, looked up by fd or file object."""

    def __init__(self, keys: dict[int, selectors.SelectorKey]) -> None:
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, fileobj: Any) -> selectors.SelectorKey:
        return self._keys[_fileobj_to_fd(fileobj)]

    def get(self, fileobj: Any, default: Any = None) -> Any:
        try:
            return self._keys.get(_fileobj_to_fd(fileobj), default)
        except ValueError:
            return default

    def __iter__(self) -> collections.abc.Iterator[int]:
        return iter(self._keys)


class _KernelSelector(selectors.BaseSelector):
    """A selector whose registrations are the kernel's readers and writers.

    asyncio's selector loop keeps ``(reader_handle, writer_handle)`` as each
    key's data; registering, modifying or unregistering a key sets or clears
    the kernel's handler for each direction, which runs the asyncio handle.
    ``select()`` is never called: the kernel polls.
    """

    def __init__(self, loop: EventLoop) -> None:
        self._loop: EventLoop | None = loop
        self._keys: dict[int, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        if not events or events & ~(_EVENT_READ | _EVENT_WRITE):
            raise ValueError(f"Invalid events: {events!r}")
        fd = _fileobj_to_fd(fileobj)
        if fd in self._keys:
            raise KeyError(f"{fileobj!r} (FD {fd}) is already registered")
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._apply(fd, events, data)
        self._keys[fd] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        fd = _fileobj_to_fd(fileobj)
        try:
            key = self._keys.pop(fd)
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None
        self._apply(fd, 0, None)
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        fd = _fileobj_to_fd(fileobj)
        if fd not in self._keys:
            raise KeyError(f"{fileobj!r} is not registered")
        if not events or events & ~(_EVENT_READ | _EVENT_WRITE):
            raise ValueError(f"Invalid events: {events!r}")
        self._apply(fd, events, data)
        key = self._keys[fd] = selectors.SelectorKey(fileobj, fd, events, data)
        return key

    def _apply(self, fd: int, events: int, data: Any) -> None:
        loop = self._loop
        if loop is None:
            raise RuntimeError("Selector is closed")
        reader, writer = data if data else (None, None)
        loop._set_asyncio_handler(fd, 0, reader if events & _EVENT_READ else None)
        loop._set_asyncio_handler(fd, 1, writer if events & _EVENT_WRITE else None)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        raise RuntimeError("the tasklets kernel polls; its selector is never asked to select")

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return _KeyMap(self._keys)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        if self._loop is None:
            raise RuntimeError("Selector is closed")
        try:
            return self._keys[_fileobj_to_fd(fileobj)]
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None

    def close(self) -> None:
        self._keys.clear()
        self._loop = None


class EventLoop(Loop, asyncio.SelectorEventLoop):
    """A tasklets loop that is also an asyncio event loop.

    Use it wherever asyncio takes a loop factory::

        asyncio.run(main(), loop_factory=tasklets.asyncio.new_event_loop)   # 3.12+
        with asyncio.Runner(loop_factory=tasklets.asyncio.new_event_loop) as runner: ...
        uvicorn app:app --loop tasklets.asyncio:new_event_loop

    Args:
        clock: where time comes from (tests pass a ``VirtualClock``).
        debug: tasklets' and asyncio's debug mode (default: ``TASKLETS_DEBUG``
            or ``PYTHONASYNCIODEBUG``).
    """

    def __init__(self, *, clock: Clock | None = None, debug: bool | None = None) -> None:
        # asyncio's half first: Loop.__init__ registers the waker through
        # add_reader, which is asyncio's here and needs its state.
        asyncio.SelectorEventLoop.__init__(self, _KernelSelector(self))
        asyncio_debug = self._debug
        Loop.__init__(self, clock=clock, debug=debug)
        if debug is None and asyncio_debug:
            self._debug = True
        self.__dict__.pop("call_soon", None)  # the kernel's debug check: call_soon here does asyncio's
        # The kernel's waker is asyncio's self-pipe.
        self._ssock = self._waker_read
        self._csock = self._waker_write
        self._internal_fds += 1  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return (
            f"<tasklets.asyncio.EventLoop running={self.is_running()} "
            f"closed={self.is_closed()} debug={self.get_debug()}>"
        )

    def _check_closed(self) -> None:
        # LoopError is a RuntimeError: asyncio's contract and tasklets' both hold.
        if self._closed:
            raise LoopError("Event loop is closed")

    def _check_running(self) -> None:
        if self.is_running():
            raise LoopError("This event loop is already running")
        outer = _context.thread_context.loop or events._get_running_loop()
        if outer is not None:
            raise LoopError(
                f"Cannot run the event loop while another loop is running ({outer!r}). "
                "Yield (or await) the work on the running loop instead of starting another."
            )

    def _make_self_pipe(self) -> None:
        pass  # the kernel's waker serves; see __init__

    # -- the core: callbacks and timers onto the kernel ---------------------------------------

    def call_soon(self, callback: Callable[..., object], *args: Any, context: Any = None) -> Any:  # type: ignore[override]
        if self._closed:
            raise LoopError("Event loop is closed")
        handle: Any
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_soon")  # type: ignore[attr-defined]
            handle = _Handle(callback, args, self, context)
            if handle._source_traceback:
                del handle._source_traceback[-1]
        else:
            # Handle.__init__ inlined, without its debug-mode bookkeeping (its
            # debug check asks the loop again): call_soon's hot path.
            handle = _new_handle(_Handle)
            handle._context = _copy_context() if context is None else context
            handle._loop = self
            handle._callback = callback
            handle._args = args
            handle._cancelled = False
            handle._repr = None
            handle._source_traceback = None
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any, context: Any = None) -> Any:  # type: ignore[override]
        if self._closed:
            raise LoopError("Event loop is closed")
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")  # type: ignore[attr-defined]
        handle = _Handle(callback, args, self, context)
        if handle._source_traceback:  # type: ignore[attr-defined]
            del handle._source_traceback[-1]  # type: ignore[attr-defined]
        self._ready.append(handle)
        if self._thread_id != threading.get_ident():
            self._wake()
        return handle

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any, context: Any = None) -> Any:  # type: ignore[override]
        if delay is None:
            raise TypeError("delay must not be None")
        timer = self.call_at(self.time() + delay, callback, *args, context=context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        return timer

    def call_at(self, when: float, callback: Callable[..., object], *args: Any, context: Any = None) -> Any:  # type: ignore[override]
        if when is None:
            raise TypeError("when cannot be None")
        if self._closed:
            raise LoopError("Event loop is closed")
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")  # type: ignore[attr-defined]
        timer = _TimerHandle(when, callback, args, self, context)
        if timer._source_traceback:  # type: ignore[attr-defined]
            del timer._source_traceback[-1]  # type: ignore[attr-defined]
        heapq.heappush(self._timers, (when, next(self._timer_seq), timer))  # type: ignore[misc]
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def _timer_handle_cancelled(self, handle: Any) -> None:
        if handle._scheduled:
            self._timer_cancelled()

    def _expire_timers(self, now: float) -> None:
        timers = self._timers
        ready = self._ready
        while timers and timers[0][0] <= now:
            timer: Any = heapq.heappop(timers)[2]
            if timer._cancelled:
                self._cancelled_timers -= 1
            else:
                # asyncio's handles keep their loop (for the exception handler);
                # _scheduled says the loop no longer counts a cancel().
                if type(timer) is _TimerHandle:
                    timer._scheduled = False  # type: ignore[attr-defined]
                else:
                    timer._loop = None
                ready.append(timer)

    def _add_callback(self, handle: Any) -> None:
        if not handle._cancelled:
            own = isinstance(handle, (_Handle, _TimerHandle))
            self._ready.append(handle if own else _KernelHandle(_run_handle, handle))

    def _check_thread(self, what: str | None = None) -> None:
        if self._thread_id is None:
            return
        if self._thread_id != threading.get_ident():
            raise RuntimeError("Non-thread-safe operation invoked on an event loop other than the current one")

    # -- readiness: asyncio's selector code, the kernel's handlers ----------------------------

    def _set_asyncio_handler(self, fd: int, direction: int, handle: Any) -> None:
        """Make the kernel run the asyncio ``handle`` when ``fd`` is ready (None: stop)."""
        current = self._io_handlers.get(fd)
        existing = None if current is None else current[direction]
        if handle is None:
            if existing is not None:
                self._clear_io_handler(fd, direction)
        elif existing is None or existing.args[0] is not handle:
            self._set_io_handler(fd, direction, _KernelHandle(_run_handle, handle))

    # add_reader & co. are asyncio's (they check transports and keep contexts);
    # the kernel's own methods stay reachable as Loop.add_reader(loop, ...).
    add_reader = asyncio.SelectorEventLoop.add_reader  # type: ignore[assignment]
    remove_reader = asyncio.SelectorEventLoop.remove_reader
    add_writer = asyncio.SelectorEventLoop.add_writer  # type: ignore[assignment]
    remove_writer = asyncio.SelectorEventLoop.remove_writer

    def add_signal_handler(self, sig: int, callback: Callable[..., object], *args: Any) -> None:  # type: ignore[override]
        """asyncio's, with the kernel's timing and the kernel's way back.

        The callback is queued the moment the signal arrives, as the kernel
        does: asyncio queues it only when its loop next reads the self-pipe,
        and a task made meanwhile would take its first step before the
        handler ran (Ctrl-C while ``run()`` makes the main task must cancel
        it first). :meth:`remove_signal_handler` and :meth:`close` give back
        the handler and the wake-up fd found here, where asyncio resets them
        to the defaults (and would take Ctrl-C away from ``run()``).
        """
        if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)  # type: ignore[attr-defined]
        self._check_closed()
        if self._previous_wakeup_fd is None:
            try:
                self._previous_wakeup_fd = signal.set_wakeup_fd(self._csock.fileno())
            except (ValueError, OSError) as exc:  # not the main thread
                raise RuntimeError(str(exc)) from None
        fresh = sig not in self._signal_handlers
        previous = signal.getsignal(sig) if fresh else None
        # Not through asyncio's add_signal_handler: it installs a no-op Python
        # handler first and reads signals from the self-pipe, which this loop
        # does not; a signal landing between the two would be lost. Here the
        # handle is in place before the handler, so a signal at any moment
        # reaches the old handler or the new one.
        self._signal_handlers[sig] = events.Handle(callback, args, self, None)  # type: ignore[assignment]  # asyncio's _handle_signal reads them
        try:
            signal.signal(sig, self._on_asyncio_signal)
            signal.siginterrupt(sig, False)  # SA_RESTART, as asyncio sets
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                signal.set_wakeup_fd(self._previous_wakeup_fd)
                self._previous_wakeup_fd = None
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise
        if fresh:
            self._previous_signal_handlers[sig] = previous

    def remove_signal_handler(self, sig: int) -> bool:
        self._check_signal(sig)  # type: ignore[attr-defined]
        return Loop.remove_signal_handler(self, sig)

    def _on_asyncio_signal(self, signum: int, frame: object) -> None:
        # Between two bytecodes of the main thread: only enqueue (and wake).
        self._handle_signal(signum)  # type: ignore[attr-defined]

    def _process_self_data(self, data: bytes) -> None:
        pass  # signals were queued by _on_asyncio_signal; their bytes only woke the poll

    def _write_to_self(self) -> None:
        self._wake()

    def _drain_waker(self) -> None:
        # As the kernel's, but the bytes may be signal numbers written by
        # signal.set_wakeup_fd for asyncio's signal handlers.
        recv = self._waker_read.recv
        while True:
            try:
                data = recv(4096)
            except InterruptedError:
                continue
            except OSError:
                break
            if not data:
                break
            self._process_self_data(data)
        self._wake_pending = False

    # -- running ---------------------------------------------------------------------------------

    def run_forever(self) -> None:
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)  # type: ignore[attr-defined]
        old_agen_hooks = sys.get_asyncgen_hooks()
        self._thread_id = threading.get_ident()
        _context.thread_context.loop = self
        try:
            sys.set_asyncgen_hooks(
                firstiter=self._asyncgen_firstiter_hook,  # type: ignore[attr-defined]
                finalizer=self._asyncgen_finalizer_hook,  # type: ignore[attr-defined]
            )
            events._set_running_loop(self)
            if self._debug:
                self._run_until_stopped_debug()
            else:
                self._run_until_stopped()
        finally:
            self._stopping = False
            self._thread_id = None
            _context.thread_context.loop = None
            events._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)  # type: ignore[attr-defined]
            sys.set_asyncgen_hooks(*old_agen_hooks)

    def run_until_complete(self, future: Any) -> Any:
        if not isinstance(future, _CfFuture) and (asyncio.isfuture(future) or not hasattr(future, "add_done_callback")):
            return asyncio.SelectorEventLoop.run_until_complete(self, future)
        # A tasklets (or concurrent.futures) future: the kernel's way.
        self._check_closed()
        self._check_running()
        return Loop.run_until_complete(self, future)  # type: ignore[arg-type]  # any future-like serves

    def stop(self) -> None:
        Loop.stop(self)

    def is_running(self) -> bool:
        return self._thread_id is not None

    def close(self) -> None:
        if self.is_running():
            raise LoopError("Cannot close a running event loop")
        if self._closed:
            return
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception as exc:
                self.call_exception_handler(
                    {"message": f"exception in close callback {callback!r}", "exception": exc, "loop": self}
                )
        # Signals first: asyncio's close shuts the self-pipe before it resets
        # the wake-up fd, and a signal in between is written to a closed fd.
        for sig in list(self._signal_handlers):
            self.remove_signal_handler(sig)
        poller = self._poller
        asyncio.SelectorEventLoop.close(self)  # transports' self-pipe, executor, signal handlers, selector
        self._timers.clear()
        self._io_handlers.clear()
        poller.close()


def new_event_loop(*, clock: Clock | None = None, debug: bool | None = None) -> EventLoop:
    """A new :class:`EventLoop`; the loop factory for ``asyncio.run``, ``asyncio.Runner`` and uvicorn."""
    return EventLoop(clock=clock, debug=debug)
