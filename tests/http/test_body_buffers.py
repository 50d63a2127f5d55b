"""BodyBuffer and BodyBuffers: a large body is received into a buffer and copied out once, whatever the
collector frees first; buffers given back serve later bodies, within a bound in bytes."""

from __future__ import annotations

import gc

import pytest

from tasklets.http._body_buffers import GRANULE, MAX_IDLE_BYTES, BodyBuffer, BodyBuffers


@pytest.fixture(autouse=True)
def no_leaked_fds() -> None:
    """Overrides the directory's descriptor-leak check: no sockets here."""


def test_a_buffer_is_at_least_the_size_asked_for_and_writable() -> None:
    buffer = BodyBuffers().make(1_000_001)
    assert isinstance(buffer, BodyBuffer)
    assert 1_000_001 <= len(buffer.view) < 1_000_001 + GRANULE
    assert not buffer.view.readonly


def test_the_body_taken_is_what_was_written() -> None:
    buffer = BodyBuffer(300_001)
    buffer.view[:5] = b"hello"
    buffer.view[299_995:300_001] = b"world!"  # the last byte is the slack past the body
    body = buffer.take(300_000)
    assert type(body) is bytes and len(body) == 300_000
    assert body[:5] == b"hello" and body[-5:] == b"world"


def test_a_slice_still_held_does_not_stop_the_take() -> None:
    buffer = BodyBuffer(200_001)
    buffer.view[:3] = b"abc"
    held = buffer.view[0:10]  # as the stream holds its slice while it calls back
    body = buffer.take(200_000)
    assert len(body) == 200_000 and body[:3] == b"abc"
    held[:3] = b"xyz"  # the slice stays valid, and the body is a copy
    assert body[:3] == b"abc"
    held.release()


def test_a_buffer_abandoned_in_a_cycle_with_a_slice_is_collected_cleanly() -> None:
    # A read abandoned on a closed stream keeps a slice of the view; the collector may free the
    # buffer's objects in any order (an io.BytesIO here crashed CPython 3.12.1, BufferError on 3.13).
    buffer = BodyBuffer(100_001)
    held = buffer.view[0:10]
    cycle: list[object] = [buffer, held]
    cycle.append(cycle)
    del buffer, held, cycle
    gc.collect()


# -- reuse, within a bound in bytes ------------------------------------------------------------------------------


def test_a_buffer_given_back_serves_the_next_body_of_its_size() -> None:
    buffers = BodyBuffers()
    first = buffers.make(1_000_000)
    buffers.give_back(first)
    assert buffers.idle_bytes == first.size
    assert buffers.make(1_000_000 - 100) is first  # the same granule: the same buffer
    assert buffers.idle_bytes == 0
    assert buffers.make(1_000_000) is not first  # lent out: a new one


def test_the_buffer_given_back_last_is_lent_first() -> None:
    buffers = BodyBuffers()
    older, newer = buffers.make(200_000), buffers.make(200_000)
    buffers.give_back(older)
    buffers.give_back(newer)
    assert buffers.make(200_000) is newer  # the hottest in the cache


def test_a_buffer_of_another_size_is_not_lent() -> None:
    buffers = BodyBuffers()
    small = buffers.make(100_000)
    buffers.give_back(small)
    large = buffers.make(3_000_000)
    assert large is not small and large.size >= 3_000_000
    assert buffers.idle_bytes == small.size  # the small one is still kept


def test_idle_buffers_are_bounded_in_bytes_the_oldest_dropped_first() -> None:
    size = 4 * GRANULE
    buffers = BodyBuffers(max_idle_bytes=3 * size)
    made = [buffers.make(size) for _ in range(5)]
    for buffer in made:
        buffers.give_back(buffer)
        assert buffers.idle_bytes <= 3 * size
    assert buffers.idle_bytes == 3 * size
    kept = [buffers.make(size) for _ in range(3)]
    assert kept == made[:1:-1]  # the three given back last, newest first
    assert buffers.idle_bytes == 0


def test_a_buffer_larger_than_the_bound_is_not_kept() -> None:
    buffers = BodyBuffers(max_idle_bytes=2 * GRANULE)
    buffers.give_back(buffers.make(3 * GRANULE))
    assert buffers.idle_bytes == 0


def test_the_default_bound() -> None:
    assert BodyBuffers().max_idle_bytes == MAX_IDLE_BYTES


def test_closed_buffers_drop_the_idle_ones_and_keep_none_given_back_after() -> None:
    buffers = BodyBuffers()
    lent = buffers.make(500_000)
    buffers.give_back(buffers.make(500_000))
    buffers.close()
    assert buffers.idle_bytes == 0
    buffers.give_back(lent)  # a body that ended after its pool was closed
    assert buffers.idle_bytes == 0
