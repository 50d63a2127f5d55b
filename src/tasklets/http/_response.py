"""``Response``: status and headers at once, the body as it arrives.

``read()`` is an *ordinary generator* (the seed's design), so one method
serves both ways of reading::

    body = yield from response.read()        # the whole body
    for wait_for_chunk in response.read():   # or chunk by chunk, as it arrives
        chunk = yield wait_for_chunk

Under ``yield from`` the task's scheduler sends each chunk back into
``read()``, which collects them; under ``for`` nothing is sent back (each
chunk is taken from its done future) and nothing is collected, so a large
body read chunk by chunk never sits in memory. The last chunk of a
``for`` loop may be ``b""``. Once ``read()`` knows the body is wanted whole,
the rest of a large Content-Length body that needs no decoding is read in
one piece, straight into one buffer (``HTTPConnection.read_rest``).

Decoding (gzip, deflate, ...) happens per chunk with a bound on the output of
each step, so a compression bomb read chunk by chunk stays in bounded memory.
"""

from __future__ import annotations

import datetime
import functools
import io
import urllib.parse
from collections.abc import Generator, Sequence
from typing import Any

from .._combinators import with_timeout
from .._exceptions import BodyTooLarge, CancelledError, DecodingError, HTTPError
from .._future import Future, done_future, failed_future
from .._loop import Loop
from ._body import ChunkReader, decode_text, derive, detect_encoding, media_type_charset, parse_json
from ._connection import HTTPConnection, as_client_error
from ._decoders import IdentityDecoder, make_decoder
from ._headers import Headers
from ._response_extras import AsyncChunk, SentRequest, UnreadableBody, iter_lines, parse_links, stream_decoder

__all__ = ["Response", "MAX_DECODED_CHUNK"]

#: The most decoded bytes one chunk of a compressed body may hold.
MAX_DECODED_CHUNK = 256 * 1024
# Calls in a row that a decoder holding input may answer with nothing (each one
# consumes some of it, so a handful is plenty) before it is deemed stuck.
_MAX_EMPTY_FEEDS = 64


class Response:
    """An HTTP response whose head has arrived; the body is read with :meth:`read`, or :meth:`body`.

    Attributes:
        status: the status code (``code`` and ``getcode()`` too, as in urllib).
        reason: the reason phrase.
        headers: a case-insensitive, multi-valued :class:`Headers`.
        url: the URL that answered, after redirects (``geturl()`` too).
        version: ``"1.1"`` or ``"1.0"``.
        history: the redirect responses that led here, oldest first.
        elapsed_seconds: from sending the request to its response head (the last hop).
    """

    history: Sequence[Response] = ()
    elapsed_seconds: float = 0.0
    sent: Any = None  # the client's record of the last hop's request: see ``request``

    def __init__(
        self,
        *,
        status: int,
        reason: str,
        headers: Headers,
        url: str,
        version: str,
        connection: HTTPConnection | None,
        method: str,
        loop: Loop,
        deadline: float | None = None,
        decode: bool = True,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.url = url
        self.version = version
        self.method = method
        self._connection = connection
        self._loop = loop
        self._deadline = deadline
        self._decoder = make_decoder(headers.get("Content-Encoding")) if decode else IdentityDecoder()
        self._identity = isinstance(self._decoder, IdentityDecoder)
        self._finished = connection is None
        self._raw_ended = False  # the last raw byte has come: the decoder's end check is due
        self._reading = False
        self._body: Future[bytes] | None = None  # body()'s future, once asked for
        self._encoding: str | None = None  # set by the user, or found by text()

    def __repr__(self) -> str:
        return f"<Response [{self.status} {self.reason}] {self.url}>"

    # -- urllib's names ------------------------------------------------------------------------------

    @property
    def code(self) -> int:
        """The status code (urllib's name)."""
        return self.status

    def getcode(self) -> int:
        """The status code (urllib's name)."""
        return self.status

    def geturl(self) -> str:
        """The URL that answered, after redirects (urllib's name)."""
        return self.url

    def info(self) -> Headers:
        """The headers (urllib's name)."""
        return self.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        """The value of header ``name``, repeated values joined by ``", "`` (``http.client``'s name)."""
        values = self.headers.get_all(name)
        return default if values is None else ", ".join(values)

    def getheaders(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair, in order (``http.client``'s name)."""
        return self.headers.items()

    @property
    def length(self) -> int | None:
        """The body's declared Content-Length (None when chunked or ending at close); 0 once it is read."""
        if self._finished:
            return 0
        declared = self.headers.get("Content-Length")
        return int(declared) if declared is not None and declared.isdigit() else None

    @property
    def closed(self) -> bool:
        """Whether the body has been read to its end or given up on (``close()``)."""
        return self._finished

    def isclosed(self) -> bool:
        """``closed`` (``http.client``'s name)."""
        return self._finished

    # -- what else it tells ----------------------------------------------------------------------------

    @property
    def elapsed(self) -> datetime.timedelta:
        """From sending the request to its response head (the last hop)."""
        return datetime.timedelta(seconds=self.elapsed_seconds)

    @property
    def request(self) -> SentRequest | None:
        """The last hop's request as sent: method, URL and headers (those the client added too)."""
        sent = self.sent
        if sent is None:
            return None
        return SentRequest(sent.method, str(sent.url), Headers(sent.sent if sent.sent is not None else sent.headers))

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The ``Link`` header (RFC 8288) by relation: ``r.links["next"]["url"]`` (absolute)."""
        values = self.headers.get_all("Link")
        if not values:
            return {}
        return parse_links(values, lambda reference: urllib.parse.urljoin(self.url, reference))

    def raise_for_status(self) -> Response:
        """Raise :class:`~tasklets.HTTPError` for a status of 400 or more; else return the response."""
        if self.status >= 400:
            raise HTTPError(self.url, self.status, self.reason, self.headers, None, self)
        return self

    def iter_lines(self) -> Generator[Future[str | None], str | None, list[str]]:
        """The body's lines as text, a generator of line futures as :meth:`read` is of chunks.

        ``for wait_for_line in r.iter_lines(): line = yield wait_for_line`` (the
        last may be None: the body ended), or ``lines = yield from r.iter_lines()``.
        Lines end at ``\\n``, ``\\r\\n`` or ``\\r``, not included. Decoded with
        :attr:`encoding` (UTF-8 when none is declared).
        """
        decode = stream_decoder(self._declared_charset() or "utf-8")
        return iter_lines(self.next_chunk, decode)

    # -- the body ------------------------------------------------------------------------------------

    def body(self) -> Future[bytes]:
        """A future of the whole (decoded) body, the same from everywhere.

        ``r.body().result()`` in plain code, ``yield r.body()`` in a generator
        task, ``await r.body()`` in ``async def``. Asked again, the same future.
        Cancelling it gives up on the body (the connection is closed).
        """
        future = self._body
        if future is not None:
            return future
        future = self._body = Future()
        if not self._loop.is_loop_thread():
            future.add_done_callback(self._on_chunk_done)
            self._loop.call_soon_threadsafe(self._collect, future, [])
            return future
        # _collect takes what came with the head at once, with no future per
        # piece: a body that came whole (most small ones) is handed out done.
        self._collect(future, [])
        if not future.done():
            future.add_done_callback(self._on_chunk_done)  # cancelled by its reader: close now
        return future

    def _collect(self, result: Future[bytes], parts: list[bytes]) -> None:
        """Gather the body into ``result``: the pieces at hand, then the rest in one read or one callback per wait."""
        while not result.done():
            try:
                whole = self._collect_at_hand(parts)
            except Exception as exc:  # a corrupt body: the rest of it must not reach the next response
                self.close()
                result.set_exception(as_client_error(exc, f"reading {self.url}"))
                return
            if whole is not None:
                result.set_result(whole)
                return
            rest = self._read_rest(parts)
            if rest is not None:
                rest.add_done_callback(lambda done: self._rest_collected(done, result))
                return
            chunk = self.next_chunk()
            if not chunk.done():
                chunk.add_done_callback(lambda done: self._on_collected(done, result, parts))
                return
            if not self._chunk_collected(chunk, result, parts):
                return

    def _collect_at_hand(self, parts: list[bytes]) -> bytes | None:
        """Add the pieces of the body that need no read to ``parts``; the whole body if it has ended, else None."""
        while True:
            piece = self._piece_at_hand()
            if piece is None:
                return None
            if not piece:
                return b"".join(parts)
            parts.append(piece)

    def _piece_at_hand(self) -> bytes | None:
        """What :meth:`next_chunk` would give at once, without a future: the next decoded piece (``b""``: the
        end) if no read is needed for it; None if one is."""
        if self._finished:
            return self._decoded_tail()
        if not self._identity and self._decoder.has_pending():
            pending = self._fed_on(b"")
            if pending:
                return pending
        connection = self._connection
        assert connection is not None  # (set to None only with _finished)
        while (data := connection.queued_chunk()) is not None:
            decoded = self._decode(data)
            if decoded is not None:
                return decoded
        return None

    def _on_collected(self, chunk: Future[bytes], result: Future[bytes], parts: list[bytes]) -> None:
        if self._chunk_collected(chunk, result, parts):
            self._collect(result, parts)

    def _chunk_collected(self, chunk: Future[bytes], result: Future[bytes], parts: list[bytes]) -> bool:
        """Take one chunk; whether to read on (from a callback, read on here)."""
        if result.done():
            return False
        try:
            data = chunk.result()
        except CancelledError:
            self.close()
            result.set_exception(DecodingError(f"reading {self.url} was cancelled"))
            return False
        except BaseException as exc:
            self.close()
            result.set_exception(exc)
            return False
        if not data:
            result.set_result(b"".join(parts))
            return False
        parts.append(data)
        return True

    def _rest_collected(self, rest: Future[bytes], result: Future[bytes]) -> None:
        if result.done():
            return
        error = None if rest.cancelled() else rest.exception()
        if rest.cancelled() or error is not None:
            self.close()
            failure = as_client_error(error, f"reading {self.url}") if error is not None else None
            result.set_exception(failure or DecodingError(f"reading {self.url} was cancelled"))
            return
        self._finished = True
        self._connection = None
        result.set_result(rest.result())

    def keep_body(self, body: io.IOBase) -> None:
        """Make ``body`` (the file of what was read before HTTPError) what :meth:`body` gives, or its error."""
        try:
            data = body.read()
        except Exception as exc:
            self._body = failed_future(exc)
        else:
            self._body = done_future(data)
            body.seek(0)  # HTTPError.read() reads it again
        self._finished = True

    def text(self) -> Future[str]:
        """A future of the body as text, decoded with :attr:`encoding` (see ``_body`` for how it is found)."""
        return derive(self.body(), self._as_text)

    def _as_text(self, body: bytes) -> str:
        encoding = self._encoding
        if encoding is None:
            encoding = self._encoding = media_type_charset(self.headers.get("Content-Type"))[1] or detect_encoding(
                body
            )
        return decode_text(body, encoding)

    def json(self) -> Future[Any]:
        """A future of the body parsed as JSON; :class:`DecodingError`, naming the URL, if it is not JSON."""
        return derive(self.body(), lambda body: parse_json(body, self._declared_charset(), self.url))

    def _declared_charset(self) -> str | None:
        return self._encoding or media_type_charset(self.headers.get("Content-Type"))[1]

    @property
    def encoding(self) -> str | None:
        """The charset :meth:`text` decodes with: set it to override; None until known.

        The ``Content-Type`` charset, else the media type's default, else (once
        :meth:`text` has run) the detected one.
        """
        return self._declared_charset()

    @encoding.setter
    def encoding(self, value: str | None) -> None:
        self._encoding = value

    def read(self, limit: int | None = None) -> Generator[Future[bytes], bytes | None, bytes]:
        """The body, as an ordinary generator of chunk futures (see the module docstring).

        Args:
            limit: under ``yield from``, the most bytes to accept; past it
                :class:`BodyTooLarge` is raised and the connection closed (at
                once, without reading on, when Content-Length says the body
                is larger).

        Returns:
            Under ``yield from``, the whole (decoded) body.
        """
        return ChunkReader(self._read(limit))

    def _read(self, limit: int | None = None) -> Generator[Future[bytes], bytes | None, bytes]:
        parts: list[bytes] = []
        collecting: bool | None = None
        size = 0
        while True:
            if collecting:
                if limit is not None:
                    self._refuse_declared_excess(size, limit)
                rest = self._read_rest(parts)
                if rest is not None:
                    try:
                        body = yield rest
                    except Exception as exc:
                        self.close()
                        error = as_client_error(exc, f"reading {self.url}")
                        if error is exc:
                            raise
                        raise error from exc
                    self._finished = True
                    self._connection = None
                    return rest.result() if body is None else body
            future = self.next_chunk()
            received = yield future
            if collecting is None:
                collecting = received is not None
            chunk = received if received is not None else future.result()
            if not chunk:
                return b"".join(parts)
            if collecting:
                size += len(chunk)
                if limit is not None and size > limit:
                    self.close()
                    raise BodyTooLarge(f"the body of {self.url} is larger than the limit of {limit} bytes")
                parts.append(chunk)

    def read_for_error(self, limit: int) -> Generator[Any, Any, io.IOBase]:
        """The body of an error response (status >= 400) as a file for :class:`HTTPError` (``yield from`` it).

        A body that cannot be read (corrupt encoding, larger than ``limit``, a
        broken connection) is not passed off as empty: reading the file raises
        the error met.
        """
        try:
            body = yield from self.read(limit=limit)
        except Exception as exc:
            return UnreadableBody(exc)
        return io.BytesIO(body)

    def _refuse_declared_excess(self, size: int, limit: int) -> None:
        """Raise BodyTooLarge now if Content-Length says the body will pass ``limit``: do not read up to it."""
        connection = self._connection
        if connection is None or not self._identity:  # a decoded body has no declared size
            return
        left = connection.parser.body_left
        if left is not None and size + left > limit:
            self.close()
            raise BodyTooLarge(
                f"the body of {self.url} is larger than the limit of {limit} bytes (Content-Length says so)"
            )

    def _read_rest(self, parts: list[bytes]) -> Future[bytes] | None:
        """The rest of the body in one future, read straight into one buffer; None when that does not apply."""
        connection = self._connection
        if connection is None or not self._identity:
            return None
        rest = connection.read_rest(parts)
        if rest is None:
            return None
        rest.add_done_callback(self._on_chunk_done)  # a reader cancelled while it waits: close now
        if self._deadline is not None:
            rest = with_timeout(rest, max(0.0, self._deadline - self._loop.time()))
        return rest

    def next_chunk(self) -> Future[bytes]:
        """A future of the next decoded piece of the body; ``b""`` once it has all been read."""
        try:
            if self._finished:
                return done_future(self._decoded_tail())
            if not self._identity and self._decoder.has_pending():
                # Output the decoder may still hold. None after all (b""): read on, since
                # an empty chunk would tell the reader that the body has ended.
                pending = self._fed_on(b"")
                if pending:
                    return done_future(pending)
            raw = self._raw_chunk()
            if _succeeded(raw):
                data = raw.result()
                decoded = self._decode(data)
                if decoded is data:
                    return raw  # already done with that very chunk: no new future needed
                if decoded is None:
                    # That piece was all input the decoder keeps: go on with the next one,
                    # never with the same future again (its bytes would be decoded twice).
                    decoded, raw = self._decode_ready(self._raw_chunk())
                if decoded is not None:
                    return done_future(decoded)
        except Exception as exc:  # a corrupt body: the rest of it must not reach the next response
            self.close()
            return failed_future(as_client_error(exc, f"reading {self.url}"))
        result: Future[bytes] = Future()
        result.add_done_callback(self._on_chunk_done)
        raw.add_done_callback(functools.partial(self._on_raw, result=result))
        return result

    def _on_chunk_done(self, result: Future[bytes]) -> None:
        # A reader cancelled while it waited: close now, not when (if ever) more bytes arrive.
        if result.cancelled() and self._connection is not None:
            if self._loop.is_loop_thread():
                self.close()
            else:
                self._loop.call_soon_threadsafe(self.close)

    def _raw_chunk(self) -> Future[bytes]:
        assert self._connection is not None
        raw = self._connection.next_chunk()
        if self._deadline is not None and not raw.done():
            remaining = self._deadline - self._loop.time()
            raw = with_timeout(raw, max(0.0, remaining))
        return raw

    def _decode(self, data: bytes) -> bytes | None:
        """Decoded output for raw ``data`` (``b""``: the end); None when the decoder needs more input."""
        if not data:
            self._finished = self._raw_ended = True
            self._connection = None
            return self._decoded_tail()
        if self._identity:
            return data
        # Input it set aside (a new gzip member, say) may decode to nothing at first:
        # feed on while it holds some, so that nothing is left when the raw body ends.
        out = self._fed_on(self._decoder.feed(data, MAX_DECODED_CHUNK))
        return out if out else None

    def _fed_on(self, out: bytes) -> bytes:
        """``out``, or while it is empty and the decoder holds input, what feeding it nothing gives."""
        decoder = self._decoder
        for _ in range(_MAX_EMPTY_FEEDS):
            if out or not decoder.has_pending():
                return out
            out = decoder.feed(b"", MAX_DECODED_CHUNK)
        raise DecodingError(f"the {self.headers.get('Content-Encoding')} decoder of {self.url} is stuck")

    def _decoded_tail(self) -> bytes:
        """After the last raw byte: what the decoder still holds, a piece per call, then its end check; b"" after."""
        out = self._fed_on(b"")
        if out:
            return out
        if self._raw_ended:  # (not after close(): a body given up on is not checked)
            self._raw_ended = False
            return self._decoder.finish()  # raises DecodingError if the encoded stream was cut short
        return b""

    def _decode_ready(self, raw: Future[bytes]) -> tuple[bytes | None, Future[bytes]]:
        """Decode raw pieces while they have arrived: ``(output, _)``, or ``(None, raw)`` with ``raw`` to wait for.

        A loop, not a callback per piece: a body cut into many tiny pieces that
        decode to nothing (a compressed block arriving byte by byte) neither
        recurses nor chains futures.
        """
        while _succeeded(raw):
            decoded = self._decode(raw.result())
            if decoded is not None:
                return decoded, raw
            raw = self._raw_chunk()
        return None, raw

    def _on_raw(self, raw: Future[bytes], result: Future[bytes]) -> None:
        if result.done():  # the reader gave up (cancelled): the body is abandoned
            self.close()
            return
        try:
            raw.result()  # raises the read's error
            decoded, raw = self._decode_ready(raw)
        except BaseException as exc:
            self.close()
            result.set_exception(as_client_error(exc, f"reading {self.url}"))
            return
        if decoded is None:
            raw.add_done_callback(functools.partial(self._on_raw, result=result))
        else:
            result.set_result(decoded)

    def __aiter__(self) -> Response:
        return self

    def __anext__(self) -> Any:
        return AsyncChunk(self.next_chunk())

    # -- closing ---------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop reading: an unread body closes the connection instead of returning it to the pool."""
        connection, self._connection = self._connection, None
        self._finished = True
        if connection is not None:
            connection.abandon()

    def __del__(self) -> None:
        # Dropped with its body unread (a response nobody kept, or a task that ended
        # without reading it): its connection cannot carry another request, so it is
        # closed and its pool slot given back, on the loop that owns it.
        connection = self._connection
        if connection is not None:
            self._connection = None
            try:
                self._loop.call_soon_threadsafe(connection.abandon)
            except Exception:  # the loop is closed: it aborted its pools' connections then
                pass

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


def _succeeded(future: Future[Any]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None
