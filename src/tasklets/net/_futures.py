"""Futures born done, for the fast paths of streams (no lock needed: nobody else sees them yet)."""

from __future__ import annotations

from concurrent.futures._base import FINISHED
from typing import Any

from .._future import Future

__all__ = ["done", "failed", "WRITTEN"]


def done(value: Any) -> Future[Any]:
    """A future already resolved with ``value``."""
    future: Future[Any] = Future()
    future._result = value
    future._state = FINISHED
    return future


def failed(exc: BaseException) -> Future[Any]:
    """A future already failed with ``exc``."""
    future: Future[Any] = Future()
    future._exception = exc
    future._state = FINISHED
    return future


#: The future of every write that needed no waiting. It is done, so sharing it
#: is safe: it cannot be cancelled or completed again, and callbacks run at once.
WRITTEN = done(None)
