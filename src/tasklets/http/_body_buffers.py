"""Where large bodies read whole are received (see ``HTTPConnection.read_rest``).

A large Content-Length body that the caller wants whole is received by the
kernel into a buffer lent by the connection's pool, and copied once into the
``bytes`` object that is returned. The buffer then goes back to the pool and
serves a later body: its memory is already the process's, so receiving into
it costs no allocation, no zeroing and no page fault, whatever the allocator
does with blocks freed. Receiving straight into the ``bytes`` object returned
(an ``io.BytesIO`` lends its initial object's memory through ``getbuffer()``)
would save the copy, but a BytesIO that the garbage collector frees while a
slice of that view is still held (a read abandoned on a closed stream)
crashes CPython 3.12.1 and raises BufferError on 3.13: a ``bytearray`` is
kept alive by its views, whatever order the collector frees them in.

Bounds. Idle buffers are kept up to :data:`MAX_IDLE_BYTES` in all (the
oldest given back are dropped first), and only buffers of the size now
asked for are reused (sizes are rounded up to :data:`GRANULE`), so a pool
never holds more idle memory than that, whatever the bodies. A buffer is
given back only after the read that completed its body: one whose body
failed or was abandoned may still be the target of a read under way, and is
left to the garbage collector instead. :meth:`BodyBuffers.close` drops the
idle ones, and keeps none after (the pool's close).

The allocator
-------------
The ``bytes`` handed out are new large blocks all the same. glibc's malloc
serves a block of 128 KiB or more with a fresh ``mmap``, and gives the
heap's free top back to the system once it passes 128 KiB; it raises these
bounds to N and 2N when it sees a mapped block of N bytes freed. In a fresh
process the first 1 MiB body freed raises them to 1 MiB and 2 MiB only, so
as soon as two large objects are freed together (a body and its decoded
text, two bodies) the heap is trimmed, and the next body faults its 256
pages in again (the kernel zeroing each one), for as long as the process
lives. Reading a body chunk by chunk is hit too: every 256 KiB read is a new
mapping, shrunk to what arrived before it is freed, so it never raises the
bounds. So the first :class:`BodyBuffers` of a process frees one block of
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

__all__ = ["GRANULE", "MAX_BODY_BUFFER", "MAX_IDLE_BYTES", "BodyBuffer", "BodyBuffers"]

#: The largest body received whole into one buffer; larger ones are read chunk by chunk.
MAX_BODY_BUFFER = 16 * 1024 * 1024
#: The most memory a pool keeps in idle buffers: as much as its largest buffer. On loopback a
#: body has arrived whole before it is read, and one buffer serves every body; on a slower link
#: more are lent at once, and those beyond the bound are freed when their bodies end.
MAX_IDLE_BYTES = MAX_BODY_BUFFER
#: Buffer sizes are multiples of this, so that bodies of nearly the same size share buffers.
GRANULE = 64 * 1024

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
        """The first ``length`` bytes, as a new ``bytes`` object.

        A slice of the view that someone still holds (the stream that filled
        it, in the frame that is calling back) does not stop the copy.
        """
        return self.view[:length].tobytes()


class BodyBuffers:
    """Lends the :class:`BodyBuffer` of each large body read whole, and keeps some given back for reuse."""

    __slots__ = ("_idle", "idle_bytes", "max_idle_bytes")

    def __init__(self, max_idle_bytes: int = MAX_IDLE_BYTES) -> None:
        _tell_the_allocator()
        self._idle: list[BodyBuffer] = []  # oldest given back first
        self.idle_bytes = 0
        self.max_idle_bytes = max_idle_bytes

    def __repr__(self) -> str:
        return f"<BodyBuffers {len(self._idle)} idle, {self.idle_bytes} bytes>"

    def make(self, size: int) -> BodyBuffer:
        """A buffer of at least ``size`` bytes for one body: the last one given back of that size, or a new one."""
        size = -(-size // GRANULE) * GRANULE
        idle = self._idle
        for index in range(len(idle) - 1, -1, -1):
            if idle[index].size == size:
                buffer = idle.pop(index)
                self.idle_bytes -= size
                return buffer
        return BodyBuffer(size)

    def give_back(self, buffer: BodyBuffer) -> None:
        """Keep ``buffer`` for a later body (no read may write into it any more), within the bound."""
        if buffer.size > self.max_idle_bytes:
            return
        idle = self._idle
        idle.append(buffer)
        self.idle_bytes += buffer.size
        while self.idle_bytes > self.max_idle_bytes:
            self.idle_bytes -= idle.pop(0).size

    def close(self) -> None:
        """Drop every idle buffer, and keep none given back from now on (the pool is closing)."""
        self.max_idle_bytes = 0
        self._idle.clear()
        self.idle_bytes = 0
