"""Content-Encoding for the tests' servers: every coding the client decodes, made with its reference library."""

from __future__ import annotations

import gzip
import zlib

import brotli

try:
    from compression import zstd  # Python 3.14
except ImportError:
    from backports import zstd

ENCODINGS = ("gzip", "deflate", "br", "zstd")


def encode(encoding: str, data: bytes, *, level: int | None = None) -> bytes:
    """``data`` in ``encoding``; also ``x-gzip`` and ``raw-deflate`` (deflate without the zlib wrapper)."""
    if encoding in ("gzip", "x-gzip"):
        return gzip.compress(data, 6 if level is None else level, mtime=0)  # the same bytes on every call
    if encoding in ("deflate", "raw-deflate"):
        wbits = -15 if encoding == "raw-deflate" else 15
        compressor = zlib.compressobj(6 if level is None else level, zlib.DEFLATED, wbits)
        return compressor.compress(data) + compressor.flush()
    if encoding == "br":
        return brotli.compress(data, quality=5 if level is None else level)
    if encoding == "zstd":
        return zstd.compress(data, 3 if level is None else level)
    raise ValueError(f"no such test encoding {encoding!r}")
