"""A response body as text or JSON, and a ``read()`` generator that explains itself when misused.

``Response.body()`` collects the body into one future; ``text()`` and
``json()`` are futures derived from it here. Which charset decodes the text:
the ``charset`` parameter of ``Content-Type``; else the media type's own
default (JSON and JavaScript are UTF-8 by their RFCs); else the guess of
``charset-normalizer`` when it is installed (``tasklets[charset]``); else
UTF-8, with undecodable bytes replaced.

``read()`` stays the seed's ordinary generator of chunk futures, wrapped in
:class:`ChunkReader`, which behaves exactly as the generator does under
``yield from`` and ``for``, but answers the mistakes of code that took it for
the body (``r.read().decode()``, ``r.read().result()``, ``len(r.read())``)
with an error that names the way to get the body instead of a bare
``AttributeError`` on a generator.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from .._exceptions import DecodingError
from .._future import Future

__all__ = ["ChunkReader", "decode_text", "derive", "detect_encoding", "media_type_charset", "parse_json"]

T = TypeVar("T")
U = TypeVar("U")

# Media types whose specification fixes the charset when Content-Type names none.
_UTF8_MEDIA_TYPES = frozenset({"application/json", "application/javascript", "text/javascript", "application/ld+json"})

_MISUSE = (
    "response.read() is a generator of chunk futures, not the body: in a generator task write "
    "'body = yield from response.read()'; anywhere (plain code, a task, async def) 'response.body()' is a "
    "future of the whole body: 'response.body().result()', 'yield response.body()', 'await response.body()'"
)


def media_type_charset(content_type: str | None) -> tuple[str, str | None]:
    """The media type (lower case) and the charset that ``content_type`` declares or implies, if any."""
    if not content_type:
        return "", None
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    charset = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').strip("'") or None
            break
    if charset is not None:
        try:
            charset = codecs.lookup(charset).name
        except LookupError:
            charset = None  # an unknown charset: as if none was declared
    if charset is None and (media_type in _UTF8_MEDIA_TYPES or media_type.endswith("+json")):
        charset = "utf-8"
    return media_type, charset


def detect_encoding(body: bytes) -> str:
    """charset-normalizer's best guess for ``body`` when it is installed; UTF-8 otherwise."""
    if not body:
        return "utf-8"
    try:
        import charset_normalizer
    except ImportError:
        return "utf-8"
    best = charset_normalizer.from_bytes(body).best()
    return "utf-8" if best is None else best.encoding


def decode_text(body: bytes, encoding: str) -> str:
    """``body`` decoded with ``encoding``; bytes it cannot decode become U+FFFD."""
    return body.decode(encoding, errors="replace")


def parse_json(body: bytes, charset: str | None, url: str) -> Any:
    """``body`` parsed as JSON (any UTF of RFC 8259, or the declared charset).

    Raises:
        DecodingError: the body is not JSON; the message names the URL and where parsing stopped.
    """
    try:
        if charset is None or charset.replace("-", "").replace("_", "") in ("utf8", "utf16", "utf32"):
            return json.loads(body)
        return json.loads(body.decode(charset))
    except (ValueError, UnicodeDecodeError) as exc:
        start = body[:60].decode("latin-1")
        raise DecodingError(f"the body of {url} is not JSON ({exc}); it starts with {start!r}") from exc


def derive(source: Future[T], fn: Callable[[T], U]) -> Future[U]:
    """A future of ``fn(source's result)``; ``source``'s exception, or ``fn``'s, if either fails."""
    result: Future[U] = Future()

    def on_done(done: Future[T]) -> None:
        if done.cancelled():
            result.cancel()
            return
        error = done.exception()
        if error is not None:
            result.set_exception(error)
            return
        try:
            value = fn(done.result())
        except BaseException as exc:
            result.set_exception(exc)
        else:
            result.set_result(value)

    source.add_done_callback(on_done)
    return result


class ChunkReader(Generator[Future[bytes], "bytes | None", bytes]):
    """``read()``'s generator, unchanged under ``yield from`` and ``for``; it explains the mistakes."""

    __slots__ = ("_gen",)

    def __init__(self, gen: Generator[Future[bytes], bytes | None, bytes]) -> None:
        self._gen = gen

    def __iter__(self) -> Generator[Future[bytes], bytes | None, bytes]:
        # ``yield from`` and ``for`` take the generator itself: no step goes through this wrapper.
        return self._gen

    def __next__(self) -> Future[bytes]:
        return self._gen.__next__()

    def send(self, value: bytes | None) -> Future[bytes]:
        return self._gen.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Future[bytes]:
        if val is None and tb is None:
            return self._gen.throw(typ)
        return self._gen.throw(typ, val, tb)

    def close(self) -> None:
        self._gen.close()

    def __repr__(self) -> str:
        return f"<response.read() generator of chunk futures: {self._gen!r}>"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("gi_"):  # gi_frame, gi_code...: what tools that show where a task waits read
            return getattr(self._gen, name)
        # Only names this class lacks get here: what bytes, str and futures have, tried by mistake.
        raise AttributeError(f"response.read() has no attribute {name!r}. {_MISUSE}")

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        raise TypeError(f"len(response.read()): {_MISUSE}")

    def __bytes__(self) -> bytes:
        raise TypeError(f"bytes(response.read()): {_MISUSE}")
