"""Where large bodies read whole are received (see ``HTTPConnection.read_rest``).

A large Content-Length body that the caller wants whole is received by the
kernel into a ``bytearray`` of its size, and copied once into the ``bytes``
object that is returned. Receiving straight into that ``bytes`` object (an
``io.BytesIO`` lends its initial object's memory through ``getbuffer()``)
saves the copy, but a BytesIO that the garbage collector frees while a
slice of that view is still held (a read abandoned on a closed stream)
crashes CPython 3.12.1 and raises BufferError on 3.13: a ``bytearray`` is
kept alive by its views, whatever order the collector frees them in.

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
    """The memory one body is received into.

    Write into :attr:`view` (``view[a:b] = ...``, ``recv_into(view[a:])``),
    then :meth:`take` the first ``length`` bytes once.
    """

    __slots__ = ("_array", "size", "view")

    def __init__(self, size: int) -> None:
        self.size = size
        self._array = bytearray(size)
        self.view = memoryview(self._array)

    def __repr__(self) -> str:
        return f"<BodyBuffer {self.size} bytes>"

    def take(self, length: int) -> bytes:
        """The first ``length`` bytes, as a new ``bytes`` object; :attr:`view` is let go.

        A slice of the view that someone still holds (the stream that filled
        it, in the frame that is calling back) keeps the array alive, and
        does not stop the copy.
        """
        with memoryview(self._array) as whole:
            body = bytes(whole[:length])
        self.view.release()
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
