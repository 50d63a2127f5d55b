"""Digest authentication against RFC 7616's own examples, and challenges it must refuse: no sockets."""

from __future__ import annotations

import re

import pytest

from tasklets._exceptions import AuthenticationError
from tasklets.http import DigestAuth
from tasklets.http._auth import parse_challenge

# RFC 7616, section 3.9.1.
CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_the_rfc_7616_examples(algorithm: str, expected: str) -> None:
    auth = DigestAuth("Mufasa", "Circle of Life")
    auth.remember("origin", CHALLENGE.format(algorithm=algorithm), "GET /dir/index.html")
    header = auth.authorization("origin", "GET", "/dir/index.html", cnonce=CNONCE)
    assert header is not None
    assert f'response="{expected}"' in header
    assert "qop=auth," in header and "nc=00000001" in header and f'cnonce="{CNONCE}"' in header
    assert 'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"' in header


def test_the_nonce_is_counted_and_the_count_restarts_with_a_new_nonce() -> None:
    auth = DigestAuth("u", "p")
    auth.remember("o", 'Digest realm="r", nonce="n1", qop="auth"', "here")
    counts = [re.search(r"nc=(\w+)", auth.authorization("o", "GET", "/") or "").group(1) for _ in range(3)]  # type: ignore[union-attr]
    auth.remember("o", 'Digest realm="r", nonce="n2", qop="auth"', "here")
    again = auth.authorization("o", "GET", "/") or ""
    assert counts == ["00000001", "00000002", "00000003"] and "nc=00000001" in again
    assert auth.authorization("another origin", "GET", "/") is None  # never sent elsewhere


@pytest.mark.parametrize(
    ("challenge", "message"),
    [
        ('Digest realm="r", nonce="n", algorithm=SHA-512', "algorithm 'SHA-512': supported are"),
        ('Digest realm="r", nonce="n", qop="auth-int"', "only 'auth' is supported"),
        ('Digest realm="r"', "without nonce or realm"),
        ('Basic realm="r"', "not a Digest challenge"),
    ],
)
def test_challenges_that_cannot_be_answered(challenge: str, message: str) -> None:
    with pytest.raises(AuthenticationError, match=re.escape(message)):
        DigestAuth("u", "p").remember("o", challenge, "GET http://h/")


def test_parse_challenge_among_several() -> None:
    header = 'Basic realm="b", Digest realm="a \\"quoted\\" realm", nonce="n", qop="auth,auth-int"'
    assert parse_challenge(header, "digest") == {"realm": 'a "quoted" realm', "nonce": "n", "qop": "auth,auth-int"}
    assert parse_challenge(header, "bearer") is None
