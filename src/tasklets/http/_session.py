"""``Client``: the session users keep around, with requests' and httpx's verbs.

Theory of operation
-------------------
:class:`Client` is the urllib-shaped engine (``_client.BaseClient``: pool,
exchange, redirects) plus what a session adds: defaults (base URL, headers,
params, auth, timeouts), a cookie jar, event hooks, and the verbs. A verb
builds one request (``_forms`` makes its body) and starts the engine's
request chain with a :class:`Chain`, the per-request policy the engine asks
before each hop (cookies for that URL, credentials if the hop stays at the
first origin, request hooks) and after each response head (store cookies,
response hooks, answer a Digest challenge once). ``urlopen`` runs no chain:
it keeps urllib's rules exactly, and its speed.

Verbs return a response for every status; ``raise_for_status()`` turns a
4xx or 5xx into :class:`~tasklets.HTTPError`.
"""

from __future__ import annotations

import http.cookiejar
import inspect
import os
import random
import ssl as _ssl
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any

from .._combinators import sleep
from .._future import is_future_like
from .._task import Task
from ._auth import DigestAuth, basic_authorization, netrc_credentials, url_credentials
from ._client import BaseClient, HopRequest, check_request
from ._connection import name_the_url
from ._connector import Connector
from ._cookies import SessionCookieJar, cookie_header, may_hold_cookies, store_cookies
from ._forms import encode_body, encode_form
from ._headers import Headers
from ._pool import PoolLimits
from ._response import Response
from ._response_extras import SentRequest
from ._retry import Retry
from ._timeout import DEFAULT, Timeout
from ._url import parse_url

__all__ = ["Chain", "Client"]

_SMALL_BODY = 64 * 1024  # a 401's body up to this is read so its connection is kept

Hook = Callable[[Any], Any]


class Client(BaseClient):
    """An HTTP session: defaults, a cookie jar, hooks and a connection pool, for many requests.

    Args:
        base_url: what relative URLs given to the verbs are joined to.
        headers: sent with every request.
        params: query parameters added to every request's URL.
        auth: ``(user, password)`` (Basic), a :class:`~tasklets.http.DigestAuth`, or a callable
            given each outgoing request (``.method``, ``.url``, ``.headers``),
            which may change its headers.
        cookies: a ``http.cookiejar.CookieJar`` (default: a new one for this
            client), or None to keep no cookies.
        timeout: seconds (connect and read) or a :class:`Timeout`.
        follow_redirects: whether the verbs follow redirects.
        max_redirects: redirects followed before ``TooManyRedirects``.
        retries: a :class:`~tasklets.http.Retry` policy (or a number: ``Retry(total=n)``)
            for the verbs: a busy status (429, 503...) or a network failure is tried
            again after a backoff or the ``Retry-After`` the server asks for (capped).
        event_hooks: ``{"request": [fn, ...], "response": [fn, ...]}``: each a
            function or a task function, run in order on every hop.
        trust_env: read proxies from the environment and credentials from ``~/.netrc``.
        limits: the pool's limits.
        context: the ``ssl.SSLContext`` for https.
        proxy: one proxy URL for every request (``http://``, ``https://``,
            ``socks5://``...), or None for none; by default the environment's.
        uds: a Unix socket path every connection goes to (Docker's API, say).
        proxies, parser, decompress: as for ``urlopen`` (see ``BaseClient``).
        connector: what opens the pool's connections (default: a :class:`~tasklets.http.Connector`
            with ``parser`` and ``uds``); ``tasklets.testing.FakeConnector`` serves them from memory.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        auth: Any = None,
        cookies: http.cookiejar.CookieJar | None = DEFAULT,
        timeout: float | Timeout | None = None,
        follow_redirects: bool = True,
        max_redirects: int = 10,
        retries: Retry | int | None = None,
        event_hooks: Mapping[str, Iterable[Hook]] | None = None,
        trust_env: bool = True,
        limits: PoolLimits | None = None,
        context: _ssl.SSLContext | None = None,
        proxy: str | None = DEFAULT,
        uds: str | os.PathLike[str] | None = None,
        proxies: str | Mapping[str, str] | None = DEFAULT,
        parser: str = "auto",
        decompress: bool = True,
        connector: Connector | None = None,
    ) -> None:
        if connector is not None and uds is not None:
            raise ValueError(f"Client(uds=) and Client(connector=) together: give {connector!r} the uds= instead")
        if proxy is not DEFAULT:
            proxies = None if proxy is None else {"http": proxy, "https": proxy}
        elif proxies is DEFAULT:
            proxies = "env" if trust_env else None
        super().__init__(
            limits=limits, timeout=timeout, context=context, max_redirects=max_redirects, headers=headers,
            proxies=proxies, parser=parser, decompress=decompress, connector=connector,
        )
        if base_url is not None:
            parse_url(base_url)  # refused now (InvalidURL), not at the first request
        self.base_url = base_url
        self.params = list(_pairs(params))
        self.auth = auth
        self.cookies = SessionCookieJar() if cookies is DEFAULT else cookies
        self.follow_redirects = follow_redirects
        if isinstance(retries, int) and not isinstance(retries, bool):
            retries = Retry(retries)
        if retries is not None and not isinstance(retries, Retry):
            raise TypeError(f"retries must be a tasklets.http.Retry, a number of retries or None, not {retries!r}")
        self.retries: Retry | None = retries
        self.trust_env = trust_env
        hooks = dict(event_hooks or {})
        unknown = set(hooks) - {"request", "response"}
        if unknown:
            raise ValueError(f"event_hooks takes 'request' and 'response' hooks, not {sorted(unknown)!r}")
        self.event_hooks: dict[str, list[Hook]] = {
            "request": list(hooks.get("request", ())), "response": list(hooks.get("response", ()))
        }
        self.uds = None if uds is None else os.fspath(uds)
        self._netrc_cache: dict[str, tuple[str, str] | None] = {}

    def __repr__(self) -> str:
        where = f" base_url={self.base_url!r}" if self.base_url else ""
        return f"<tasklets.http.Client{where} pools={list(self._pools.values())}>"

    # -- the verbs ---------------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        json: Any = DEFAULT,
        files: Any = None,
        auth: Any = DEFAULT,
        cookies: Mapping[str, str] | http.cookiejar.CookieJar | None = None,
        timeout: float | Timeout | None = DEFAULT,
        follow_redirects: bool | None = None,
        context: _ssl.SSLContext | None = None,
    ) -> Task[Response]:
        """Start a request; a task (a future) of the :class:`Response` once its head is in, whatever its status.

        Args:
            method: ``"GET"``, ``"POST"``...
            url: absolute, or relative to ``base_url``.
            params: query parameters, merged into the URL's query (a list value repeats its key).
            headers: request headers, over the client's.
            data: the body: bytes; str (sent as UTF-8); a dict or list of pairs
                (form-encoded); a binary file; an iterable or async iterable of
                bytes (streamed, chunked).
            json: a value sent as a JSON body.
            files: ``{name: file}`` sent as ``multipart/form-data`` (with
                ``data`` as its other fields), each file a ``pathlib.Path``, a
                binary file, bytes, or ``(filename, content[, content_type[, headers]])``;
                files are read from disk as they are sent.
            auth: for this request, instead of the client's (None: none).
            cookies: a ``CookieJar`` to use instead of the client's, or a dict
                of cookies sent with this request (to its origin).
            timeout: seconds or a :class:`Timeout`, instead of the client's.
            follow_redirects: instead of the client's.
            context: the ``ssl.SSLContext`` for https.

        Raises:
            InvalidURL: a bad URL (raised here, before anything is sent, as are the next).
            TypeError: a body, ``auth`` or ``params`` of a type that cannot be sent.
            ValueError: ``json=`` with ``data=`` or ``files=``.
            FileNotFoundError: a ``files=`` path that does not exist.
        """
        method = method.upper()
        full = url if params is None and not self.params and self.base_url is None else self._url(url, params)
        body = None
        if data is not None or files is not None or json is not DEFAULT:
            body = encode_body(data, json, files, has_json=json is not DEFAULT)
        all_headers = self.headers.copy()
        if headers:
            for name, value in headers.items():
                all_headers.set(name, value)
        if body is not None:
            if body.content_type is not None and "Content-Type" not in all_headers:
                all_headers.set("Content-Type", body.content_type)
            if body.length is not None and "Content-Length" not in all_headers and not isinstance(body.content, bytes):
                all_headers.set("Content-Length", str(body.length))
        parsed = parse_url(full)
        try:
            check_request(method, all_headers)
        except Exception as exc:
            name_the_url(exc, f"{method} {full}")
            raise
        jar, extra = self.cookies, None
        if cookies is not None:
            if isinstance(cookies, http.cookiejar.CookieJar):
                jar = cookies
            else:
                extra = cookies
        chain = Chain(
            self,
            self._auth_for(full, parsed.origin.host, all_headers, self.auth if auth is DEFAULT else auth),
            jar,
            extra,
            self.follow_redirects if follow_redirects is None else follow_redirects,
        )
        content = None if body is None else body.content
        request = HopRequest(method, parsed, all_headers, content, body is None or body.replayable)
        return self._start(request, timeout, context, chain)

    def get(self, url: str, **kwargs: Any) -> Task[Response]:
        """``request("GET", url, ...)``."""
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Task[Response]:
        """``request("HEAD", url, ...)``."""
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Task[Response]:
        """``request("OPTIONS", url, ...)``."""
        return self.request("OPTIONS", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Task[Response]:
        """``request("DELETE", url, ...)``."""
        return self.request("DELETE", url, **kwargs)

    def post(self, url: str, data: Any = None, **kwargs: Any) -> Task[Response]:
        """``request("POST", url, data=data, ...)``."""
        return self.request("POST", url, data=data, **kwargs)

    def put(self, url: str, data: Any = None, **kwargs: Any) -> Task[Response]:
        """``request("PUT", url, data=data, ...)``."""
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url: str, data: Any = None, **kwargs: Any) -> Task[Response]:
        """``request("PATCH", url, data=data, ...)``."""
        return self.request("PATCH", url, data=data, **kwargs)

    # -- building --------------------------------------------------------------------------------------------

    def _url(self, url: str, params: Any) -> str:
        if not isinstance(url, str):
            raise TypeError(f"a URL must be a string, got {url!r}")
        if self.base_url is not None and "://" not in url:
            url = self.base_url.rstrip("/") + "/" + url.lstrip("/")
        pairs = self.params + list(_pairs(params))
        if not pairs:
            return url
        head, _, fragment = url.partition("#")
        query = encode_form(pairs).decode("ascii")
        joined = head + ("&" if "?" in head else "?") + query
        return joined + ("#" + fragment if fragment else "")

    def _auth_for(self, url: str, host: str, headers: Headers, auth: Any) -> Any:
        """The credentials of a request: ``auth``, else the URL's ``user:pass@``, else ``~/.netrc``."""
        if auth is None and "@" in url and "@" in url.partition("?")[0]:
            credentials = url_credentials(url)
            if credentials is not None:
                auth = credentials
        if auth is None and self.trust_env:
            found = self._netrc_cache.get(host, self)
            if found is self:  # ~/.netrc is read once per client and host
                found = self._netrc_cache[host] = netrc_credentials(host)
            if found is not None and "Authorization" not in headers:
                auth = found
        if isinstance(auth, tuple):
            if len(auth) != 2:
                raise TypeError(f"auth=(user, password) takes two items, not {auth!r}")
            return basic_authorization(*auth)
        if auth is not None and not isinstance(auth, (str, DigestAuth)) and not callable(auth):
            raise TypeError(f"auth must be (user, password), a DigestAuth or a callable, not {auth!r}")
        return auth


def _pairs(params: Any) -> Iterable[tuple[str, Any]]:
    if params is None:
        return ()
    if isinstance(params, Mapping):
        return list(params.items())
    if isinstance(params, (str, bytes)):
        raise TypeError(f"params must be a dict or a list of (name, value) pairs, not {params!r}")
    return list(params)


class Chain:
    """What a session does around each hop of one request chain (see the module docstring)."""

    __slots__ = ("client", "auth", "jar", "cookies", "follow_redirects", "raise_errors", "retry", "_origin", "_added",
                 "_answered")

    def __init__(
        self,
        client: Client,
        auth: Any,
        jar: http.cookiejar.CookieJar | None,
        cookies: Mapping[str, str] | None,
        follow_redirects: bool,
        raise_errors: bool = False,
    ) -> None:
        self.client = client
        self.auth = auth  # a Basic header value, a DigestAuth, a callable, or None
        self.jar = jar
        self.cookies = cookies
        self.follow_redirects = follow_redirects
        self.raise_errors = raise_errors
        self.retry: Retry | None = client.retries
        self._origin: Any = None  # the first request's: credentials and given cookies go there only
        self._added: str | None = None  # the Cookie value this chain put on the request
        self._answered = False  # a Digest challenge answered: a second 401 is the outcome

    def before(self, request: HopRequest) -> Generator[Any, Any, None] | None:
        """Cookies and credentials for this hop; a generator to run when request hooks must."""
        headers = request.headers
        origin = request.url.origin
        if self._origin is None:
            self._origin = origin
        home = origin is self._origin or origin == self._origin
        if self._added is not None and headers.get("Cookie") == self._added:
            headers.remove("Cookie")  # the last hop's: this one gets its own
            self._added = None
        jar = self.jar if may_hold_cookies(self.jar) else None
        if jar is not None or (self.cookies and home):
            value = cookie_header(jar, str(request.url), self.cookies if home else None)
            if value and "Cookie" not in headers:
                headers.set("Cookie", value)
                self._added = value
        auth = self.auth
        if auth is not None and home:
            if isinstance(auth, str):
                if "Authorization" not in headers:
                    headers.set("Authorization", auth)
            elif isinstance(auth, DigestAuth):
                value = auth.authorization(origin, request.method, request.url.target)
                if value is not None:
                    headers.set("Authorization", value)
            else:
                return self._call(auth, _view(request), and_hooks=True)
        if self.client.event_hooks["request"]:
            return self._hooks("request", _view(request))
        return None

    def _call(self, auth: Hook, view: SentRequest, *, and_hooks: bool) -> Generator[Any, Any, None]:
        yield from _run(auth, view)
        if and_hooks:
            yield from self._hooks("request", view)

    def _hooks(self, kind: str, subject: Any) -> Generator[Any, Any, None]:
        for hook in self.client.event_hooks[kind]:
            yield from _run(hook, subject)

    def after(self, request: HopRequest, response: Response) -> Generator[Any, Any, HopRequest | None] | None:
        """Store cookies; a generator to run when hooks or a Digest challenge call for one (its result: the retry)."""
        if self.jar is not None:
            store_cookies(self.jar, response.url, response.headers)
        digest = response.status == 401 and isinstance(self.auth, DigestAuth) and not self._answered
        if digest or self.client.event_hooks["response"]:
            return self._after(request, response, digest)
        return None

    def _after(self, request: HopRequest, response: Response, digest: bool) -> Generator[Any, Any, HopRequest | None]:
        yield from self._hooks("response", response)
        challenge = response.headers.get("WWW-Authenticate")
        if not digest or challenge is None or not request.replayable or request.url.origin != self._origin:
            return None
        assert isinstance(self.auth, DigestAuth)
        self._answered = True
        if parse_digest := "digest" in challenge.lower():
            self.auth.remember(request.url.origin, challenge, f"{request.method} {request.url}")
        if not parse_digest:
            return None
        yield from _drain(response)
        headers = request.headers.copy()
        value = self.auth.authorization(request.url.origin, request.method, request.url.target)
        if value is not None:
            headers.set("Authorization", value)
        return HopRequest(request.method, request.url, headers, request.body, request.replayable)


    def retrying(
        self, fetch: Callable[[], Generator[Any, Any, Response]], request: HopRequest
    ) -> Generator[Any, Any, Response]:
        """Run the request chain ``fetch`` makes, again after a failure that :attr:`retry` says to retry.

        The policy (``_retry.Retry.next_delay``) decides from the attempt, the
        method, the status or error and ``Retry-After``; the wait is a loop timer.
        """
        retry = self.retry
        assert retry is not None
        attempt = 0
        while True:
            attempt += 1
            try:
                response = yield from fetch()
            except Exception as exc:
                delay = retry.next_delay(
                    attempt=attempt, method=request.method, error=exc, replayable=request.replayable,
                    now=time.time(), random=random.random(),
                )
                if delay is None:
                    raise
                yield sleep(delay)
                continue
            if response.status not in retry.statuses:
                return response
            delay = retry.next_delay(
                attempt=attempt, method=request.method, status=response.status,
                retry_after=response.headers.get("Retry-After"), replayable=request.replayable,
                now=time.time(), random=random.random(),
            )
            if delay is None:
                return response
            yield from _drain(response)
            yield sleep(delay)


def _view(request: HopRequest) -> SentRequest:
    """The hop as hooks and auth callables see it: its headers are the hop's own, changes and all."""
    return SentRequest(request.method, str(request.url), request.headers)


def _run(hook: Hook, subject: Any) -> Generator[Any, Any, None]:
    """Call a hook; wait for what it returns if that is a future, a generator or a coroutine."""
    made = hook(subject)
    if made is None:
        return
    if is_future_like(made):
        yield made
    elif inspect.isgenerator(made) or inspect.iscoroutine(made):
        yield Task(made)


def _drain(response: Response) -> Generator[Any, Any, None]:
    """Read a small body so its connection can be reused; close a large one."""
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) <= _SMALL_BODY:
        try:
            yield response.body()
            return
        except Exception:
            pass
    response.close()
