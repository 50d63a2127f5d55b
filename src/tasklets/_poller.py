"""The smallest interface the loop needs from the OS readiness API.

``select.epoll`` is used directly on Linux: the ``selectors`` module wraps
every event in a ``SelectorKey`` tuple that the loop would unwrap again, which
costs more than the system call on a busy loop. Elsewhere ``selectors`` does
the work behind the same four methods.
"""

from __future__ import annotations

import select
import selectors

#: The longest single wait handed to the OS. epoll takes a C int of
#: milliseconds (about 24.8 days) and ``select`` overflows on larger floats;
#: a loop whose next timer is further off (or at infinity) simply polls again
#: after this long, as asyncio does.
MAX_TIMEOUT = 24 * 3600.0


class EpollPoller:
    """Readiness over ``select.epoll``; events come back as ``(fd, mask)``.

    The masks are epoll's own bits, so the loop tests them without a
    conversion: ``READABLE``/``WRITABLE`` include the error and hang-up bits,
    which wake both directions (the next ``recv``/``send`` reports the error).
    """

    READ = select.EPOLLIN if hasattr(select, "EPOLLIN") else 1
    WRITE = select.EPOLLOUT if hasattr(select, "EPOLLOUT") else 4
    _ERROR = (select.EPOLLERR | select.EPOLLHUP) if hasattr(select, "EPOLLERR") else 0
    READABLE = READ | _ERROR
    WRITABLE = WRITE | _ERROR

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._poll = self._epoll.poll

    def register(self, fd: int, mask: int) -> None:
        self._epoll.register(fd, mask)

    def modify(self, fd: int, mask: int) -> None:
        self._epoll.modify(fd, mask)

    def unregister(self, fd: int) -> None:
        try:
            self._epoll.unregister(fd)
        except (OSError, ValueError):
            pass  # the descriptor was closed under us; the kernel already forgot it

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if timeout is None:
            return self._poll(-1)
        if timeout > MAX_TIMEOUT:
            timeout = MAX_TIMEOUT
        elif timeout > 0:
            # epoll counts whole milliseconds and rounds down: round up, so a
            # timer is never polled for just before it is due (a busy spin).
            timeout = int(timeout * 1000 + 0.999) / 1000
        return self._poll(timeout)

    def close(self) -> None:
        self._epoll.close()


class SelectorPoller:
    """Readiness over ``selectors.DefaultSelector`` for platforms without epoll."""

    READ = selectors.EVENT_READ
    WRITE = selectors.EVENT_WRITE
    READABLE = READ
    WRITABLE = WRITE

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()

    def register(self, fd: int, mask: int) -> None:
        self._selector.register(fd, mask)

    def modify(self, fd: int, mask: int) -> None:
        self._selector.modify(fd, mask)

    def unregister(self, fd: int) -> None:
        try:
            self._selector.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if timeout is not None:
            timeout = min(max(timeout, 0), MAX_TIMEOUT)
        return [(key.fd, events) for key, events in self._selector.select(timeout)]

    def close(self) -> None:
        self._selector.close()


def make_poller() -> EpollPoller | SelectorPoller:
    """The fastest poller this platform offers."""
    return EpollPoller() if hasattr(select, "epoll") else SelectorPoller()
