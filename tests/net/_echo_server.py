"""An echo server in its own process, for the load tests.

Prints its port, serves until its standard input closes, then prints
``closed <open descriptors>`` once every handler has finished.
"""

from __future__ import annotations

import os
import resource
import sys
from typing import Any

import tasklets


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def handler(stream: tasklets.Stream) -> Any:
    while True:
        data = yield stream.read(65536)
        if not data:
            return
        yield stream.write(data)


def main() -> Any:
    server = yield tasklets.start_server(handler, "127.0.0.1", 0, backlog=4096)
    print(server.port, flush=True)
    yield tasklets.to_thread(sys.stdin.read)
    server.close()
    yield server.wait_closed()
    print("closed", len(os.listdir("/proc/self/fd")), flush=True)


if __name__ == "__main__":
    raise_fd_limit()
    tasklets.run(main)
