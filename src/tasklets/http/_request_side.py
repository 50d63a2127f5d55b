"""The request half of :class:`~._policy.ClientConnection` (see ``_policy.py`` for the theory of operation).

A mixin, as ``ReadSide`` and ``WriteSide`` are for ``Stream``: ``ClientConnection``
sets the attributes (in ``_reset_cycle``); the methods here check a request,
track how much of its body is still owed, and produce its bytes through the
``_serialize_*`` hooks, which a backend may override (h11 does). Split from
``_policy.py``, which keeps the response side (the hot path) and keep-alive;
the constants below and ``_tokens`` are shared with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .._exceptions import LocalProtocolError
from ._events import IDLE, RECV_HEAD, Header, State

__all__ = ["RequestSide"]

# Request side (``_req``); ``_policy`` resets it and checks for _REQ_DONE.
_REQ_IDLE, _REQ_BODY, _REQ_DONE = 0, 1, 2
# Framing of a message body (request and response).
_NONE, _LENGTH, _CHUNKED, _UNTIL_EOF = 0, 1, 2, 3

# Byte classes, checked with ``bytes.translate(None, allowed)``: what is left over
# is not allowed. A C loop, several times faster than a regex on short fields.
# RFC 9110 5.6.2 token: methods and field names.
_TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# request-target: visible ASCII only; a space, CR, LF or NUL would rewrite the request line.
_TARGET_CHARS = bytes(range(0x21, 0x7F))
# Field values: no control characters but HTAB (CR, LF and NUL would split or cut the field).
_VALUE_CHARS = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))


def _as_bytes(value: str | bytes, what: str, encoding: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return value.encode(encoding)
        except UnicodeEncodeError:
            hint = "percent-encode it" if what == "target" else "encode it first (RFC 8187 for values)"
            raise LocalProtocolError(f"{what} {value!r} is not {encoding}: {hint}") from None
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise LocalProtocolError(f"{what} must be str or bytes, got {type(value).__name__}: {value!r}")


class RequestSide:
    """``send_request``, ``send_body``, ``send_end``: a request checked and turned into bytes."""

    if not TYPE_CHECKING:  # no slots of its own, as ReadSide; mypy would reject assigning undeclared ones here
        __slots__ = ()
    state: State
    _move: Callable[[State], None]
    _req: int
    _method: bytes
    _req_framing: int
    _req_remaining: int
    _req_length: int
    _req_close: bool
    _upgrade: bool

    # -- request side --------------------------------------------------------------------------

    def send_request(
        self,
        method: str | bytes,
        target: str | bytes,
        headers: Iterable[tuple[str | bytes, str | bytes]],
        *,
        has_body: bool = False,
    ) -> bytes:
        """Start a request: return the bytes of its request line and headers.

        The headers are sent as given, in order (values stripped of surrounding
        spaces and tabs); a ``Host`` header is required.
        The body's framing comes from them: ``Content-Length: n`` (then exactly
        n bytes must follow), ``Transfer-Encoding: chunked``, or neither (no
        body). With ``has_body=True`` and neither header, ``Transfer-Encoding:
        chunked`` is added. Follow with :meth:`send_body` (any number of times)
        and always :meth:`send_end`.

        Args:
            method: ``"GET"``, ``"HEAD"``, ``"CONNECT"``... (str is encoded as ASCII).
            target: the request-target, e.g. ``"/path?q"``, already percent-encoded.
            headers: ``(name, value)`` pairs, str (ASCII names, latin-1 values) or bytes.
            has_body: a body of unknown length follows: send it chunked.

        Returns:
            The bytes to write.

        Raises:
            LocalProtocolError: a request is already in flight, or the method,
                target or a header is invalid (control characters, CR/LF
                injection, conflicting framing, no Host). Nothing is produced.
        """
        if self.state is not IDLE or self._req != _REQ_IDLE:
            raise LocalProtocolError(
                f"cannot send a request in state {self.state.name}: one request at a time "
                "(finish the response, then call start_next_cycle(), or open a new connection)"
            )
        method = _as_bytes(method, "method", "ascii")
        target = _as_bytes(target, "target", "ascii")
        if not method or method.translate(None, _TOKEN_CHARS):
            raise LocalProtocolError(f"invalid method {method!r}: it must be a token such as b'GET'")
        if not target or target.translate(None, _TARGET_CHARS):
            raise LocalProtocolError(
                f"invalid request target {target!r}: only visible ASCII is allowed "
                "(percent-encode spaces, control characters and non-ASCII)"
            )
        pairs = self._check_fields(headers, "header")
        host = 0
        cl = te = None
        close = upgrade = False
        for name, value in pairs:
            n = len(name)
            if n == 4 and name.lower() == b"host":
                host += 1
            elif n == 14 and name.lower() == b"content-length":
                if cl is not None:
                    raise LocalProtocolError("more than one Content-Length header: send exactly one")
                cl = value
            elif n == 17 and name.lower() == b"transfer-encoding":
                if te is not None or value.lower() != b"chunked":
                    raise LocalProtocolError(
                        f"unsupported Transfer-Encoding {value!r}: only a single 'chunked' is supported "
                        "(use Content-Encoding for compression)"
                    )
                te = value
            elif n == 10 and name.lower() == b"connection":
                close = close or b"close" in _tokens(value)
            elif n == 7 and name.lower() == b"upgrade":
                upgrade = True
        if host != 1:
            raise LocalProtocolError(f"an HTTP/1.1 request needs exactly one Host header, got {host}")
        if cl is not None and te is not None:
            raise LocalProtocolError("Content-Length and Transfer-Encoding together: send one of them")
        length = 0
        if cl is not None:
            if not cl.isdigit() or len(cl) > 18:
                raise LocalProtocolError(f"invalid Content-Length {cl!r}: it must be a decimal number of bytes")
            framing = _LENGTH
            length = int(cl)
        elif te is not None:
            framing = _CHUNKED
        elif has_body:
            pairs.append((b"Transfer-Encoding", b"chunked"))
            framing = _CHUNKED
        else:
            framing = _NONE
        out = self._serialize_head(method, target, pairs)
        self._method = method
        self._req_framing = framing
        self._req_remaining = self._req_length = length
        self._req_close = close
        self._upgrade = upgrade
        self._req = _REQ_BODY
        self._move(RECV_HEAD)
        return out

    def send_body(self, data: bytes) -> bytes:
        """Return the bytes that send ``data`` as (part of) the request body.

        Raises:
            LocalProtocolError: no body is being sent, or more bytes than the
                Content-Length.
        """
        if self._req != _REQ_BODY:
            raise LocalProtocolError("send_body() needs a request in progress: call send_request() first")
        framing = self._req_framing
        if not data:
            return b""
        if framing == _LENGTH:
            if len(data) > self._req_remaining:
                raise LocalProtocolError(
                    f"too much body: Content-Length is {self._req_length} and only "
                    f"{self._req_remaining} more bytes may be sent, not {len(data)}"
                )
            self._req_remaining -= len(data)
        elif framing == _NONE:
            raise LocalProtocolError(
                "this request has no body: give it a Content-Length header, or pass has_body=True to send_request()"
            )
        return self._serialize_data(data)

    def send_end(self, trailers: Iterable[tuple[str | bytes, str | bytes]] = ()) -> bytes:
        """Return the bytes that end the request (the last chunk and trailers, if chunked).

        Raises:
            LocalProtocolError: no request is in progress, fewer bytes than the
                Content-Length were sent, or trailers on a body that is not chunked.
        """
        if self._req != _REQ_BODY:
            raise LocalProtocolError("send_end() needs a request in progress: call send_request() first")
        if self._req_framing == _LENGTH and self._req_remaining:
            raise LocalProtocolError(
                f"body too short: Content-Length is {self._req_length} but only "
                f"{self._req_length - self._req_remaining} bytes were sent"
            )
        pairs = self._check_fields(trailers, "trailer")
        if pairs and self._req_framing != _CHUNKED:
            raise LocalProtocolError("trailers need a chunked body (pass has_body=True without Content-Length)")
        out = self._serialize_end(pairs)
        self._req = _REQ_DONE
        return out

    @staticmethod
    def _check_fields(fields: Iterable[tuple[str | bytes, str | bytes]], what: str) -> list[Header]:
        if not isinstance(fields, list | tuple):
            fields = list(fields)  # read twice on failure
        try:
            pairs: list[Header] = [
                (
                    name.encode("ascii") if isinstance(name, str) else name,
                    (value.encode("latin-1") if isinstance(value, str) else value).strip(b" \t"),
                )
                for name, value in fields
            ]
            if not pairs:
                return pairs
            # Two scans for all the fields; look for the culprit only on failure.
            names = [n for n, _ in pairs]
            names_ok = all(names) and not b"".join(names).translate(None, _TOKEN_CHARS)
            values_ok = not b"".join([v for _, v in pairs]).translate(None, _VALUE_CHARS)
        except (UnicodeEncodeError, TypeError, AttributeError):
            names_ok = values_ok = False
        if names_ok and values_ok:
            return pairs
        for name, value in fields:
            name = _as_bytes(name, f"{what} name", "ascii")
            value = _as_bytes(value, f"{what} value", "latin-1")
            if not name or name.translate(None, _TOKEN_CHARS):
                raise LocalProtocolError(
                    f"invalid {what} name {name!r}: a name is a token (letters, digits, -!#$%&'*+.^_`|~), "
                    "with no spaces, colons or control characters"
                )
            if value.translate(None, _VALUE_CHARS):
                raise LocalProtocolError(
                    f"invalid {what} value for {name!r}: {value!r} contains a control character "
                    "(CR, LF or NUL would let it inject headers); remove or encode it"
                )
        raise AssertionError("unreachable")  # pragma: no cover

    # Serialisation hooks (the httptools backend uses these; h11 overrides them).

    def _serialize_head(self, method: bytes, target: bytes, headers: list[Header]) -> bytes:
        parts = [method, b" ", target, b" HTTP/1.1\r\n"]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    def _serialize_data(self, data: bytes) -> bytes:
        if self._req_framing == _CHUNKED:
            return b"%x\r\n%b\r\n" % (len(data), data)
        return bytes(data)

    def _serialize_end(self, trailers: list[Header]) -> bytes:
        if self._req_framing != _CHUNKED:
            return b""
        return b"".join([b"0\r\n", *(b"%b: %b\r\n" % pair for pair in trailers), b"\r\n"])


def _tokens(value: bytes) -> frozenset[bytes] | set[bytes]:
    value = value.lower()
    common = _COMMON_TOKENS.get(value)
    if common is not None:
        return common
    return {token.strip() for token in value.split(b",")}


_COMMON_TOKENS = {b"keep-alive": frozenset([b"keep-alive"]), b"close": frozenset([b"close"])}
