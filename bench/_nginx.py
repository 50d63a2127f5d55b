"""A private nginx for the HTTP benchmarks: started in a temp dir, stopped on every way out.

:func:`nginx_server` is a context manager. It creates a temporary
directory holding a generated ``nginx.conf``, the files to serve, the pid
file, the error log and nginx's temp paths; starts ``nginx`` in the
foreground (``daemon off; master_process off``: one process, which is also
the one that serves) on ``127.0.0.1`` and a free port; waits until it
accepts connections; and on exit (normal, exception or Ctrl-C) stops it
(SIGQUIT, then SIGTERM, then SIGKILL) and removes the directory. The child
is also asked to die with its parent (``PR_SET_PDEATHSIG``), so even a
``kill -9`` of the benchmark leaves no nginx behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Nginx",
    "NginxUnavailable",
    "die_with_parent",
    "find_nginx",
    "nginx_server",
    "nginx_version",
    "pattern_bytes",
]

#: How long nginx may take to accept connections.
START_TIMEOUT = 10.0
#: How long a stopping nginx gets per signal before the next, harsher one.
STOP_TIMEOUT = 3.0
#: Attempts at finding a free port (another process may take the one we picked).
PORT_ATTEMPTS = 5

_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 100000;
    open_file_cache max=64;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {tmp}/www;
        gzip off;
    }}
}}
"""


class NginxUnavailable(RuntimeError):
    """nginx is not installed, or it would not start."""


@dataclass
class Nginx:
    """A running nginx: where it listens and what it serves."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path
    files: dict[str, bytes]
    version: str

    def url(self, name: str) -> str:
        """The loopback URL of one served file."""
        return f"http://127.0.0.1:{self.port}/{name}"

    def cpu_seconds(self) -> float:
        """CPU time nginx has used so far, from ``/proc``.

        ``schedstat`` counts nanoseconds on the CPU; ``stat``, the fallback,
        counts 10 ms ticks, too coarse for a sample of a second or less
        (it showed nginx at 140 us per 1 MiB request, against 92 us measured
        in nanoseconds).
        """
        try:
            with open(f"/proc/{self.process.pid}/schedstat") as schedstat:
                return int(schedstat.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            pass
        try:
            with open(f"/proc/{self.process.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return ticks / os.sysconf("SC_CLK_TCK")

    def error_log(self) -> str:
        """The tail of nginx's error log (for error messages)."""
        return _read_tail(self.directory / "error.log")


def find_nginx() -> str:
    """The path of the nginx binary, or :class:`NginxUnavailable`."""
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx", "/usr/local/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise NginxUnavailable("nginx not found: apt-get install -y nginx-light")


def nginx_version(binary: str) -> str:
    """``1.22.1``, say (``nginx -v`` prints ``nginx version: nginx/1.22.1`` on stderr)."""
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10, check=False)
    return (done.stderr or done.stdout).strip().rsplit("/", 1)[-1]


def pattern_bytes(size: int, seed: int = 0) -> bytes:
    """``size`` bytes of a non-repeating-looking pattern (so a wrong slice is caught).

    A size that is a multiple of 4096 is made in one piece, with no larger
    temporary freed: in a benchmark's fresh child, freeing a large block
    would change how glibc's malloc serves the large blocks that follow
    (``tasklets/http/_body_buffers.py`` says how), and the client measured
    would meet a process unlike a user's.
    """
    block = bytes((i * 131 + seed * 17 + (i >> 8) * 7) & 0xFF for i in range(4096))
    whole, rest = divmod(size, len(block))
    return block * whole if not rest else (block * (whole + 1))[:size]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """``preexec_fn`` for a child that must not outlive us: SIGTERM when the parent dies (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_accepting(process: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.02)
    return False


def _read_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


def _stop(process: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def nginx_server(files: Mapping[str, bytes]) -> Iterator[Nginx]:
    """Run nginx serving ``files`` (name -> content) on 127.0.0.1; stop it on exit.

    Raises:
        NginxUnavailable: no nginx binary, or it did not start (the error log is in the message).
    """
    binary = find_nginx()
    directory = Path(tempfile.mkdtemp(prefix="tasklets-bench-nginx-"))
    process: subprocess.Popen[bytes] | None = None
    stack = contextlib.ExitStack()
    try:
        www = directory / "www"
        www.mkdir()
        for name, content in files.items():
            (www / name).write_bytes(content)
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (directory / sub).mkdir()
        last_error = ""
        stderr_file = stack.enter_context(open(directory / "stderr.log", "ab"))
        for _ in range(PORT_ATTEMPTS):
            port = _free_port()
            conf = directory / "nginx.conf"
            conf.write_text(_CONF.format(tmp=directory, port=port))
            process = subprocess.Popen(
                [binary, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr_file,
                preexec_fn=die_with_parent,  # only prctl between fork and exec: no locks taken
            )
            if _wait_accepting(process, port, START_TIMEOUT):
                break
            _stop(process)
            last_error = _read_tail(directory / "stderr.log") + _read_tail(directory / "error.log")
            process = None
        if process is None:
            raise NginxUnavailable(f"nginx did not start:\n{last_error[-2000:]}")
        yield Nginx(process, port, directory, dict(files), nginx_version(binary))
    finally:
        if process is not None:
            _stop(process)
        stack.close()
        shutil.rmtree(directory, ignore_errors=True)
