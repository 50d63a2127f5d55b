"""Every ``tasklets fetch`` flag, run as a user runs it, against servers we did not write.

uvicorn and hypercorn serve ``_cli_asgi_app`` (see there for its routes) in
subprocesses; ``pproxy`` is the proxy; ``trustme`` makes the certificates.
What the server was asked is read back from its own log (``/log``): the
requests, their times (for retries and pacing: lower bounds only, so a
loaded machine cannot fail them), their ``Range`` and ``Host`` headers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasklets.cli._names import safe_file_name
from tasklets.cli._report import JSON_FIELDS

from ._cli_asgi_app import pattern
from ._cli_support import BOUND, cli_env, command, run_cli
from ._real_servers import RealServer, free_port, wait_listening

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def uvicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    server = RealServer("uvicorn", str(tmp_path_factory.mktemp("uvicorn") / "log"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def hypercorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    server = RealServer("hypercorn", str(tmp_path_factory.mktemp("hypercorn") / "log"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["uvicorn", "hypercorn"])
def real(request: pytest.FixtureRequest) -> RealServer:
    """Each of the two servers in turn."""
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def records(stdout: str) -> dict[str, dict[str, object]]:
    """The ``--json`` lines by URL; every line has every field, in order."""
    result = {}
    for line in stdout.splitlines():
        record = json.loads(line)
        assert list(record) == list(JSON_FIELDS)
        result[record["url"]] = record
    return result


def unique(path: str) -> str:
    """``path`` with a key no other test uses (the server's flaky counters are per key)."""
    return path.replace("KEY", uuid.uuid4().hex[:12])


def times(server: RealServer, path: str) -> list[float]:
    return [when for p, when, _, _ in server.requests() if p == path]


# -- retries ---------------------------------------------------------------------------------------------------------


def test_retries_honour_retry_after(real: RealServer) -> None:
    path = unique("/flaky/KEY/1")
    url = real.url(path) + "?retry_after=1"
    done = run_cli("fetch", "--json", "--retries", "2", "--retry-backoff", "0", url)
    assert done.returncode == 0, done.stderr
    record = records(done.stdout)[url]
    assert (record["status"], record["attempts"], record["error"]) == (200, 2, None)
    first, second = times(real, path)
    assert second - first >= 0.9  # Retry-After: 1 (not the backoff of 0), however loaded the machine


def test_backoff_doubles_between_attempts(uvicorn: RealServer) -> None:
    path = unique("/flaky/KEY/2")
    done = run_cli("fetch", "--json", "--retries", "2", "--retry-backoff", "0.4", uvicorn.url(path))
    assert done.returncode == 0, done.stderr
    assert records(done.stdout)[uvicorn.url(path)]["attempts"] == 3
    first, second, third = times(uvicorn, path)
    assert second - first >= 0.2 - 0.01  # 0.4 s, half of it random at most
    assert third - second >= 0.4 - 0.01  # 0.8 s, likewise


def test_backoff_is_jittered(uvicorn: RealServer) -> None:
    # --retry-backoff 2: a first retry waits 2 s less a random share of up to half, 1 to 2 s. Without jitter
    # every URL's retry comes 2 s or more after its first try (a loaded machine only lengthens a wait); with
    # it, the chance that none of six comes sooner than 1.9 s is 0.1 ** 6. Six URLs failing at once come
    # back spread, not together.
    paths = [unique("/flaky/KEY/1") for _ in range(6)]
    done = run_cli("fetch", "--json", "--retries", "1", "--retry-backoff", "2", *(uvicorn.url(p) for p in paths))
    assert done.returncode == 0, done.stderr
    assert {record["attempts"] for record in records(done.stdout).values()} == {2}
    gaps = sorted(second - first for first, second in (times(uvicorn, path) for path in paths))
    assert gaps[0] < 1.9, gaps


def test_retries_spent_is_one_failure_naming_the_attempts(real: RealServer) -> None:
    path = unique("/flaky/KEY/9")
    done = run_cli("fetch", "--retries", "2", "--retry-backoff", "0", real.url(path))
    assert done.returncode == 1
    assert f"({'HTTPError'}: 503 Service Unavailable, after 3 attempts)" in done.stdout
    assert len(times(real, path)) == 3


def test_without_retries_a_busy_status_is_final(real: RealServer) -> None:
    path = unique("/flaky/KEY/1")
    done = run_cli("fetch", "--json", real.url(path))
    assert done.returncode == 1
    assert records(done.stdout)[real.url(path)]["attempts"] == 1
    assert len(times(real, path)) == 1


# -- politeness --------------------------------------------------------------------------------------------------------


def test_per_host_bounds_the_connections_to_each_host(uvicorn: RealServer, hypercorn: RealServer, live) -> None:
    urls = [s.url(unique("/hold/KEY")) for s in (uvicorn, hypercorn) for _ in range(6)]
    child = live("fetch", "--per-host", "2", "-c", "64", *urls)
    uvicorn.wait_held(2)
    hypercorn.wait_held(2)
    assert uvicorn.held() == (2, 2) and hypercorn.held() == (2, 2)
    uvicorn.release()
    hypercorn.release()
    status, rest = child.finish()
    assert status == 0, child.stderr
    assert uvicorn.held()[1] == 2 and hypercorn.held()[1] == 2  # never more, the whole run
    assert sum(line.startswith("Loaded ") for line in rest) == 12


# Pacing is checked against when the command was launched, never between two requests' arrivals: the
# pacer spaces its reservations 1/R apart, but a loaded machine may deliver any request late, and a late
# one is rightly followed by one on time (two arrivals can then be any distance apart). The k-th request
# of a key cannot reach the server sooner than k/R after the launch, whatever the load; without pacing
# the whole list arrives within the interpreter's start-up. The first request of a key is at once.


@pytest.mark.parametrize("flag", ["--rate", "--rate-per-host"])
def test_rate_spaces_the_requests(uvicorn: RealServer, flag: str) -> None:
    paths = [f"/bytes/{10 + n}" for n in range(5)]
    marker = uuid.uuid4().hex
    urls = [uvicorn.url(p) + f"?{marker}" for p in paths]
    launched = time.monotonic()
    done = run_cli("fetch", flag, "2", *urls)
    assert done.returncode == 0, done.stderr
    starts = sorted(when for p, when, _, _ in uvicorn.requests() if p in paths)[-5:]
    assert len(starts) == 5
    assert starts[-1] - launched >= 4 * 0.5, (launched, starts)  # 2 a second: the 5th no sooner than 2 s in


def test_rate_per_host_paces_each_host_on_its_own(uvicorn: RealServer) -> None:
    # The same server under two names: each name is a host, paced at 2 a second, and neither waits for
    # the other: the second name's first request goes out with the first name's, not after its last.
    names = ["127.0.0.1", "localhost"]
    path = unique("/bytes/3?KEY")
    urls = [f"http://{name}:{uvicorn.port}{path}&{n}" for name in names for n in range(4)]
    launched = time.monotonic()
    done = run_cli("fetch", "--rate-per-host", "2", *urls)
    assert done.returncode == 0, done.stdout + done.stderr
    by_name = {}
    for name in names:
        starts = sorted(when for p, when, _, host in uvicorn.requests() if host.startswith(name) and p == "/bytes/3")
        by_name[name] = starts = starts[-4:]
        assert len(starts) == 4
        assert starts[-1] - launched >= 3 * 0.5, (name, launched, starts)
    first, second = (by_name[name] for name in names)
    # Apart by 1.5 s of schedule: only if the second host waited for the first could this fail.
    assert second[0] < first[-1], by_name


@pytest.mark.parametrize("flag", ["-A", "--user-agent"])
def test_user_agent_is_sent(uvicorn: RealServer, tmp_path: Path, flag: str) -> None:
    done = run_cli(
        "fetch", "-o", str(tmp_path), flag, "polite-bot/1.0 (+mailto:me@example.org)", uvicorn.url("/headers")
    )
    assert done.returncode == 0, done.stderr
    (saved,) = tmp_path.iterdir()
    assert json.loads(saved.read_bytes())["user-agent"] == "polite-bot/1.0 (+mailto:me@example.org)"


# -- sizes and files ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/bytes/5000", "/chunked/5000"], ids=["content-length", "chunked"])
def test_max_size_fails_the_url_and_saves_nothing(real: RealServer, tmp_path: Path, route: str) -> None:
    small = real.url("/bytes/100")
    done = run_cli("fetch", "--json", "-o", str(tmp_path), "--max-size", "1K", real.url(route), small)
    assert done.returncode == 1
    by_url = records(done.stdout)
    big = by_url[real.url(route)]
    assert big["error_class"] == "BodyTooLarge" and "1024 bytes" in str(big["error_message"])
    assert big["path"] is None
    assert [p.name for p in tmp_path.iterdir()] == [safe_file_name(small)]  # the small one only, no partial file


def test_max_size_without_output_dir_fails_the_url(real: RealServer) -> None:
    big, small = real.url("/chunked/5000"), real.url("/bytes/100")
    done = run_cli("fetch", "--json", "--max-size", "1K", big, small)
    assert done.returncode == 1
    by_url = records(done.stdout)
    assert by_url[big]["error_class"] == "BodyTooLarge" and by_url[small]["bytes"] == 100


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("max_size", ["100K", "299500"], ids=["the rest is too large", "the whole file is"])
def test_max_size_with_continue_leaves_the_part_as_it_was(
    real: RealServer, tmp_path: Path, chunked: bool, max_size: str
) -> None:
    # --max-size bounds the file, not what this run adds to it: 1,000 bytes there and 299,000 to come make a
    # file of 300,000, over a limit of 299,500. Nothing of the refused body is kept.
    url = real.url(unique("/bytes/300000?KEY") + ("&chunked=1" if chunked else ""))
    final = tmp_path / safe_file_name(url)
    part = Path(f"{final}.part")
    part.write_bytes(pattern(300000)[:1000])
    done = run_cli("fetch", "--json", "-o", str(tmp_path), "--continue", "--max-size", max_size, url)
    assert done.returncode == 1, done.stdout + done.stderr
    record = records(done.stdout)[url]
    assert record["error_class"] == "BodyTooLarge" and record["path"] is None, record
    assert [r for _, _, r, _ in real.requests()][-1] == "bytes=1000-"
    assert part.read_bytes() == pattern(300000)[:1000]
    assert not final.exists()


def test_output_dir_is_created_and_said_so(uvicorn: RealServer, tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper"
    done = run_cli("fetch", "-o", str(target), uvicorn.url("/bytes/10"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"tasklets fetch: created the directory {str(target)!r}\n"
    assert (target / safe_file_name(uvicorn.url("/bytes/10"))).read_bytes() == pattern(10)
    assert oct((target / safe_file_name(uvicorn.url("/bytes/10"))).stat().st_mode & 0o777) != oct(0o600)


def test_continue_resumes_a_partial_file_with_range(real: RealServer, tmp_path: Path) -> None:
    url = real.url(unique("/bytes/300000?KEY"))
    final = tmp_path / safe_file_name(url)
    Path(f"{final}.part").write_bytes(pattern(300000)[:123456])
    done = run_cli("fetch", "--json", "-o", str(tmp_path), "--continue", url)
    assert done.returncode == 0, done.stderr
    record = records(done.stdout)[url]
    assert (record["status"], record["bytes"], record["path"]) == (206, 300000 - 123456, str(final))
    assert final.read_bytes() == pattern(300000)
    assert not Path(f"{final}.part").exists()
    assert [r for _, _, r, _ in real.requests()][-1] == "bytes=123456-"


def test_continue_starts_over_when_the_server_ignores_range(real: RealServer, tmp_path: Path) -> None:
    url = real.url(unique("/norange/5000?KEY"))
    final = tmp_path / safe_file_name(url)
    Path(f"{final}.part").write_bytes(b"x" * 1000)  # not even the right bytes: all of it is replaced
    done = run_cli("fetch", "--json", "-o", str(tmp_path), "--continue", url)
    assert done.returncode == 0, done.stderr
    assert records(done.stdout)[url]["status"] == 200
    assert final.read_bytes() == pattern(5000)


def test_continue_with_a_whole_part_finishes_it(real: RealServer, tmp_path: Path) -> None:
    url = real.url(unique("/bytes/4000?KEY"))
    final = tmp_path / safe_file_name(url)
    Path(f"{final}.part").write_bytes(pattern(4000))
    done = run_cli("fetch", "--json", "-o", str(tmp_path), "--continue", url)
    assert done.returncode == 0, done.stderr
    assert records(done.stdout)[url]["status"] == 416  # "nothing past the end": the part was whole
    assert final.read_bytes() == pattern(4000)


def test_continue_fetches_a_new_file_whole_and_plain_o_sends_no_range(uvicorn: RealServer, tmp_path: Path) -> None:
    url = uvicorn.url(unique("/bytes/2000?KEY"))
    final = tmp_path / safe_file_name(url)
    done = run_cli("fetch", "-o", str(tmp_path), "--continue", url)
    assert done.returncode == 0
    assert final.read_bytes() == pattern(2000) and not Path(f"{final}.part").exists()
    # Without --continue no Range is ever sent, and no .part file is made.
    run_cli("fetch", "-o", str(tmp_path / "plain"), url)
    assert [r for _, _, r, _ in uvicorn.requests()][-1] is None
    assert not list((tmp_path / "plain").glob("*.part"))


def test_no_clobber_skips_existing_files_without_a_request(uvicorn: RealServer, tmp_path: Path) -> None:
    there, new = uvicorn.url(unique("/bytes/10?KEY")), uvicorn.url(unique("/bytes/20?KEY"))
    (tmp_path / safe_file_name(there)).write_bytes(b"mine")
    before = len(uvicorn.requests())
    done = run_cli("fetch", "--json", "-o", str(tmp_path), "--no-clobber", there, new)
    assert done.returncode == 0, done.stderr
    by_url = records(done.stdout)
    assert by_url[there]["skipped"] == f"{str(tmp_path / safe_file_name(there))!r} exists"
    assert by_url[there]["attempts"] == 0
    assert (tmp_path / safe_file_name(there)).read_bytes() == b"mine"
    assert (tmp_path / safe_file_name(new)).read_bytes() == pattern(20)
    assert len(uvicorn.requests()) == before + 1  # the new one only
    human = run_cli("fetch", "-o", str(tmp_path), "--no-clobber", there)
    assert human.stdout.startswith(f"Skipped {there!r}: ")
    assert ", 1 skipped," in human.stdout


# -- TLS and proxies ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RealServer, str]]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    directory = tmp_path_factory.mktemp("tls")
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    server = RealServer("uvicorn", str(directory / "log"), certfile=str(cert_file), keyfile=str(key_file))
    try:
        yield server, str(ca_file)
    finally:
        server.stop()


def test_cacert_trusts_a_private_ca(tls: tuple[RealServer, str]) -> None:
    server, ca_file = tls
    url = server.url("/bytes/64")
    refused = run_cli("fetch", "--json", url)
    assert refused.returncode == 1
    assert records(refused.stdout)[url]["error"].startswith("TLSCertificateError: ")
    trusted = run_cli("fetch", "--json", "--cacert", ca_file, url)
    assert trusted.returncode == 0, trusted.stdout
    assert records(trusted.stdout)[url]["bytes"] == 64


@pytest.mark.parametrize("flag", ["-k", "--insecure"])
def test_insecure_skips_verification_with_a_warning(tls: tuple[RealServer, str], flag: str) -> None:
    server, _ = tls
    done = run_cli("fetch", flag, server.url("/bytes/64"))
    assert done.returncode == 0, done.stdout
    assert "warning: --insecure" in done.stderr and "not verified" in done.stderr
    assert "warning" not in done.stdout  # the results stay clean for a script


#: pproxy's command line, on asyncio's own loop (pproxy's uvloop path fails with uvloop >= 0.21 on Python 3.12+).
_PPROXY = "import sys; sys.modules['uvloop'] = None; from pproxy.server import main; sys.argv[0] = 'pproxy'; main()"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """pproxy, an HTTP proxy, on a free port; its verbose log names every request it forwards."""
    pytest.importorskip("pproxy")
    port = free_port()
    log = tmp_path_factory.mktemp("pproxy") / "log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", _PPROXY, "-l", f"http://127.0.0.1:{port}", "-v"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=cli_env(),
        )
    try:
        wait_listening(process, port, "pproxy", str(log))
        yield port, log
    finally:
        process.terminate()
        process.wait(BOUND)


def test_proxy_carries_every_request(uvicorn: RealServer, proxy: tuple[int, Path], refused_url: str) -> None:
    port, log = proxy
    url = uvicorn.url(unique("/bytes/77?KEY"))
    done = run_cli("fetch", "--json", "--proxy", f"http://127.0.0.1:{port}", url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert records(done.stdout)[url]["bytes"] == 77
    assert f"127.0.0.1:{uvicorn.port}" in log.read_text(errors="replace")  # pproxy forwarded it
    # Through a proxy that is not there, the same URL fails although its server is up: the proxy is used.
    dead_proxy = refused_url.rsplit("/", 1)[0]
    failed = run_cli("fetch", "--json", "--proxy", dead_proxy, url)
    assert failed.returncode == 1
    assert records(failed.stdout)[url]["error_class"] == "ConnectFailed"


# -- output --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-q", "--quiet"])
def test_quiet_prints_only_failures_and_the_summary(uvicorn: RealServer, flag: str) -> None:
    urls = [uvicorn.url("/bytes/1"), uvicorn.url("/status/404"), uvicorn.url("/bytes/2")]
    done = run_cli("fetch", flag, *urls)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == f"Something broke for {urls[1]!r} (HTTPError: 404 Not Found)"
    assert re.match(r"^3 URLs in [\d.]+ s \(\d+ requests/s\): 2 loaded, 1 failed, 3 bytes received$", lines[1])
    assert lines[2:] == ["  1 x HTTPError"]


def test_json_fields_are_what_docs_cli_md_documents(real: RealServer, tmp_path: Path, refused_url: str) -> None:
    ok, redirected, missing = real.url("/bytes/42"), real.url("/redirect/2"), real.url("/status/404")
    done = run_cli("fetch", "--json", "-o", str(tmp_path), ok, redirected, missing, refused_url, "not a url")
    by_url = records(done.stdout)
    assert by_url[ok] | {"ms": 0} == {
        "url": ok,
        "final_url": ok,
        "redirects": 0,
        "status": 200,
        "content_type": "application/octet-stream",
        "bytes": 42,
        "path": str(tmp_path / safe_file_name(ok)),
        "ms": 0,
        "attempts": 1,
        "skipped": None,
        "error": None,
        "error_class": None,
        "error_message": None,
    }
    assert isinstance(by_url[ok]["ms"], float) and by_url[ok]["ms"] > 0
    hop = by_url[redirected]
    assert (hop["final_url"], hop["redirects"], hop["status"], hop["content_type"], hop["bytes"]) == (
        real.url("/redirect/0"),
        2,
        200,
        "text/plain; charset=utf-8",
        4,
    )
    failure = by_url[missing]
    assert (failure["status"], failure["final_url"], failure["path"], failure["attempts"]) == (404, missing, None, 1)
    assert failure["redirects"] == 0
    assert (failure["error"], failure["error_class"], failure["error_message"]) == (
        "HTTPError: 404 Not Found",
        "HTTPError",
        "404 Not Found",
    )
    refused = by_url[refused_url]
    assert (refused["status"], refused["final_url"], refused["redirects"], refused["content_type"]) == (None,) * 4
    assert refused["error_class"] == "ConnectFailed" and refused["error"].startswith("ConnectionRefused: ")
    assert by_url["not a url"]["error_class"] == "InvalidURL"
    # docs/cli.md has a table of exactly these fields, in this order.
    documented = re.findall(r"^\| `(\w+)` \|", (ROOT / "docs" / "cli.md").read_text(), flags=re.M)
    assert documented == list(JSON_FIELDS)


@pytest.fixture(scope="module")
def httpbin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    pytest.importorskip("httpbin")
    server = RealServer("httpbin", str(tmp_path_factory.mktemp("httpbin") / "log"))
    try:
        yield server
    finally:
        server.stop()


def test_json_redirects_count_the_redirect_responses_of_httpbin(httpbin: RealServer, tmp_path: Path) -> None:
    """``redirects`` is the length of the response's history, whatever the kind of redirect, and for an
    error reached through redirects too (its final URL is the error's)."""
    urls = {
        "/redirect/3": (3, "/get", 200),
        "/relative-redirect/2": (2, "/get", 200),
        "/absolute-redirect/1": (1, "/get", 200),
        "/redirect-to?url=%2Fstatus%2F404": (1, "/status/404", 404),
        "/get": (0, "/get", 200),
    }
    done = run_cli("fetch", "--json", "-o", str(tmp_path), *(httpbin.url(path) for path in urls))
    assert done.returncode == 1, done.stderr  # the 404
    by_url = records(done.stdout)
    fields = ("redirects", "final_url", "status")
    got = {path: tuple(by_url[httpbin.url(path)][key] for key in fields) for path in urls}
    assert got == {path: (count, httpbin.url(final), status) for path, (count, final, status) in urls.items()}
    saved = by_url[httpbin.url("/redirect/3")]
    assert saved["path"] == str(tmp_path / safe_file_name(httpbin.url("/redirect/3")))
    assert json.loads(Path(saved["path"]).read_bytes())["url"] == httpbin.url("/get")


def test_options_may_follow_the_urls(uvicorn: RealServer) -> None:
    done = run_cli("fetch", uvicorn.url("/bytes/1"), "--json", uvicorn.url("/bytes/2"), "-c", "2")
    assert done.returncode == 0, done.stderr
    assert len(records(done.stdout)) == 2


def test_help_lists_every_flag_of_docs_cli_md() -> None:
    help_text = subprocess.run(
        command("fetch", "--help"), capture_output=True, text=True, env={**cli_env(), "COLUMNS": "80"}, check=True
    ).stdout
    synopsis = re.search(r"```text\n(tasklets fetch .*?)\n```", (ROOT / "docs" / "cli.md").read_text(), flags=re.S)
    assert synopsis is not None
    usage = help_text.split("\n\n")[0].removeprefix("usage: ")
    assert " ".join(synopsis[1].split()) == " ".join(usage.split())
    # And each option is explained there, not only listed in the synopsis.
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", help_text)) - {"--help"}
    documented = set(re.findall(r"`(--[a-z][a-z-]+)", (ROOT / "docs" / "cli.md").read_text()))
    assert options and options - documented == set()
