"""Large bodies cost the same from the first request of a fresh process: no page faults per body.

glibc's malloc keeps large blocks in mappings of their own, and returns its
heap's free top to the system, until it has seen a large mapped block freed
(see ``tasklets/http/_body_buffers.py``). Each test reads 1 MiB bodies in a
fresh interpreter (where that has not happened yet) and counts the minor
page faults per body: a body whose memory is faulted in anew costs 256 of
them, a body in memory the process already has, about none. Counts, not
times: they hold on a loaded machine.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest
from _servers import HERE, ExternalServer

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc on Linux"
)

SIZE = 1024 * 1024
COUNT = 40


def _read_in_a_fresh_process(url: str, mode: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "PYTHONMALLOC"))}
    done = subprocess.run(
        [sys.executable, os.path.join(HERE, "_fresh_process_reader.py"), url, mode, str(COUNT)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def server(external_servers: dict[tuple[str, str], ExternalServer]) -> ExternalServer:
    return external_servers["uvicorn-httptools", "http"]


@pytest.mark.parametrize("mode", ["whole", "whole-and-a-copy", "chunks"])
def test_large_bodies_read_in_a_fresh_process_fault_no_memory_in(server: ExternalServer, mode: str) -> None:
    # Without the allocator told: 480 faults per body with a copy, 160 chunk by chunk.
    result = _read_in_a_fresh_process(f"{server.url}/bytes/{SIZE}", mode)
    assert result["size"] == SIZE
    assert result["faults_per_body"] < 32, result
