"""uvicorn and hypercorn in subprocesses, serving ``_cli_asgi_app`` (or httpbin), for the ``tasklets fetch`` tests.

Each server listens on 127.0.0.1 and a free port, optionally with TLS
(``trustme`` certificates). The tests read the server's own record of what
it was asked (``/log``) through urllib with no proxy, and control it with
``/release``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

from ._cli_support import BOUND

HERE = os.path.dirname(os.path.abspath(__file__))

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(log: str) -> str:
    with open(log, "rb") as f:
        return f.read().decode(errors="replace")[-2000:]


def wait_listening(process: subprocess.Popen[bytes], port: int, name: str, log: str) -> None:
    """Poll connect until ``process`` listens on ``port`` (bounded); its log in the error if it never does."""
    deadline = time.monotonic() + BOUND
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {_tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not listen in {BOUND} s: {_tail(log)}")
        try:
            process.wait(0.05)  # the poll interval; returns at once if the process died
        except subprocess.TimeoutExpired:
            pass


class RealServer:
    """``kind`` (``"uvicorn"`` or ``"hypercorn"``) serving the test app; TLS with ``certfile`` and ``keyfile``.

    ``"httpbin"`` is httpbin's own (Flask) application under uvicorn's WSGI interface, on plain HTTP; it has
    none of the test app's controls (``/log``, ``/release``).
    """

    def __init__(self, kind: str, log: str, *, certfile: str | None = None, keyfile: str | None = None) -> None:
        self.kind = kind
        self.port = free_port()
        self.scheme = "https" if certfile else "http"
        if kind == "httpbin":
            command = [
                *("-m", "uvicorn", "httpbin:app", "--interface", "wsgi", "--host", "127.0.0.1", "--port"),
                *(str(self.port), "--log-level", "warning", "--no-access-log", "--lifespan", "off"),
            ]
        elif kind == "uvicorn":
            command = [
                *("-m", "uvicorn", "_cli_asgi_app:app", "--host", "127.0.0.1", "--port", str(self.port)),
                *("--log-level", "warning", "--no-access-log", "--lifespan", "off"),
            ]
            if certfile:
                command += ["--ssl-certfile", certfile, "--ssl-keyfile", str(keyfile)]
        else:
            command = ["-m", "hypercorn", "_cli_asgi_app:app", "--bind", f"127.0.0.1:{self.port}"]
            if certfile:
                command += ["--certfile", certfile, "--keyfile", str(keyfile)]
        self.log = log
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        with open(log, "wb") as out:
            self.process = subprocess.Popen([sys.executable, *command], cwd=HERE, stdout=out, stderr=out, env=env)
        wait_listening(self.process, self.port, kind, log)

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def output(self) -> str:
        return _tail(self.log)

    def _get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        with _NO_PROXY.open(url, timeout=BOUND) as response:
            return json.loads(response.read()) if path == "/log" else response.read()

    def requests(self) -> list[tuple[str, float, str | None, str]]:
        """What the server was asked so far: (path, its monotonic time, its Range header, its Host header)."""
        return [tuple(r) for r in self._get("/log")["requests"]]  # type: ignore[misc]

    def paths(self) -> list[str]:
        return [request[0] for request in self.requests()]

    def held(self) -> tuple[int, int]:
        """``/hold`` requests held now, and the most at once."""
        log = self._get("/log")
        return log["held_now"], log["held_peak"]

    def wait_held(self, count: int) -> None:
        deadline = time.monotonic() + BOUND
        while self.held()[0] < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.kind} holds {self.held()[0]} requests, not {count}, after {BOUND} s")
            time.sleep(0.02)  # polls the server (another process): no event to wait on

    def release(self) -> None:
        self._get("/release")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(BOUND)
