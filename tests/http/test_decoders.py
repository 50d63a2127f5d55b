"""Which Content-Encodings the client offers and decodes, by what is installed."""

from __future__ import annotations

import sys
import types

import pytest

from tasklets._exceptions import DecodingError
from tasklets.http import _decoders


def test_br_and_zstd_are_offered_when_their_packages_are_installed() -> None:
    # The test extra installs brotli and backports.zstd (compression.zstd from Python 3.14).
    assert _decoders.supported_encodings() == ["gzip", "deflate", "br", "zstd"]
    assert isinstance(_decoders.make_decoder("br"), _decoders.BrotliDecoder)
    assert isinstance(_decoders.make_decoder(" ZSTD "), _decoders.ZstdDecoder)


def test_without_them_only_gzip_and_deflate_are_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_decoders, "_brotli", None)
    monkeypatch.setattr(_decoders, "_zstd", None)
    assert _decoders.supported_encodings() == ["gzip", "deflate"]
    for encoding in ("br", "zstd"):
        with pytest.raises(DecodingError, match=f"cannot decode a body with Content-Encoding '{encoding}'"):
            _decoders.make_decoder(encoding)


def test_a_brotli_that_cannot_bound_its_output_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """brotli before 1.2 has no output_buffer_limit: a bomb would come out whole, so br is not offered."""

    class OldDecompressor:
        def process(self, data: bytes) -> bytes:
            return b""

    old = types.ModuleType("brotli")
    old.Decompressor = OldDecompressor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "brotli", old)
    monkeypatch.setitem(sys.modules, "brotlicffi", None)  # not installed: importing it fails
    assert _decoders._bounded_brotli() is None


def test_brotlicffi_stands_in_for_brotli(monkeypatch: pytest.MonkeyPatch) -> None:
    import brotli

    monkeypatch.setitem(sys.modules, "brotli", None)
    monkeypatch.setitem(sys.modules, "brotlicffi", brotli)  # the same API: the real brotli poses as it
    assert _decoders._bounded_brotli() is brotli
