"""Safe file names for saved bodies, made from URLs we do not trust.

A URL's path can hold ``..``, slashes, NUL, names reserved on some systems
or thousands of characters. The name made here is a single path component of
harmless characters, never ``.``/``..``, of bounded length, and unique per URL
(a short hash of the whole URL is appended), so ``-o DIR`` writes only inside
DIR and two URLs never overwrite each other.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse

__all__ = ["safe_file_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 100


def safe_file_name(url: str) -> str:
    """A file name for the body of ``url``: ``host_path_parts-<hash>[.ext]``."""
    digest = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    try:
        parts = urllib.parse.urlsplit(url)
        host, path = parts.hostname or "", parts.path
    except ValueError:
        host, path = "", url
    segments = [s for s in path.split("/") if s not in ("", ".", "..")]
    extension = ""
    if segments:
        last = segments[-1]
        dot = last.rfind(".")
        if 0 < dot < len(last) - 1 and len(last) - dot <= 8:
            extension = _UNSAFE.sub("", last[dot:])
            segments[-1] = last[:dot]
    stem = _UNSAFE.sub("_", "_".join([host, *segments])).strip("._-") or "index"
    return f"{stem[:_MAX_STEM]}-{digest}{extension if extension != '.' else ''}"
