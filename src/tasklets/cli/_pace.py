"""Request pacing for ``tasklets fetch``: at most R requests a second, overall and per host.

A pure policy (state and ``now`` in, a wait out), the generic cell rate
algorithm in its "virtual scheduling" form: each key remembers the earliest
time its next request may start; a request takes that slot (or ``now``, if
later) and moves it on by ``1 / rate``. So requests are spaced evenly, with
no burst at the start and none after an idle spell, and the waits of many
requests queued at once are handed out in order. Keys whose slot is in the
past are forgotten, so a list of a million hosts costs memory only for the
hosts being requested now.
"""

from __future__ import annotations

import math

__all__ = ["Pacer"]

#: Forget past slots once this many keys are remembered (the check is then amortised).
_PRUNE_AT = 1024


class Pacer:
    """Spaces starts ``1 / rate`` seconds apart for each key.

    Args:
        rate: starts per second for each key (a positive, finite number).
    """

    def __init__(self, rate: float) -> None:
        if not 0 < rate < math.inf:
            raise ValueError(f"a rate is a positive number of requests per second, got {rate!r}")
        self.interval = 1.0 / rate
        self._next: dict[str, float] = {}
        self._prune_at = _PRUNE_AT

    def reserve(self, key: str, now: float) -> float:
        """Take the next start of ``key``; the seconds to wait for it from ``now`` (0: start at once)."""
        slot = max(now, self._next.get(key, now))
        self._next[key] = slot + self.interval
        if len(self._next) >= self._prune_at:
            self._next = {k: t for k, t in self._next.items() if t > now}
            self._prune_at = max(_PRUNE_AT, 2 * len(self._next))
        return slot - now

    def __len__(self) -> int:
        """The keys remembered (for tests of the memory bound)."""
        return len(self._next)
