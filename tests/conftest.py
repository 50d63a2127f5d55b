"""Fixtures shared by every test suite."""

from __future__ import annotations

import signal


def pytest_configure() -> None:
    """Give Ctrl-C its default meaning when the suite was started with SIGINT ignored.

    A shell without job control starts a background command (``pytest &``,
    some CI runners) with SIGINT ignored. Python then installs no
    KeyboardInterrupt handler, ``run()`` rightly leaves an ignored SIGINT
    alone (as asyncio does), and the children the tests start inherit the
    ignoring: every test of Ctrl-C would wait out its timeout. A handler set
    here is the one an interactive start gives, and exec() hands children the
    default disposition again.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
