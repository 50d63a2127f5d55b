"""URL validation, headers and the redirect policy: pure functions, no sockets."""

from __future__ import annotations

import urllib.error

import pytest

from tasklets._exceptions import InvalidURL, TooManyRedirects, UnsupportedRedirect, UnsupportedScheme
from tasklets.http._headers import Headers
from tasklets.http._redirects import next_hop
from tasklets.http._url import Origin, parse_url


class TestParseURL:
    def test_splits_origin_and_target(self) -> None:
        url = parse_url("http://Example.COM:8080/a/b?x=1#frag")
        assert url.origin == Origin("http", "example.com", 8080)
        assert url.target == "/a/b?x=1"
        assert url.origin.authority == "example.com:8080"

    def test_default_ports_and_empty_path(self) -> None:
        assert parse_url("https://example.com").origin.port == 443
        assert parse_url("https://example.com").target == "/"
        assert parse_url("http://example.com").origin.authority == "example.com"

    def test_ipv6_literal(self) -> None:
        url = parse_url("http://[::1]:8000/x")
        assert url.origin.host == "::1"
        assert url.origin.authority == "[::1]:8000"

    def test_idna_host_is_encoded(self) -> None:
        assert parse_url("http://bücher.example/").origin.host == "xn--bcher-kva.example"

    def test_non_ascii_path_is_percent_encoded(self) -> None:
        assert parse_url("http://h/caf\u00e9?q=\u00e9").target == "/caf%C3%A9?q=%C3%A9"

    @pytest.mark.parametrize(
        "url",
        [
            "http://h/a\r\nX-Injected: 1",
            "http://h/a b",
            "http://h/\x00",
            "http://h\n.example/",
        ],
    )
    def test_control_characters_are_refused_before_sending(self, url: str) -> None:
        with pytest.raises(InvalidURL, match="control characters"):
            parse_url(url)

    @pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://h/x", "gopher://h/", "no-scheme.example/x"])
    def test_only_http_and_https(self, url: str) -> None:
        with pytest.raises(UnsupportedScheme):
            parse_url(url)

    @pytest.mark.parametrize(
        "url",
        ["http:///path", "http://:80/", "http://h:99999/", "http://h:abc/", "http://xn--/", "http://a..b/",
         "http://" + "a" * 64 + ".example/", "http://exa mple/"],
    )
    def test_bad_hosts_and_ports(self, url: str) -> None:
        with pytest.raises(InvalidURL):
            parse_url(url)

    def test_errors_are_urllib_errors(self) -> None:
        with pytest.raises(urllib.error.URLError):
            parse_url("file:///x")


class TestHeaders:
    def test_case_insensitive_multi_valued_ordered(self) -> None:
        h = Headers([("Set-Cookie", "a=1"), ("content-type", "text/plain"), ("set-cookie", "b=2")])
        assert h["Content-Type"] == "text/plain"
        assert h.get("SET-COOKIE") == "a=1"
        assert h.get_all("set-cookie") == ["a=1", "b=2"]
        assert "CONTENT-TYPE" in h and "missing" not in h
        assert h["missing"] is None
        assert h.keys() == ["Set-Cookie", "content-type", "set-cookie"]
        assert len(h) == 3

    def test_set_and_remove(self) -> None:
        h = Headers({"Accept": "x"})
        h.add("accept", "y")
        h.set("ACCEPT", "z")
        assert h.get_all("accept") == ["z"]
        h.remove("Accept")
        assert "accept" not in h


def _hop(status: int, method: str = "GET", location: str | None = "/next", **kwargs):  # type: ignore[no-untyped-def]
    url = kwargs.pop("url", parse_url("http://a.example/start"))
    args = dict(
        method=method,
        url=url,
        headers=kwargs.pop("headers", Headers({"Authorization": "Bearer s", "Cookie": "c=1", "X-Keep": "1"})),
        body=kwargs.pop("body", None),
        body_replayable=kwargs.pop("body_replayable", True),
        status=status,
        location=location,
        visited=kwargs.pop("visited", [str(url)]),
        max_redirects=kwargs.pop("max_redirects", 10),
        unredirected=kwargs.pop("unredirected", ()),
    )
    return next_hop(**args)


class TestRedirectPolicy:
    def test_not_a_redirect(self) -> None:
        assert _hop(200) is None
        assert _hop(304) is None
        assert _hop(302, location=None) is None

    @pytest.mark.parametrize("status", [301, 302, 303])
    def test_post_becomes_get_without_body(self, status: int) -> None:
        headers = Headers({"Content-Type": "text/plain", "Content-Length": "3"})
        hop = _hop(status, "POST", body=b"abc", headers=headers)
        assert hop is not None
        assert (hop.method, hop.body) == ("GET", None)
        assert "Content-Type" not in hop.headers and "Content-Length" not in hop.headers

    @pytest.mark.parametrize("status", [307, 308])
    def test_307_308_keep_method_and_body(self, status: int) -> None:
        hop = _hop(status, "POST", body=b"abc")
        assert hop is not None
        assert (hop.method, hop.body) == ("POST", b"abc")

    def test_307_with_a_consumed_stream_body_is_refused(self) -> None:
        with pytest.raises(UnsupportedRedirect, match="stream"):
            _hop(307, "PUT", body=iter([b"x"]), body_replayable=False)

    def test_head_stays_head_on_303(self) -> None:
        hop = _hop(303, "HEAD")
        assert hop is not None and hop.method == "HEAD"

    def test_relative_location_resolves(self) -> None:
        hop = _hop(302, location="../other?q=1")
        assert hop is not None and str(hop.url) == "http://a.example/other?q=1"

    def test_same_origin_keeps_credentials(self) -> None:
        hop = _hop(302, location="/elsewhere")
        assert hop is not None
        assert hop.headers["Authorization"] == "Bearer s" and hop.headers["Cookie"] == "c=1"

    @pytest.mark.parametrize(
        "location", ["http://b.example/", "https://a.example/start", "http://a.example:8080/"]
    )
    def test_cross_origin_drops_credentials(self, location: str) -> None:
        hop = _hop(302, location=location)
        assert hop is not None
        assert "Authorization" not in hop.headers and "Cookie" not in hop.headers
        assert hop.headers["X-Keep"] == "1"

    @pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://a.example/x", "javascript:alert(1)"])
    def test_no_redirect_to_other_schemes(self, location: str) -> None:
        with pytest.raises(UnsupportedRedirect, match="only http and https"):
            _hop(302, location=location)

    @pytest.mark.parametrize("location", ["http://bad host/", "http://[::1", "http://\udcff/"])
    def test_redirect_to_invalid_url(self, location: str) -> None:
        with pytest.raises(InvalidURL, match="cannot follow the redirect"):
            _hop(302, location=location)

    def test_unredirected_headers_dropped(self) -> None:
        hop = _hop(302, headers=Headers({"Authorization": "x", "X-Kept": "1"}), unredirected=("authorization",))
        assert hop is not None and "Authorization" not in hop.headers and hop.headers["X-Kept"] == "1"

    def test_loop_detected(self) -> None:
        with pytest.raises(TooManyRedirects, match="loop"):
            _hop(302, location="/start")

    def test_limit(self) -> None:
        visited = [f"http://a.example/{i}" for i in range(4)]
        with pytest.raises(TooManyRedirects, match="more than 3"):
            _hop(302, location="/x", visited=visited, max_redirects=3)

    def test_redirect_errors_are_urllib_errors(self) -> None:
        with pytest.raises(urllib.error.URLError):
            _hop(302, location="file:///x")
