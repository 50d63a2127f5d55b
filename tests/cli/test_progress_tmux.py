"""The progress bar, in a real terminal: ``tasklets fetch`` run inside tmux, its screen read back.

A private tmux server (``tmux -L <name>``, started by the test, so it runs
with this process's environment) gets a 120x30 window running the command
against the test server's slow route. The test polls ``capture-pane`` (a
bounded loop) until the bar shows what it must, releases the server, and
reads the final screen. The tmux server is killed in a ``finally``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from ._cli_support import BOUND, Server, command

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Terminal:
    """One tmux window running a shell command."""

    def __init__(self, name: str) -> None:
        self.name = name

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.name, *args], capture_output=True, text=True, timeout=BOUND, check=False
        )
        return done.stdout

    def start(self, shell_command: str) -> None:
        self.tmux("new-session", "-d", "-x", "120", "-y", "30", "-s", "cli", shell_command)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "cli")

    def wait_for(self, ready: Callable[[str], bool], what: str) -> str:
        """Poll the screen until ``ready(screen)`` (bounded); the screen."""
        deadline = time.monotonic() + BOUND
        while True:
            screen = self.screen()
            if ready(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed {what}:\n{screen}")
            time.sleep(0.05)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal(f"tasklets-cli-test-{os.getpid()}-{time.monotonic_ns()}")
    try:
        yield term
    finally:
        term.tmux("kill-server")


def _shell(*args: str) -> str:
    """A shell command running ``tasklets ARGS...``, then printing its exit status and staying on screen.

    The shell traps (does not ignore) SIGINT, so that a Ctrl-C typed in the
    window reaches tasklets with Python's default handler and the shell lives on.
    COLUMNS and LINES are unset: a shell may export the size the pane had for
    an instant at its start (80x24), and rich would believe it.
    """
    run = shlex.join(["env", "-u", "COLUMNS", "-u", "LINES", *command(*args)])
    return f"trap 'true' INT; {run}; echo EXIT=$?; exec sleep {int(BOUND * 3)}"


BAR = re.compile(
    r"fetch  (?:(\d+)/(\d+) \(\d+%\)  )?done (\d+)  failed (\d+)  in flight (\d+)  [\d.]+ (?:bytes|KiB|MiB|GiB)"
    r"  (\d+) req/s  [\d.]+ \S+/s  \d:\d\d:\d\d(?:  ETA (\d:\d\d:\d\d))?"
)


def _bar(screen: str) -> tuple[int, int, int] | None:
    """The progress line's (done, failed, in flight), if it is on the screen."""
    for line in screen.splitlines():
        if match := BAR.search(line):
            return int(match[3]), int(match[4]), int(match[5])
    return None


def _bar_total(screen: str) -> tuple[int, int, str | None] | None:
    """The progress line's (URLs done, total, ETA), when it shows a total."""
    for line in screen.splitlines():
        if (match := BAR.search(line)) and match[1] is not None:
            return int(match[1]), int(match[2]), match[7]
    return None


def test_the_bar_shows_counts_in_flight_then_gives_way_to_the_summary(server: Server, terminal: Terminal) -> None:
    slow = [server.url(f"/slow/{n}") for n in range(4)]
    quick = [server.url(f"/bytes/{n}") for n in (10, 20, 30)] + [server.url("/status/404")]
    terminal.start(_shell("fetch", "-c", "6", *slow, *quick))

    def settled(screen: str) -> bool:  # the lines print above the bar, and may lag its counts by a refresh
        return _bar(screen) == (3, 1, 4) and screen.count("Loaded ") == 3 and "Something broke for" in screen

    screen = terminal.wait_for(settled, "done 3, failed 1, in flight 4, and their lines")
    assert re.search(r"in flight 4  [\d.]+ \w+  \d+ req/s", screen)
    assert _bar_total(screen) is not None and _bar_total(screen)[:2] == (4, 8)  # type: ignore[index]
    assert screen.index("Something broke for") < screen.index("fetch ")  # the bar is below the lines
    server.wait_slow(4)
    assert _bar(terminal.screen()) == (3, 1, 4)  # the held requests stay in flight

    server.release()
    final = terminal.wait_for(lambda s: "EXIT=" in s, "the end")
    assert "EXIT=1" in final
    assert "in flight" not in final and "req/s" not in final  # the bar is gone (transient)
    assert final.count("Loaded ") == 7 and final.count("Something broke for") == 1
    assert re.search(r"^8 URLs in [\d.]+ s \(\d+ requests/s\): 7 loaded, 1 failed, .+ received$", final, re.M)
    assert re.search(r"^  1 x HTTPError$", final, re.M)


def test_ctrl_c_in_the_terminal_stops_with_a_summary(server: Server, terminal: Terminal) -> None:
    urls = [server.url("/bytes/5")] + [server.url(f"/slow/{n}") for n in range(6)]
    terminal.start(_shell("fetch", "-c", "3", *urls))
    terminal.wait_for(lambda s: _bar(s) == (1, 0, 3), "done 1, in flight 3")
    server.wait_slow(3)

    terminal.tmux("send-keys", "-t", "cli", "C-c")
    final = terminal.wait_for(lambda s: "EXIT=" in s, "the end")
    assert "EXIT=130" in final, final
    assert "Traceback" not in final
    assert "in flight" not in final
    assert re.search(r"^Interrupted: 1 URLs in [\d.]+ s \(\d+ requests/s\): 1 loaded, 0 failed", final, re.M)
    assert server.slow_seen == 3  # no new request after Ctrl-C


def test_with_stdout_in_a_file_the_progress_shows_on_stderr(server: Server, terminal: Terminal, tmp_path) -> None:
    results = tmp_path / "results.jsonl"
    url_file = tmp_path / "urls.txt"
    slow = [server.url(f"/slow/{n}") for n in range(3)]
    quick = [server.url(f"/bytes/{n}") for n in range(1, 6)]
    url_file.write_text("# a comment, not a URL\n\n" + "\n".join(quick + slow) + "\n")
    run = shlex.join(["env", "-u", "COLUMNS", "-u", "LINES", *command("fetch", "--json", "-i", str(url_file))])
    terminal.start(f"{run} > {shlex.quote(str(results))}; echo EXIT=$?; exec sleep {int(BOUND * 3)}")

    # The total comes from counting the file (comments and blank lines are not URLs); 5 of 8 done, 3 held.
    screen = terminal.wait_for(lambda s: _bar(s) == (5, 0, 3) and _bar_total(s) is not None, "5 done of 8")
    done, total, eta = _bar_total(screen)  # type: ignore[misc]
    assert (done, total) == (5, 8)
    assert eta is not None  # a rate and a total: an estimate
    server.wait_slow(3)
    assert "{" not in screen  # the JSON lines went to the file, not to the terminal

    server.release()
    final = terminal.wait_for(lambda s: "EXIT=" in s, "the end")
    assert "EXIT=0" in final
    assert "in flight" not in final  # the progress line is erased at the end
    assert re.search(r"^8 URLs in [\d.]+ s \(\d+ requests/s\): 8 loaded, 0 failed", final, re.M)  # on stderr
    text = results.read_text()
    assert "\x1b" not in text and "\r" not in text and "in flight" not in text
    assert len([json.loads(line) for line in text.splitlines()]) == 8


def test_no_progress_on_a_terminal_draws_nothing(server: Server, terminal: Terminal) -> None:
    slow = [server.url(f"/slow/{n}") for n in range(2)]
    terminal.start(_shell("fetch", "--no-progress", server.url("/bytes/5"), *slow))
    terminal.wait_for(lambda s: "Loaded 5 bytes" in s, "the quick page's line")
    server.wait_slow(2)  # two requests held: a progress line would be drawn now, ten times a second
    screen = terminal.screen()
    assert "in flight" not in screen and "req/s" not in screen
    server.release()
    final = terminal.wait_for(lambda s: "EXIT=" in s, "the end")
    assert "EXIT=0" in final and "in flight" not in final


def test_progress_forced_without_a_terminal_goes_to_stderr_only(server: Server, tmp_path) -> None:
    import subprocess

    from ._cli_support import cli_env

    err = tmp_path / "stderr"
    with open(err, "w") as stderr:
        child = subprocess.Popen(
            command("fetch", "--progress", server.url("/bytes/5"), server.url("/slow/0")),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=cli_env(),
        )
        try:
            server.wait_slow(1)
            deadline = time.monotonic() + BOUND
            while "in flight 1" not in err.read_text():  # drawn ten times a second while the request is held
                assert time.monotonic() < deadline, err.read_text()
                time.sleep(0.02)
            server.release()
            stdout, _ = child.communicate(timeout=BOUND)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert child.returncode == 0
    assert "\x1b" not in stdout and "in flight" not in stdout  # stdout: the lines and the summary only
    assert stdout.count("Loaded ") == 2
    assert b"\r\x1b[K" in err.read_bytes()  # drawn and erased in place
