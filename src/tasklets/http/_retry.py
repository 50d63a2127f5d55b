"""When to try a request again, and how long to wait first: a pure policy.

:class:`Retry` holds the user's choices; :meth:`Retry.next_delay` takes what
happened (the attempt number, the method, the status or the error, the
``Retry-After`` header), the wall-clock time and a random number, and answers
with the seconds to wait before the next attempt, or ``None`` for "give up".
It reads no clock, draws no random number and sleeps nothing: the caller (the
client, ``tasklets fetch``) does those, so every rule here is tested with
plain numbers.

The rules (what urllib3, requests and aria2 users expect):

* ``total`` retries at most, so ``total + 1`` attempts.
* A response is retried when its status is in ``statuses`` (429, 502, 503
  and 504 by default: "busy", "try again"); 500 is not, since a server bug
  rarely fixes itself in a second.
* An error is retried when it is the network's: no connection (refused,
  unresolvable, connect timeout), or a connection that broke or went silent
  mid-exchange. Never when the request itself is wrong (an invalid URL, a bad
  header), the certificate did not verify, the response was malformed, a
  redirect was refused, or the body would not decode: those fail the same way
  every time.
* Only the methods in ``methods`` are retried (the idempotent ones by
  default, RFC 9110 §9.2.2), since the server may have acted on a POST
  before it failed. A failure to *connect* is retried whatever the method:
  nothing was sent.
* A request whose body cannot be sent again (a stream already consumed) is
  retried only after a failure to connect.
* The wait is exponential, ``backoff_factor * 2 ** (attempt - 1)`` capped
  at ``backoff_max``, with a random part (``jitter``) so that many clients
  failed together do not all come back together. A ``Retry-After`` header
  (seconds, or an HTTP date) replaces it when ``respect_retry_after``, capped
  at ``retry_after_max``: a server that asks for a year gets the cap, never a
  year of sleep.
"""

from __future__ import annotations

import datetime
import email.utils
import math
from collections.abc import Iterable
from dataclasses import dataclass

from .._exceptions import (
    ConnectError,
    ConnectFailed,
    ConnectionBroken,
    HTTPError,
    ReadTimeout,
    RemoteProtocolError,
    TLSCertificateError,
)

__all__ = ["DEFAULT_STATUSES", "IDEMPOTENT_METHODS", "Retry", "parse_retry_after"]

#: Statuses that mean "try again later": Too Many Requests, Bad Gateway, Service Unavailable, Gateway Timeout.
DEFAULT_STATUSES = frozenset({429, 502, 503, 504})
#: The idempotent methods of RFC 9110 §9.2.2: sending one twice has the effect of sending it once.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True, init=False)
class Retry:
    """How to retry a failed request: how often, which failures, and how long to wait.

    Args:
        total: the most retries (so at most ``total + 1`` attempts); 0 never retries.
        backoff_factor: the first wait, in seconds; each further one doubles.
        statuses: the response statuses to retry (429, 502, 503, 504 by default).
        methods: the methods to retry (the idempotent ones by default); ``None``
            retries every method, POST included: only for servers known to
            tolerate a request twice.
        respect_retry_after: wait as long as a ``Retry-After`` header asks
            (up to ``retry_after_max``) rather than the backoff.
        jitter: the random share of each backoff wait, from 0 (none: waits of
            exactly 0.5, 1, 2... s) to 1 (anything from 0 up to the full wait).
        backoff_max: the longest backoff wait, in seconds.
        retry_after_max: the longest wait a ``Retry-After`` header gets, in seconds.

    Raises:
        ValueError: an argument out of its range (a negative count or wait, a
            jitter outside 0..1, a status that is not one, a lower-case method).
        TypeError: an argument of the wrong type.
    """

    total: int
    backoff_factor: float
    statuses: frozenset[int]
    methods: frozenset[str] | None
    respect_retry_after: bool
    jitter: float
    backoff_max: float
    retry_after_max: float

    def __init__(
        self,
        total: int = 3,
        *,
        backoff_factor: float = 0.5,
        statuses: Iterable[int] = DEFAULT_STATUSES,
        methods: Iterable[str] | None = IDEMPOTENT_METHODS,
        respect_retry_after: bool = True,
        jitter: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: float = 120.0,
    ) -> None:
        if isinstance(total, bool) or not isinstance(total, int):
            raise TypeError(f"Retry(total=...) must be a whole number of retries, got {total!r}")
        if total < 0:
            raise ValueError(f"Retry(total=...) must be 0 or more, got {total}")
        statuses = frozenset(statuses)
        for status in statuses:
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise ValueError(f"Retry(statuses=...) takes HTTP statuses (100 to 599), got {status!r}")
        if methods is not None:
            if isinstance(methods, str):
                raise TypeError(f"Retry(methods=...) takes a collection of methods, got the string {methods!r}")
            methods = frozenset(methods)
            for method in methods:
                if not isinstance(method, str) or not method or method != method.upper():
                    raise ValueError(f"Retry(methods=...) takes upper-case method names like 'GET', got {method!r}")
        for name, value in (
            ("backoff_factor", backoff_factor),
            ("backoff_max", backoff_max),
            ("retry_after_max", retry_after_max),
        ):
            _check_seconds(name, value)
        _check_seconds("jitter", jitter)
        if jitter > 1:
            raise ValueError(f"Retry(jitter=...) is the random share of a wait, from 0 to 1, got {jitter!r}")
        set_field = object.__setattr__  # frozen: the fields are set once, here
        set_field(self, "total", total)
        set_field(self, "backoff_factor", float(backoff_factor))
        set_field(self, "statuses", statuses)
        set_field(self, "methods", methods)
        set_field(self, "respect_retry_after", bool(respect_retry_after))
        set_field(self, "jitter", float(jitter))
        set_field(self, "backoff_max", float(backoff_max))
        set_field(self, "retry_after_max", float(retry_after_max))

    def next_delay(
        self,
        *,
        attempt: int,
        method: str,
        status: int | None = None,
        error: BaseException | None = None,
        retry_after: str | None = None,
        replayable: bool = True,
        now: float,
        random: float,
    ) -> float | None:
        """The seconds to wait before trying again, or ``None`` to give up.

        Args:
            attempt: the attempts made so far, the one that just failed
                included (1 after the first).
            method: the request's method.
            status: the response's status, when a response came (an
                :class:`~tasklets.HTTPError`'s is read from ``error``).
            error: the exception the attempt failed with, if it did.
            retry_after: the response's ``Retry-After`` header, if any (an
                :class:`~tasklets.HTTPError`'s is read from ``error``).
            replayable: whether the request's body can be sent again.
            now: the wall-clock time (:func:`time.time`), for a
                ``Retry-After`` given as a date.
            random: a number drawn uniformly from [0, 1), for the jitter.

        Returns:
            A wait in seconds (0 or more), or ``None`` when the failure is
            not one to retry, the method is not, or the retries are spent.
        """
        if attempt > self.total:
            return None
        if isinstance(error, HTTPError):
            status = error.code
            if retry_after is None and error.headers is not None:
                retry_after = error.headers.get("Retry-After")
            error = None
        if error is not None:
            kind = _error_kind(error)
            if kind is None:
                return None
            if kind == "mid-exchange" and not (replayable and self._retries_method(method)):
                return None
        elif status is None or status not in self.statuses or not (replayable and self._retries_method(method)):
            return None
        if self.respect_retry_after and retry_after is not None:
            asked = parse_retry_after(retry_after, now=now)
            if asked is not None:
                return min(asked, self.retry_after_max)
        return self.backoff(attempt, random=random)

    def backoff(self, attempt: int, *, random: float) -> float:
        """The backoff wait after ``attempt`` attempts: doubling from ``backoff_factor``, capped, jittered."""
        full = min(self.backoff_factor * 2.0 ** min(attempt - 1, 64), self.backoff_max)
        return full * (1.0 - self.jitter * random)

    def _retries_method(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


def _error_kind(error: BaseException) -> str | None:
    """``"connect"`` (nothing was sent), ``"mid-exchange"`` (something may have been), or None (not worth a retry)."""
    if isinstance(error, ConnectFailed):
        reason = error.reason
        if isinstance(reason, TLSCertificateError):
            return None  # it will not verify the next time either
        return "connect"
    if isinstance(error, ConnectError):  # HTTPConnectTimeout, or the network layer's own
        return None if isinstance(error, TLSCertificateError) else "connect"
    if isinstance(error, (ConnectionBroken, RemoteProtocolError, ReadTimeout)):
        return "mid-exchange"
    return None


def _check_seconds(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Retry({name}=...) must be a number, got {value!r}")
    if not 0 <= value < math.inf:  # refuses nan too
        raise ValueError(f"Retry({name}=...) must be 0 or more and finite, got {value!r}")


def parse_retry_after(value: str, *, now: float) -> float | None:
    """The seconds a ``Retry-After`` header asks to wait from ``now``, or None when it is not valid.

    RFC 9110 §10.2.3: either a number of seconds (digits only) or an HTTP
    date; a date already past asks for no wait. The result is not capped:
    :meth:`Retry.next_delay` does that.
    """
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text) if len(text) < 16 else math.inf  # no float of a thousand digits
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # asctime's format has no zone: HTTP dates are all GMT
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - now)
