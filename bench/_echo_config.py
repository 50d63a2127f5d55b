"""What a run of ``bench/net_echo.py`` is made of: the contenders, and how much to run.

Every other ``_echo_*`` module imports from here and nothing here imports
them: the names of the servers and the sizes of a run are the one thing the
process management, the profiling phase and the report all share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ALL_KINDS = ("tasklets", "asyncio-streams", "asyncio-protocols", "uvloop-streams", "uvloop-protocols")
TLS_KINDS = ("tasklets", "asyncio-streams", "uvloop-streams")
#: The C epoll echo server: not a contender, the kernel's floor (plain TCP only).
FLOOR = "c-floor"
#: The thinnest task-and-future server in pure Python: not a contender, the floor of our design.
TASK_FLOOR = "task-floor"
#: The tasklets server imported from ``--baseline DIR``: an A/B against another copy, in the same rounds.
BASELINE = "tasklets-base"
LABELS = {
    FLOOR: "C epoll (floor)",
    TASK_FLOOR: "task floor (pure Python)",
    BASELINE: "tasklets (baseline)",
    "tasklets": "tasklets",
    "asyncio-streams": "asyncio streams",
    "asyncio-protocols": "asyncio protocols",
    "uvloop-streams": "uvloop streams",
    "uvloop-protocols": "uvloop protocols",
}


@dataclass
class Config:
    """How much to run; ``--quick`` and the full run differ only here."""

    duration: float
    warmup: float
    rounds: int
    cells: Sequence[tuple[int, int]]
    tls_cells: Sequence[tuple[int, int]]
    idle_conns: int
    memory_rounds: int
    profile_seconds: float


FULL = Config(
    duration=2.0,
    warmup=0.5,
    rounds=5,
    cells=((100, 10), (100, 100), (16384, 10), (16384, 100)),
    tls_cells=((100, 10), (16384, 10), (16384, 100)),
    idle_conns=2000,
    memory_rounds=3,
    profile_seconds=4.0,
)
QUICK = Config(
    duration=0.4,
    warmup=0.1,
    rounds=3,
    cells=((100, 10), (100, 100), (16384, 10), (16384, 100)),
    tls_cells=((16384, 10),),
    idle_conns=1000,
    memory_rounds=1,
    profile_seconds=1.5,
)
