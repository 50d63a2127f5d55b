"""Delimiting and checking a response head as its bytes arrive, however they are split.

Bytes are collected until the blank line (CRLF CRLF) that ends the head, and
a backend is handed one complete head. That gives limits that hold however
the bytes are split -- one byte at a time included -- since lines, line
length and size are counted here as bytes arrive, and at most
``max_header_size`` bytes are buffered; the exact offset where the body (or
a tunnel, after CONNECT) begins, which llhttp does not report; and early
rejection of bytes that are not HTTP at all (TLS, binary: on the first byte
that cannot start b"HTTP/"), of bare CR or LF, NUL and obs-fold, which h11
would otherwise accept or only notice at the end. When a whole head arrives
in one piece and the parser is strict (llhttp rejects those itself), only
the limits are checked: the fast path.

Also here, what the policy layer checks in every parsed head: the framing
fields (Content-Length, Transfer-Encoding, Connection) against each other,
and no control character in the reason phrase.
"""

from __future__ import annotations

import re

from .._exceptions import RemoteProtocolError
from ._events import Header, Limits

__all__ = ["HeadScanner", "check_reason", "framing_fields"]

# Control characters but HTAB, which a reason phrase may hold (RFC 9112 4).
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CONTENT_LENGTH = b"content-length"
_TRANSFER_ENCODING = b"transfer-encoding"
_FRAMING_NAMES = {14: _CONTENT_LENGTH, 17: _TRANSFER_ENCODING, 10: b"connection"}


def _not_http(start: bytes) -> str:
    message = f"expected an HTTP/1.x response (b'HTTP/...'), got {start[:24]!r}"
    if start[:1] in (b"\x14", b"\x15", b"\x16", b"\x17") and start[1:2] in (b"", b"\x03"):
        message += "; this is TLS: did you mean https:// (or is the port a TLS port)?"
    elif start[:1] == b"\x00":
        message += "; this looks like HTTP/2 or a binary protocol: the server does not speak HTTP/1.1 here"
    return message


class HeadScanner:
    """Finds where a response head ends and checks its bytes as they come, for one connection.

    Args:
        limits: line length, head size and field count bounds.
        strict_parser: the backend itself rejects bare CR/LF, obs-fold and
            control characters in a complete head (llhttp), so a head that
            arrives in one piece needs only the limits checked.
    """

    __slots__ = ("_buf", "_lf", "_crlf", "_cr", "_line_start", "_max_line", "_max_head", "_max_headers", "_strict")

    def __init__(self, limits: Limits, *, strict_parser: bool) -> None:
        self._buf = bytearray()
        self._max_line = limits.max_line_size
        self._max_head = limits.max_header_size
        self._max_headers = limits.max_headers
        self._strict = strict_parser
        self.reset()

    @property
    def pending(self) -> int:
        """Bytes of an unfinished head held so far."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget the head in progress (after a complete one, or an error: its buffer goes now)."""
        if self._buf:
            self._buf = bytearray()
        self._lf = self._crlf = self._cr = 0
        self._line_start = 0

    def take(self, data: bytes) -> tuple[bytes, int] | None:
        """Take bytes of a response; once a head is complete, ``(bytes that start with it, where it ends)``.

        The bytes returned are ``data`` itself when the head arrived whole
        in it (no copy), else the head gathered so far with ``data`` after it.

        Raises:
            RemoteProtocolError: the bytes are not a valid head, or break a limit.
        """
        buf = self._buf
        if not buf:
            # Fast path: the whole head in one piece (the usual case). No copy.
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                end += 4
                if self._strict:
                    self._check_whole(data, end)
                else:
                    self._scan(data, 0, end, True)
                self.reset()
                return data, end
        old = len(buf)
        buf += data
        end = buf.find(b"\r\n\r\n", old - 3 if old > 3 else 0)
        if end < 0:
            self._scan(buf, old, len(buf), False)
            return None
        end += 4
        self._scan(buf, old, end, True)
        whole = bytes(buf)
        self.reset()
        return whole, end

    def _check_whole(self, data: bytes, end: int) -> None:
        """The limits for a head that arrived in one piece, for a strict parser.

        llhttp itself rejects bare CR or LF, obs-fold, NUL and other control
        characters in a complete head, so only what it does not check is
        checked here (about 0.3 us instead of 1.7 us for ``_scan_head``).
        """
        if end > self._max_head or not data.startswith(b"HTTP/"):
            self._scan(data, 0, end, True)  # raises, with the right message
        if data.count(b"\n", 0, end) > self._max_headers + 2 or end > self._max_line:
            self._scan(data, 0, end, True)

    def _scan(self, buf: bytes | bytearray, start: int, stop: int, complete: bool) -> None:
        """Check the new bytes ``buf[start:stop]`` of the head being received (``buf[0]`` starts it).

        Counters carried from call to call make the checks independent of how
        the head was split; ``back`` reaches one byte into the previous piece
        so that a CRLF or an obs-fold straddling two pieces is seen.
        """
        if stop > self._max_head:
            raise RemoteProtocolError(
                f"response head larger than {self._max_head} bytes (Limits.max_header_size)"
                if complete
                else f"no end of the response head within {self._max_head} bytes (Limits.max_header_size)"
            )
        if start < 5:
            prefix = bytes(buf[:5])
            if not (prefix == b"HTTP/" if stop >= 5 else b"HTTP/".startswith(prefix)):
                raise RemoteProtocolError(_not_http(bytes(buf[:stop])))
        back = start - 1 if start else 0
        n_lf = buf.count(b"\n", start, stop)
        n_cr = buf.count(b"\r", start, stop)
        if n_lf or n_cr:
            self._lf = lf = self._lf + n_lf
            self._cr = cr = self._cr + n_cr
            self._crlf = crlf = self._crlf + buf.count(b"\r\n", back, stop)
            if lf != crlf:
                raise RemoteProtocolError("bare LF in the response head: lines must end with CRLF")
            # A CR may only wait for its LF at the very end of an incomplete head.
            if cr != crlf and (cr != crlf + 1 or complete or buf[stop - 1] != 13):
                raise RemoteProtocolError("bare CR in the response head: CR is only allowed before LF")
            if lf > self._max_headers + 2:
                raise RemoteProtocolError(f"more than {self._max_headers} header fields (Limits.max_headers)")
        if buf.find(b"\n ", back, stop) >= 0 or buf.find(b"\n\t", back, stop) >= 0:
            raise RemoteProtocolError(
                "obsolete line folding (a header line starting with a space or tab) is not accepted (RFC 9112 5.2)"
            )
        if buf.find(b"\0", start, stop) >= 0:
            raise RemoteProtocolError("NUL byte in the response head")
        max_line = self._max_line
        line_start = self._line_start
        if stop - line_start > max_line + 1:
            # Some line may be too long: walk the line ends in the new bytes.
            pos = buf.find(b"\n", start, stop)
            while pos >= 0:
                if pos - 1 - line_start > max_line:
                    break
                line_start = pos + 1
                pos = buf.find(b"\n", line_start, stop)
            if pos >= 0 or stop - line_start > max_line + 1:
                raise RemoteProtocolError(f"response head line longer than {max_line} bytes (Limits.max_line_size)")
            self._line_start = line_start
        elif n_lf and not complete:
            self._line_start = buf.rfind(b"\n", start, stop) + 1


def check_reason(reason: bytes) -> None:
    """Refuse a reason phrase with control characters: it would reach a terminal through HTTPError.reason.

    (llhttp lets escapes pass there; h11 and llhttp refuse them in field values.)
    """
    if reason and _CONTROL.search(reason) is not None:
        raise RemoteProtocolError(f"control character in the reason phrase {reason[:60]!r}")


def framing_fields(headers: list[Header]) -> tuple[bytes | None, bytes | None, bytes | None]:
    """Content-Length, Transfer-Encoding and Connection (repeated fields joined), checked against each other."""
    cl = te = conn = None
    framing_name = _FRAMING_NAMES.get  # by length: one dict look-up per field, lower() rarely
    for name, value in headers:
        key = framing_name(len(name))
        if key is None or name.lower() != key:
            continue
        if key is _CONTENT_LENGTH:
            if cl is not None:
                raise RemoteProtocolError("more than one Content-Length field: the body length is ambiguous")
            cl = value
        elif key is _TRANSFER_ENCODING:
            te = value if te is None else te + b"," + value
        else:
            conn = value if conn is None else conn + b"," + value
    if te is not None:
        if cl is not None:
            raise RemoteProtocolError(
                "both Content-Length and Transfer-Encoding: rejected as a request smuggling hazard (RFC 9112 6.3)"
            )
        if te.lower() != b"chunked":
            raise RemoteProtocolError(f"unsupported Transfer-Encoding {te!r}: only 'chunked' is supported")
    return cl, te, conn
