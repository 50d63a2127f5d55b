"""tasklets: asynchronous I/O where the ``concurrent.futures.Future`` is the one currency.

A task is a generator (or ``async def``) that yields futures and is resumed
with their results. The same futures can be waited on with a blocking
``.result()`` from any thread, come from thread pools, process pools or a Dask
cluster, and be combined with :func:`wait_first`, :func:`as_completed`,
:func:`wait` and :func:`gather`.
"""

from __future__ import annotations

from ._as_completed import as_completed
from ._combinators import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    SignalFuture,
    gather,
    sleep,
    to_thread,
    wait,
    wait_first,
    with_timeout,
    wrap_future,
)
from ._exceptions import (
    AuthenticationError,
    BadYieldError,
    BlockingResultError,
    BodyTooLarge,
    Cancelled,
    CancelledError,
    ConnectFailed,
    ConnectionBroken,
    DecodingError,
    HTTPError,
    InvalidStateError,
    InvalidURL,
    LocalProtocolError,
    LoopError,
    PoolTimeout,
    ProtocolError,
    RemoteProtocolError,
    TimeoutError,
    TooManyRedirects,
    TotalTimeout,
)
from ._future import Future
from ._group import TaskGroup
from ._loop import Handle, Loop, LoopStatistics, TimerHandle
from ._map_unordered import map_unordered
from ._runtime import run
from ._sync import Event, Lock, Queue, QueueEmpty, QueueFull, Semaphore
from ._task import Task, current_task, spawn, task
from ._where import current_loop, default_loop
from .http import Client, Response, urlopen_async
from .net import (
    ConnectError,
    ConnectionRefused,
    ConnectTimeout,
    IncompleteReadError,
    LimitOverrunError,
    NameResolutionError,
    NetworkError,
    ReadTimeout,
    Server,
    Stream,
    StreamClosed,
    StreamError,
    StreamReset,
    TLSCertificateError,
    TLSError,
    TLSHandshakeError,
    WriteBufferFull,
    WriteTimeout,
    open_connection,
    open_unix_connection,
    start_server,
    start_unix_server,
)

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "BadYieldError",
    "BlockingResultError",
    "Cancelled",
    "CancelledError",
    "Event",
    "Future",
    "Handle",
    "InvalidStateError",
    "Lock",
    "Loop",
    "LoopStatistics",
    "LoopError",
    "Queue",
    "QueueEmpty",
    "QueueFull",
    "Semaphore",
    "SignalFuture",
    "Task",
    "TaskGroup",
    "TimeoutError",
    "TimerHandle",
    "as_completed",
    "current_loop",
    "current_task",
    "default_loop",
    "gather",
    "map_unordered",
    "run",
    "sleep",
    "spawn",
    "task",
    "to_thread",
    "wait",
    "wait_first",
    "with_timeout",
    "wrap_future",
    # the HTTP client (tasklets.http)
    "AuthenticationError",
    "BodyTooLarge",
    "Client",
    "ConnectFailed",
    "ConnectionBroken",
    "DecodingError",
    "HTTPError",
    "InvalidURL",
    "LocalProtocolError",
    "PoolTimeout",
    "ProtocolError",
    "RemoteProtocolError",
    "Response",
    "TooManyRedirects",
    "TotalTimeout",
    "urlopen_async",
    # networking (tasklets.net)
    "ConnectError",
    "ConnectTimeout",
    "ConnectionRefused",
    "IncompleteReadError",
    "LimitOverrunError",
    "NameResolutionError",
    "NetworkError",
    "ReadTimeout",
    "Server",
    "Stream",
    "StreamClosed",
    "StreamError",
    "StreamReset",
    "TLSCertificateError",
    "TLSError",
    "TLSHandshakeError",
    "WriteBufferFull",
    "WriteTimeout",
    "open_connection",
    "open_unix_connection",
    "start_server",
    "start_unix_server",
]

__version__ = "0.1.0"
