"""What a task is to asyncio: the ``asyncio.Task`` methods asyncio and anyio call, and its asyncio steps.

A task of an asyncio loop (:class:`~tasklets.asyncio.EventLoop`, or a
:class:`~tasklets._guest.GuestLoop` inside a foreign asyncio loop) is
registered with asyncio when it is made, so ``asyncio.all_tasks()`` lists it,
and each of its steps makes it ``asyncio.current_task()`` of that asyncio
loop (``asyncio.timeout()``, task groups, anyio's cancel scopes and sniffio
ask it). ``_register_task`` is asyncio's own (C on 3.11 to 3.13); the step
writes the dict that ``_enter_task``/``_leave_task`` write, and
``current_task()`` reads, itself (see :data:`asyncio_current_tasks`).
Whether a task is asyncio's is decided when it is made, so tasks of plain
loops pay one test per step.
"""

from __future__ import annotations

from asyncio.tasks import _current_tasks, _register_task  # type: ignore[attr-defined]  # typeshed lacks the dict; Cancelled is its CancelledError
from collections.abc import Callable
from concurrent.futures._base import PENDING
from typing import Any

from ._aio_loop import EventLoop
from ._exceptions import Cancelled
from ._guest import GuestLoop

__all__ = ["AsyncioTask", "asyncio_current_tasks", "register_task"]


#: Make a task of an asyncio loop one of ``asyncio.all_tasks()`` (until it is collected).
register_task: Callable[[Any], None] = _register_task
#: asyncio loop -> its current task: the dict ``asyncio.current_task()`` reads (C's own on 3.11 to
#: 3.13) and ``_enter_task``/``_leave_task`` write. A task's step writes it directly: two calls and
#: a frame fewer per step, the price of being asyncio's current task.
asyncio_current_tasks: dict[Any, Any] = _current_tasks


class AsyncioTask:
    """The asyncio side of :class:`~tasklets.Task` (a mixin: it owns no state)."""

    _loop: Any
    _coro: Any
    _cancels: int
    _must_cancel: bool
    _cancel_message: str | None
    _waiting_on: Any
    _state: str
    name: str
    _step: Callable[[], None]

    def get_loop(self) -> Any:
        """The asyncio loop that steps this task: :attr:`loop`, or for a guest task the foreign loop it runs in."""
        loop = self._loop
        return loop.host if type(loop) is GuestLoop else loop

    def get_coro(self) -> Any:
        """The generator or coroutine the task runs (None once it is done)."""
        return self._coro

    def get_name(self) -> str:
        """asyncio's name for :attr:`name`."""
        return self.name

    def set_name(self, value: object) -> None:
        """asyncio's way to set :attr:`name`."""
        self.name = str(value)

    def cancelling(self) -> int:
        """How many cancellation requests are pending (asyncio's count, for ``timeout()`` and task groups)."""
        return self._cancels

    def uncancel(self) -> int:
        """Take back one cancellation request; return how many remain (asyncio's contract)."""
        if self._cancels > 0:
            self._cancels -= 1
            if self._cancels == 0:
                self._must_cancel = False
        return self._cancels

    @property
    def _asyncio_future_blocking(self) -> bool | None:
        # What asyncio.isfuture() asks. While its asyncio loop is not running,
        # a pending task of that loop passes for an asyncio future: asyncio.Runner
        # cancels and gathers all_tasks() there, outside the loop, and an
        # awaitable that is no future would need a current event loop (there
        # is none under a loop factory: uvloop.run). Elsewhere asyncio awaits a
        # task as an awaitable, whose done-callbacks it need not schedule.
        loop = self._loop
        if isinstance(loop, (EventLoop, GuestLoop)) and self._state is PENDING and not loop.is_running():
            return False
        return None

    def _make_cancelled_error(self) -> Cancelled:
        # asyncio.gather's, on a child that passed for an asyncio future (above).
        return Cancelled(self._cancel_message) if self._cancel_message else Cancelled()

    @property
    def _fut_waiter(self) -> Any:
        # What anyio reads on asyncio tasks to decide whether a cancellation is due.
        return self._waiting_on
