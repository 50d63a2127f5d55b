"""tasklets as an asyncio event loop, and the bridges between tasklets futures and asyncio.

:class:`EventLoop` is a tasklets loop that is also an asyncio event loop:
asyncio code (aiohttp, httpx, asyncpg, Starlette...) and tasklets tasks run
on one thread, one ready queue and one poller. Pass :func:`new_event_loop`
wherever asyncio takes a loop factory::

    asyncio.run(main(), loop_factory=tasklets.asyncio.new_event_loop)  # Python 3.12+
    with asyncio.Runner(loop_factory=tasklets.asyncio.new_event_loop) as runner:
        runner.run(main())
    # uvicorn app:app --loop tasklets.asyncio:new_event_loop

This module imports :mod:`asyncio` before anything else that might import
its C accelerator ``_asyncio``: on Python 3.11, importing ``_asyncio`` first
breaks ``asyncio.current_task()`` for the whole process.
"""

from __future__ import annotations

import asyncio as _stdlib_asyncio  # noqa: F401  (first: see the module docstring)

from ._aio_loop import EventLoop, new_event_loop

__all__ = ["EventLoop", "new_event_loop"]
