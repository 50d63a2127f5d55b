"""``tasklets fetch`` run as a user runs it: a child process against the local test server.

Every test starts ``python -m tasklets fetch ...`` with pipes (so: no
terminal, no progress bar) and checks what a user sees: the line of each
URL, the summary, the exit status, the saved files.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tasklets.cli import main
from tasklets.cli._names import safe_file_name
from tasklets.cli._report import JSON_FIELDS
from tasklets.cli._source import MAX_LINE

from ._cli_support import (
    BOUND,
    ClosingListener,
    Server,
    cli_env,
    command,
    echo_body,
    first_line_then_hang_up,
    pattern,
    run_cli,
    slow_body,
)

_REPR = r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""  # a str's repr: the URL, escaped
LOADED = re.compile(rf"^Loaded (\d+) bytes from {_REPR} in (\d+) ms$")
BROKE = re.compile(rf"^Something broke for {_REPR} \((\w+): (.*)\)$")
SUMMARY = re.compile(
    r"^(Interrupted: )?(\d+) URLs in [\d.]+ s \((\d+) requests/s\): (\d+) loaded, (\d+) failed, (.+) received$"
)
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def parse(stdout: str) -> tuple[dict[str, int], dict[str, tuple[str, str]], list[str]]:
    """The loaded URLs (url -> size), the failed ones (url -> (kind, message)), the summary lines."""
    loaded: dict[str, int] = {}
    broke: dict[str, tuple[str, str]] = {}
    lines = stdout.splitlines()
    index = 0
    for index, line in enumerate(lines):  # noqa: B007 - the summary starts where the URL lines end
        if match := LOADED.match(line):
            loaded[ast.literal_eval(match[2])] = int(match[1])
        elif match := BROKE.match(line):
            broke[ast.literal_eval(match[1])] = (match[2], match[3])
        else:
            break
    else:
        index = len(lines)
    return loaded, broke, lines[index:]


def check_summary(lines: list[str], *, count: int, failed: int, interrupted: bool = False) -> None:
    assert lines, "no summary"
    match = SUMMARY.match(lines[0])
    assert match, lines[0]
    assert bool(match[1]) == interrupted
    assert (int(match[2]), int(match[4]), int(match[5])) == (count, count - failed, failed), lines[0]


# -- success -----------------------------------------------------------------------------------------------------


def test_success_prints_each_url_and_a_summary(server: Server) -> None:
    sizes = [0, 1, 1000, 250_000]
    urls = [server.url(f"/bytes/{n}") for n in sizes] + [server.url("/redirect")]
    done = run_cli("fetch", *urls)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    loaded, broke, summary = parse(done.stdout)
    assert broke == {}
    assert loaded == {**{url: n for url, n in zip(urls, sizes)}, server.url("/redirect"): 123}
    check_summary(summary, count=5, failed=0)
    assert summary[0].endswith(f"{(sum(sizes) + 123) / 1024:.1f} KiB received")
    assert len(summary) == 1  # no failure kinds


def test_each_url_is_reported_the_moment_it_completes(server: Server, live) -> None:
    slow, fast = server.url("/slow/1"), server.url("/bytes/10")
    child = live("fetch", slow, fast)
    # The slow page is asked for first, and held: the fast one is reported meanwhile.
    server.wait_slow(1)
    match = LOADED.match(child.next_line())
    assert match and ast.literal_eval(match[2]) == fast and match[1] == "10"
    server.release()
    status, rest = child.finish()
    assert status == 0
    match = LOADED.match(rest[0])
    assert match and ast.literal_eval(match[2]) == slow and int(match[1]) == len(slow_body("/slow/1"))


def test_mixed_failures_exit_1_with_a_line_each(server: Server, refused_url: str) -> None:
    ok = server.url("/bytes/100")
    missing, broken = server.url("/status/404"), server.url("/status/500")
    invalid, bogus, no_host = "not a url", "bogus://example.invalid/x", "http://"
    done = run_cli("fetch", ok, missing, broken, refused_url, invalid, bogus, no_host)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    loaded, broke, summary = parse(done.stdout)
    assert loaded == {ok: 100}
    assert broke[missing] == ("HTTPError", "404 Not Found")
    assert broke[broken] == ("HTTPError", "500 Internal Server Error")
    assert broke[refused_url][0] == "ConnectionRefused"
    assert broke[invalid][0] == "InvalidURL"
    assert broke[bogus][0] == "UnsupportedScheme"
    assert broke[no_host][0] == "InvalidURL"
    assert len(broke) == 6
    check_summary(summary, count=7, failed=6)
    kinds = dict(reversed(line.strip().split(" x ")) for line in summary[1:])
    assert kinds == {"HTTPError": "2", "InvalidURL": "2", "ConnectionRefused": "1", "UnsupportedScheme": "1"}


def test_invalid_urls_in_a_file_are_failures_never_a_crash(server: Server, tmp_path: Path) -> None:
    bad = [
        b"http://[::1",
        b"http://127.0.0.1:99999/",
        b"://nothing",
        b"http:///no-host",
        b"http://127.0.0.1/a\x00b",
        b"http://127.0.0.1/\xff\xfe-not-utf8",
        b"\xc3\x28",
        b"http://" + b"h" * 300 + b"/x",
        b"javascript:alert(1)",
        b"http://127.0.0.1:0/",
    ]
    listing = tmp_path / "urls.txt"
    listing.write_bytes(b"\n".join([server.url("/bytes/7").encode(), *bad]) + b"\n")
    done = run_cli("fetch", "-i", str(listing))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    loaded, broke, summary = parse(done.stdout)
    assert loaded == {server.url("/bytes/7"): 7}
    assert len(broke) == len(bad)
    check_summary(summary, count=len(bad) + 1, failed=len(bad))


def test_headers_are_sent_and_failures_retried(server: Server) -> None:
    busy = server.url("/status/503")
    done = run_cli(
        "fetch", "-H", "X-Test: one two", "--retries", "2", "--retry-backoff", "0", busy, server.url("/echo")
    )
    assert done.returncode == 1
    _, broke, _ = parse(done.stdout)
    assert broke == {busy: ("HTTPError", "503 Service Unavailable, after 3 attempts")}
    assert server.paths().count("/status/503") == 3  # the first try and two retries
    assert all(headers.get("X-Test") == "one two" for _, headers in server.requests)


@pytest.mark.parametrize(("options", "attempts"), [([], 1), (["--retries", "2"], 3)], ids=["default", "retries 2"])
def test_a_network_failure_is_tried_once_plus_the_retries(
    closing_listener: ClosingListener, options: list[str], attempts: int
) -> None:
    # Every connection to the listener is accepted and closed unread: each attempt is one connection, counted.
    done = run_cli("fetch", *options, "--retry-backoff", "0", closing_listener.url)
    assert done.returncode == 1, done.stderr
    _, broke, summary = parse(done.stdout)
    assert list(broke) == [closing_listener.url]
    check_summary(summary, count=1, failed=1)
    assert closing_listener.stop() == attempts  # every connection made before the child exited is counted


def test_a_4xx_and_a_500_are_not_retried_the_busy_statuses_are(server: Server) -> None:
    busy = [server.url(f"/status/{code}") for code in (429, 502, 503, 504)]
    missing, broken = server.url("/status/404"), server.url("/status/500")
    done = run_cli("fetch", "--retries", "2", "--retry-backoff", "0", missing, broken, *busy)
    assert done.returncode == 1, done.stderr
    _, broke, _ = parse(done.stdout)
    assert broke[missing] == ("HTTPError", "404 Not Found")
    assert broke[broken] == ("HTTPError", "500 Internal Server Error")  # a server bug: the same next time
    assert {url: broke[url][1].endswith(", after 3 attempts") for url in busy} == dict.fromkeys(busy, True)
    paths = Counter(server.paths())
    assert paths == {"/status/404": 1, "/status/500": 1, **{f"/status/{c}": 3 for c in (429, 502, 503, 504)}}


def test_retry_on_chooses_the_statuses(server: Server) -> None:
    done = run_cli(
        "fetch",
        "--retries",
        "1",
        "--retry-on",
        "500,404",
        "--retry-backoff",
        "0",
        *(server.url(f"/status/{code}") for code in (404, 500, 503)),
    )
    assert done.returncode == 1, done.stderr
    assert Counter(server.paths()) == {"/status/404": 2, "/status/500": 2, "/status/503": 1}


#: Runs ``python -m tasklets ARGS...`` with every ``Client.urlopen`` call (one per attempt: ``fetch_one`` calls it
#: once a try) logged, a JSON string a line, to the file named by $TASKLETS_TEST_ATTEMPTS. An invalid URL never
#: reaches a server: this is how its attempts are counted.
_COUNTING_LAUNCHER = """
import json, os, runpy
from tasklets.http import Client

def urlopen(self, url, *args, _original=Client.urlopen, **kwargs):
    with open(os.environ["TASKLETS_TEST_ATTEMPTS"], "a", encoding="utf-8") as log:
        log.write(json.dumps(url) + "\\n")
    return _original(self, url, *args, **kwargs)

Client.urlopen = urlopen
runpy.run_module("tasklets", run_name="__main__", alter_sys=True)
"""


def test_an_invalid_url_is_not_retried(server: Server, tmp_path: Path) -> None:
    invalid = ["not a url", "http://", "bogus://example.invalid/x", "http://127.0.0.1:99999/", "http://[::1"]
    broken = server.url("/status/503")  # retried: shows that the log counts every attempt
    log = tmp_path / "attempts.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", _COUNTING_LAUNCHER, "fetch", "--retries", "2", "--retry-backoff", "0", *invalid, broken],
        capture_output=True,
        text=True,
        env={**cli_env(), "TASKLETS_TEST_ATTEMPTS": str(log)},
        timeout=BOUND * 2,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    _, broke, summary = parse(done.stdout)
    assert {url: kind for url, (kind, _) in broke.items()} == {
        "not a url": "InvalidURL",
        "http://": "InvalidURL",
        "bogus://example.invalid/x": "UnsupportedScheme",
        "http://127.0.0.1:99999/": "InvalidURL",
        "http://[::1": "InvalidURL",
        broken: "HTTPError",
    }
    check_summary(summary, count=len(invalid) + 1, failed=len(invalid) + 1)
    attempts = Counter(json.loads(line) for line in log.read_text(encoding="utf-8").splitlines())
    assert attempts == {**dict.fromkeys(invalid, 1), broken: 3}
    assert server.paths() == ["/status/503"] * 3


def test_by_default_a_5xx_is_tried_once(server: Server) -> None:
    done = run_cli("fetch", server.url("/status/500"), server.url("/status/503"))
    assert done.returncode == 1, done.stderr
    _, broke, summary = parse(done.stdout)
    assert set(broke) == {server.url("/status/500"), server.url("/status/503")}
    check_summary(summary, count=2, failed=2)
    assert sorted(server.paths()) == ["/status/500", "/status/503"]  # no retry without --retries


def test_a_huge_concurrency_costs_only_the_workers_the_urls_need(server: Server) -> None:
    # -c is a ceiling, not a pool made up front: ten million slots over three URLs fit in 512 MiB of address space
    # (a task per slot made up front ran out of it, with a MemoryError, in seconds).
    pytest.importorskip("resource")
    limit = 512 << 20
    launcher = (
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit})); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    urls = [server.url(f"/bytes/{n}") for n in (1, 2, 3)]
    done = subprocess.run(
        [sys.executable, "-c", launcher, *command("fetch", "-c", "10000000", *urls)[1:]],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=BOUND * 2,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded, broke, summary = parse(done.stdout)
    assert (loaded, broke) == ({urls[0]: 1, urls[1]: 2, urls[2]: 3}, {})
    check_summary(summary, count=3, failed=0)


def test_the_default_per_host_limit_is_8(server: Server, live) -> None:
    # Twenty held requests to one host: 8 of them reach the server, and no more, until the server lets them finish.
    # A last URL names the same server as another host (localhost): its worker starts after the twenty's, so by
    # the time its line is out, any ninth request to 127.0.0.1 would have been sent; only then is the peak read.
    urls = [server.url(f"/slow/{n}") for n in range(20)]
    other_host = server.url("/bytes/5").replace("127.0.0.1", "localhost")
    child = live("fetch", *urls, other_host)
    server.wait_slow(8)
    assert child.next_line().startswith(f"Loaded 5 bytes from {other_host!r} in ")
    assert (server.slow_peak, server.slow_seen) == (8, 8)
    server.release()
    status, rest = child.finish()
    assert status == 0, child.stderr
    check_summary(parse("\n".join(rest))[2], count=21, failed=0)
    assert server.slow_peak == 8
    assert server.connections_peak == 8 + 1  # a ninth request, however late, would have opened a ninth


def test_the_default_concurrency_is_64(server: Server, live) -> None:
    # A hundred held requests: 64 of them reach the server, and no more, until the server lets them finish.
    urls = [server.url(f"/slow/{n}") for n in range(100)]
    child = live("fetch", "--per-host", "1000", *urls)
    server.wait_slow(64)
    assert server.slow_peak == 64  # 64 held, and never more so far: nothing is released yet
    server.release()
    status, rest = child.finish()
    assert status == 0, child.stderr
    loaded, broke, summary = parse("\n".join(rest))
    assert broke == {}
    assert loaded == {url: len(slow_body(url.removeprefix(server.base))) for url in urls}
    check_summary(summary, count=100, failed=0)
    assert server.slow_seen == 100
    # Never more than 64 at once, the whole run: a request counts from its arrival until the rest of its body is
    # sent (the client holds its slot longer), so the server's count never exceeds the client's.
    assert server.slow_peak == 64
    # Nor more than 64 connections (the pool is sized by -c, and keeps them alive): a 65th request, sent at the
    # start with the others as a larger default would send it, has no idle connection to take and opens one
    # even if it reaches the server late, after the first responses are released.
    assert server.connections_peak == 64


# -- input ---------------------------------------------------------------------------------------------------------


def test_urls_from_stdin(server: Server) -> None:
    urls = [server.url(f"/bytes/{n}") for n in range(1, 41)]
    text = "# a comment\n\n" + "\n".join(f"  {url}  " for url in urls) + "\n"
    done = run_cli("fetch", "-c", "8", "-i", "-", stdin=text)
    assert done.returncode == 0, done.stderr
    loaded, _, summary = parse(done.stdout)
    assert loaded == {url: n for n, url in enumerate(urls, 1)}
    check_summary(summary, count=40, failed=0)


def test_urls_from_arguments_then_a_file(server: Server, tmp_path: Path) -> None:
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{server.url('/bytes/2')}\r\n# skipped\n{server.url('/status/404')}")  # no final newline
    done = run_cli("fetch", server.url("/bytes/1"), "-i", str(listing))
    assert done.returncode == 1
    loaded, broke, summary = parse(done.stdout)
    assert loaded == {server.url("/bytes/1"): 1, server.url("/bytes/2"): 2}
    assert list(broke) == [server.url("/status/404")]
    check_summary(summary, count=3, failed=1)


def test_stdin_is_streamed_results_come_before_the_input_ends(server: Server, live) -> None:
    child = live("fetch", "-i", "-", stdin=True)
    for n in (11, 12, 13):
        url = server.url(f"/bytes/{n}")
        child.write(url + "\n")  # the input stays open: the result must still come now
        match = LOADED.match(child.next_line())
        assert match and ast.literal_eval(match[2]) == url and int(match[1]) == n
    child.close_stdin()
    status, rest = child.finish()
    assert status == 0
    check_summary(rest, count=3, failed=0)


def test_ctrl_c_while_waiting_for_input_stops_at_once(server: Server, live) -> None:
    child = live("fetch", "-i", "-", stdin=True)
    child.write(server.url("/bytes/5") + "\n")
    assert LOADED.match(child.next_line())
    child.process.send_signal(signal.SIGINT)  # stdin still open, nothing more to read
    status, rest = child.finish()
    assert status == 130
    check_summary(rest, count=1, failed=0, interrupted=True)


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_a_byte_order_mark_before_the_first_url_is_ignored(server: Server, tmp_path: Path, via: str) -> None:
    urls = [server.url("/bytes/1"), server.url("/bytes/2")]
    text = "\ufeff" + "\r\n".join(urls) + "\r\n"  # as Notepad saves it: "UTF-8 with BOM", CRLF
    if via == "file":
        listing = tmp_path / "urls.txt"
        listing.write_bytes(text.encode("utf-8"))
        done = run_cli("fetch", "-i", str(listing))
    else:
        done = run_cli("fetch", "-i", "-", stdin=text)
    assert done.returncode == 0, done.stdout + done.stderr
    loaded, broke, summary = parse(done.stdout)
    assert (loaded, broke) == ({urls[0]: 1, urls[1]: 2}, {})
    check_summary(summary, count=2, failed=0)


def test_an_overlong_line_is_one_failed_url_and_the_lines_after_it_are_read(server: Server, tmp_path: Path) -> None:
    overlong = server.url("/bytes/1?") + "a" * (4 * MAX_LINE)  # over the cap, across several reads
    longest = server.url("/echo?") + "b" * (MAX_LINE - len(server.url("/echo?")))  # at the cap: a URL like another
    comment = "# " + "c" * (2 * MAX_LINE)
    listing = tmp_path / "urls.txt"
    lines = [server.url("/bytes/1"), overlong, server.url("/bytes/2"), longest, comment, overlong]
    listing.write_text("\n".join(lines))  # the last overlong line has no newline
    done = run_cli("fetch", "--json", "-i", str(listing))
    assert done.returncode == 1, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == 5  # the comment is skipped, however long
    failed = [r for r in records if r["error"] is not None]
    assert len(failed) == 2
    for record in failed:
        assert record["error"] == f"LineTooLong: line too long (over {MAX_LINE} bytes): skipped"
        assert record["url"] == overlong[:100] + "..."
    loaded = {r["url"]: r["bytes"] for r in records if r["error"] is None}
    assert loaded == {
        server.url("/bytes/1"): 1,
        server.url("/bytes/2"): 2,
        longest: len(echo_body(longest.removeprefix(server.base))),
    }
    assert sorted(server.paths()) == sorted(["/bytes/1", "/bytes/2", longest.removeprefix(server.base)])
    check_summary(done.stderr.splitlines(), count=5, failed=2)


# -- saving bodies ---------------------------------------------------------------------------------------------------

HOSTILE_PATHS = [
    "/../../etc/passwd",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "/%252e%252e%252fetc",
    "/a%00b",
    "/%00",
    "/%u0000/x",
    "/%c0%ae%c0%ae/%c0%af",
    "/..\\..\\windows\\win.ini",
    "/" + "A" * 5000,
    "/" + "B" * 300 + ".txt",
    "/x/" + "é" * 200,
    "/.hidden",
    "/...",
    "/a/..",
    "/con.txt",
    "/-rf",
    "/file.tar.gz",
    "/q?name=../../etc/passwd",
    "/",
]


def test_output_dir_keeps_every_file_inside_with_a_safe_name(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    urls = [server.url(p) for p in HOSTILE_PATHS] + [server.url("/bytes/100000"), server.url("/redirect")]
    done = run_cli("fetch", "-o", str(out), *urls)
    assert done.returncode == 0, done.stdout + done.stderr
    loaded, _, _ = parse(done.stdout)
    assert set(loaded) == set(urls)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing written beside DIR
    names = sorted(os.listdir(out))
    assert len(names) == len(urls)  # one file per URL: none overwrote another
    for name in names:
        assert SAFE_NAME.match(name) and len(name) <= 130, name
        assert (out / name).is_file() and not (out / name).is_symlink()
        assert (out / name).resolve().parent == out.resolve()

    targets = server.paths()  # the request targets as the server received them
    for url in urls:
        saved = (out / safe_file_name(url)).read_bytes()
        assert len(saved) == loaded[url]
        if url.endswith("/bytes/100000"):
            assert saved == pattern(100000)
        elif url.endswith("/redirect"):
            assert saved == pattern(123)
        else:
            assert saved.startswith(b"echo:") and saved in {echo_body(t) for t in targets}, (url, saved)
    assert (out / safe_file_name(server.url("/file.tar.gz"))).suffix == ".gz"


def test_output_dir_saves_nothing_for_a_failure(server: Server, tmp_path: Path) -> None:
    done = run_cli("fetch", "-o", str(tmp_path), server.url("/status/404"), server.url("/bytes/3"))
    assert done.returncode == 1
    assert [p.read_bytes() for p in tmp_path.iterdir()] == [pattern(3)]


# -- --json ----------------------------------------------------------------------------------------------------------


def test_json_lines_parse_back(server: Server, refused_url: str) -> None:
    urls = [server.url("/bytes/42"), server.url("/status/404"), refused_url, "bogus://x/y", server.url("/redirect")]
    done = run_cli("fetch", "--json", *urls)
    assert done.returncode == 1
    records = [json.loads(line) for line in done.stdout.splitlines()]  # stdout holds JSON lines and nothing else
    assert sorted(r["url"] for r in records) == sorted(urls)
    for record in records:
        assert list(record) == list(JSON_FIELDS)
        assert isinstance(record["ms"], (int, float)) and record["ms"] >= 0
    by_url = {r["url"]: r for r in records}
    assert {k: by_url[urls[0]][k] for k in ("url", "status", "bytes", "error")} == {
        "url": urls[0],
        "status": 200,
        "bytes": 42,
        "error": None,
    }
    assert by_url[urls[1]]["status"] == 404 and by_url[urls[1]]["error"] == "HTTPError: 404 Not Found"
    assert by_url[urls[2]]["status"] is None and by_url[urls[2]]["error"].startswith("ConnectionRefused: ")
    assert by_url[urls[3]]["status"] is None and by_url[urls[3]]["error"].startswith("UnsupportedScheme: ")
    assert by_url[urls[4]]["status"] == 200 and by_url[urls[4]]["bytes"] == 123
    # The summary goes to stderr.
    check_summary(done.stderr.splitlines(), count=5, failed=3)


# -- exit statuses and usage ---------------------------------------------------------------------------------------


BAD_USAGE = [
    [],
    ["-c", "0", "URL"],
    ["-c", "many", "URL"],
    ["-H", "no colon", "URL"],
    ["-H", ": no name", "URL"],
    ["-H", "Bad Name: x", "URL"],
    ["-H", "X: a\r\nInjected: b", "URL"],
    ["--timeout", "0", "URL"],
    ["--timeout", "nan", "URL"],
    ["--retries", "-1", "URL"],
    ["-o", "/proc/version/dir", "URL"],  # cannot be created: /proc/version is a file
    ["--continue", "URL"],
    ["--no-clobber", "URL"],
    ["--retry-on", "200,abc", "URL"],
    ["--retry-on", "600", "URL"],
    ["--rate", "0", "URL"],
    ["--rate-per-host", "-1", "URL"],
    ["--per-host", "0", "URL"],
    ["--max-size", "lots", "URL"],
    ["--cacert", "/nonexistent/ca.pem", "URL"],
    ["--cacert", "/proc/version", "URL"],
    ["--cacert", "/proc/version", "--insecure", "URL"],
    ["--proxy", "ftp://proxy.invalid:21", "URL"],
    ["-A", "bad\r\nagent", "URL"],
    ["-i", "/nonexistent/file", "URL"],
    ["--progress", "--no-progress", "URL"],
    ["--no-such-option", "URL"],
]
_ids = [" ".join(args) or "no URLs" for args in BAD_USAGE]
#: These run as a child, like the rest; the others call ``main()`` in this process (faster, same parser).
IN_A_CHILD = {"no URLs", "-c 0 URL", "-H no colon URL", "-H Bad Name: x URL", "--no-such-option URL"}


@pytest.mark.parametrize("args", BAD_USAGE, ids=_ids)
def test_bad_usage_exits_2_and_fetches_nothing(server: Server, args: list[str], capsys) -> None:
    in_a_child = (" ".join(args) or "no URLs") in IN_A_CHILD
    args = [server.url("/bytes/1") if a == "URL" else a for a in args]
    if in_a_child:
        done = run_cli("fetch", *args)
        status, stdout, stderr = done.returncode, done.stdout, done.stderr
    else:
        with pytest.raises(SystemExit) as exited:
            main(["fetch", *args])
        status = exited.value.code
        stdout, stderr = capsys.readouterr()
    assert status == 2, stdout + stderr
    assert stdout == ""
    assert "usage: tasklets fetch" in stderr
    assert "tasklets fetch: error:" in stderr
    assert "Traceback" not in stderr
    assert server.requests == []


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("X-A: a\x01b", "control character"),
        ("X-A: a\x7fb", "control character"),
        ("X-A: \u20ac", "not latin-1"),
    ],
    ids=["SOH", "DEL", "euro sign"],
)
def test_a_header_value_the_client_would_refuse_is_bad_usage(server: Server, header: str, why: str) -> None:
    done = run_cli("fetch", "--retries", "2", "-H", header, server.url("/bytes/1"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("tasklets fetch: error: argument -H/--header: bad header ") and why in last, last
    assert server.requests == []


def test_no_command_is_bad_usage() -> None:
    done = run_cli()
    assert done.returncode == 2
    assert "usage: tasklets" in done.stderr


# -- Ctrl-C ------------------------------------------------------------------------------------------------------------


def test_ctrl_c_cancels_requests_in_flight_prints_the_summary_and_leaves_no_partial_file(
    server: Server, tmp_path: Path, live
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    held = 4
    urls = [server.url("/bytes/1000"), server.url("/bytes/2000")] + [server.url(f"/slow/{n}") for n in range(10)]
    child = live("fetch", "-c", str(held), "-o", str(out), *urls)
    server.wait_slow(held)  # four requests in flight, each with half its body received
    deadline = time.monotonic() + BOUND  # and the client has its partial files open
    while len([p for p in out.iterdir() if p.name.startswith(".partial-")]) < held:
        assert time.monotonic() < deadline, sorted(os.listdir(out))
        time.sleep(0.01)
    first = [child.next_line(), child.next_line()]  # the two quick ones, already reported

    child.process.send_signal(signal.SIGINT)
    status, rest = child.finish()
    assert status == 130, child.stderr
    assert "Traceback" not in "\n".join(filter(None, child.stderr))
    assert sorted(parse(chr(10).join(first))[0]) == sorted(urls[:2])
    check_summary(rest, count=2, failed=0, interrupted=True)
    assert server.slow_seen == held  # no new request after Ctrl-C
    assert sorted(os.listdir(out)) == sorted(safe_file_name(u) for u in urls[:2])  # no partial file


def test_with_continue_ctrl_c_keeps_the_partial_files_and_the_next_run_finishes_them(
    server: Server, tmp_path: Path, live
) -> None:
    urls = [server.url(f"/slow/{n}") for n in range(2)]
    parts = {url: tmp_path / f"{safe_file_name(url)}.part" for url in urls}
    child = live("fetch", "-o", str(tmp_path), "--continue", *urls)
    server.wait_slow(2)  # half of each body sent; the client writes what it gets
    halves = {url: len(slow_body(url.removeprefix(server.base))) // 2 for url in urls}
    deadline = time.monotonic() + BOUND
    while any(not p.exists() or p.stat().st_size < halves[u] for u, p in parts.items()):
        assert time.monotonic() < deadline, sorted(os.listdir(tmp_path))
        time.sleep(0.01)
    child.process.send_signal(signal.SIGINT)
    status, _ = child.finish()
    assert status == 130, child.stderr
    assert {u: p.stat().st_size for u, p in parts.items()} == halves  # kept, with what had arrived

    # The next run asks for the rest; this server ignores Range (200), so each file starts over, whole.
    server.release()
    done = run_cli("fetch", "--json", "-o", str(tmp_path), "--continue", *urls)
    assert done.returncode == 0, done.stderr
    for url in urls:
        assert (tmp_path / safe_file_name(url)).read_bytes() == slow_body(url.removeprefix(server.base))
        assert not parts[url].exists()
    ranges = [headers.get("Range") for path, headers in server.requests[2:]]
    assert sorted(ranges) == sorted(f"bytes={halves[u]}-" for u in urls)


def test_ctrl_c_with_json_keeps_stdout_json_lines_and_the_summary_on_stderr(server: Server, live) -> None:
    held = 4
    quick = [server.url("/bytes/1000"), server.url("/bytes/2000")]
    child = live("fetch", "--json", "-c", str(held), *quick, *[server.url(f"/slow/{n}") for n in range(10)])
    server.wait_slow(held)  # four requests in flight, each with half its body received
    first = [json.loads(child.next_line()), json.loads(child.next_line())]  # the two quick ones, already reported

    child.process.send_signal(signal.SIGINT)
    status, rest = child.finish()
    assert status == 130, child.stderr
    records = first + [json.loads(line) for line in rest]  # every line of stdout is a JSON object
    assert sorted(r["url"] for r in records) == sorted(quick)  # the requests cut short are not reported
    for record in records:
        assert list(record) == list(JSON_FIELDS)
        assert (record["status"], record["error"]) == (200, None)
    stderr = [line for line in child.stderr if line is not None]  # None: the end of the stream
    assert "Traceback" not in "\n".join(stderr)
    check_summary(stderr, count=2, failed=0, interrupted=True)  # the summary, on stderr
    assert len(stderr) == 1, stderr
    assert server.slow_seen == held  # no new request after Ctrl-C


def test_slow_bodies_complete_once_released(server: Server, tmp_path: Path, live) -> None:
    urls = [server.url(f"/slow/{n}") for n in range(3)]
    child = live("fetch", "-o", str(tmp_path), *urls)
    server.wait_slow(3)
    server.release()
    status, _ = child.finish()
    assert status == 0, child.stderr
    for url in urls:
        target = url.removeprefix(server.base)
        assert (tmp_path / safe_file_name(url)).read_bytes() == slow_body(target)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".partial-")]


# -- no terminal, no bar ---------------------------------------------------------------------------------------------


def test_without_a_terminal_there_is_no_bar_and_no_escape_codes(server: Server) -> None:
    urls = [server.url(f"/bytes/{n}") for n in range(1, 30)] + [server.url("/status/404")]
    done = run_cli("fetch", *urls)
    assert done.returncode == 1
    for stream in (done.stdout, done.stderr):
        assert "\x1b" not in stream and "\r" not in stream
        assert "in flight" not in stream and "req/s" not in stream
    loaded, broke, summary = parse(done.stdout)
    assert len(loaded) + len(broke) == 30
    check_summary(summary, count=30, failed=1)


def test_a_request_that_outlives_the_timeout_is_that_urls_failure(server: Server) -> None:
    held, quick = server.url("/slow/held"), server.url("/bytes/9")
    done = run_cli("fetch", "--timeout", "0.3", held, quick)  # /slow/ sends half its body, then nothing
    assert done.returncode == 1
    loaded, broke, summary = parse(done.stdout)
    assert loaded == {quick: 9}
    assert broke[held][0] == "ReadTimeout", broke
    check_summary(summary, count=2, failed=1)


def test_a_closed_stdout_stops_the_run_quietly(server: Server) -> None:
    urls = [server.url(f"/bytes/{n}") for n in range(1, 301)]
    line, status, stderr = first_line_then_hang_up("fetch", "-c", "4", *urls)  # like `tasklets fetch ... | head -1`
    assert line.startswith(b"Loaded ")
    assert status == 1
    assert "Traceback" not in stderr and "Exception" not in stderr, stderr
    assert len(server.requests) < len(urls)  # it stopped fetching


# -- the environment ---------------------------------------------------------------------------------------------


def test_the_test_children_ignore_a_proxy_in_our_environment(
    server: Server, refused_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a machine with a proxy configured, every child of these tests must still reach 127.0.0.1 directly.
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, refused_url.removesuffix("/nowhere"))
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    done = run_cli("fetch", server.url("/bytes/5"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert parse(done.stdout)[0] == {server.url("/bytes/5"): 5}


# -- output the stream cannot take ----------------------------------------------------------------------------------


def test_a_url_the_output_encoding_lacks_is_escaped_never_a_crash(server: Server) -> None:
    accented, plain = server.url("/caf\u00e9"), server.url("/bytes/3")
    done = run_cli("fetch", accented, plain, env={"PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.isascii()
    assert "caf\\xe9" in done.stdout  # escaped, and its repr reads back as the URL
    loaded, broke, summary = parse(done.stdout)
    assert (set(loaded), broke) == ({accented, plain}, {})
    check_summary(summary, count=2, failed=0)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    ("buffered", "as_json"), [(False, False), (True, False), (True, True)], ids=["unbuffered", "buffered", "json"]
)
def test_a_stdout_that_cannot_be_written_ends_the_run_with_one_line(
    server: Server, buffered: bool, as_json: bool
) -> None:
    env = cli_env()
    if buffered:  # as a user runs it: stdout to a file is block-buffered, the error comes at a flush
        env.pop("PYTHONUNBUFFERED")
    urls = [server.url(f"/bytes/{n}") for n in range(1, 4)]
    with open("/dev/full", "w") as full:  # every write fails with ENOSPC
        done = subprocess.run(
            command("fetch", *(["--json"] if as_json else []), *urls),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=BOUND * 2,
            check=False,
        )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert lines[-1] == "tasklets fetch: writing the results failed: No space left on device"
    if as_json:  # the summary has its own stream, still there
        assert SUMMARY.match(lines[0]) and len(lines) == 2, lines
    else:
        assert len(lines) == 1, lines


@pytest.mark.parametrize("buffered", [False, True], ids=["unbuffered", "buffered"])
def test_results_written_to_a_file_reach_it_while_the_run_goes_on(
    server: Server, tmp_path: Path, buffered: bool
) -> None:
    # A regular file is written a few times a second, not at every line: `tail -f` still follows it,
    # whether Python buffers stdout (as a user runs it) or not (PYTHONUNBUFFERED).
    env = cli_env()
    if buffered:
        env.pop("PYTHONUNBUFFERED")
    results = tmp_path / "results.txt"
    with open(results, "w") as out:
        child = subprocess.Popen(
            command("fetch", server.url("/bytes/1"), server.url("/bytes/2"), server.url("/slow/0")),
            stdout=out,
            stderr=subprocess.PIPE,
            env=env,
        )
    try:
        server.wait_slow(1)
        deadline = time.monotonic() + BOUND
        while results.read_text().count("Loaded ") < 2:  # the held request keeps the run going meanwhile
            assert time.monotonic() < deadline, results.read_text()
            time.sleep(0.02)
        assert child.poll() is None
        server.release()
        assert child.wait(BOUND) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(BOUND)
        assert child.stderr is not None
        child.stderr.close()
    loaded, _, summary = parse(results.read_text())
    assert len(loaded) == 3
    check_summary(summary, count=3, failed=0)
