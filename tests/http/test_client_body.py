"""The body as a future (``body()``, ``text()``, ``json()``), urllib's response names, and HTTPError as a response.

Against httpbin (its own application under uvicorn) where it can show the
behaviour; a scripted server for bodies in a given charset.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from _servers import ExternalServer, RawConnection, RawServer, StdlibServer, pattern, run

import tasklets
import tasklets.http
from tasklets import DecodingError, HTTPError  # both public: what users catch
from tasklets.http import Client, Timeout


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(proxies=None, timeout=Timeout(connect=5, read=10, total=30)) as made:
        yield made


# -- body(), text(), json(): the same from plain code, a generator task and async def ----------------------------


def test_body_text_and_json_from_plain_code(httpbin: ExternalServer) -> None:
    response = tasklets.http.urlopen_async(f"{httpbin.url}/encoding/utf8", timeout=10).result(20)
    text = response.text().result(20)
    assert "∮ E⋅da = Q" in text and response.encoding == "utf-8"
    assert response.body().result() == text.encode("utf-8")  # the same future's bytes, asked again
    document = tasklets.http.urlopen_async(f"{httpbin.url}/json", timeout=10).result(20).json().result(20)
    assert document["slideshow"]["title"] == "Sample Slide Show"


def test_body_text_and_json_from_a_generator_task(httpbin: ExternalServer, client: Client) -> None:
    def main() -> Any:
        response = yield client.urlopen(f"{httpbin.url}/bytes/102400?seed=1")
        body = yield response.body()
        text = yield (yield client.urlopen(f"{httpbin.url}/encoding/utf8")).text()
        document = yield (yield client.urlopen(f"{httpbin.url}/anything?x=1")).json()
        return body, text, document

    body, text, document = run(main)
    assert len(body) == 102400
    assert "∮ E⋅da = Q" in text and document["args"] == {"x": "1"}


def test_body_text_and_json_from_async_def(httpbin: ExternalServer, client: Client) -> None:
    async def main() -> Any:
        body = await (await client.urlopen(f"{httpbin.url}/bytes/1000?seed=2")).body()
        text = await (await client.urlopen(f"{httpbin.url}/encoding/utf8")).text()
        document = await (await client.urlopen(f"{httpbin.url}/anything?y=2")).json()
        return body, text, document

    body, text, document = tasklets.run(main)
    assert len(body) == 1000 and "∮ E⋅da = Q" in text and document["args"] == {"y": "2"}


def test_body_reads_chunked_and_large_bodies_and_gives_the_connection_back(
    stdlib: StdlibServer, client: Client
) -> None:
    def main() -> Any:
        bodies = []
        for route in ("chunked/100000", "bytes/3000000", "bytes/10", "close/5000"):
            response = yield client.urlopen(f"{stdlib.url}/{route}")
            bodies.append((yield response.body()))
            assert response.closed and response.length == 0
        return bodies

    assert run(main) == [pattern(100000), pattern(3000000), pattern(10), pattern(5000)]
    assert stdlib.counter.accepted == 1  # kept alive, then closed after the body that ended with the connection


def test_json_that_is_not_json_is_a_decoding_error_naming_the_url(httpbin: ExternalServer, client: Client) -> None:
    def main() -> Any:
        return (yield (yield client.urlopen(f"{httpbin.url}/html")).json())

    with pytest.raises(DecodingError, match=r"the body of .*/html is not JSON .* starts with '<!DOCTYPE html>"):
        run(main)


def test_read_mistaken_for_the_body_says_what_to_do(stdlib: StdlibServer) -> None:
    response = tasklets.http.urlopen_async(f"{stdlib.url}/bytes/10", timeout=5).result(10)
    with pytest.raises(AttributeError, match=r"read\(\) is a generator of chunk futures.*response.body\(\).result\(\)"):
        response.read().result()  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="not the body"):
        response.read().decode()  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match=r"len\(response.read\(\)\)"):
        len(response.read())  # type: ignore[arg-type]
    # The seed's way still works from plain code: each chunk future's result, in order.
    assert b"".join(future.result(10) for future in response.read()) == pattern(10)


# -- text(): which charset ---------------------------------------------------------------------------------------

_TEXT = "Съешь же ещё этих мягких французских булок, да выпей чаю"


def _answering(content_type: str | None, body: bytes) -> Any:
    def script(conn: RawConnection) -> None:
        while conn.recv_request()[0]:
            header = f"Content-Type: {content_type}\r\n".encode() if content_type else b""
            conn.send(b"HTTP/1.1 200 OK\r\n" + header + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    return script


@pytest.mark.parametrize(
    ("content_type", "encoding", "expected"),
    [
        ("text/plain; charset=koi8-r", "koi8-r", "koi8-r"),  # declared
        ('text/plain; charset="KOI8-R"', "koi8-r", "koi8-r"),  # quoted, any case
        ("application/json", "utf-8", "utf-8"),  # the media type's default
        ("application/problem+json", "utf-8", "utf-8"),
        ("text/plain", "cp1251", "windows-1251"),  # none: charset-normalizer's guess
        (None, "cp1251", "windows-1251"),
        ("text/plain; charset=no-such-charset", "utf-8", "utf_8"),  # unknown: as if none, then detected
    ],
)
def test_text_charset(client: Client, content_type: str | None, encoding: str, expected: str) -> None:
    with RawServer(_answering(content_type, _TEXT.encode(encoding) * 4)) as server:

        def main() -> Any:
            response = yield client.urlopen(server.url)
            return response, (yield response.text())

        response, text = run(main)
    assert text == _TEXT * 4
    assert response.encoding.replace("-", "_").lower() in (expected.replace("-", "_"), "cp1251")


def test_encoding_set_by_the_user_wins(client: Client) -> None:
    with RawServer(_answering("text/plain; charset=utf-8", "café".encode("latin-1"))) as server:

        def main() -> Any:
            response = yield client.urlopen(server.url)
            response.encoding = "latin-1"
            return (yield response.text())

        assert run(main) == "café"


# -- urllib parity ------------------------------------------------------------------------------------------------


def test_data_bytes_are_sent_form_encoded_as_urllib_does(httpbin: ExternalServer, client: Client) -> None:
    def main() -> Any:
        return (yield (yield client.urlopen(f"{httpbin.url}/anything", data=b"a=1&b=two")).json())

    document = run(main)
    assert document["form"] == {"a": "1", "b": "two"}
    assert document["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_a_content_type_given_is_kept(httpbin: ExternalServer, client: Client) -> None:
    def main() -> Any:
        response = yield client.urlopen(f"{httpbin.url}/anything", b"{}", headers={"Content-Type": "application/json"})
        return (yield response.json())

    assert run(main)["headers"]["Content-Type"] == "application/json"


def test_credentials_in_the_url_are_basic_auth(httpbin: ExternalServer, client: Client) -> None:
    url = f"{httpbin.url}/basic-auth/al%40ice/p%3Ass".replace("http://", "http://al%40ice:p%3Ass@")
    def main() -> Any:
        response = yield client.urlopen(url)
        return response.status, (yield response.json())

    assert run(main) == (200, {"authenticated": True, "user": "al@ice"})


def test_credentials_in_the_url_stay_behind_on_a_cross_origin_redirect(
    httpbin: ExternalServer, stdlib: StdlibServer, client: Client
) -> None:
    target = urllib.parse.quote(f"{stdlib.url}/echo", safe="")
    url = f"{httpbin.url}/redirect-to?url={target}".replace("http://", "http://user:secret@")

    def main() -> Any:
        return (yield (yield client.urlopen(url)).json())

    document = run(main)
    assert document["path"] == "/echo"
    assert "authorization" not in {name.lower() for name, _ in document["headers"]}


def test_urllib_response_names(httpbin: ExternalServer, client: Client) -> None:
    url = f"{httpbin.url}/response-headers?X-Twice=a&X-Twice=b"

    def main() -> Any:
        response = yield client.urlopen(url)
        before = (response.closed, response.isclosed(), response.length)
        yield response.body()
        return response, before

    response, before = run(main)
    assert response.getheader("x-twice") == "a, b" and response.getheader("X-None", "no") == "no"
    assert ("X-Twice", "a") in [(k.title(), v) for k, v in response.getheaders()]
    assert response.headers.get_content_type() == "application/json"
    assert response.headers.get_content_charset() is None and response.headers.get_content_charset("x") == "x"
    length = int(response.getheader("Content-Length"))
    assert before == (False, False, length) and (response.closed, response.length) == (True, 0)


def test_http_error_is_a_full_response(httpbin: ExternalServer, client: Client) -> None:
    with pytest.raises(HTTPError) as caught:
        run(lambda: client.urlopen(f"{httpbin.url}/status/418"))
    error = caught.value
    assert (error.status, error.code) == (418, 418)
    assert "teapot" in error.text().result(10) and error.body().result() == error.read()
    assert error.getheader("x-more-info") == "http://tools.ietf.org/html/rfc2324"
    assert ("x-more-info", "http://tools.ietf.org/html/rfc2324") in [(k.lower(), v) for k, v in error.getheaders()]


def test_http_error_json(client: Client) -> None:
    body = b'{"error": "nope"}'
    answer = b"HTTP/1.1 422 Unprocessable\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)

    def script(conn: RawConnection) -> None:
        conn.recv_request()
        conn.send(answer + body)

    with RawServer(script) as server, pytest.raises(HTTPError) as caught:
        run(lambda: client.urlopen(server.url))
    assert caught.value.json().result(10) == {"error": "nope"}


def test_content_type_and_charset_of_headers() -> None:
    headers = tasklets.http.Headers([("content-type", 'Text/HTML; Charset="UTF-8"')])
    assert (headers.get_content_type(), headers.get_content_charset()) == ("text/html", "utf-8")
    assert tasklets.http.Headers().get_content_type() == "text/plain"
