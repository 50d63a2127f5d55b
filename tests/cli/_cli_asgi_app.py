"""The ASGI application the ``tasklets fetch`` flag tests serve with uvicorn and hypercorn (real servers).

Routes (all GET):

* ``/bytes/N``: N bytes of a pattern, ``Content-Length``; honours ``Range: bytes=A-``
  (206 and ``Content-Range``; 416 with ``bytes */N`` when A is past the end);
  ``?chunked=1`` sends the 200 or 206 in 4 KiB pieces, no ``Content-Length``;
* ``/norange/N``: the same body, ignoring ``Range`` (200, whole);
* ``/chunked/N``: the same body in 4 KiB pieces, no ``Content-Length``;
* ``/status/N``: that status; ``?retry_after=X`` adds ``Retry-After: X``;
* ``/flaky/KEY/K``: 503 (with ``Retry-After`` if ``?retry_after=X``) to the first K
  requests of KEY, then 200 ``ok``;
* ``/redirect/N``: a 302 to ``/redirect/N-1``, down to ``/redirect/0``, a 200 of
  ``text/plain`` ``done``;
* ``/headers``: the request's headers, as JSON;
* ``/hold/KEY``: held until ``/release``; the most held at once is kept;
* ``/release``: lets every held request (and those to come) finish;
* ``/log``: every request so far as JSON ``[path, monotonic time, Range or null, Host]``
  (``/log`` and ``/release`` excluded), and the most ``/hold`` requests at once.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from typing import Any


def pattern(size: int) -> bytes:
    block = bytes(range(256)) * 16
    return (block * (size // len(block) + 1))[:size]


_log: list[tuple[str, float, str | None, str]] = []
_flaky: dict[str, int] = {}
_held = {"now": 0, "peak": 0}
_released: asyncio.Event | None = None


def _release_event() -> asyncio.Event:
    global _released
    if _released is None:
        _released = asyncio.Event()
    return _released


async def _send(
    send: Any, status: int, body: bytes, headers: list[tuple[str, str]] | None = None, *, chunked: bool = False
) -> None:
    if chunked:
        pairs = [(name.encode(), value.encode()) for name, value in headers or []]
        await send({"type": "http.response.start", "status": status, "headers": pairs})
        for start in range(0, len(body), 4096):
            await send({"type": "http.response.body", "body": body[start : start + 4096], "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    pairs = [(b"content-length", str(len(body)).encode())]
    if not any(name.lower() == "content-type" for name, _ in headers or []):
        pairs.append((b"content-type", b"application/octet-stream"))
    pairs += [(name.encode(), value.encode()) for name, value in headers or []]
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    query = dict(urllib.parse.parse_qsl(scope["query_string"].decode()))
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    parts = path.strip("/").split("/")
    if path not in ("/log", "/release"):
        _log.append((path, time.monotonic(), headers.get("range"), headers.get("host", "")))
    extra = [("Retry-After", query["retry_after"])] if "retry_after" in query else []
    if parts[0] == "bytes":
        size = int(parts[1])
        body = pattern(size)
        wanted = headers.get("range", "")
        if wanted.startswith("bytes=") and wanted.endswith("-"):
            start = int(wanted[6:-1])
            if start >= size:
                await _send(send, 416, b"", [("Content-Range", f"bytes */{size}")])
                return
            content_range = [("Content-Range", f"bytes {start}-{size - 1}/{size}")]
            await _send(send, 206, body[start:], content_range, chunked="chunked" in query)
            return
        await _send(send, 200, body, chunked="chunked" in query)
    elif parts[0] == "norange":
        await _send(send, 200, pattern(int(parts[1])))
    elif parts[0] == "chunked":
        body = pattern(int(parts[1]))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for start in range(0, len(body), 4096):
            await send({"type": "http.response.body", "body": body[start : start + 4096], "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif parts[0] == "status":
        await _send(send, int(parts[1]), f"status {parts[1]}\n".encode(), extra)
    elif parts[0] == "flaky":
        key, failures = parts[1], int(parts[2])
        _flaky[key] = _flaky.get(key, 0) + 1
        if _flaky[key] <= failures:
            await _send(send, 503, b"busy\n", extra)
        else:
            await _send(send, 200, b"ok", [("Content-Type", "text/plain")])
    elif parts[0] == "redirect":
        left = int(parts[1])
        if left:
            await _send(send, 302, b"", [("Location", f"/redirect/{left - 1}")])
        else:
            await _send(send, 200, b"done", [("Content-Type", "text/plain; charset=utf-8")])
    elif parts[0] == "headers":
        await _send(send, 200, json.dumps(headers).encode(), [("Content-Type", "application/json")])
    elif parts[0] == "hold":
        _held["now"] += 1
        _held["peak"] = max(_held["peak"], _held["now"])
        try:
            await _release_event().wait()
        finally:
            _held["now"] -= 1
        await _send(send, 200, b"held")
    elif parts[0] == "release":
        _release_event().set()
        await _send(send, 200, b"released")
    elif parts[0] == "log":
        body = json.dumps({"requests": _log, "held_now": _held["now"], "held_peak": _held["peak"]}).encode()
        await _send(send, 200, body, [("Content-Type", "application/json")])
    else:
        await _send(send, 404, b"no such route\n")
