"""BodyBuffer: a large body is received into a bytearray and copied out once, whatever the collector frees first."""

from __future__ import annotations

import gc

import pytest

from tasklets.http._body_buffers import BodyBuffer, BodyBuffers


@pytest.fixture(autouse=True)
def no_leaked_fds() -> None:
    """Overrides the directory's descriptor-leak check: no sockets here."""


def test_a_buffer_is_the_size_asked_for_and_writable() -> None:
    buffer = BodyBuffers().make(1_000_001)
    assert isinstance(buffer, BodyBuffer)
    assert len(buffer.view) == 1_000_001
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
