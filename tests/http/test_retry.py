"""The retry policy: a pure function of what happened, the time and a random number. No sockets, no clock."""

from __future__ import annotations

import email.utils
import io
import math

import pytest

import tasklets.http
from tasklets._exceptions import (
    ConnectFailed,
    ConnectionBroken,
    ConnectionRefused,
    DecodingError,
    HTTPConnectTimeout,
    HTTPError,
    HTTPReadTimeout,
    InvalidURL,
    LocalProtocolError,
    PoolTimeout,
    RemoteDisconnected,
    RemoteProtocolError,
    TLSCertificateError,
    TooManyRedirects,
)
from tasklets.http import Retry
from tasklets.http._headers import Headers
from tasklets.http._retry import DEFAULT_STATUSES, IDEMPOTENT_METHODS, parse_retry_after

NOW = 1_700_000_000.0  # any wall-clock time: the policy never reads the clock


def delay(policy: Retry, **kwargs: object) -> float | None:
    arguments: dict[str, object] = {"attempt": 1, "method": "GET", "now": NOW, "random": 0.0}
    arguments.update(kwargs)
    return policy.next_delay(**arguments)  # type: ignore[arg-type]


def http_error(status: int, headers: list[tuple[str, str]] | None = None) -> HTTPError:
    return HTTPError("http://h/", status, "Whatever", Headers(headers or []), io.BytesIO(b""))


def refused() -> ConnectFailed:
    return ConnectFailed("cannot connect to h:80: refused", ConnectionRefused("refused"))


def test_exported_from_the_http_package() -> None:
    assert tasklets.http.Retry is Retry
    assert "Retry" in tasklets.http.__all__


class TestDefaults:
    def test_retries_the_busy_statuses_and_not_the_others(self) -> None:
        policy = Retry()
        assert DEFAULT_STATUSES == {429, 502, 503, 504}
        for status in (429, 502, 503, 504):
            assert delay(policy, status=status) is not None, status
        for status in (200, 301, 400, 401, 404, 500, 501):
            assert delay(policy, status=status) is None, status

    def test_idempotent_methods_only(self) -> None:
        policy = Retry()
        assert IDEMPOTENT_METHODS == {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}
        for method in IDEMPOTENT_METHODS:
            assert delay(policy, status=503, method=method) is not None, method
        for method in ("POST", "PATCH", "CONNECT"):
            assert delay(policy, status=503, method=method) is None, method
            assert delay(policy, error=HTTPReadTimeout("read timed out"), method=method) is None, method

    def test_method_case_does_not_matter(self) -> None:
        assert delay(Retry(), status=503, method="get") is not None

    def test_methods_none_retries_every_method(self) -> None:
        assert delay(Retry(methods=None), status=503, method="POST") is not None
        assert delay(Retry(methods=["POST"]), status=503, method="POST") is not None
        assert delay(Retry(methods=["POST"]), status=503, method="GET") is None

    def test_chosen_statuses_replace_the_defaults(self) -> None:
        policy = Retry(statuses=[500])
        assert delay(policy, status=500) is not None
        assert delay(policy, status=503) is None


class TestCount:
    def test_total_retries_then_gives_up(self) -> None:
        policy = Retry(total=3)
        assert [delay(policy, status=503, attempt=n) is not None for n in (1, 2, 3, 4, 5)] == [
            True,
            True,
            True,
            False,
            False,
        ]

    def test_zero_never_retries(self) -> None:
        assert delay(Retry(total=0), status=503) is None
        assert delay(Retry(total=0), error=refused()) is None


class TestBackoff:
    def test_doubles_from_the_factor_without_jitter(self) -> None:
        policy = Retry(total=10, backoff_factor=0.5, jitter=0)
        assert [delay(policy, status=503, attempt=n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]

    def test_capped_at_backoff_max(self) -> None:
        policy = Retry(total=100, backoff_factor=1, jitter=0, backoff_max=10)
        assert delay(policy, status=503, attempt=5) == 10.0
        assert delay(policy, status=503, attempt=100) == 10.0  # no overflow either

    def test_jitter_takes_a_random_share_off(self) -> None:
        policy = Retry(total=5, backoff_factor=2, jitter=0.5)
        assert delay(policy, status=503, random=0.0) == 2.0
        assert delay(policy, status=503, random=0.5) == 1.5
        assert delay(policy, status=503, random=0.999) == pytest.approx(1.001)
        full = Retry(total=5, backoff_factor=2, jitter=1)
        assert delay(full, status=503, random=0.75) == 0.5

    def test_jittered_waits_spread(self) -> None:
        policy = Retry(total=5, backoff_factor=1, jitter=1)
        waits = {delay(policy, status=503, random=r / 10) for r in range(10)}
        assert len(waits) == 10
        assert all(0 < w <= 1 for w in waits if w is not None)

    def test_zero_factor_retries_at_once(self) -> None:
        assert delay(Retry(backoff_factor=0), status=503) == 0.0


class TestRetryAfter:
    def test_seconds_replace_the_backoff(self) -> None:
        assert delay(Retry(), status=429, retry_after="7") == 7.0
        assert delay(Retry(), status=429, retry_after=" 0 ") == 0.0

    def test_http_date_in_every_format_rfc_9110_allows(self) -> None:
        in_ten = email.utils.formatdate(NOW + 10, usegmt=True)  # Sun, 06 Nov 1994 08:49:37 GMT
        assert delay(Retry(), status=503, retry_after=in_ten) == pytest.approx(10.0)
        assert parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now=784111777.0 - 5) == pytest.approx(5.0)
        assert parse_retry_after("Sun Nov  6 08:49:37 1994", now=784111777.0 - 5) == pytest.approx(5.0)

    def test_a_date_past_asks_for_no_wait(self) -> None:
        assert delay(Retry(), status=503, retry_after=email.utils.formatdate(NOW - 60, usegmt=True)) == 0.0

    def test_a_year_is_capped_never_slept(self) -> None:
        policy = Retry(retry_after_max=120)
        assert delay(policy, status=429, retry_after=str(365 * 24 * 3600)) == 120.0
        assert delay(policy, status=429, retry_after="9" * 400) == 120.0
        a_year_on = email.utils.formatdate(NOW + 365 * 24 * 3600, usegmt=True)
        assert delay(policy, status=503, retry_after=a_year_on) == 120.0

    @pytest.mark.parametrize("value", ["soon", "-5", "1.5", "", "٣", "Mon, 99 Foo 2024 99:99:99 GMT", "1e9"])
    def test_an_invalid_value_falls_back_to_the_backoff(self, value: str) -> None:
        policy = Retry(backoff_factor=0.5, jitter=0)
        assert parse_retry_after(value, now=NOW) is None
        assert delay(policy, status=503, retry_after=value) == 0.5

    def test_ignored_when_not_respected(self) -> None:
        assert delay(Retry(respect_retry_after=False, jitter=0), status=503, retry_after="60") == 0.5

    def test_does_not_make_an_unretried_status_retried(self) -> None:
        assert delay(Retry(), status=500, retry_after="1") is None

    def test_read_from_an_http_error(self) -> None:
        error = http_error(503, [("Retry-After", "3")])
        assert delay(Retry(), error=error) == 3.0
        assert delay(Retry(), error=http_error(404, [("Retry-After", "3")])) is None
        assert delay(Retry(jitter=0), error=http_error(502)) == 0.5


class TestErrors:
    @pytest.mark.parametrize(
        "error",
        [
            refused(),
            ConnectFailed("cannot resolve h"),
            HTTPConnectTimeout("connect timed out"),
            HTTPReadTimeout("read timed out"),
            ConnectionBroken("connection reset mid-exchange"),
            RemoteDisconnected("closed before any byte"),
            RemoteProtocolError("the body ended 100 bytes short of its Content-Length"),
        ],
    )
    def test_the_networks_failures_are_retried(self, error: BaseException) -> None:
        assert delay(Retry(jitter=0), error=error) == 0.5

    @pytest.mark.parametrize(
        "error",
        [
            InvalidURL("no host"),
            LocalProtocolError("bad header"),
            DecodingError("corrupt gzip"),
            TooManyRedirects("loop"),
            PoolTimeout("no free connection"),
            ConnectFailed("certificate", TLSCertificateError("self-signed")),
            TLSCertificateError("self-signed"),
            ValueError("a bug"),
            KeyboardInterrupt(),
        ],
    )
    def test_failures_that_would_recur_are_not(self, error: BaseException) -> None:
        assert delay(Retry(), error=error) is None

    def test_a_failed_connect_is_retried_whatever_the_method(self) -> None:
        assert delay(Retry(), error=refused(), method="POST") is not None
        assert delay(Retry(), error=HTTPConnectTimeout("slow"), method="POST") is not None
        assert delay(Retry(), error=HTTPReadTimeout("slow"), method="POST") is None

    def test_a_body_that_cannot_be_replayed_is_retried_only_after_a_failed_connect(self) -> None:
        assert delay(Retry(), error=refused(), method="PUT", replayable=False) is not None
        assert delay(Retry(), error=ConnectionBroken("reset"), method="PUT", replayable=False) is None
        assert delay(Retry(), status=503, method="PUT", replayable=False) is None

    def test_a_retry_after_is_read_only_with_a_response(self) -> None:
        assert delay(Retry(jitter=0), error=refused(), retry_after=None) == 0.5


class TestArguments:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"total": -1}, "total=...) must be 0 or more, got -1"),
            ({"backoff_factor": -0.5}, "backoff_factor=...) must be 0 or more and finite, got -0.5"),
            ({"backoff_factor": math.nan}, "backoff_factor"),
            ({"backoff_max": math.inf}, "backoff_max"),
            ({"retry_after_max": -1}, "retry_after_max"),
            ({"jitter": 1.5}, "from 0 to 1, got 1.5"),
            ({"jitter": -0.1}, "jitter"),
            ({"statuses": [503, 700]}, "statuses (100 to 599), got 700"),
            ({"statuses": ["503"]}, "got '503'"),
            ({"methods": ["get"]}, "upper-case method names like 'GET', got 'get'"),
        ],
    )
    def test_out_of_range(self, kwargs: dict[str, object], message: str) -> None:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            Retry(**kwargs)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"total": 2.5}, "whole number of retries, got 2.5"),
            ({"total": True}, "got True"),
            ({"methods": "GET"}, "a collection of methods, got the string 'GET'"),
            ({"backoff_factor": "1"}, "must be a number, got '1'"),
        ],
    )
    def test_wrong_type(self, kwargs: dict[str, object], message: str) -> None:
        with pytest.raises(TypeError, match=message):
            Retry(**kwargs)  # type: ignore[arg-type]

    def test_positional_total_and_frozen(self) -> None:
        policy = Retry(5)
        assert policy.total == 5
        assert policy.statuses == DEFAULT_STATUSES
        with pytest.raises(AttributeError):
            policy.total = 6  # type: ignore[misc]

    def test_equal_and_readable(self) -> None:
        assert Retry(2, statuses=[503]) == Retry(2, statuses={503})
        assert "total=2" in repr(Retry(2))
