"""Every exception tasklets raises, in one place.

Cancellation derives from :class:`BaseException` so that ``except Exception:``
in a task does not swallow it (the same choice asyncio made in Python 3.8,
bpo-32528). Timeouts share one base class, :class:`TimeoutError`, which is
also the builtin :class:`TimeoutError`, so code written against the standard
library catches ours unchanged.
"""

from __future__ import annotations

import builtins
import concurrent.futures

__all__ = [
    "Cancelled",
    "CancelledError",
    "InvalidStateError",
    "LoopError",
    "BlockingResultError",
    "BadYieldError",
    "TimeoutError",
]

#: Raised by ``result()`` of a cancelled future (the stdlib's own class).
CancelledError = concurrent.futures.CancelledError

#: Raised when a future is completed twice (the stdlib's own class).
InvalidStateError = concurrent.futures.InvalidStateError


class Cancelled(BaseException):
    """Thrown into a task at its current ``yield`` when the task is cancelled.

    It is a :class:`BaseException`, so ``except Exception:`` does not catch
    it. A task may catch it to clean up; if it lets it escape, the task ends
    cancelled and its ``result()`` raises :class:`concurrent.futures.CancelledError`.
    """


class TimeoutError(builtins.TimeoutError):
    """Base of every timeout tasklets raises; a subclass of the builtin one."""


class LoopError(RuntimeError):
    """The event loop was used in a way that cannot work (closed, wrong thread, ...)."""


class BlockingResultError(LoopError):
    """``result()`` was called on a pending future from a thread running a loop.

    Blocking there would stop the very loop that must complete the future, so
    the call could never return. The fix is to ``yield`` (or ``await``) the
    future inside a task instead.
    """


class BadYieldError(TypeError):
    """A task yielded something that is neither a future, a list of futures nor None."""
