"""The ``tasklets`` command line: ``tasklets fetch`` and ``tasklets demo``."""

from __future__ import annotations

from ._main import console_main, main

__all__ = ["console_main", "main"]
