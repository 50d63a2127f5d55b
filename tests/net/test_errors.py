"""How failed connection attempts become one precise error (``net/_errors.py``)."""

from __future__ import annotations

import errno
import os

import tasklets
from tasklets.net._errors import connect_error


def _failure(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def test_every_attempt_refused_is_connection_refused() -> None:
    error = connect_error([_failure(errno.ECONNREFUSED)] * 2, "example.test", 80)
    assert isinstance(error, tasklets.ConnectionRefused) and isinstance(error, ConnectionRefusedError)
    assert (error.host, error.port, error.errno) == ("example.test", 80, errno.ECONNREFUSED)


def test_every_attempt_timed_out_by_the_system_is_a_connect_timeout() -> None:
    """ETIMEDOUT from the kernel (the SYN unanswered for its own limit) is a timeout like ours."""
    error = connect_error([_failure(errno.ETIMEDOUT)], "example.test", 443)
    assert isinstance(error, tasklets.ConnectTimeout)
    assert isinstance(error, TimeoutError) and isinstance(error, OSError)
    assert (error.host, error.port, error.errno) == ("example.test", 443, errno.ETIMEDOUT)
    assert "example.test:443" in str(error) and "timed out" in str(error)


def test_mixed_failures_are_a_connect_error_listing_each() -> None:
    failures = [_failure(errno.ETIMEDOUT), _failure(errno.ECONNREFUSED)]
    error = connect_error(failures, "example.test", 80)
    assert type(error) is tasklets.ConnectError
    assert error.errors == failures
    assert "every address failed" in str(error)
