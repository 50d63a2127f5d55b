"""The processes of ``bench/net_echo.py``: servers and clients started, read and always stopped.

Every child is registered in a :class:`Children` as it starts, and the
registry stops all of them on the way out, whatever the way out is (errors,
SIGTERM and Ctrl-C included). A child is stopped politely first, by closing
its standard input (the servers exit on end of file, so they also die with
this process however it dies), then terminated, then killed, and always
reaped. A child's stderr goes to a file, read back when it fails: a pipe
nobody reads would fill and block it.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _echo_config import BASELINE, FLOOR, TASK_FLOOR, Config

HERE = Path(__file__).resolve().parent
SERVER_SCRIPT = HERE / "_echo_servers.py"
CLIENT_SCRIPT = HERE / "_echo_client.py"
C_SOURCE = HERE / "_echo_c.c"
TASK_FLOOR_SCRIPT = HERE / "_echo_task_floor.py"
#: How long a server may take to print its port.
START_TIMEOUT = 15.0
#: How long a stopping child may take before it is terminated, then killed.
STOP_TIMEOUT = 5.0


def log(message: str) -> None:
    """Progress goes to standard error; the tables go to standard output."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class Launch:
    """How the children are started: set once by ``net_echo.main`` from its options, read at every start."""

    #: The compiled C client, when there is one; TLS always uses the uvloop client.
    c_client: str | None = None
    #: The environment of the children (``--tasklets-path`` puts another copy of tasklets first).
    child_env: dict[str, str] | None = None
    #: The environment of the baseline server (``--baseline DIR`` first on its path).
    baseline_env: dict[str, str] | None = None
    #: The loop the tasklets servers run on (``--tasklets-loop``): run()'s default, or a plain Loop.
    tasklets_loop: str = "default"


LAUNCH = Launch()


@dataclass
class Child:
    """A child process that we read lines from and stop by closing its stdin."""

    proc: subprocess.Popen[bytes]
    log_path: str | None = None
    buffer: bytes = b""

    def log_tail(self, size: int = 2000) -> str:
        """The end of what the child wrote on stderr."""
        if self.log_path is None:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-size:].decode(errors="replace")
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read_line(self, timeout: float) -> str:
        """The next line of the child's stdout; raises if none comes in ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"child {self.pid} printed no line within {timeout} s")
            readable, _, _ = select.select([fd], [], [], left)
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    time.sleep(0.2)  # let it finish its last words
                    rc = self.proc.poll()
                    raise RuntimeError(f"child {self.pid} exited (rc={rc}) before a line:\n{self.log_tail()}")
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    def stop(self) -> None:
        """Close stdin (the polite stop), then terminate, then kill; always reaps."""
        proc = self.proc
        try:
            if proc.stdin is not None and not proc.stdin.closed:
                proc.stdin.close()
        except OSError:
            pass
        for action in (None, proc.terminate, proc.kill):
            if action is not None and proc.poll() is None:
                action()
            try:
                proc.wait(STOP_TIMEOUT)
                break
            except subprocess.TimeoutExpired:
                continue
        if proc.stdout is not None:
            proc.stdout.close()


@dataclass
class Children:
    """Every child started, so that all of them are stopped whatever happens."""

    log_dir: str
    live: list[Child] = field(default_factory=list)
    started: int = 0

    def start(self, args: list[str], env: dict[str, str] | None = None) -> Child:
        """Start one of our Python scripts (in ``env``, or ``LAUNCH.child_env``)."""
        return self.start_command([sys.executable, *args], env)

    def start_command(self, command: list[str], env: dict[str, str] | None = None) -> Child:
        """Start a child; its stderr goes to a file (a pipe nobody reads would fill and block it)."""
        self.started += 1
        log_path = os.path.join(self.log_dir, f"child-{self.started}.log")
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, env=env or LAUNCH.child_env
            )
        child = Child(proc, log_path)
        self.live.append(child)
        return child

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self.live:
            self.live.remove(child)

    def stop_all(self) -> None:
        while self.live:
            self.stop(self.live[-1])


@contextmanager
def children(log_dir: str) -> Iterator[Children]:
    """A registry of children (their stderr logged under ``log_dir``), all stopped on the way out."""
    registry = Children(log_dir)
    try:
        yield registry
    finally:
        registry.stop_all()


@dataclass
class Server:
    """A running echo server."""

    kind: str
    child: Child
    port: int


def start_server(kids: Children, kind: str, certs: dict[str, str] | None = None, profile: str | None = None) -> Server:
    """Start one server process and wait for its port."""
    if kind == FLOOR:
        assert LAUNCH.c_client is not None and certs is None and profile is None
        child = kids.start_command([LAUNCH.c_client, "serve"])
    elif kind == TASK_FLOOR:
        assert certs is None and profile is None
        child = kids.start([str(TASK_FLOOR_SCRIPT)])
    else:
        args = [str(SERVER_SCRIPT), "tasklets" if kind == BASELINE else kind]
        if kind in ("tasklets", BASELINE) and LAUNCH.tasklets_loop != "default":
            args += ["--loop", LAUNCH.tasklets_loop]
        if certs is not None:
            args += ["--cert", certs["cert"], "--key", certs["key"]]
        if profile is not None:
            args += ["--profile", profile]
        child = kids.start(args, LAUNCH.baseline_env if kind == BASELINE else None)
    line = child.read_line(START_TIMEOUT)
    if not line.startswith("PORT "):
        kids.stop(child)
        raise RuntimeError(f"{kind} server said {line!r} instead of its port")
    return Server(kind, child, int(line.split()[1]))


def build_c_client(directory: str) -> str | None:
    """Compile ``_echo_c.c`` (load client and floor server) into ``directory``; None without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return None
    binary = os.path.join(directory, "echo_c")
    done = subprocess.run([compiler, "-O2", "-o", binary, str(C_SOURCE)], capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        log(f"C client did not compile, using the uvloop client:\n{done.stderr.decode(errors='replace')[-1000:]}")
        return None
    return binary


def run_pingpong(server: Server, size: int, conns: int, cfg: Config, ca: str | None = None) -> dict[str, Any]:
    """One client run against ``server``; the client's JSON result ('errors' non-empty on failure)."""
    deadline = cfg.warmup + cfg.duration + 30.0
    if LAUNCH.c_client is not None and ca is None:
        cmd = [LAUNCH.c_client, str(server.port), str(size), str(conns), str(cfg.warmup), str(cfg.duration),
               str(server.child.pid), str(deadline)]  # fmt: skip
    else:
        cmd = [
            sys.executable, str(CLIENT_SCRIPT), "pingpong",
            "--port", str(server.port), "--size", str(size), "--conns", str(conns),
            "--duration", str(cfg.duration), "--warmup", str(cfg.warmup),
            "--server-pid", str(server.child.pid), "--deadline", str(deadline),
        ]  # fmt: skip
    if ca is not None:
        cmd += ["--ca", ca]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=deadline + 10, check=False)
    except subprocess.TimeoutExpired:
        return {"errors": ["client process timed out"]}
    try:
        outcome: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
        return outcome
    except (ValueError, IndexError):
        return {"errors": [f"client rc={done.returncode}: {done.stderr.decode(errors='replace')[-500:]}"]}


def make_certs(directory: str) -> dict[str, str]:
    """A trustme CA and a certificate for localhost/127.0.0.1, written as PEM files."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    paths = {"ca": os.path.join(directory, "ca.pem"), "cert": os.path.join(directory, "cert.pem"),
             "key": os.path.join(directory, "key.pem")}  # fmt: skip
    ca.cert_pem.write_to_path(paths["ca"])
    cert.private_key_pem.write_to_path(paths["key"])
    with open(paths["cert"], "wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    return paths
