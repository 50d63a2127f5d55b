"""Helpers for testing code built on tasklets.

:class:`VirtualClock` makes time pass only when the loop has nothing to do:
when every task is blocked and no I/O arrives within ``autojump_threshold``
real seconds, it jumps straight to the next timer. A test of a 30-second
timeout then takes milliseconds, and its outcome does not depend on how busy
the machine is::

    clock = VirtualClock()
    tasklets.run(main, clock=clock)

Work handed to the default thread pool (``to_thread``, name resolution, a
foreign future's ``cancel()``) is real: the clock does not jump while such
work is in flight, so a timeout cannot expire before a thread that is about
to answer gets to. (Work in a thread pool of your own is invisible to it.)

:func:`run_strict` runs a test's main task on a fresh loop and fails the test
if anything is left behind: a task, a timer, a reader or writer, a
descriptor. :func:`stream_pair` gives two connected streams without a server.
:class:`PollStepper` resumes a task after each poll of its loop, to cancel an
operation at each of its waits in turn.

Two fakes stand in for the world outside, on the loop's clock (exact under a
:class:`VirtualClock`): :class:`FakeResolver` answers name lookups from a
table (``open_connection(..., resolver=)``, ``Connector(resolver=)``), and
:class:`FakeConnector` serves an HTTP client's connections from memory
(``Client(connector=)``), each a :func:`stream_pair` whose other end a server
function of the test answers::

    def serve(stream):
        yield stream.read_until(b"\r\n\r\n")
        yield stream.write(b"HTTP/1.1 204 No Content\r\n\r\n")

    connector = FakeConnector(serve, delay=0.5)
    client = tasklets.http.Client(connector=connector, proxies=None)
"""

from __future__ import annotations

import math
import os
import socket
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from types import GeneratorType
from typing import Any

from ._clock import Clock, SystemClock
from ._combinators import sleep
from ._exceptions import Cancelled, CancelledError, ConnectTimeout
from ._future import Future, is_future_like
from ._loop import Loop
from ._loop_statistics import LoopStatistics
from ._task import Task
from ._where import loop_for_caller, work_in_threads
from .http import Connector, Route
from .net import Stream
from .net._resolver import AddressInfo

__all__ = [
    "FakeConnector",
    "FakeResolver",
    "LeftBehind",
    "PollStepper",
    "VirtualClock",
    "open_descriptors",
    "run_strict",
    "stream_pair",
]

# How long the loop blocks for real at a time while threads work for it (it
# wakes at once when they hand something over).
_THREAD_POLL = 0.01


class VirtualClock:
    """A clock that jumps to the next deadline whenever the loop is idle.

    Args:
        start: the clock's initial reading.
        autojump_threshold: real seconds the loop must be idle before the
            clock jumps (0: jump as soon as nothing is ready).
        thread_grace: real seconds the clock holds still while work handed to
            the default thread pool is in flight and nothing else happens;
            past that it jumps anyway (a thread blocked for good must not
            hang the test).
    """

    def __init__(self, start: float = 0.0, *, autojump_threshold: float = 0.0, thread_grace: float = 10.0) -> None:
        self._now = float(start)
        self.autojump_threshold = autojump_threshold
        self.thread_grace = thread_grace
        self._real = SystemClock.time
        self._held_since: float | None = None
        self._held_for: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"<VirtualClock at {self._now:.6f}>"

    def time(self) -> float:
        """The virtual time."""
        return self._now

    def jump(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (the next loop iteration fires what is due)."""
        if seconds < 0:
            raise ValueError(f"time only moves forward; cannot jump by {seconds!r}")
        self._now += seconds

    def sleep_time(self, timeout: float | None) -> float | None:
        """Block for real only for the autojump threshold (longer while threads work), never for virtual time."""
        if timeout is None or timeout == math.inf:
            return None  # a timer at infinity never fires: block as a real clock would
        if timeout <= 0:
            return 0
        if work_in_threads()[0]:
            return max(self.autojump_threshold, _THREAD_POLL)
        return self.autojump_threshold

    def idle(self, deadline: float | None) -> None:
        """Nothing happened while idle: jump to the next timer, unless threads still work for the loop."""
        if deadline is None or deadline <= self._now or deadline == math.inf:
            return
        threads = work_in_threads()
        if threads[0]:
            now = self._real()
            if self._held_for != threads:  # new work, or some finished: count the grace from now
                self._held_for, self._held_since = threads, now
            assert self._held_since is not None
            if now - self._held_since < self.thread_grace:
                return
        self._held_for = self._held_since = None
        self._now = deadline


class LeftBehind(AssertionError):
    """A test's loop still held tasks, timers, registrations or descriptors when its main task ended."""


def open_descriptors() -> dict[int, str]:
    """The descriptors open in this process, with what they point at (empty where ``/proc`` is missing)."""
    found: dict[int, str] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # the listing's own descriptor, closed already
    return found


def run_strict(
    fn: Callable[..., Any],
    /,
    *args: Any,
    clock: Clock | None = None,
    timeout: float = 30.0,
    check_descriptors: bool = False,
) -> Any:
    """Run ``fn(*args)`` as the main task of a fresh loop; fail if it leaves anything behind.

    Unlike ``tasklets.run``, leftovers are not cancelled quietly: a task,
    still pending when the main task has finished (and the callbacks it
    enqueued have run), or a timer or reader/writer registration still there
    once the loop's close callbacks have released what lives as long as the
    loop (a client's pooled connections), fails the test with
    :class:`LeftBehind`, naming them; so does a descriptor opened during the
    run and still open, with ``check_descriptors`` (only where no other
    thread opens descriptors meanwhile). The leftovers are then cleaned up,
    so one failing test does not break the next.

    Args:
        fn: a generator function, ``async def`` or ``@task`` function: the main task.
        *args: its arguments.
        clock: the loop's clock (a :class:`VirtualClock`, say).
        timeout: real seconds after which the main task is cancelled (a
            hung test fails rather than hangs).
        check_descriptors: also fail on descriptors left open.

    Returns:
        What the main task returned.
    """
    before = open_descriptors() if check_descriptors else {}
    loop = Loop(clock=clock)
    holder: dict[str, Task[Any]] = {}

    def start() -> None:
        main = Task(_main(fn, args), loop=loop, name="test-main")
        holder["main"] = main
        main.add_done_callback(lambda _: loop.stop())

    def give_up() -> None:
        main = holder.get("main")
        if main is not None:
            main.cancel(f"the test took longer than {timeout} s")

    loop.call_soon(start)
    # Real seconds, not the loop's: a virtual clock would reach any deadline at once.
    watchdog = threading.Timer(timeout, loop.call_soon_threadsafe, (give_up,))
    watchdog.daemon = True
    watchdog.start()
    closed = False
    try:
        loop.run_forever()
        watchdog.cancel()
        result = holder["main"].result()
        # Let callbacks that the last step enqueued (a close finishing) run.
        for _ in range(3):
            if not loop.statistics().ready:
                break
            loop.call_soon(loop.stop)
            loop.run_forever()
        left = loop.statistics().describe() if loop.statistics().tasks else []
        if not left:
            # What is released with the loop (a client's pooled connections)
            # is released in its close callbacks: look after those.
            at_close: list[LoopStatistics] = []
            loop.add_close_callback(lambda: at_close.append(loop.statistics()))
            closed = True
            loop.close()
            left = at_close[0].describe()
        if left:
            raise LeftBehind("the test left behind " + "; ".join(left))
        return result
    finally:
        watchdog.cancel()
        if not closed:
            _clean_up(loop)
            loop.close()
        if check_descriptors:
            leaked = {fd: target for fd, target in open_descriptors().items() if fd not in before}
            if leaked:
                raise LeftBehind(f"the test left descriptors open: {leaked!r}")


def _main(fn: Callable[..., Any], args: tuple[Any, ...]) -> Generator[Any, Any, Any]:
    """``fn(*args)`` as a task's body, whatever it returns (as ``tasklets.run`` takes it)."""
    made = fn(*args)
    if hasattr(made, "send") and hasattr(made, "throw") and not is_future_like(made):
        return (yield from made) if isinstance(made, GeneratorType) else (yield Task(made))
    if is_future_like(made):
        return (yield made)
    return made


def _clean_up(loop: Loop) -> None:
    """Cancel what is left and let it run its cleanup; drop the registrations nobody removed."""
    for task in loop.statistics().tasks:
        task.cancel()
    for _ in range(5):
        if not loop.statistics().tasks:
            break
        loop.call_later(0.01, loop.stop)
        loop.run_forever()
    for fd in loop.statistics().registrations:
        for remove in (loop.remove_reader, loop.remove_writer, loop.unwatch_reader, loop.unwatch_writer):
            remove(fd)  # on an asyncio EventLoop, asyncio's registrations and the kernel's are apart


def stream_pair(*, loop: Loop, **options: Any) -> tuple[Stream, Stream]:
    """Two connected streams over a socket pair of this process: no server, no port, no network.

    Args:
        loop: the loop both streams live on (``tasklets.current_loop()`` in a task).
        **options: passed to both streams (``timeout``, ``high_water``...).

    Returns:
        ``(a, b)``: what is written to one is read from the other. Close both.
    """
    a, b = socket.socketpair()
    return Stream(a, loop=loop, **options), Stream(b, loop=loop, **options)


class PollStepper:
    """Resumes a task after each poll of its loop for I/O, to interrupt an operation at every one of its waits.

    ``yield stepper.step()`` resolves once the loop has polled once more (and
    run what that poll woke). An operation that waits on several things in
    turn (connect, handshake, tunnel) can then be cancelled after 0, 1, 2...
    polls, reaching each of its waits in turn, with no timing involved::

        with PollStepper(tasklets.current_loop()) as stepper:
            for polls in range(20):
                opening = open_connection(host, port)
                for _ in range(polls):
                    yield stepper.step()
                opening.cancel()

    It is a one-shot writer on a socket that is always writable, so each step
    costs one registration and no thread.
    """

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self._ours, self._other = socket.socketpair()

    def step(self) -> Future[None]:
        """A future resolved after the loop's next poll; use it from the loop's own thread."""
        fd = self._ours.fileno()
        stepped: Future[None] = Future()

        def writable() -> None:
            self.loop.remove_writer(fd)
            stepped.set_result(None)

        self.loop.add_writer(fd, writable)
        return stepped

    def close(self) -> None:
        self._ours.close()
        self._other.close()

    def __enter__(self) -> PollStepper:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FakeResolver:
    """A resolver that answers from a table, after a delay on the loop's clock.

    For ``open_connection(..., resolver=)`` and ``Connector(resolver=)``. A
    name maps to its addresses, best first: ``"127.0.0.1"`` or ``"::1"``
    (with the port asked for), or ``("127.0.0.1", 8080)`` (with that port,
    to send one name's addresses to different local servers); or to an
    exception, which the lookup raises (a ``socket.gaierror`` becomes
    ``NameResolutionError``, as from the system's resolver). A name not in
    the table does not resolve.

    Args:
        names: the table.
        delay: seconds each lookup takes, or a mapping of name to seconds
            (names not in it answer at once).

    Attributes:
        lookups: ``(loop time, host, family)`` of every lookup, in order.
    """

    def __init__(
        self,
        names: Mapping[str, Sequence[str | tuple[str, int]] | BaseException],
        *,
        delay: float | Mapping[str, float] = 0.0,
    ) -> None:
        self.names = dict(names)
        self.delay = delay
        self.lookups: list[tuple[float, str, int]] = []

    def __repr__(self) -> str:
        return f"<FakeResolver names={sorted(self.names)!r}>"

    def resolve(self, host: str, port: int | None, family: int) -> Future[list[AddressInfo]]:
        """A future of ``host``'s entries (``getaddrinfo``'s shape), due after the delay."""
        loop = loop_for_caller()
        self.lookups.append((loop.time(), host, family))
        delay = self.delay if isinstance(self.delay, (int, float)) else self.delay.get(host, 0.0)
        return Task(self._answer(host, port, family, delay), loop=loop, name=f"FakeResolver {host!r}")

    def _answer(self, host: str, port: int | None, family: int, delay: float) -> Generator[Any, Any, list[AddressInfo]]:
        if delay:
            yield sleep(delay)
        entry = self.names.get(host)
        if entry is None:
            raise socket.gaierror(socket.EAI_NONAME, f"{host!r} is not in the FakeResolver's table")
        if isinstance(entry, BaseException):
            raise entry
        infos = [_address_info(address, port) for address in entry]
        infos = [info for info in infos if family in (0, info[0])]
        if not infos:
            raise socket.gaierror(socket.EAI_NONAME, f"{host!r} has no address of family {family!r}")
        return infos


def _address_info(address: str | tuple[str, int], port: int | None) -> AddressInfo:
    host, port = (address, port) if isinstance(address, str) else address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.inet_pton(family, host)
    except (OSError, TypeError) as exc:
        raise ValueError(
            f"a FakeResolver answers with numeric addresses ('127.0.0.1', '::1', ('127.0.0.1', port)), not {address!r}"
        ) from exc
    if family == socket.AF_INET6:
        return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))


class FakeConnector(Connector):
    """Serves an HTTP client's connections from memory: ``Client(connector=FakeConnector(serve))``.

    Each new connection is a :func:`stream_pair`: the client gets one end,
    and a task runs ``serve(stream)`` on the other (a generator function,
    ``async def`` or ``@task`` function; the stream is closed when it
    returns). No proxy, TLS or name resolution takes place: every route gets
    the same kind of connection, and ``connects`` tells which were asked for.
    ``delay`` and ``error`` may be changed between requests.

    Args:
        serve: the server function, given the server's end of each connection.
        delay: seconds, on the loop's clock, that each connect takes. Longer
            than the connect timeout, the connect fails with
            ``HTTPConnectTimeout`` when that timeout is due.
        error: an exception that each connect raises after ``delay`` (an
            ``OSError`` becomes the client's ``ConnectFailed``, as a refused
            connection does), or None.
        parser: the client's HTTP/1.1 parser (``"auto"``, ``"h11"``, ``"httptools"``).

    Attributes:
        connects: ``(loop time, route)`` of every connect asked for, in order.
    """

    def __init__(
        self,
        serve: Callable[[Stream], Any],
        *,
        delay: float = 0.0,
        error: BaseException | None = None,
        parser: str = "auto",
    ) -> None:
        super().__init__(parser=parser)
        self.serve = serve
        self.delay = delay
        self.error = error
        self.connects: list[tuple[float, Route]] = []
        self._servers: list[Task[Any]] = []

    @property
    def serving(self) -> int:
        """Server tasks still running (one per connection its client has not closed)."""
        return sum(1 for server in self._servers if not server.done())

    def open_stream(self, route: Route, timeout: float | None) -> Generator[Any, Any, Stream]:
        """The client's end of a new :func:`stream_pair`, after ``delay`` (or ``error``, or a timeout)."""
        loop = loop_for_caller()
        self.connects.append((loop.time(), route))
        delay, error = self.delay, self.error
        if timeout is not None and delay > timeout:
            yield sleep(timeout)
            origin = route.origin
            raise ConnectTimeout(
                f"connecting to {origin} took longer than {timeout} s", host=origin.host, port=origin.port
            )
        if delay:
            yield sleep(delay)
        if error is not None:
            raise error
        client, server = stream_pair(loop=loop)
        self._servers.append(Task(self._serve(server), loop=loop, name=f"FakeConnector server for {route.origin}"))
        return client

    def _serve(self, stream: Stream) -> Generator[Any, Any, None]:
        try:
            yield from _main(self.serve, (stream,))
        finally:
            stream.close()  # what the server function wrote is still flushed

    def close(self) -> Task[None]:
        """Stop the server tasks still running; a task that fails with the first error a server function raised.

        Close the client first: a server then sees its connections end.
        """
        return Task(self._close(), loop=loop_for_caller(), name="FakeConnector.close")

    def _close(self) -> Generator[Any, Any, None]:
        for server in self._servers:
            server.cancel()
        errors: list[BaseException] = []
        for server in self._servers:
            try:
                yield server
            except (Cancelled, CancelledError):
                pass
            except BaseException as exc:
                errors.append(exc)
        self._servers.clear()
        if errors:
            raise errors[0]
