"""Timeouts of the HTTP client, and the marker of an argument left to the client's default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT", "Timeout"]


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()


@dataclass(frozen=True, slots=True)
class Timeout:
    """Timeouts in seconds (None: no limit).

    Attributes:
        connect: resolving, connecting and the TLS handshake.
        read: the longest wait between two bytes of the response.
        total: the whole exchange, redirects and body included.
        pool: waiting for a free connection when the pool is at its limits. No
            limit by default: that wait is the program's own queue (start 100
            requests with 20 connections and the last ones wait their turn), not
            a sign that anything is wrong.
    """

    connect: float | None = 30.0
    read: float | None = 60.0
    total: float | None = None
    pool: float | None = None

    @classmethod
    def of(cls, value: float | Timeout | None) -> Timeout:
        """A number means connect and read timeouts, as urllib's ``timeout`` does; the pool wait stays unbounded."""
        if isinstance(value, Timeout):
            return value
        return cls(connect=value, read=value, total=None, pool=None)


