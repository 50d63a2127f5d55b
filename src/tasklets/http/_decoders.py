"""Content-Encoding decoders whose output per call is bounded.

A few kilobytes of gzip can inflate to gigabytes (a "zip bomb"). Each decoder
here hands out at most ``max_size`` decoded bytes per call and keeps the
compressed rest for the next call, so a body read piece by piece uses bounded
memory however it was compressed. gzip and deflate come from ``zlib``; brotli
and zstd are used when their packages (``brotli``/``brotlicffi``,
``zstandard``) are installed, but their APIs offer no output bound, so only
gzip and deflate are protected against bombs.
"""

from __future__ import annotations

import zlib
from typing import Protocol

from .._exceptions import DecodingError

__all__ = ["Decoder", "make_decoder", "supported_encodings"]


class Decoder(Protocol):
    """Incremental decoding of a response body."""

    def feed(self, data: bytes, max_size: int) -> bytes:
        """Take compressed ``data``; return at most ``max_size`` decoded bytes."""

    def has_pending(self) -> bool:
        """Whether decoded output is waiting without more input (call ``feed(b"", ...)``)."""

    def finish(self) -> bytes:
        """The input has ended; return what is left (raise if the stream is truncated)."""


class IdentityDecoder:
    """No encoding: bytes pass through unchanged."""

    def feed(self, data: bytes, max_size: int) -> bytes:
        return data

    def has_pending(self) -> bool:
        return False

    def finish(self) -> bytes:
        return b""


class ZlibDecoder:
    """gzip, or deflate (zlib-wrapped, or raw as some servers send it)."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._raw_fallback = encoding == "deflate"
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(wbits)
        self._tail = b""
        self._started = False

    def feed(self, data: bytes, max_size: int) -> bytes:
        pending = self._tail + data if self._tail else data
        try:
            out = self._zlib.decompress(pending, max_size)
        except zlib.error as exc:
            if self._raw_fallback and not self._started:
                # "deflate" without the zlib header: retry as a raw stream.
                self._raw_fallback = False
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.feed(data, max_size)
            raise DecodingError(f"corrupt {self._encoding} body: {exc}") from exc
        self._started = True
        self._tail = self._zlib.unconsumed_tail
        if self._zlib.eof and self._encoding == "gzip" and self._zlib.unused_data:
            # Concatenated gzip members are legal: continue with the next one.
            rest = self._zlib.unused_data
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._tail = rest
        return out

    def has_pending(self) -> bool:
        return bool(self._tail)

    def finish(self) -> bytes:
        if self._tail:
            return b""  # the caller drains has_pending() first
        if not self._zlib.eof and self._started:
            raise DecodingError(f"{self._encoding} body ended before its end marker")
        return self._zlib.flush()


class _BrotliDecoder:
    def __init__(self, module: object) -> None:
        self._decompressor = module.Decompressor()  # type: ignore[attr-defined]

    def feed(self, data: bytes, max_size: int) -> bytes:
        # brotli's API has no output bound: only gzip and deflate are bounded.
        try:
            return self._decompressor.process(data)
        except Exception as exc:
            raise DecodingError(f"corrupt br body: {exc}") from exc

    def has_pending(self) -> bool:
        return False

    def finish(self) -> bytes:
        return b""


class _ZstdDecoder:
    def __init__(self, module: object) -> None:
        self._decompressor = module.ZstdDecompressor().decompressobj()  # type: ignore[attr-defined]

    def feed(self, data: bytes, max_size: int) -> bytes:
        try:
            return self._decompressor.decompress(data)
        except Exception as exc:
            raise DecodingError(f"corrupt zstd body: {exc}") from exc

    def has_pending(self) -> bool:
        return False

    def finish(self) -> bytes:
        return b""


def _optional(name: str) -> object | None:
    try:
        return __import__(name)
    except ImportError:
        return None


_brotli = _optional("brotli") or _optional("brotlicffi")
_zstd = _optional("zstandard")


def supported_encodings() -> list[str]:
    """What we can put in ``Accept-Encoding``, best first."""
    encodings = ["gzip", "deflate"]
    if _brotli is not None:
        encodings.append("br")
    if _zstd is not None:
        encodings.append("zstd")
    return encodings


def make_decoder(content_encoding: str | None) -> IdentityDecoder | ZlibDecoder | _BrotliDecoder | _ZstdDecoder:
    """The decoder for a ``Content-Encoding`` value (one encoding; ``identity`` or none pass through).

    Raises:
        DecodingError: an encoding we cannot decode, or a chain of several.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        return IdentityDecoder()
    if encoding in ("gzip", "x-gzip"):
        return ZlibDecoder("gzip")
    if encoding == "deflate":
        return ZlibDecoder("deflate")
    if encoding == "br" and _brotli is not None:
        return _BrotliDecoder(_brotli)
    if encoding == "zstd" and _zstd is not None:
        return _ZstdDecoder(_zstd)
    raise DecodingError(f"cannot decode a body with Content-Encoding {content_encoding!r}")
