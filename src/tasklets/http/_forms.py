"""Request bodies from what the caller has: bytes, text, a form, JSON, files, a stream.

``encode_body`` turns the ``data=``, ``json=`` and ``files=`` of a request
into what the connection sends (bytes, or an iterable of byte pieces), the
``Content-Type`` and ``Content-Length`` it calls for, and whether it can be
sent again (on a 307 redirect, a Digest challenge, a retry).

Files of a ``multipart/form-data`` body are read from disk piece by piece as
the request goes out, never whole into memory; their sizes are known before,
so the body has a ``Content-Length`` (servers that refuse chunked uploads
take it). A file given by path that does not exist fails here, before
anything is sent. An async iterable is streamed chunked: each of its items
is awaited by the request's task (``_connection.HTTPConnection.send``
waits on a future item).
"""

from __future__ import annotations

import io
import json as _json
import mimetypes
import os
import secrets
import urllib.parse
from collections.abc import AsyncIterable, Generator, Iterable, Iterator, Mapping
from typing import Any

from .._future import Future
from .._task import Task

__all__ = ["Body", "encode_body", "encode_form"]

FORM = "application/x-www-form-urlencoded"
_CHUNK = 64 * 1024


class Body:
    """What to send: ``content`` (bytes, an iterable of pieces, or None) and its headers."""

    __slots__ = ("content", "content_type", "length", "replayable")

    def __init__(self, content: Any, content_type: str | None, length: int | None, replayable: bool) -> None:
        self.content = content
        self.content_type = content_type
        self.length = length
        self.replayable = replayable


def encode_form(fields: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> bytes:
    """``fields`` form-encoded; a list or tuple value repeats its key."""
    pairs = fields.items() if isinstance(fields, Mapping) else fields
    return urllib.parse.urlencode([(k, _form_value(v)) for k, v in _flatten(pairs)]).encode("ascii")


def _flatten(pairs: Iterable[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    for key, value in pairs:
        if isinstance(value, (list, tuple)):
            for item in value:
                yield key, item
        else:
            yield key, value


def _form_value(value: Any) -> str | bytes:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, (str, bytes)) else str(value)


def encode_body(data: Any, json: Any, files: Any, *, has_json: bool) -> Body | None:
    """The body for ``data=``, ``json=`` and ``files=``; None for no body.

    Raises:
        TypeError: a body of a type that cannot be sent (named in the message).
        ValueError: ``json=`` with ``data=`` or ``files=``.
        FileNotFoundError: a ``files=`` path that does not exist.
    """
    if has_json:
        if data is not None or files is not None:
            raise ValueError("json= makes the whole body: it cannot go with data= or files=")
        raw = _json.dumps(json, ensure_ascii=False, allow_nan=False).encode("utf-8")
        return Body(raw, "application/json", len(raw), True)
    if files is not None:
        fields = data if data is not None else {}
        if not isinstance(fields, Mapping) and not _is_pairs(fields):
            raise TypeError(f"with files=, data= must be a dict or a list of (name, value) pairs, not {fields!r}")
        return _multipart(fields.items() if isinstance(fields, Mapping) else fields, files)
    if data is None:
        return None
    if isinstance(data, (bytes, bytearray, memoryview)):
        return Body(bytes(data), None, len(data), True)
    if isinstance(data, str):
        raw = data.encode("utf-8")
        return Body(raw, "text/plain; charset=utf-8", len(raw), True)
    if isinstance(data, Mapping) or _is_pairs(data):
        raw = encode_form(data)
        return Body(raw, FORM, len(raw), True)
    if hasattr(data, "read"):
        return Body(_file_pieces(data), None, _size_left(data), False)
    if isinstance(data, AsyncIterable):
        return Body(_AsyncPieces(data), None, None, False)
    if isinstance(data, Iterable):
        return Body(data, None, None, False)
    raise TypeError(
        f"cannot send {data!r} as a request body: give bytes, str, a dict or list of pairs (a form), "
        "a binary file, or an iterable or async iterable of bytes"
    )


def _is_pairs(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(p, tuple) and len(p) == 2 for p in value)


def _size_left(file: Any) -> int | None:
    """How many bytes ``file`` has from where it stands; None when that cannot be known without reading."""
    try:
        return int(os.fstat(file.fileno()).st_size - file.tell())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass
    try:
        if not file.seekable():
            return None
        here = file.tell()
        end = file.seek(0, io.SEEK_END)
        file.seek(here)
        return int(end - here)
    except (AttributeError, OSError, ValueError):
        return None


def _file_pieces(file: Any) -> Generator[bytes, None, None]:
    while True:
        piece = file.read(_CHUNK)
        if not piece:
            return
        if isinstance(piece, str):
            raise TypeError(f"{file!r} is open in text mode: request bodies are bytes, open it with 'rb'")
        yield piece


class _AsyncPieces:
    """An async iterable as an iterable of futures of its pieces (None once it is exhausted)."""

    __slots__ = ("_source",)

    def __init__(self, source: AsyncIterable[bytes]) -> None:
        self._source = source

    def __iter__(self) -> Iterator[Future[bytes | None]]:
        iterator = self._source.__aiter__()
        while True:
            piece: Task[bytes | None] = Task(_anext(iterator))
            yield piece  # the sender waits on it (and skips an empty piece) before asking for the next
            if piece.result() is None:
                return


async def _anext(iterator: Any) -> bytes | None:
    try:
        piece = await iterator.__anext__()
    except StopAsyncIteration:
        return None
    if not isinstance(piece, (bytes, bytearray, memoryview)):
        raise TypeError(f"an async iterable request body must give bytes, not {piece!r}")
    return bytes(piece)


# -- multipart/form-data -----------------------------------------------------------------------------------


class _Part:
    __slots__ = ("head", "content", "path", "size", "offset")

    def __init__(self, head: bytes, content: bytes | None, path: str | None, file: Any, size: int) -> None:
        self.head = head
        self.content = content if file is None else None
        self.path = path
        self.size = size
        self.offset = file  # a file object given by the caller (read from where it stood)


def _quote(name: str) -> str:
    # What browsers do (HTML's multipart/form-data encoding): quotes and line breaks percent-encoded.
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _multipart(fields: Iterable[tuple[str, Any]], files: Any) -> Body:
    boundary = secrets.token_hex(16)
    parts: list[_Part] = []
    for name, value in _flatten(fields):
        raw = value if isinstance(value, bytes) else str(_form_value(value)).encode("utf-8")
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode()
        parts.append(_Part(head, raw, None, None, len(raw)))
    items = files.items() if isinstance(files, Mapping) else files
    for name, spec in items:
        parts.append(_file_part(boundary, name, spec))
    tail = f"--{boundary}--\r\n".encode()
    length = sum(len(p.head) + p.size + 2 for p in parts) + len(tail)
    replayable = all(p.offset is None or _seekable(p.offset) for p in parts)
    return Body(_Multipart(parts, tail), f"multipart/form-data; boundary={boundary}", length, replayable)


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _file_part(boundary: str, name: str, spec: Any) -> _Part:
    """One file of ``files=``: a path, a binary file, bytes, or ``(filename, content[, type[, headers]])``."""
    filename: str | None = None
    content_type: str | None = None
    extra: Mapping[str, str] = {}
    content = spec
    if isinstance(spec, tuple):
        if not 2 <= len(spec) <= 4:
            raise TypeError(f"files={{{name!r}: ...}}: a tuple is (filename, content[, content_type[, headers]])")
        filename, content = spec[0], spec[1]
        content_type = spec[2] if len(spec) > 2 else None
        extra = spec[3] if len(spec) > 3 else {}
    return _describe_file(boundary, name, content, filename, content_type, extra)


def _describe_file(
    boundary: str, name: str, content: Any, filename: str | None, content_type: str | None, extra: Mapping[str, str]
) -> _Part:
    path = file = None
    data: bytes | None = None
    if isinstance(content, os.PathLike):
        path = os.fspath(content)
        try:
            size = os.stat(path).st_size
        except OSError as exc:
            raise FileNotFoundError(f"files={{{name!r}: ...}}: cannot read {path!r}: {exc.strerror}") from exc
        if filename is None:
            filename = os.path.basename(path)
    elif isinstance(content, (bytes, bytearray, memoryview)):
        data = bytes(content)
        size = len(data)
    elif isinstance(content, str):
        data = content.encode("utf-8")
        size = len(data)
    elif hasattr(content, "read"):
        file = content
        left = _size_left(file)
        if left is None:
            raise TypeError(f"files={{{name!r}: {file!r}}}: a file whose size cannot be known; give its path")
        size = left
        if filename is None:
            filename = os.path.basename(str(getattr(file, "name", name)))
    else:
        raise TypeError(f"files={{{name!r}: {content!r}}}: give a path (pathlib.Path), a binary file or bytes")
    if filename is None:
        filename = name
    if content_type is None:
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    lines = [
        f"--{boundary}",
        f'Content-Disposition: form-data; name="{_quote(name)}"; filename="{_quote(filename)}"',
        f"Content-Type: {content_type}",
        *(f"{k}: {v}" for k, v in extra.items()),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return _Part(head, data, path, file, size)


class _Multipart:
    """The body's pieces, files read as they go; iterable again (a replay) when its files allow."""

    __slots__ = ("_parts", "_tail", "_starts")

    def __init__(self, parts: list[_Part], tail: bytes) -> None:
        self._parts = parts
        self._tail = tail
        self._starts = [p.offset.tell() if p.offset is not None else 0 for p in parts]

    def __iter__(self) -> Iterator[bytes]:
        for part, start in zip(self._parts, self._starts):
            yield part.head
            if part.content is not None:
                yield part.content
            elif part.path is not None:
                with open(part.path, "rb") as file:
                    yield from _exactly(file, part.size, part.path)
            else:
                part.offset.seek(start)
                yield from _exactly(part.offset, part.size, repr(part.offset))
            yield b"\r\n"
        yield self._tail


def _exactly(file: Any, size: int, name: str) -> Iterator[bytes]:
    left = size
    while left > 0:
        piece = file.read(min(_CHUNK, left))
        if not piece:
            raise OSError(f"{name} shrank while it was being sent ({size - left} of {size} bytes)")
        left -= len(piece)
        yield piece
