"""Happy Eyeballs (RFC 8305) as a pure policy: state and ``now`` in, actions out.

Theory of operation
-------------------
A host name may resolve to several addresses, some of which do not answer
(a broken IPv6 route, a dead replica). Trying them one after the other makes
every dead address cost a full connect timeout; trying all at once floods the
network. RFC 8305 staggers them: start the first attempt, and start the next
one when ``delay`` (250 ms by default) has passed without a connection, or at
once when every attempt in flight has failed. The first attempt to connect
wins and the others are cancelled.

This module only decides. :func:`plan` looks at an :class:`Attempts` record
and the time and says which attempt to start now, when to look again, and
whether to give up; the connector in ``_connect.py`` carries the actions out
with sockets and timers. So the policy is tested without sockets or clocks.

:func:`interleave` orders the resolved addresses as RFC 8305 §4 asks:
alternating address families, starting with the family of the first address
the resolver preferred.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_DELAY", "Attempts", "Plan", "interleave", "plan"]

#: RFC 8305's recommended "Connection Attempt Delay".
DEFAULT_DELAY = 0.25


@dataclass
class Attempts:
    """What the connector has done so far.

    Attributes:
        count: how many addresses there are to try.
        started: how many attempts have been started (always the first ones).
        in_flight: how many of the started attempts are still connecting.
        last_start: when the latest attempt was started (None before the first).
        delay: seconds to wait before starting the next attempt.
    """

    count: int
    started: int = 0
    in_flight: int = 0
    last_start: float | None = None
    delay: float = DEFAULT_DELAY


@dataclass
class Plan:
    """What to do now.

    Attributes:
        start: index of the address to start an attempt on now, or None.
        wake_at: when to consult the policy again even if no attempt
            finishes (None: only when an attempt finishes).
        give_up: every address was tried and failed.
    """

    start: int | None = None
    wake_at: float | None = None
    give_up: bool = False


def plan(state: Attempts, now: float) -> Plan:
    """Decide the next step of a staggered connect.

    Call it after anything changed (an attempt started or failed, the timer
    fired); carry out ``start`` (updating ``state``) and call it again until
    it returns no ``start``.

    Args:
        state: the attempts so far.
        now: the current time on the loop's clock.

    Returns:
        The action to take now.
    """
    if state.started >= state.count:
        # Nothing left to start: wait for the attempts in flight, or give up.
        return Plan(give_up=state.in_flight == 0)
    if state.in_flight == 0 or state.last_start is None:
        return Plan(start=state.started)
    due = state.last_start + state.delay
    if now >= due:
        return Plan(start=state.started)
    return Plan(wake_at=due)


def interleave(addresses: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Alternate address families, keeping the resolver's order within each.

    Args:
        addresses: ``getaddrinfo`` entries ``(family, type, proto, canonname, sockaddr)``.

    Returns:
        The same entries, first family first, then alternating (RFC 8305 §4).
    """
    if not addresses:
        return []
    first_family = addresses[0][0]
    first = [a for a in addresses if a[0] == first_family]
    other = [a for a in addresses if a[0] != first_family]
    ordered: list[tuple[Any, ...]] = []
    for i in range(max(len(first), len(other))):
        if i < len(first):
            ordered.append(first[i])
        if i < len(other):
            ordered.append(other[i])
    return ordered
