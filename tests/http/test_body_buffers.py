"""BodyBuffer: a large body is received into the very bytes object that is handed out."""

from __future__ import annotations

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


def test_the_body_taken_is_the_object_written_into_not_a_copy() -> None:
    buffer = BodyBuffer(300_001)
    buffer.view[:5] = b"hello"
    buffer.view[299_995:300_001] = b"world!"  # the last byte is the slack past the body
    address = buffer.view[:1]  # where the bytes live, seen through a slice of the view
    pointer = _address(address)
    address.release()
    body = buffer.take(300_000)
    assert body is not None
    assert len(body) == 300_000
    assert body[:5] == b"hello" and body[-5:] == b"world"
    assert _address_of_bytes(body) == pointer, "the body was copied"


def test_a_slice_still_held_defers_the_take() -> None:
    buffer = BodyBuffer(200_001)
    buffer.view[:3] = b"abc"
    held = buffer.view[0:10]  # as the stream holds its slice while it calls back
    assert buffer.take(200_000) is None
    held.release()
    body = buffer.take(200_000)
    assert body is not None and len(body) == 200_000 and body[:3] == b"abc"


def test_take_or_copy_copies_while_a_slice_is_held() -> None:
    buffer = BodyBuffer(100_001)
    buffer.view[:3] = b"xyz"
    held = buffer.view[0:10]
    body = buffer.take_or_copy(100_000)
    assert len(body) == 100_000 and body[:3] == b"xyz"
    held.release()


def _address(view: memoryview) -> int:
    import ctypes

    return ctypes.addressof(ctypes.c_char.from_buffer(view))


def _address_of_bytes(data: bytes) -> int:
    import ctypes

    # A bytes object's contents start where its buffer does: ask ctypes for that address.
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
