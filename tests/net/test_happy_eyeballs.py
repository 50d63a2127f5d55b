"""The Happy-Eyeballs policy, as a pure function: no sockets, no clock."""

from __future__ import annotations

import socket

from tasklets.net._happy_eyeballs import Attempts, Plan, interleave, plan


def test_first_attempt_starts_at_once() -> None:
    assert plan(Attempts(count=3), now=0.0) == Plan(start=0)


def test_next_attempt_waits_for_the_delay() -> None:
    state = Attempts(count=3, started=1, in_flight=1, last_start=10.0, delay=0.25)
    assert plan(state, now=10.1) == Plan(wake_at=10.25)
    assert plan(state, now=10.25) == Plan(start=1)


def test_a_failure_starts_the_next_attempt_at_once() -> None:
    state = Attempts(count=3, started=1, in_flight=0, last_start=10.0, delay=0.25)
    assert plan(state, now=10.01) == Plan(start=1)


def test_when_all_started_wait_for_those_in_flight() -> None:
    state = Attempts(count=2, started=2, in_flight=1, last_start=10.0)
    assert plan(state, now=99.0) == Plan()


def test_give_up_when_every_attempt_failed() -> None:
    assert plan(Attempts(count=2, started=2, in_flight=0, last_start=1.0), now=2.0) == Plan(give_up=True)
    assert plan(Attempts(count=0), now=0.0) == Plan(give_up=True)


def test_a_whole_staggered_run() -> None:
    state = Attempts(count=3, delay=0.25)
    started = []
    now = 0.0
    for now in (0.0, 0.1, 0.25, 0.3, 0.5, 0.7):
        decision = plan(state, now)
        while decision.start is not None:
            started.append((decision.start, now))
            state.started += 1
            state.in_flight += 1
            state.last_start = now
            decision = plan(state, now)
    assert started == [(0, 0.0), (1, 0.25), (2, 0.5)]


def test_interleave_alternates_families_keeping_resolver_order() -> None:
    v6 = [(socket.AF_INET6, 1, 6, "", (f"::{i}", 80, 0, 0)) for i in range(1, 4)]
    v4 = [(socket.AF_INET, 1, 6, "", (f"10.0.0.{i}", 80)) for i in range(1, 3)]
    ordered = interleave([*v6, *v4])
    assert [a[4][0] for a in ordered] == ["::1", "10.0.0.1", "::2", "10.0.0.2", "::3"]
    assert interleave([]) == []
    assert interleave(v4) == v4
