"""The chunked transfer coding of a response body (RFC 9112 section 7.1), decoded for every backend.

Why here and not in the backends: h11 and llhttp each accept what the other
refuses (``5 \\r\\n`` and ``5;\\r\\n`` pass h11, a last-chunk of 30 zeros
passes llhttp, BWS before ``;`` passes neither, bare LF and Content-Length
in trailers divide them), and a client must not behave differently with the
parser it happens to have. One decoder, following the RFC's grammar, decides:

* chunk-size line: ``1*HEXDIG *( BWS ";" BWS token [ BWS "=" BWS ( token /
  quoted-string ) ] ) CRLF`` -- leading zeros allowed, any number of them
  (the line's length is bounded by ``Limits.max_line_size``), sizes up to
  2**60;
* chunk data is followed by exactly CRLF;
* trailer fields as header fields are: ``token ":" OWS value OWS CRLF``, no
  obs-fold, no control character but HTAB, at most ``Limits.max_headers``
  of them in ``Limits.max_header_size`` bytes, and no framing field
  (Content-Length, Transfer-Encoding: RFC 9110 6.5.1 keeps them out of
  trailers, and one there is a response-splitting hazard);
* every line ends with CRLF: a bare LF or CR is refused, as in heads.

Sans-IO and incremental: bytes in, however they are split; body pieces and
the end out. Only an unfinished line is buffered (a ``bytearray``, bounded);
body bytes are handed on as they come.
"""

from __future__ import annotations

import re

from .._exceptions import RemoteProtocolError
from ._events import Data, Event, Header, Limits

__all__ = ["ChunkedDecoder"]

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_EXTENSION = rb"[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?"
_CHUNK_LINE = re.compile(rb"0*+([0-9A-Fa-f]*+)(?:" + _EXTENSION + rb")*\r\n")
_PLAIN_SIZE_LINE = re.compile(rb"0*+([0-9A-Fa-f]{1,15}+)\r\n")
_FIELD_LINE = re.compile(rb"(" + _TOKEN + rb"):([ \t\x21-\x7e\x80-\xff]*)\r\n")
_FRAMING_FIELDS = (b"content-length", b"transfer-encoding")
_MAX_SIZE_DIGITS = 15  # sizes below 2**60: past any real body, and Python ints stay small

_SIZE, _DATA, _DATA_END, _TRAILERS, _DONE = range(5)
_WHERE = {_SIZE: "chunk-size line", _DATA_END: "end of chunk data", _TRAILERS: "trailer section"}


class ChunkedDecoder:
    """Decodes one chunked body, fed in pieces of any size.

    Attributes:
        trailers: the trailer fields, ``(name, value)`` bytes pairs, once the body has ended.
    """

    __slots__ = ("_state", "_left", "_line", "_max_line", "_max_size", "_max_fields", "_size", "trailers")

    def __init__(self, limits: Limits) -> None:
        self._state = _SIZE
        self._left = 0
        self._line = bytearray()
        self._max_line = limits.max_line_size
        self._max_size = limits.max_header_size
        self._max_fields = limits.max_headers
        self._size = 0  # bytes of the trailer section so far
        self.trailers: list[Header] = []

    def feed(self, data: bytes, events: list[Event]) -> int:
        """Decode ``data``, appending a :class:`Data` event per piece of body to ``events``.

        Returns:
            -1 while the body goes on; once it has ended (last chunk and
            trailer section), the offset in ``data`` just past its end.

        Raises:
            RemoteProtocolError: the framing breaks RFC 9112 or a limit.
        """
        pos, n = 0, len(data)
        while pos < n:
            state = self._state
            if state == _DATA:
                take = min(self._left, n - pos)
                events.append(Data(data if take == n else data[pos : pos + take]))
                pos += take
                self._left -= take
                if not self._left:
                    self._state = _DATA_END
                continue
            if state == _DATA_END and not self._line and data.startswith(b"\r\n", pos):
                # The usual shape, taken without a line buffer: CRLF, then a plain size line.
                pos += 2
                self._state = _SIZE
                plain = _PLAIN_SIZE_LINE.match(data, pos)
                if plain is not None:
                    pos = plain.end()
                    self._start_chunk(plain.group(1))
                continue
            lf = data.find(b"\n", pos)
            if lf < 0:
                self._line += data[pos:]
                self._check_unfinished()
                return -1
            if self._line:
                self._line += data[pos : lf + 1]
                line = bytes(self._line)
                self._line.clear()
            else:
                line = data[pos : lf + 1]
            pos = lf + 1
            if len(line) > self._max_line + 2:
                raise RemoteProtocolError(f"{_WHERE[state]} longer than {self._max_line} bytes (Limits.max_line_size)")
            if state == _SIZE:
                self._size_line(line)
            elif state == _DATA_END:
                if line != b"\r\n":
                    raise RemoteProtocolError(f"expected CRLF after a chunk's data, got {line[:40]!r}")
                self._state = _SIZE
            elif self._trailer_line(line):
                self._state = _DONE
                return pos
        return -1

    def _check_unfinished(self) -> None:
        line = self._line
        if len(line) > self._max_line + 1:
            raise RemoteProtocolError(
                f"{_WHERE[self._state]} longer than {self._max_line} bytes (Limits.max_line_size)"
            )
        if self._state == _DATA_END and not b"\r\n".startswith(line):
            raise RemoteProtocolError(f"expected CRLF after a chunk's data, got {bytes(line[:40])!r}")
        if self._state == _TRAILERS and self._size + len(line) > self._max_size:
            raise RemoteProtocolError(f"trailer section larger than {self._max_size} bytes (Limits.max_header_size)")

    def _size_line(self, line: bytes) -> None:
        match = _CHUNK_LINE.fullmatch(line)
        if match is None or (not match.group(1) and not line.startswith(b"0")):
            raise RemoteProtocolError(
                f"malformed chunk-size line {line[:60]!r}: expected hex digits, then optional "
                f"';name=value' extensions, then CRLF (RFC 9112 7.1){_line_end_hint(line)}"
            )
        self._start_chunk(match.group(1))

    def _start_chunk(self, digits: bytes) -> None:
        if len(digits) > _MAX_SIZE_DIGITS:
            raise RemoteProtocolError(f"chunk size {digits[:40]!r} is too large (more than 2**60 bytes)")
        size = int(digits, 16) if digits else 0
        if size:
            self._left = size
            self._state = _DATA
        else:
            self._state = _TRAILERS

    def _trailer_line(self, line: bytes) -> bool:
        """Take one line of the trailer section; True at its end (the empty line)."""
        self._size += len(line)
        if self._size > self._max_size:
            raise RemoteProtocolError(f"trailer section larger than {self._max_size} bytes (Limits.max_header_size)")
        if line == b"\r\n":
            return True
        if line[:1] in (b" ", b"\t"):
            raise RemoteProtocolError(
                "obsolete line folding (a trailer field continued on the next line, which starts "
                "with a space or tab) is not accepted (RFC 9112 5.2)"
            )
        match = _FIELD_LINE.fullmatch(line)
        if match is None:
            raise RemoteProtocolError(
                f"malformed trailer field {line[:60]!r}: expected 'name: value' and CRLF, without control "
                f"characters{_line_end_hint(line)}"
            )
        name, value = match.groups()
        if name.lower() in _FRAMING_FIELDS:
            raise RemoteProtocolError(
                f"{name.decode('ascii')} in the trailers of a chunked body: framing fields are not allowed "
                "there (RFC 9110 6.5.1)"
            )
        if len(self.trailers) >= self._max_fields:
            raise RemoteProtocolError(f"more than {self._max_fields} trailer fields (Limits.max_headers)")
        self.trailers.append((name, value.strip(b" \t")))
        return False


def _line_end_hint(line: bytes) -> str:
    if not line.endswith(b"\r\n"):
        return "; this line ends with a bare LF"
    if b"\r" in line[:-2]:
        return "; this line has a bare CR"
    return ""
