"""What a response tells beyond its body: the request as sent, its ``Link`` header, its lines.

Pure helpers behind ``Response.request``, ``Response.links`` and
``Response.iter_lines()``; the Response keeps only thin methods over them.
"""

from __future__ import annotations

import codecs
import io
import re
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

from .._future import Future, done_future
from ._headers import Headers

__all__ = ["AsyncChunk", "LineSplitter", "SentRequest", "UnreadableBody", "iter_lines", "parse_links", "stream_decoder"]


class SentRequest:
    """A request as it went out on the final hop: method, URL and headers (those the client added too)."""

    __slots__ = ("method", "url", "headers")

    def __init__(self, method: str, url: str, headers: Headers) -> None:
        self.method = method
        self.url = url
        self.headers = headers

    def __repr__(self) -> str:
        return f"<SentRequest {self.method} {self.url}>"


# One link-value of RFC 8288: <target> then ;-separated parameters, quoted strings allowed.
_LINK = re.compile(r'\s*<([^>]*)>((?:\s*;\s*[^;,=\s]+(?:\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^;,]*))?)*)\s*(?:,|$)')
_PARAM = re.compile(r';\s*([^;,=\s]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^;,]*))?')


def parse_links(values: list[str], base: Callable[[str], str]) -> dict[str, dict[str, str]]:
    """The ``Link`` header values as ``{rel: {"url": absolute URL, "rel": rel, other params...}}``.

    A link with several relation types (``rel="next last"``) is listed under
    each; a link without ``rel`` under its URL. Malformed parts are skipped.
    """
    links: dict[str, dict[str, str]] = {}
    for value in values:
        position = 0
        while position < len(value):
            match = _LINK.match(value, position)
            if match is None or match.end() == position:
                break
            position = match.end()
            link = {"url": base(match.group(1).strip())}
            for param in _PARAM.finditer(match.group(2)):
                raw = param.group(2) or ""
                if raw.startswith('"'):
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                link.setdefault(param.group(1).lower(), raw.strip())
            for rel in link.get("rel", "").split() or [link["url"]]:
                links.setdefault(rel, link)
    return links


_NEWLINE = re.compile(r"\r\n|\r|\n")


class LineSplitter:
    """Lines out of chunks of text: ``\\n``, ``\\r\\n`` or ``\\r`` ends one; what is left at the end is one too."""

    __slots__ = ("_buffer", "_lines", "_ended", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = ""
        self._lines: deque[str] = deque()
        self._ended = False
        self._skip_lf = False  # the last chunk ended with \r: a \n first in the next is its other half

    def feed(self, text: str) -> None:
        """Add text; an empty string is the end."""
        if not text:
            self._ended = True
            if self._buffer:
                self._lines.append(self._buffer)
                self._buffer = ""
            return
        if self._skip_lf and text.startswith("\n"):
            text = text[1:]
        self._skip_lf = text.endswith("\r")
        parts = _NEWLINE.split(self._buffer + text)
        self._buffer = parts.pop()  # the unterminated rest
        self._lines.extend(parts)

    def take(self) -> str | None:
        """The next whole line, or None when there is none yet (or none left)."""
        return self._lines.popleft() if self._lines else None

    @property
    def ended(self) -> bool:
        return self._ended and not self._lines


def iter_lines(
    next_chunk: Callable[[], Future[bytes]], decode: Callable[[bytes, bool], str]
) -> Generator[Future[str | None], str | None, list[str]]:
    """The lines of a body, as ``read()`` gives chunks: a generator of line futures.

    ``for wait_for_line in r.iter_lines(): line = yield wait_for_line`` (the
    last future may resolve to None: the body ended with no line left), or
    ``lines = yield from r.iter_lines()`` for the list.
    """
    splitter = LineSplitter()
    lines: list[str] = []
    while True:
        line = splitter.take()
        if line is None and splitter.ended:
            return lines
        future = done_future(line) if line is not None else _next_line(splitter, next_chunk, decode)
        received = yield future
        value = received if received is not None else future.result()
        if value is None:
            return lines
        lines.append(value)


def _next_line(
    splitter: LineSplitter, next_chunk: Callable[[], Future[bytes]], decode: Callable[[bytes, bool], str]
) -> Future[str | None]:
    result: Future[str | None] = Future()

    def pump() -> None:
        while True:
            chunk = next_chunk()
            if not chunk.done():
                chunk.add_done_callback(on_chunk)
                return
            if not on_chunk(chunk, pumping=True):
                return

    def on_chunk(chunk: Future[bytes], pumping: bool = False) -> bool:
        error = chunk.exception() if not chunk.cancelled() else None
        if chunk.cancelled() or error is not None:
            result.set_exception(error or RuntimeError("the body's read was cancelled"))
            return False
        data = chunk.result()
        splitter.feed(decode(data, not data))
        line = splitter.take()
        if line is not None or splitter.ended:
            result.set_result(line)
            return False
        if not pumping:
            pump()
        return True

    pump()
    return result


def stream_decoder(encoding: str) -> Callable[[bytes, bool], str]:
    """An incremental decoder for ``encoding``: ``decode(data, final)``; bad bytes become U+FFFD."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    return lambda data, final: decoder.decode(data, final)


class UnreadableBody(io.RawIOBase):
    """An error response's body that could not be read: reading it raises why."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise self.error


class AsyncChunk:
    """``await`` the next chunk; ``StopAsyncIteration`` at the end of the body."""

    __slots__ = ("_future",)

    def __init__(self, future: Future[bytes]) -> None:
        self._future = future

    def __await__(self) -> Generator[Any, Any, bytes]:
        chunk = yield from self._future.__await__()
        if not chunk:
            raise StopAsyncIteration
        return chunk
