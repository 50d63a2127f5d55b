"""The session API (Client and the verbs) against httpbin, served by uvicorn: bodies, params, auth, cookies,
hooks, response helpers, Unix sockets."""

from __future__ import annotations

import http.cookiejar
import io
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from _servers import HERE, ExternalServer, StdlibServer, pattern, run

import tasklets
import tasklets.http
from tasklets._exceptions import AuthenticationError, HTTPError
from tasklets.http import Client, DigestAuth, Timeout
from tasklets.testing import VirtualClock


@pytest.fixture
def client(httpbin: ExternalServer) -> Iterator[Client]:
    with Client(httpbin.url, proxy=None, timeout=Timeout(connect=5, read=10, total=30)) as made:
        yield made


def _json(task: Any) -> Any:
    """Run a verb's task in a loop; the response and its JSON body."""

    def main() -> Any:
        response = yield task()
        return response, (yield response.json())

    return run(main)


# -- the verbs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["get", "head", "options", "delete", "post", "put", "patch"])
def test_each_verb_on_a_client(client: Client, verb: str) -> None:
    def main() -> Any:
        response = yield getattr(client, verb)("/anything")
        body = yield response.body()
        return response, body

    response, body = run(main)
    assert response.status == 200
    if verb == "head":
        assert body == b""
    elif verb != "options":  # (Flask answers OPTIONS itself)
        assert b'"method": "%s"' % verb.upper().encode() in body


@pytest.mark.parametrize("verb", ["get", "delete", "post", "put", "patch"])
def test_each_verb_as_a_module_function(httpbin: ExternalServer, verb: str) -> None:
    response = getattr(tasklets.http, verb)(f"{httpbin.url}/anything").result(20)
    assert response.json().result(20)["method"] == verb.upper()
    response = tasklets.http.request("PUT", f"{httpbin.url}/put").result(20)
    assert response.status == 200 and response.json().result(20)["url"].endswith("/put")


def test_verbs_return_every_status_and_raise_for_status_raises(client: Client) -> None:
    def main() -> Any:
        missing = yield client.get("/status/404")
        broken = yield client.post("/status/503")
        fine = yield client.get("/status/200")
        return missing, broken, fine

    missing, broken, fine = run(main)
    assert (missing.status, broken.status) == (404, 503)
    assert fine.raise_for_status() is fine
    with pytest.raises(HTTPError) as caught:
        missing.raise_for_status()
    assert caught.value.code == 404 and caught.value.response is missing


def test_params_merge_into_the_query(httpbin: ExternalServer) -> None:
    with Client(httpbin.url, proxy=None, params={"key": "k"}) as client:
        _, document = _json(lambda: client.get("/anything?already=1", params={"tag": ["a", "b"], "n": 3}))
    assert document["args"] == {"already": "1", "key": "k", "tag": ["a", "b"], "n": "3"}


def test_headers_per_request_over_the_clients(httpbin: ExternalServer) -> None:
    with Client(httpbin.url, proxy=None, headers={"X-A": "client", "X-B": "client"}) as client:
        _, document = _json(lambda: client.get("/headers", headers={"X-B": "request"}))
    assert (document["headers"]["X-A"], document["headers"]["X-B"]) == ("client", "request")


def test_base_url_joins_relative_urls_only(httpbin: ExternalServer, stdlib: StdlibServer) -> None:
    with Client(f"{httpbin.url}/anything/", proxy=None) as client:
        _, document = _json(lambda: client.get("sub/path"))
        response = run(lambda: client.get(f"{stdlib.url}/bytes/3"))
    assert document["url"].endswith("/anything/sub/path") and response.url.startswith(stdlib.url)


# -- bodies ------------------------------------------------------------------------------------------------------


async def _pieces() -> AsyncIterator[bytes]:
    for piece in (b"as", b"", b"ync"):
        await tasklets.sleep(0)
        yield piece


@pytest.mark.parametrize(
    ("data", "field", "expected"),
    [
        (b"raw bytes", "data", "raw bytes"),
        ("text, café", "data", "text, café"),
        ({"a": "1", "b": ["x", "y"]}, "form", {"a": "1", "b": ["x", "y"]}),
        ([("a", "1"), ("a", "2")], "form", {"a": ["1", "2"]}),
        (io.BytesIO(b"from a file"), "data", "from a file"),
    ],
    ids=["bytes", "str", "dict", "pairs", "file"],
)
def test_data(client: Client, data: Any, field: str, expected: Any) -> None:
    _, document = _json(lambda: client.post("/anything", data=data))
    assert document[field] == expected


@pytest.mark.parametrize("make", [lambda: iter([b"gen", b"erator"]), _pieces], ids=["iterable", "async-iterable"])
def test_streamed_data(external_servers: dict[tuple[str, str], ExternalServer], make: Any) -> None:
    # httpbin (Werkzeug) refuses chunked uploads: uvicorn's own ASGI server takes them.
    server = external_servers["uvicorn-h11", "http"]
    with Client(server.url, proxy=None) as client:
        _, document = _json(lambda: client.put("/echo", data=make()))
    assert document["body"] in ("generator", "async")
    assert ["transfer-encoding", "chunked"] in document["headers"]


def test_json_body(client: Client) -> None:
    _, document = _json(lambda: client.post("/anything", json={"n": [1, 2], "s": "é"}))
    assert document["json"] == {"n": [1, 2], "s": "é"}
    assert document["headers"]["Content-Type"] == "application/json"


def test_files_are_sent_multipart_from_disk(client: Client, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(pattern(300_000))
    notes = tmp_path / "notes.txt"
    notes.write_text("some notes")
    with open(notes, "rb") as opened:
        files = {
            "big": big,
            "opened": opened,
            "named": ("report.csv", b"a,b\n1,2\n", "text/csv"),
        }
        _, document = _json(lambda: client.post("/anything", data={"field": "value"}, files=files))
    assert document["form"] == {"field": "value"}
    assert document["files"]["opened"] == "some notes" and document["files"]["named"] == "a,b\n1,2\n"
    assert len(document["files"]["big"]) > 0
    assert document["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert int(document["headers"]["Content-Length"]) > 300_000  # known ahead: not chunked


def test_a_files_path_that_does_not_exist_fails_before_anything_is_sent(
    stdlib: StdlibServer, tmp_path: Path
) -> None:
    with Client(stdlib.url, proxy=None) as client, pytest.raises(FileNotFoundError, match=r"missing\.bin"):
        client.post("/echo", files={"f": tmp_path / "missing.bin"})
    assert stdlib.counter.accepted == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"data": 3.5}, TypeError, "cannot send 3.5"),
        ({"data": b"x", "json": {}}, ValueError, "json= makes the whole body"),
        ({"files": {"f": 42}}, TypeError, "give a path"),
        ({"auth": 42}, TypeError, "auth must be"),
        ({"params": "a=1"}, TypeError, "params must be"),
    ],
)
def test_bad_request_arguments_fail_at_once(stdlib: StdlibServer, kwargs: Any, error: type, message: str) -> None:
    with Client(stdlib.url, proxy=None) as client, pytest.raises(error, match=message):
        client.post("/echo", **kwargs)
    assert stdlib.counter.accepted == 0


# -- redirects and response helpers -------------------------------------------------------------------------------


def test_history_and_follow_redirects(client: Client) -> None:
    def main() -> Any:
        followed = yield client.get("/redirect/3")
        yield followed.body()
        kept = yield client.get("/redirect/3", follow_redirects=False)
        yield kept.body()
        return followed, kept

    followed, kept = run(main)
    assert followed.status == 200 and [r.status for r in followed.history] == [302, 302, 302]
    assert followed.url.endswith("/get") and kept.status == 302 and kept.history == ()


def test_request_elapsed_links_and_encoding(client: Client, httpbin: ExternalServer) -> None:
    link = '<https://api.example/items?page=2>; rel="next", </items?page=9>; rel="last"'
    query = urllib.parse.urlencode({"Link": link})

    def main() -> Any:
        response = yield client.get(f"/response-headers?{query}", headers={"X-Mine": "1"})
        yield response.body()
        text = yield client.get("/encoding/utf8")
        return response, text

    response, text = run(main)
    assert response.links["next"]["url"] == "https://api.example/items?page=2"
    assert response.links["last"]["url"] == f"{httpbin.url}/items?page=9"  # made absolute
    assert response.elapsed.total_seconds() > 0
    sent = response.request
    assert sent is not None and sent.method == "GET" and sent.url.startswith(f"{httpbin.url}/response-headers")
    assert sent.headers["X-Mine"] == "1" and sent.headers["User-Agent"] and sent.headers["Host"]
    assert text.encoding == "utf-8"


def test_iter_lines(client: Client) -> None:
    def main() -> Any:
        response = yield client.get("/stream/5")
        lines = []
        for wait_for_line in response.iter_lines():
            line = yield wait_for_line
            if line is not None:
                lines.append(line)
        again = yield client.get("/stream/3")
        collected = yield from again.iter_lines()
        return lines, collected

    lines, collected = run(main)
    assert len(lines) == 5 and all(line.startswith("{") for line in lines)
    assert len(collected) == 3


# -- auth ------------------------------------------------------------------------------------------------------


def test_basic_auth(client: Client) -> None:
    _, document = _json(lambda: client.get("/basic-auth/u/p", auth=("u", "p")))
    assert document == {"authenticated": True, "user": "u"}
    assert run(lambda: client.get("/basic-auth/u/p", auth=("u", "wrong"))).status == 401


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_digest_auth(client: Client, algorithm: str) -> None:
    auth = DigestAuth("u", "p")

    def main() -> Any:
        statuses = []
        for _ in range(3):  # the later ones answer the known challenge at once, counting the nonce
            response = yield client.get(f"/digest-auth/auth/u/p/{algorithm}", auth=auth)
            statuses.append((response.status, len(response.history)))
            yield response.body()
        return statuses

    assert run(main) == [(200, 0)] * 3


def test_digest_auth_with_a_wrong_password_answers_the_challenge_once(client: Client) -> None:
    response = run(lambda: client.get("/digest-auth/auth/u/p/MD5", auth=DigestAuth("u", "nope")))
    assert response.status == 401  # the second 401 is the outcome: no loop


def test_digest_with_an_unknown_algorithm_is_a_clear_error(client: Client) -> None:
    with pytest.raises(AuthenticationError, match="algorithm 'SHA-512': supported are MD5"):
        run(lambda: client.get("/digest-auth/auth/u/p/SHA-512", auth=DigestAuth("u", "p")))


def test_a_callable_auth_changes_the_request(client: Client) -> None:
    def sign(request: Any) -> None:
        request.headers.set("X-Signature", f"signed {request.method} {urllib.parse.urlsplit(request.url).path}")

    _, document = _json(lambda: client.get("/headers", auth=sign))
    assert document["headers"]["X-Signature"] == "signed GET /headers"


def test_netrc(httpbin: ExternalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login u password p\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with Client(httpbin.url, proxy=None) as trusting, Client(httpbin.url, trust_env=False) as not_trusting:
        assert run(lambda: trusting.get("/basic-auth/u/p")).status == 200
        assert run(lambda: not_trusting.get("/basic-auth/u/p")).status == 401


def test_credentials_never_follow_a_redirect_to_another_origin(client: Client, stdlib: StdlibServer) -> None:
    target = urllib.parse.quote(f"{stdlib.url}/echo", safe="")
    _, document = _json(lambda: client.get(f"/redirect-to?url={target}", auth=("u", "p"), cookies={"c": "1"}))
    sent = {name.lower() for name, _ in document["headers"]}
    assert document["path"] == "/echo" and "authorization" not in sent and "cookie" not in sent


# -- cookies and hooks ----------------------------------------------------------------------------------------------


def test_cookies_are_kept_per_client_and_applied_on_every_hop(client: Client) -> None:
    # /cookies/set answers with Set-Cookie and a redirect to /cookies, which shows what it was sent.
    _, first = _json(lambda: client.get("/cookies/set?a=1&b=2"))
    _, later = _json(lambda: client.get("/cookies", cookies={"extra": "x"}))
    assert first == {"cookies": {"a": "1", "b": "2"}}
    assert later == {"cookies": {"a": "1", "b": "2", "extra": "x"}}
    assert isinstance(client.cookies, http.cookiejar.CookieJar) and {c.name for c in client.cookies} == {"a", "b"}


def test_module_functions_keep_no_cookies_unless_given_a_jar(httpbin: ExternalServer) -> None:
    response = tasklets.http.get(f"{httpbin.url}/cookies/set?a=1").result(20)
    assert response.json().result(20) == {"cookies": {}}
    jar = http.cookiejar.CookieJar()
    response = tasklets.http.get(f"{httpbin.url}/cookies/set?a=1", cookies=jar).result(20)
    assert response.json().result(20) == {"cookies": {"a": "1"}} and [c.name for c in jar] == ["a"]


def test_event_hooks_run_in_order_on_every_hop(httpbin: ExternalServer) -> None:
    seen: list[str] = []

    def on_request(request: Any) -> None:
        seen.append(f"request {urllib.parse.urlsplit(request.url).path}")

    @tasklets.task
    def on_response(response: Any) -> Any:
        yield tasklets.sleep(0)
        seen.append(f"response {response.status}")

    async def also(response: Any) -> None:
        seen.append("async")

    hooks = {"request": [on_request], "response": [on_response, also]}
    with Client(httpbin.url, proxy=None, event_hooks=hooks) as client:
        run(lambda: client.get("/redirect/2"))
    assert seen == [
        "request /redirect/2", "response 302", "async",
        "request /relative-redirect/1", "response 302", "async",
        "request /get", "response 200", "async",
    ]


# -- transports --------------------------------------------------------------------------------------------------


def test_http_over_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "httpbin.sock"
    log = open(tmp_path / "uvicorn.log", "wb")
    command = [
        sys.executable, "-m", "uvicorn", "httpbin:app", "--interface", "wsgi", "--uds", str(path),
        "--log-level", "warning", "--no-access-log", "--lifespan", "off",
    ]
    server = subprocess.Popen(command, cwd=HERE, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not _listening(path):
            assert server.poll() is None and time.monotonic() < deadline, "uvicorn did not listen"
            try:
                server.wait(0.05)
            except subprocess.TimeoutExpired:
                pass
        with Client("http://docker.invalid", uds=path) as client:
            _, document = _json(lambda: client.get("/anything/v1.43/containers/json"))
        assert document["url"] == "http://docker.invalid/anything/v1.43/containers/json"
    finally:
        server.terminate()
        server.wait(10)
        log.close()


def _listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


# -- retries (the tasklets.http.Retry policy) ---------------------------------------------------------------------


def _counting(seen: list[int]) -> dict[str, list[Any]]:
    return {"response": [lambda response: seen.append(response.status)]}


def test_retries_a_busy_status_then_gives_the_last_response(httpbin: ExternalServer) -> None:
    seen: list[int] = []
    retry = tasklets.http.Retry(2, backoff_factor=0.01, jitter=0)
    with Client(httpbin.url, proxy=None, retries=retry, event_hooks=_counting(seen)) as client:
        response = run(lambda: client.get("/status/429"))
        post = run(lambda: client.post("/status/503"))  # not idempotent: not retried
    assert response.status == 429 and post.status == 503
    assert seen == [429, 429, 429, 503]


def test_a_retry_after_of_a_year_is_capped_never_slept(client: Client) -> None:
    from _servers import RawConnection, RawServer

    answers = [
        b"HTTP/1.1 503 Busy\r\nRetry-After: 31536000\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ]

    def script(conn: RawConnection) -> None:
        while conn.recv_request()[0]:
            conn.send(answers.pop(0))

    def main() -> Any:
        loop = tasklets.current_loop()
        with Client(server.url, proxy=None, retries=tasklets.http.Retry(1, retry_after_max=60)) as retrying:
            started = loop.time()
            response = yield retrying.get("/")
            return response.status, (yield response.body()), loop.time() - started

    with RawServer(script) as server:
        # Virtual time: the capped wait passes at once; a year's would fail the test's own time bound.
        status, body, waited = tasklets.run(main, clock=VirtualClock(autojump_threshold=0.2))
    assert (status, body) == (200, b"ok") and 60 <= waited < 61


def test_a_refused_connection_is_retried_whatever_the_method() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    attempts: list[str] = []
    hooks = {"request": [lambda request: attempts.append(request.method)]}
    retry = tasklets.http.Retry(2, backoff_factor=0.01)
    with Client(f"http://127.0.0.1:{port}", proxy=None, retries=retry, event_hooks=hooks) as client:
        with pytest.raises(tasklets.ConnectFailed):
            run(lambda: client.post("/", data=b"x"))
    assert attempts == ["POST"] * 3


def test_retries_must_be_a_policy() -> None:
    with pytest.raises(TypeError, match=r"retries must be a tasklets\.http\.Retry"):
        Client(retries="3")  # type: ignore[arg-type]
    assert Client(retries=2).retries == tasklets.http.Retry(2)
