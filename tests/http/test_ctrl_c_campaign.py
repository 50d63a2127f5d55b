"""Ctrl-C at random moments into a program that fetches, sleeps, works in threads and calls run() over and over.

Issue 12's campaign: every run of the program must end within 5 s, by
KeyboardInterrupt (Python's exit on it: killed by SIGINT), with no
ResourceWarning and no traceback but the KeyboardInterrupt's own. A reduced
count in the normal run; ``-m slow`` or ``TASKLETS_FULL_CAMPAIGN=1`` makes
the issue's 200.
"""

from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from _servers import StdlibServer

import tasklets

SRC = str(pathlib.Path(tasklets.__file__).resolve().parent.parent)
FULL, NORMAL = 200, 20
#: Seconds from the SIGINT to the program's exit.
EXIT_WITHIN = 5.0

PROGRAM = textwrap.dedent(
    """
    import sys, time, warnings
    warnings.simplefilter("always", ResourceWarning)
    import tasklets
    import tasklets.http

    URL = sys.argv[1]
    client = tasklets.http.Client(timeout=10)

    def fetch(n):
        response = yield client.urlopen(f"{URL}/bytes/{n}")
        return len((yield from response.read()))

    def background():
        # Left running when main returns: run() cancels it and waits for its clean-up.
        while True:
            yield from fetch(100)
            yield tasklets.sleep(0.001)

    def worker(i):
        total = 0
        for n in range(3):
            total += yield from fetch(1000 * (i + n))
            yield tasklets.sleep(0.002 * n)
            yield tasklets.to_thread(time.sleep, 0.001)
        return total

    def main(round):
        tasklets.spawn(background)
        if round % 3 == 0:
            return 0  # a short run: Ctrl-C lands in the clean-up or the close more often
        results = yield [tasklets.spawn(worker, i) for i in range(4)]
        return sum(results)

    print("ready", flush=True)
    round = 0
    while True:
        tasklets.run(main, round)
        round += 1
    """
)

_NOT_ALLOWED = ("ResourceWarning", "Exception ignored", "exception in", "never retrieved", "Error in atexit", "Fatal")


def _count(config: pytest.Config) -> int:
    full = "slow" in (config.getoption("markexpr") or "") or os.environ.get("TASKLETS_FULL_CAMPAIGN") == "1"
    return FULL if full else NORMAL


def _interrupt_once(url: str, delay: float) -> tuple[float, int, str]:
    child = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC, "TASKLETS_DEBUG": ""},
    )
    try:
        ready = child.stdout.readline()  # type: ignore[union-attr]
        assert ready == "ready\n", (ready, child.stderr.read() if not ready else "")  # type: ignore[union-attr]
        time.sleep(delay)  # the random moment of the Ctrl-C, not a wait for anything to settle
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        try:
            _, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            _, err = child.communicate()
            raise AssertionError(f"Ctrl-C after {delay:.3f} s was lost: the program ran on. {err[-2000:]}") from None
        return time.monotonic() - sent, child.returncode, err
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


@pytest.mark.timeout(1800)
def test_ctrl_c_at_random_moments(stdlib: StdlibServer, request: pytest.FixtureRequest) -> None:
    rnd = random.Random(200)
    for _ in range(_count(request.config)):
        delay = rnd.uniform(0.0, 0.4)
        took, code, err = _interrupt_once(stdlib.url, delay)
        where = f"Ctrl-C after {delay:.3f} s: exit {code} in {took:.2f} s\n{err[-3000:]}"
        assert code == -signal.SIGINT, where  # how Python exits on an uncaught KeyboardInterrupt
        assert err.rstrip().endswith("KeyboardInterrupt"), where
        assert err.count("Traceback (most recent call last)") <= 1, where
        assert not any(word in err for word in _NOT_ALLOWED), where
        assert took < EXIT_WITHIN, where
