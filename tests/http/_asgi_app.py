"""The ASGI app that uvicorn and hypercorn serve to the client's integration tests.

The servers import it in their own processes (the working directory is this
folder, so ``_encodings`` is found). Routes:

* ``/bytes/N?seed=S``: N bytes of :func:`pattern` (seed S, default 0), with a Content-Length.
* ``/stream/N?chunk=K``: the same bytes streamed in pieces of K (chunked).
* ``/redirect/STATUS?to=LOCATION``: a redirect with that status and Location.
* ``/status/CODE``: that status (a short body unless 204 or 304).
* ``/echo``: JSON of the request's method, target, headers and body.
* ``/gzip/N``, ``/deflate/N``, ``/br/N``, ``/zstd/N``: N pattern bytes, compressed;
  with ``?text=S``, N bytes of :func:`text` (seed S) instead, which compress
  about 3 to 1 (a pattern compresses to almost nothing), and with
  ``&stream=1`` the compressed bytes are streamed (chunked), the stream's
  header in a piece of its own, as a streaming encoder that flushes it first.
* ``/slow?n=N&delay=S``: N bytes of body, one every S seconds.
"""

from __future__ import annotations

import asyncio
import json
import random
import urllib.parse
from typing import Any

from _encodings import ENCODINGS, encode


def pattern(n: int, seed: int = 0) -> bytes:
    """N bytes that are not all alike, so a misplaced byte shows; another ``seed`` shifts them all."""
    unit = bytes((i + seed) % 256 for i in range(256))
    return (unit * (n // 256 + 1))[:n]


def text(n: int, seed: int = 0) -> bytes:
    """N bytes of seeded pseudo-random words: data that compresses about as well as prose does."""
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(4000)]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" "
    return bytes(out[:n])


_HEADER_SIZES = {"gzip": 10, "deflate": 2, "br": 1, "zstd": 6}  # the bytes a streaming encoder flushes first


async def _read_body(receive: Any) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = list(headers or [])
    if status not in (204, 304):
        headers.append((b"content-length", str(len(body)).encode()))
    else:
        body = b""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    assert scope["type"] == "http"
    path: str = scope["path"]
    query = {k: v[0] for k, v in urllib.parse.parse_qs(scope["query_string"].decode("latin-1")).items()}
    body = await _read_body(receive)
    parts = path.strip("/").split("/")
    route = parts[0]
    arg = parts[1] if len(parts) > 1 else ""

    if route == "bytes":
        data = pattern(int(arg), int(query.get("seed", "0")))
        await _respond(send, 200, data, [(b"content-type", b"application/octet-stream")])
    elif route == "stream":
        data = pattern(int(arg))
        step = int(query.get("chunk", "1000"))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for i in range(0, len(data), step):
            await send({"type": "http.response.body", "body": data[i : i + step], "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif route == "redirect":
        location = query.get("to", "/bytes/10").encode("latin-1")
        await _respond(send, int(arg), b"redirecting", [(b"location", location)])
    elif route == "status":
        code = int(arg)
        await _respond(send, code, f"status {code}".encode(), [(b"content-type", b"text/plain")])
    elif route == "echo":
        document = {
            "method": scope["method"],
            "path": path,
            "query": scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "body": body.decode("latin-1"),
            "client": list(scope.get("client") or ()),
        }
        await _respond(send, 200, json.dumps(document).encode(), [(b"content-type", b"application/json")])
    elif route in ENCODINGS:
        data = pattern(int(arg)) if "text" not in query else text(int(arg), int(query["text"]))
        encoded = encode(route, data)
        headers = [(b"content-encoding", route.encode())]
        if query.get("stream") != "1":
            await _respond(send, 200, encoded, headers)
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        cut = _HEADER_SIZES[route]
        pieces = [encoded[:cut]] + [encoded[i : i + 8192] for i in range(cut, len(encoded), 8192)]
        for piece in pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif route == "slow":
        count = int(query.get("n", "5"))
        delay = float(query.get("delay", "0.1"))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % count)]})
        for _ in range(count):
            await asyncio.sleep(delay)
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await _respond(send, 404, b"no such route")
