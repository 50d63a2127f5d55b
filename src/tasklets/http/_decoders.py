"""Content-Encoding decoders whose output per call is bounded.

A few kilobytes of gzip can inflate to gigabytes (a "zip bomb"). Each decoder
here hands out at most about ``max_size`` decoded bytes per call and keeps
the compressed rest for the next call, so a body read piece by piece uses
bounded memory however it was compressed.

* gzip and deflate: ``zlib``, always there.
* br: the ``brotli`` package (1.2 or later) or ``brotlicffi``, when
  installed; older versions of ``brotli`` cannot bound their output and are
  not used.
* zstd: ``compression.zstd`` (Python 3.14) or its backport
  ``backports.zstd``, when installed. The ``zstandard`` package is not used:
  its streaming decoder cannot bound its output. Frames that need a window
  above 8 MiB are refused (RFC 9659 forbids HTTP senders to make them), so
  the decoder's own memory is bounded too.

``pip install 'tasklets[compression]'`` installs both.
"""

from __future__ import annotations

import importlib
import zlib
from typing import Any, Protocol

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


class BrotliDecoder:
    """br, through ``brotli`` (1.2 or later) or ``brotlicffi``."""

    def __init__(self, module: Any) -> None:
        self._decompressor = module.Decompressor()
        self._error: type[Exception] = module.error
        self._tail = b""  # input that came while the decompressor would take none
        self._full = False  # the last call filled its output buffer: more output may be waiting
        self._started = False

    def feed(self, data: bytes, max_size: int) -> bytes:
        decompressor = self._decompressor
        if data:
            self._started = True
        # The output buffer grows by doubling until it reaches the limit, so it
        # can come close to twice the limit: ask for half.
        limit = max(1, max_size // 2)
        try:
            if not decompressor.can_accept_more_data():  # it still holds input: none more until that is out
                self._tail += data
                out = decompressor.process(b"", output_buffer_limit=limit)
            else:
                if self._tail:
                    data, self._tail = self._tail + data, b""
                out = decompressor.process(data, output_buffer_limit=limit)
        except self._error as exc:
            raise DecodingError(f"corrupt br body: {exc}") from exc
        # Only a full buffer stops it short of what its input gives (can_accept_more_data()
        # says True once the input is all taken in, even with output still to come).
        self._full = len(out) >= limit
        decoded: bytes = out
        return decoded

    def has_pending(self) -> bool:
        if self._tail or self._full:
            return True
        decompressor = self._decompressor
        return not decompressor.is_finished() and not decompressor.can_accept_more_data()

    def finish(self) -> bytes:
        if self._started and not self._decompressor.is_finished():
            raise DecodingError("br body ended before its end marker")
        return b""


# RFC 9659: HTTP senders must not use zstd windows above 8 MiB, so no frame needs more to decode.
_ZSTD_WINDOW_LOG_MAX = 23


class ZstdDecoder:
    """zstd, through ``compression.zstd`` or ``backports.zstd``; concatenated frames are decoded in turn."""

    def __init__(self, module: Any) -> None:
        self._module = module
        self._decompressor = self._new_frame()
        self._started = False

    def _new_frame(self) -> Any:
        window = {self._module.DecompressionParameter.window_log_max: _ZSTD_WINDOW_LOG_MAX}
        return self._module.ZstdDecompressor(options=window)

    def feed(self, data: bytes, max_size: int) -> bytes:
        decompressor = self._decompressor
        if data:
            self._started = True
        try:
            if decompressor.eof:  # a frame has ended: what follows starts the next one
                data = decompressor.unused_data + data
                if not data:
                    return b""
                decompressor = self._decompressor = self._new_frame()
            decoded: bytes = decompressor.decompress(data, max_size)
            return decoded
        except self._module.ZstdError as exc:
            raise DecodingError(f"corrupt zstd body: {exc}") from exc

    def has_pending(self) -> bool:
        decompressor = self._decompressor
        if decompressor.eof:
            return bool(decompressor.unused_data)
        return not decompressor.needs_input

    def finish(self) -> bytes:
        if self._started and not self._decompressor.eof:
            raise DecodingError("zstd body ended before the end of its frame")
        return b""


def _bounded_brotli() -> Any:
    """``brotli`` or ``brotlicffi`` if one that can bound its output is installed, else None."""
    for name in ("brotli", "brotlicffi"):
        try:
            module = importlib.import_module(name)
            module.Decompressor().process(b"", output_buffer_limit=1)
        except (ImportError, TypeError, AttributeError):
            continue
        return module
    return None


def _bounded_zstd() -> Any:
    """``compression.zstd`` or ``backports.zstd`` if installed, else None."""
    for name in ("compression.zstd", "backports.zstd"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


_brotli = _bounded_brotli()
_zstd = _bounded_zstd()


def supported_encodings() -> list[str]:
    """What we can put in ``Accept-Encoding``, best first."""
    encodings = ["gzip", "deflate"]
    if _brotli is not None:
        encodings.append("br")
    if _zstd is not None:
        encodings.append("zstd")
    return encodings


def make_decoder(content_encoding: str | None) -> IdentityDecoder | ZlibDecoder | BrotliDecoder | ZstdDecoder:
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
        return BrotliDecoder(_brotli)
    if encoding == "zstd" and _zstd is not None:
        return ZstdDecoder(_zstd)
    raise DecodingError(f"cannot decode a body with Content-Encoding {content_encoding!r}")
