"""BodyBuffers: lends buffers for large bodies read whole, and keeps those given back within a bound."""

from __future__ import annotations

import pytest

from tasklets.http._body_buffers import BodyBuffers


@pytest.fixture(autouse=True)
def no_leaked_fds() -> None:
    """Overrides the directory's descriptor-leak check: no sockets here."""


def test_a_new_buffer_is_at_least_the_size_asked_for() -> None:
    buffer = BodyBuffers().borrow(1_000_001)
    assert isinstance(buffer, bytearray)
    assert len(buffer) >= 1_000_001


def test_a_buffer_given_back_is_lent_again() -> None:
    buffers = BodyBuffers()
    first = buffers.borrow(1_000_000)
    buffers.give_back(first)
    assert buffers.idle_bytes == len(first)
    assert buffers.borrow(900_000) is first
    assert buffers.idle_bytes == 0


def test_the_smallest_idle_buffer_that_fits_is_lent() -> None:
    buffers = BodyBuffers()
    small, large = buffers.borrow(300_000), buffers.borrow(3_000_000)
    buffers.give_back(large)
    buffers.give_back(small)
    assert buffers.borrow(200_000) is small
    assert buffers.borrow(200_000) is large  # the only one left that fits
    buffers.give_back(small)
    assert buffers.borrow(1_000_000) is not small  # too small: a new one


def test_of_equal_buffers_the_last_given_back_is_lent_first() -> None:
    """The buffer given back last is the likeliest still in the CPU's caches."""
    buffers = BodyBuffers()
    first, second = buffers.borrow(1_000_000), buffers.borrow(1_000_000)
    buffers.give_back(first)
    buffers.give_back(second)
    assert buffers.borrow(1_000_000) is second
    assert buffers.borrow(1_000_000) is first


def test_sizes_are_rounded_up_so_that_near_sizes_share_a_buffer() -> None:
    buffers = BodyBuffers()
    buffer = buffers.borrow(1_048_577)
    buffers.give_back(buffer)
    assert buffers.borrow(1_100_000) is buffer


def test_idle_buffers_are_kept_up_to_the_bound_only() -> None:
    buffers = BodyBuffers(max_idle_bytes=3 * 1024 * 1024)
    lent = [buffers.borrow(1024 * 1024) for _ in range(4)]
    for buffer in lent:
        buffers.give_back(buffer)
    assert buffers.idle_bytes == 3 * 1024 * 1024
    buffers.clear()
    assert buffers.idle_bytes == 0
    assert all(buffers.borrow(1024 * 1024) is not buffer for buffer in lent)
