"""``Client`` and ``urlopen_async``: urllib's interface, asynchronous, pooled.

Theory of operation
-------------------
``urlopen_async`` returns a :class:`~tasklets.Task` whose body (``_fetch``)
runs one request chain: pick a connection from the pool, send, read up to
the response head, then either follow a redirect (the pure ``next_hop``
decides), raise :class:`HTTPError` for a status >= 400 (its body read first,
up to a limit, so ``err.read()`` works as in urllib; a body that could not be
read, corrupt or over the limit, raises the error met there), or return the
:class:`Response`, whose body the caller then reads.

The session layer (``_session.Client``, the verbs) runs the same chain with a
``Chain``, asked before each hop and after each response head (cookies,
credentials, hooks, a Digest challenge, retries); ``urlopen`` runs none.

An idempotent request that fails on a *reused* keep-alive connection before
any byte of the response came back is retried once on a new connection: the
server most likely closed the idle connection just as we sent. A POST is
never retried.

Errors of the layers below (network, TLS, protocol) are translated here into
``urllib.error.URLError`` subclasses that name the URL.
"""

from __future__ import annotations

import functools
import ssl as _ssl
import urllib.request
import weakref
from collections.abc import Generator, Iterable, Mapping
from typing import Any, Self

from .._combinators import with_timeout
from .._exceptions import (
    HTTPConnectTimeout,
    HTTPError,
    HTTPReadTimeout,
    LocalProtocolError,
    ReadTimeout,
    RemoteDisconnected,
    StreamError,
    TimeoutError,
    TotalTimeout,
    UnsupportedScheme,
)
from .._future import Future
from .._loop import Loop
from .._task import Task, current_task
from .._where import loop_for_caller
from . import _protocol as protocol
from ._auth import basic_authorization, url_credentials
from ._connection import HTTPConnection, as_client_error, name_the_url
from ._connector import Connector, Route
from ._decoders import supported_encodings
from ._headers import Headers
from ._pool import ConnectionPool, PoolLimits
from ._proxy import ProxyConfig, proxy_for
from ._redirects import REDIRECT_STATUSES, next_hop
from ._response import Response
from ._timeout import DEFAULT, Timeout
from ._url import URL, parse_url

__all__ = ["BaseClient", "HopRequest", "Timeout", "check_request"]

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
#: How much of an error response's body is read before HTTPError is raised.
ERROR_BODY_LIMIT = 1024 * 1024
#: Redirect responses' bodies up to this size are read (to keep the connection); larger ones close it.
_DRAIN_LIMIT = 64 * 1024
_USER_AGENT = "tasklets/0.1"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# What the decoders installed can take (fixed once imported): built once, not per request.
_ACCEPT_ENCODING = ", ".join(supported_encodings())


class _Request:
    """What one hop sends; ``sent``: the header pairs as sent, once sent."""

    __slots__ = ("method", "url", "headers", "body", "replayable", "unredirected", "sent")

    def __init__(
        self, method: str, url: URL, headers: Headers, body: Any, replayable: bool, unredirected: tuple[str, ...] = ()
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.replayable = replayable
        self.unredirected = unredirected  # header names not to send on after a redirect
        self.sent: list[tuple[str, str]] | None = None


#: What one hop sends, by the name the session layer (``_session``) builds it with.
HopRequest = _Request


class BaseClient:
    """Configuration and a connection pool for HTTP requests: the engine under :class:`~tasklets.http.Client`.

    Args:
        limits: connection limits and keep-alive expiry of the pool.
        timeout: default timeouts (a number: connect and read).
        context: the ``ssl.SSLContext`` for https (default: verification on).
        max_redirects: redirects followed before :class:`TooManyRedirects`.
        headers: sent with every request (``User-Agent``, say).
        proxies: ``"env"`` to honour ``HTTP(S)_PROXY``/``NO_PROXY``, None for none,
            or a mapping ``{"http": url, "https": url, "no": "host,host"}``. Credentials
            in a proxy URL (``http://user:pass@proxy:3128``) are sent to the proxy as
            ``Proxy-Authorization: Basic``.
        parser: ``"auto"`` (httptools when installed, else h11), ``"h11"`` or ``"httptools"``.
        decompress: ask for and decode gzip and deflate (and br and zstd when their
            packages are installed: ``tasklets[compression]``).
        connector: what opens the pool's connections (default: a
            :class:`~tasklets.http.Connector` with this client's ``parser`` and ``uds``).
    """

    #: A Unix socket path that every connection goes to instead of the origin's address.
    uds: str | None = None

    def __init__(
        self,
        *,
        limits: PoolLimits | None = None,
        timeout: float | Timeout | None = None,
        context: _ssl.SSLContext | None = None,
        max_redirects: int = 10,
        headers: Mapping[str, str] | None = None,
        proxies: str | Mapping[str, str] | None = "env",
        parser: str = "auto",
        decompress: bool = True,
        connector: Connector | None = None,
    ) -> None:
        self.limits = limits or PoolLimits()
        self.timeout = Timeout() if timeout is None else Timeout.of(timeout)
        self.context = context
        self.max_redirects = max_redirects
        self.headers = Headers(headers or {})
        self.proxies = ProxyConfig.from_setting(proxies)
        self.parser = parser
        self.decompress = decompress
        self.connector = connector
        self._pools: weakref.WeakKeyDictionary[Loop, ConnectionPool] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"<tasklets.http.Client pools={list(self._pools.values())}>"

    def _pool(self, loop: Loop) -> ConnectionPool:
        pool = self._pools.get(loop)
        if pool is None:
            connector = self.connector or Connector(parser=self.parser, uds=self.uds)
            pool = self._pools[loop] = ConnectionPool(loop, self.limits, connector)
            loop.add_close_callback(pool.abort)  # its sockets go with the loop that watches them
        return pool

    def close(self) -> None:
        """Close every idle connection of every pool."""
        for pool in list(self._pools.values()):
            pool.close()
        self._pools.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the public request ----------------------------------------------------------------------------

    def urlopen(
        self,
        url: str | urllib.request.Request,
        data: bytes | Iterable[bytes] | Any = None,
        timeout: float | Timeout | None = DEFAULT,
        *,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        context: _ssl.SSLContext | None = None,
    ) -> Task[Response]:
        """Start a request; a task (a future) of the :class:`Response` once its head has arrived.

        Mirrors :func:`urllib.request.urlopen`: ``url`` may be a string or a
        ``urllib.request.Request`` (its data, headers and method are used);
        ``data`` makes it a POST unless ``method`` says otherwise.

        Args:
            url: the URL or ``Request``.
            data: the request body: bytes, a file opened in binary mode, or
                an iterable of bytes (sent chunked). Should the server answer
                with a status of 300 or more before the body is all sent (a
                413, say), sending stops and that answer is the outcome.
            timeout: seconds (connect and read) or a :class:`Timeout`.
            headers: extra request headers.
            method: the method (default GET, or POST with a body).
            context: the ``ssl.SSLContext`` for https.

        Returns:
            A task whose result is the response. It fails with
            :class:`HTTPError` when the final status is 400 or more, and with
            another ``urllib.error.URLError`` subclass, naming the URL, for
            anything else that went wrong.
        """
        request = self._build(url, data, headers, method)
        return self._start(request, timeout, context, None)

    def _start(self, request: _Request, timeout: Any, context: _ssl.SSLContext | None, chain: Any) -> Task[Response]:
        """The task of one request chain; ``chain`` (None: urllib's rules) is the session's per-hop policy."""
        loop = loop_for_caller()
        timeouts = self.timeout if timeout is DEFAULT else Timeout.of(timeout)
        context = context or self.context
        if chain is not None and chain.retry is not None:  # the chain again, from its first hop, as the policy says
            body = chain.retrying(functools.partial(self._fetch, loop, request, timeouts, context, chain), request)
        else:
            body = self._fetch(loop, request, timeouts, context, chain)
        return Task(
            body,
            loop=loop,
            name=f"urlopen {request.method} {request.url}",
        )

    def _build(
        self,
        url: str | urllib.request.Request,
        data: Any,
        headers: Mapping[str, str] | None,
        method: str | None,
    ) -> _Request:
        all_headers = self.headers.copy()
        unredirected: tuple[str, ...] = ()
        if isinstance(url, urllib.request.Request):
            request = url
            if data is None:
                data = request.data
            for name, value in request.header_items():
                all_headers.set(name, value)
            method = method or request.get_method()
            url = request.full_url
            unredirected = tuple(name for name in request.unredirected_hdrs if name not in request.headers)
        for name, value in (headers or {}).items():
            all_headers.set(name, value)
        method = (method or ("POST" if data is not None else "GET")).upper()
        parsed = parse_url(url)
        if "@" in url and "Authorization" not in all_headers:
            credentials = url_credentials(url)  # user:pass@ in the URL: Basic auth, as urllib's handlers make it
            if credentials is not None:
                all_headers.set("Authorization", basic_authorization(*credentials))
        if data is not None and "Content-Type" not in all_headers:
            all_headers.set("Content-Type", FORM_CONTENT_TYPE)  # what urllib sends with data=
        try:
            check_request(method, all_headers)
        except LocalProtocolError as exc:
            name_the_url(exc, f"{method} {url}")
            raise
        replayable = data is None or isinstance(data, (bytes, bytearray, memoryview))
        if hasattr(data, "read"):
            data = _file_chunks(data)
        elif isinstance(data, str):
            raise TypeError("a request body must be bytes, a binary file or an iterable of bytes, not str")
        elif data is not None and not replayable and not isinstance(data, Iterable):
            raise TypeError(f"cannot send {data!r} as a request body")
        return _Request(method, parsed, all_headers, data, replayable, unredirected)

    # -- the request chain ---------------------------------------------------------------------------------

    def _fetch(
        self, loop: Loop, request: _Request, timeouts: Timeout, context: _ssl.SSLContext | None, chain: Any = None
    ) -> Generator[Any, Any, Response]:
        """The request chain. ``chain`` (a session's ``_session.Chain``) is asked before each hop and after
        each response head: it adds cookies, credentials and hooks, and may send the request again."""
        deadline = None if timeouts.total is None else loop.time() + timeouts.total
        visited: list[str] = []  # the URLs of the chain so far, filled at the first redirect
        history: list[Response] = []
        while True:
            if chain is not None:
                work = chain.before(request)  # None, or a generator when hooks must run
                if work is not None:
                    yield from work
            started = loop.time()
            response = yield from self._exchange_with_deadline(loop, request, timeouts, context, deadline)
            response.elapsed_seconds = loop.time() - started
            response.sent = request
            if chain is not None:
                work = chain.after(request, response)
                if work is not None:
                    again = yield from work
                    if again is not None:  # the same request again (a Digest challenge answered)
                        request = again
                        continue
            hop = None
            if response.status in REDIRECT_STATUSES and (chain is None or chain.follow_redirects):
                if not visited:
                    visited.append(str(request.url))
                try:
                    hop = next_hop(
                        method=request.method,
                        url=request.url,
                        headers=request.headers,
                        body=request.body,
                        body_replayable=request.replayable,
                        status=response.status,
                        location=response.headers.get("Location"),
                        visited=visited,
                        max_redirects=self.max_redirects,
                        unredirected=request.unredirected,
                    )
                except BaseException:
                    response.close()  # a refused redirect: its connection must not stay checked out
                    raise
            if hop is not None:
                yield from _discard_body(response)
                request = _Request(hop.method, hop.url, hop.headers, hop.body, request.replayable)
                visited.append(str(hop.url))
                history.append(response)
                continue
            if history:
                response.history = history
            if response.status >= 400 and (chain is None or chain.raise_errors):
                body = yield from response.read_for_error(ERROR_BODY_LIMIT)
                response.keep_body(body)
                raise HTTPError(response.url, response.status, response.reason, response.headers, body, response)
            # A task resumes with a wait that completed (here: the head) even
            # when it was cancelled meanwhile; the cancellation lands at this
            # wait, and the response nobody is left to take is closed. Waited
            # only when a cancellation is pending: a step less per request.
            task = current_task()
            if task is None or task.cancelling():
                try:
                    yield None
                except BaseException:
                    response.close()
                    raise
            return response

    def _exchange_with_deadline(
        self,
        loop: Loop,
        request: _Request,
        timeouts: Timeout,
        context: _ssl.SSLContext | None,
        deadline: float | None,
    ) -> Generator[Any, Any, Response]:
        if deadline is None:
            return (yield from self._exchange(loop, request, timeouts, context, None))
        inner = Task(self._exchange(loop, request, timeouts, context, deadline), loop=loop)
        try:
            response: Response = yield with_timeout(inner, max(0.0, deadline - loop.time()))
            return response
        except TimeoutError as exc:
            # with_timeout has only *requested* the cancellation of ``inner``: it may still be pending,
            # and may yet finish with a response that nobody is left to take.
            inner.add_done_callback(_close_unclaimed)
            if isinstance(exc, (HTTPConnectTimeout, HTTPReadTimeout)) or (inner.done() and not inner.cancelled()):
                raise
            message = f"{request.method} {request.url} took longer than the total timeout"
            raise TotalTimeout(message, reason=exc) from exc

    def _exchange(
        self,
        loop: Loop,
        request: _Request,
        timeouts: Timeout,
        context: _ssl.SSLContext | None,
        deadline: float | None,
    ) -> Generator[Any, Any, Response]:
        """One request and response head, retried once on a stale keep-alive connection."""
        pool = self._pool(loop)
        url = request.url
        # Over a Unix socket every origin is served by the one socket: no proxy on the way.
        proxy = proxy_for(self.proxies, url) if pool.connector.uds is None else None
        if proxy is not None and proxy.error is not None:
            raise UnsupportedScheme(f"cannot fetch {url}: {proxy.error}")
        route = Route(url.origin, proxy, context)
        for attempt in (1, 2):
            conn: HTTPConnection = yield from pool.acquire(
                route,
                timeouts.pool,
                connect_timeout=timeouts.connect,
                retryable=attempt == 1 and request.method in _IDEMPOTENT and request.replayable,
                reuse=attempt == 1,  # the retry goes on a new connection: the other idle ones may be stale too
            )
            conn.stream.timeout = timeouts.read
            headers = self._request_headers(request)
            if proxy is not None and route.forwarded:  # an HTTP proxy forwards plain http (https is tunnelled)
                target = str(url)
                if proxy.authorization and "Proxy-Authorization" not in request.headers:
                    headers.append(("Proxy-Authorization", proxy.authorization))
            else:
                target = url.target
            request.sent = headers
            try:
                head = yield from conn.send(request.method, target, headers, request.body)
            except BaseException as exc:
                conn.discard()
                if not isinstance(exc, (RemoteDisconnected, StreamError)):
                    name_the_url(exc, f"{request.method} {request.url}")  # a protocol error: name the URL
                    raise  # a protocol error, a cancellation...: nothing to translate or retry
                # The server closed a reused keep-alive connection just as we sent: retry once.
                stale = conn.is_reused and not isinstance(exc, ReadTimeout)
                if attempt == 1 and stale and request.method in _IDEMPOTENT and request.replayable:
                    continue
                error = as_client_error(exc, f"{request.method} {request.url}")
                if error is exc:  # RemoteDisconnected, now naming the URL
                    raise
                raise error from exc
            try:
                return Response(
                    status=head.status,
                    reason=head.reason,
                    headers=Headers._adopt(head.headers),  # str pairs, made for this response alone
                    url=str(url),
                    version=head.version,
                    connection=None if head.complete else conn,
                    method=request.method,
                    loop=loop,
                    deadline=deadline,
                    decode=self.decompress,
                )
            except BaseException as exc:  # an unknown Content-Encoding: the body will not be read
                conn.abandon()
                name_the_url(exc, f"{request.method} {request.url}")
                raise
        raise AssertionError("unreachable")

    def _request_headers(self, request: _Request) -> list[tuple[str, str]]:
        headers = request.headers
        pairs: list[tuple[str, str]] = []
        if "Host" not in headers:
            pairs.append(("Host", request.url.origin.authority))
        if "User-Agent" not in headers:
            pairs.append(("User-Agent", _USER_AGENT))
        if self.decompress and "Accept-Encoding" not in headers:
            pairs.append(("Accept-Encoding", _ACCEPT_ENCODING))
        body = request.body
        if body is not None and "Content-Length" not in headers and "Transfer-Encoding" not in headers:
            if isinstance(body, (bytes, bytearray, memoryview)):
                pairs.append(("Content-Length", str(len(body))))
            else:
                pairs.append(("Transfer-Encoding", "chunked"))
        elif body is None and request.method in ("POST", "PUT", "PATCH") and "Content-Length" not in headers:
            pairs.append(("Content-Length", "0"))
        pairs.extend(headers.items())
        return pairs


def _close_unclaimed(done: Future[Response]) -> None:
    if not done.cancelled() and done.exception() is None:
        done.result().close()


def check_request(method: str, headers: Headers) -> None:
    """Refuse an invalid method or header (CR/LF injection...) before a connection is opened.

    The client checks every request with it; a command line checks its
    ``--header`` options with it, so they fail once, up front.

    Raises:
        LocalProtocolError: ``method`` is no token, or a header name or value is invalid.
    """
    try:
        raw = method.encode("ascii")
    except UnicodeEncodeError:
        raw = b""
    if not raw or raw.translate(None, protocol._TOKEN_CHARS):
        raise LocalProtocolError(f"invalid method {method!r}: it must be a token such as 'GET'")
    protocol.ClientConnection._check_fields(headers.items(), "header")


def _discard_body(response: Response) -> Generator[Any, Any, None]:
    """Read a redirect's body so its connection can be reused; close it if large."""
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) <= _DRAIN_LIMIT:
        try:
            yield from response.read()
            return
        except Exception:
            pass
    response.close()


def _file_chunks(file: Any, size: int = 64 * 1024) -> Generator[bytes, None, None]:
    while True:
        chunk = file.read(size)
        if not chunk:
            return
        if isinstance(chunk, str):
            raise LocalProtocolError("a request body file must be opened in binary mode")
        yield chunk
