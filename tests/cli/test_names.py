"""``safe_file_name``: a URL we do not trust becomes one harmless file name."""

from __future__ import annotations

import os
import random
import re

import pytest

from tasklets.cli._names import safe_file_name

SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
BASE = "http://example.com"

HOSTILE = [
    "/../../etc/passwd",
    "/..",
    "/.",
    "/../",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/..%2f..%2f",
    "/%252e%252e%252f",
    "/a%00b",
    "/a\x00b",
    "/\x00",
    "/%u0000",
    "/%c0%ae%c0%ae/%c0%af",
    "/..\\..\\windows\\system32",
    "/" + "A" * 10_000,
    "/" + "x/" * 3000,
    "/" + "é" * 500,
    "/\udcff\udcfe",
    "/.hidden",
    "/...",
    "/-rf",
    "/ --help",
    "/con",
    "/a/b/c.tar.gz",
    "/file.",
    "/.ext",
    "/a.%2F%2F",
    "/?q=../../x",
    "/#../../x",
    '/a:b|c*d?e<f>g"h',
    "/\r\nSet-Cookie: x",
    "",
]


def _check(name: str) -> None:
    assert SAFE.match(name), name
    assert name not in (".", "..")
    assert len(name) <= 130, len(name)
    assert os.path.basename(name) == name
    assert os.path.normpath(os.path.join("/out", name)) == "/out/" + name


@pytest.mark.parametrize("path", HOSTILE, ids=repr)
def test_hostile_paths_give_one_safe_component(path: str) -> None:
    _check(safe_file_name(BASE + path))


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "http://[::1",
        "http://",
        "://",
        "",
        "../../etc/passwd",
        "/etc/passwd",
        "file:///etc/passwd",
        "http://../../",
        "http://host:99999/x",
        "\x00",
        "\udcff",
        "http://" + "h" * 1000 + "/x",
        "http://[::1]:8080/a",
        "http://user:pass@host/a",
    ],
    ids=repr,
)
def test_invalid_urls_give_a_safe_name_too(url: str) -> None:
    _check(safe_file_name(url))


def test_names_are_distinct_per_url_and_stable() -> None:
    urls = [BASE + path for path in HOSTILE]
    urls += [
        BASE + "/same",
        BASE + "/same?x=1",
        BASE + "/same#f",
        "http://example.com:81/same",
        "https://example.com/same",
    ]
    urls += [BASE + "/" + "A" * 10_000 + suffix for suffix in ("1", "2")]  # alike in their first 100 characters
    names = [safe_file_name(url) for url in urls]
    assert len(set(names)) == len(urls)
    assert names == [safe_file_name(url) for url in urls]


def test_readable_names_keep_host_path_and_extension() -> None:
    assert safe_file_name("http://example.com/docs/report.pdf").startswith("example.com_docs_report-")
    assert safe_file_name("http://example.com/docs/report.pdf").endswith(".pdf")
    assert safe_file_name("http://example.com/a/b.tar.gz").endswith(".gz")
    assert safe_file_name("http://example.com/").startswith("example.com-")
    long_extension = safe_file_name("http://example.com/x.averylongextension")  # not taken for an extension
    assert re.fullmatch(r"example\.com_x\.averylongextension-[0-9a-f]{10}", long_extension)
    assert safe_file_name("x").startswith("x-")  # no host, no path: still named after the URL


def test_random_urls_always_give_safe_names() -> None:
    rng = random.Random(5)
    alphabet = "/.%\\:?#@[]-_ aZ09\x00\x01\x7f\u00e9\u202e\ufeff\udcff"
    for _ in range(3000):
        url = rng.choice(["http://h", "https://h:1", "", "x:"]) + "".join(
            rng.choice(alphabet) for _ in range(rng.randrange(0, 60))
        )
        _check(safe_file_name(url))
