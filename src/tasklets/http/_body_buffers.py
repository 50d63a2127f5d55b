"""Reusable buffers for large bodies read whole (see ``HTTPConnection.read_rest``).

A large Content-Length body that the caller wants whole is received straight
into one ``bytearray`` and copied once into the ``bytes`` returned. That
buffer must not be new for each body: a new ``bytearray`` is zero-filled,
and as glibc trims and regrows its heap its pages fault in again, which
costs more than the copies it saves (measured: twice the time per 1 MiB
body, against 0.8 of it with buffers reused). So buffers are lent and given
back, and idle ones are kept up to a total size; of equal ones, the one
given back last is lent first, as the likeliest still in the CPU's caches.

The allocator
-------------
The bodies themselves are new ``bytes`` every time: the caller owns them.
glibc's malloc serves a block of 128 KiB or more with a fresh ``mmap``, and
gives the heap's free top back to the system once it passes 128 KiB; it
raises these bounds to N and 2N when it sees a mapped block of N bytes
freed. In a fresh process the first 1 MiB body freed raises them to 1 MiB
and 2 MiB only, so as soon as two large objects are freed together (a body
and its decoded text, two bodies) the heap is trimmed, and the next body
faults its 256 pages in again: 480 page faults per 1 MiB body and 2.5 times
the CPU, for as long as the process lives. Reading a body chunk by chunk is
hit too (160 faults per MiB): every 256 KiB read is a new mapping, shrunk to
what arrived before it is freed, so it never raises the bounds. So the first
:class:`BodyBuffers` of a process frees one block of :data:`MAX_BODY_BUFFER`
bytes: blocks up to that size then come from the heap, and the heap keeps up
to twice that free. That block is calloc'd, hence mapped and never touched:
it costs no page fault. Other allocators (and a glibc whose thresholds were
set explicitly, with ``mallopt`` or ``GLIBC_TUNABLES``) ignore it.

One :class:`BodyBuffers` per connection pool, used from its loop's thread
only.
"""

from __future__ import annotations

__all__ = ["BodyBuffers", "MAX_BODY_BUFFER"]

#: The largest body read into a lent buffer; larger ones are read chunk by chunk.
MAX_BODY_BUFFER = 16 * 1024 * 1024
#: Buffer sizes are rounded up to a multiple of this, so that bodies of
#: slightly different sizes share buffers.
_GRAIN = 256 * 1024

_allocator_told = False


def _tell_the_allocator() -> None:
    """Free one mapped block of MAX_BODY_BUFFER bytes, once per process (see the module docstring)."""
    global _allocator_told
    if not _allocator_told:
        _allocator_told = True
        block = bytes(MAX_BODY_BUFFER)  # bytes(n) is calloc'd: no page of it is touched
        del block


class BodyBuffers:
    """Lends ``bytearray`` buffers and keeps those given back, up to ``max_idle_bytes`` in all."""

    def __init__(self, max_idle_bytes: int = 32 * 1024 * 1024) -> None:
        _tell_the_allocator()
        self.max_idle_bytes = max_idle_bytes
        self._idle: list[bytearray] = []
        self._idle_bytes = 0

    def __repr__(self) -> str:
        return f"<BodyBuffers idle={len(self._idle)} ({self._idle_bytes} bytes)>"

    @property
    def idle_bytes(self) -> int:
        """The total size of the buffers kept for reuse."""
        return self._idle_bytes

    def borrow(self, size: int) -> bytearray:
        """A buffer of at least ``size`` bytes: the smallest idle one that fits (the last given back
        of those), or a new one."""
        idle = self._idle
        best = -1
        for index, buffer in enumerate(idle):  # a few buffers at most: a scan is cheapest
            if len(buffer) >= size and (best < 0 or len(buffer) <= len(idle[best])):
                best = index
        if best >= 0:
            buffer = idle.pop(best)
            self._idle_bytes -= len(buffer)
            return buffer
        return bytearray(-(-size // _GRAIN) * _GRAIN)

    def give_back(self, buffer: bytearray) -> None:
        """Keep ``buffer`` for the next body, unless that would pass ``max_idle_bytes``.

        Only a buffer that nothing writes into any more may be given back
        (not one a cancelled read might still fill).
        """
        if self._idle_bytes + len(buffer) <= self.max_idle_bytes:
            self._idle.append(buffer)
            self._idle_bytes += len(buffer)

    def clear(self) -> None:
        """Drop every idle buffer (the pool is closing)."""
        self._idle.clear()
        self._idle_bytes = 0
