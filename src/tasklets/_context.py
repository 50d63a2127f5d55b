"""Which loop runs in this thread.

The lowest module of the core: futures consult it to refuse a blocking
``result()`` on a loop thread, the loop sets it while it runs, and tasks and
timers use it to find the loop to schedule on.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._loop import Loop


class _ThreadContext(threading.local):
    loop: Loop | None = None


thread_context = _ThreadContext()


def running_loop() -> Loop | None:
    """The loop running in the calling thread, or None."""
    return thread_context.loop


def _forget_loop_after_fork() -> None:
    # The child's only thread is the one that forked; if it was running a
    # loop, that loop's poller and waker are the parent's. Like asyncio, the
    # child starts with no running loop, so it may tasklets.run() its own.
    thread_context.loop = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_loop_after_fork)
