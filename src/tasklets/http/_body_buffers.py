"""Where large bodies read whole are received (see ``HTTPConnection.read_rest``).

A large Content-Length body that the caller wants whole is received by the
kernel straight into the memory of the ``bytes`` object that is returned:
one copy in all, from the kernel's buffers to the caller's object. The
object is made zero-filled (``bytes(n)``) and wrapped in an
``io.BytesIO``, whose ``getbuffer()`` lends its memory writable, and whose
``getvalue()``, once that view is let go and the one byte of slack read
past the body's end is cut off, hands back that very object. Receiving
into a reused buffer and copying out of it would cost a second pass over
every body, and a buffer as large as the body beside each body in flight.

The allocator
-------------
Every body is then a new large block. glibc's malloc serves a block of 128
KiB or more with a fresh ``mmap``, and gives the heap's free top back to the
system once it passes 128 KiB; it raises these bounds to N and 2N when it
sees a mapped block of N bytes freed. In a fresh process the first 1 MiB
body freed raises them to 1 MiB and 2 MiB only, so as soon as two large
objects are freed together (a body and its decoded text, two bodies) the
heap is trimmed, and the next body faults its 256 pages in again (the
kernel zeroing each one), for as long as the process lives. Reading a body
chunk by chunk is hit too: every 256 KiB read is a new mapping, shrunk to
what arrived before it is freed, so it never raises the bounds. So the
first :class:`BodyBuffers` of a process frees one block of
:data:`MAX_BODY_BUFFER` bytes: blocks up to that size then come from the
heap, and the heap keeps up to twice that free. That block is calloc'd,
hence mapped and never touched: it costs no page fault. Other allocators
(and a glibc whose thresholds were set explicitly, with ``mallopt`` or
``GLIBC_TUNABLES``) ignore it. ``tests/http/test_large_bodies.py`` counts
the page faults; ``bench/http_client.py`` shows them per request.

One :class:`BodyBuffers` per connection pool, used from its loop's thread
only.
"""

from __future__ import annotations

import io

__all__ = ["MAX_BODY_BUFFER", "BodyBuffer", "BodyBuffers"]

#: The largest body received whole into one buffer; larger ones are read chunk by chunk.
MAX_BODY_BUFFER = 16 * 1024 * 1024

_allocator_told = False


def _tell_the_allocator() -> None:
    """Free one mapped block of MAX_BODY_BUFFER bytes, once per process (see the module docstring)."""
    global _allocator_told
    if not _allocator_told:
        _allocator_told = True
        block = bytes(MAX_BODY_BUFFER)  # bytes(n) is calloc'd: no page of it is touched
        del block


class BodyBuffer:
    """The memory one body is received into: that of the ``bytes`` object :meth:`take` returns.

    Write into :attr:`view` (``view[a:b] = ...``, ``recv_into(view[a:])``),
    then :meth:`take` the first ``length`` bytes once.
    """

    __slots__ = ("_file", "size", "view")

    def __init__(self, size: int) -> None:
        self.size = size
        # The BytesIO takes this very object as its buffer (it is referenced nowhere else), and
        # getbuffer() then lends its memory without a copy.
        self._file = io.BytesIO(bytes(size))
        self.view = self._file.getbuffer()

    def __repr__(self) -> str:
        return f"<BodyBuffer {self.size} bytes>"

    def take(self, length: int) -> bytes | None:
        """The first ``length`` bytes, as the ``bytes`` object that holds them; None while a view is still held.

        :attr:`view` is let go here; a slice of it that someone still holds
        (the stream that filled it, in the frame that is calling back) keeps
        the object from being cut to ``length``: then None, and the caller
        takes it later.
        """
        self.view.release()
        try:
            self._file.truncate(length)
        except BufferError:
            return None
        return self._file.getvalue()

    def take_or_copy(self, length: int) -> bytes:
        """:meth:`take`, or a copy of the first ``length`` bytes if a view is still held."""
        body = self.take(length)
        if body is None:
            with self._file.getbuffer() as view:
                body = bytes(view[:length])
        return body


class BodyBuffers:
    """Makes the :class:`BodyBuffer` of each large body read whole; a pool lends it to its connections."""

    def __init__(self) -> None:
        _tell_the_allocator()

    def __repr__(self) -> str:
        return "<BodyBuffers>"

    def make(self, size: int) -> BodyBuffer:
        """A buffer of ``size`` bytes for one body."""
        return BodyBuffer(size)
