"""No control character a server sends reaches the terminal: status reasons, headers, redirect URLs, errors.

A scripted server (the only way to send what no real server would) answers
each path with hostile bytes: escape sequences that clear the screen, set the
window title, or (C1 controls, bidirectional overrides) do the same on some
terminals or reorder what is shown. ``tasklets fetch`` runs against it in
every output mode, and every byte it writes is checked: whatever the HTTP
backend let through (the library may refuse such heads, or carry them into
an exception's text), the CLI writes escapes, never the characters. JSON
lines must still carry the text (escaped by JSON), so scripts lose nothing.
A tmux test then shows the same on a real terminal: the screen is not
cleared and the title is not set.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from ._cli_support import BOUND, cli_env, command, run_cli

ESCAPES = "\x1b[2J\x1b[31mPWNED\x1b]0;title\x07"
C1_AND_BIDI = "\x9b2J\u202eDEWNP\u2066"


class HostileServer:
    """Answers each request by its path with a response from :attr:`RESPONSES`; closes after each."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self._socket.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="cli-hostile-server", daemon=True)
        self._thread.start()

    def responses(self) -> dict[str, bytes]:
        escapes = ESCAPES.encode("latin-1")
        c1 = C1_AND_BIDI.encode("utf-8")
        return {
            "/reason": b"HTTP/1.1 500 " + escapes + b"\r\nContent-Length: 0\r\n\r\n",
            "/reason-c1": b"HTTP/1.1 503 "
            + C1_AND_BIDI.encode("latin-1", "replace")
            + b"\r\nContent-Length: 0\r\n\r\n",
            "/redirect": b"HTTP/1.1 302 Found\r\nLocation: /x" + escapes + b"\r\nContent-Length: 0\r\n\r\n",
            "/redirect-scheme": b"HTTP/1.1 302 Found\r\nLocation: " + escapes + b"://x\r\nContent-Length: 0\r\n\r\n",
            "/encoding": b"HTTP/1.1 200 OK\r\nContent-Encoding: " + escapes + b"\r\nContent-Length: 2\r\n\r\nhi",
            "/content-type": b"HTTP/1.1 200 OK\r\nContent-Type: " + escapes + b"\r\nContent-Length: 2\r\n\r\nhi",
            "/utf8-reason": b"HTTP/1.1 404 " + c1 + b"\r\nContent-Length: 0\r\n\r\n",
            "/garbage": escapes + b"\r\n\r\n",
        }

    def _serve(self) -> None:
        responses = self.responses()
        while True:
            connection, _ = self._socket.accept()
            if self._stopping:
                connection.close()
                return
            with connection:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = connection.recv(65536)
                    if not data:
                        break
                    head += data
                path = head.split(b" ", 2)[1].decode("latin-1") if head.count(b" ") >= 2 else ""
                connection.sendall(responses.get(path.split("?")[0], b"HTTP/1.1 404 Not Found\r\n\r\n"))

    def close(self) -> None:
        self._stopping = True
        with socket.create_connection(("127.0.0.1", self.port), timeout=BOUND):
            pass
        self._thread.join(BOUND)
        self._socket.close()


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    try:
        yield server
    finally:
        server.close()


_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def _unsafe(text: str) -> list[str]:
    """The control characters in ``text`` other than newline (C0, DEL, C1, bidirectional controls)."""
    return [
        c
        for c in text
        if c != "\n"
        and (
            ord(c) < 0x20
            or 0x7F <= ord(c) <= 0x9F
            or c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
        )
    ]


_RUN = "runpy.run_module('tasklets', run_name='__main__', alter_sys=True)"
#: ``python -m tasklets`` with httptools hidden: the client's "auto" backend is then h11.
_WITHOUT_HTTPTOOLS = "import runpy, sys; sys.modules['httptools'] = None; " + _RUN

PATHS = [
    "/reason",
    "/reason-c1",
    "/redirect",
    "/redirect-scheme",
    "/encoding",
    "/content-type",
    "/utf8-reason",
    "/garbage",
]


@pytest.mark.parametrize(
    "mode", [[], ["-q"], ["--retries", "1", "--retry-backoff", "0"]], ids=["lines", "quiet", "retries"]
)
@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_no_control_character_reaches_the_output(hostile: HostileServer, mode: list[str], parser: str) -> None:
    urls = [hostile.base + path for path in PATHS] + [hostile.base + "/" + ESCAPES, "http://" + ESCAPES + "/"]
    launcher = _WITHOUT_HTTPTOOLS if parser == "h11" else "import runpy; " + _RUN
    done = subprocess.run(
        [sys.executable, "-c", launcher, "fetch", *mode, *urls],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        env=cli_env(),
        timeout=BOUND * 2,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert _unsafe(done.stdout) == [] and _unsafe(done.stderr) == [], done.stdout + done.stderr
    assert "\\x1b[2J" in done.stdout  # the escapes are shown, not dropped: the user sees what the server sent


def test_json_carries_the_text_escaped(hostile: HostileServer) -> None:
    urls = [hostile.base + path for path in PATHS]
    done = run_cli("fetch", "--json", *urls)
    assert _unsafe(done.stdout) == [] and _unsafe(done.stderr) == []
    records = {r["url"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert set(records) == set(urls)
    # The Content-Type is carried whole (JSON escapes it); the reason too, when the backend let it through.
    content_type = records[hostile.base + "/content-type"]["content_type"]
    assert content_type is None or content_type == ESCAPES


def test_on_a_real_terminal_the_screen_is_not_cleared_nor_the_title_set(hostile: HostileServer) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    name = f"tasklets-hostile-{os.getpid()}-{time.monotonic_ns()}"

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-L", name, *args], capture_output=True, text=True, timeout=BOUND).stdout

    urls = [hostile.base + path for path in PATHS]
    run = shlex.join(["env", "-u", "COLUMNS", "-u", "LINES", *command("fetch", *urls)])
    shell = f"echo BEFORE-THE-FETCH; {run}; echo EXIT=$?; exec sleep {int(BOUND * 3)}"
    try:
        tmux("new-session", "-d", "-x", "200", "-y", "50", "-s", "cli", shell)
        deadline = time.monotonic() + BOUND
        while "EXIT=" not in (screen := tmux("capture-pane", "-p", "-t", "cli")):
            assert time.monotonic() < deadline, screen
            time.sleep(0.05)
        assert "EXIT=1" in screen
        assert "BEFORE-THE-FETCH" in screen  # ESC [2J would have cleared it
        assert "\\x1b[2J" in screen
        assert "title" not in tmux("display-message", "-p", "-t", "cli", "#{pane_title}")
    finally:
        tmux("kill-server")


def test_a_status_reason_with_escapes_is_escaped_in_the_line(hostile: HostileServer) -> None:
    done = run_cli("fetch", hostile.base + "/utf8-reason", hostile.base + "/reason")
    assert _unsafe(done.stdout) == []
    for line in done.stdout.splitlines()[:2]:
        assert line.startswith("Something broke for ")
