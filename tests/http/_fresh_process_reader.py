"""Run by ``test_large_bodies.py`` in a fresh interpreter: read large bodies, print page faults per body.

Usage: ``python _fresh_process_reader.py URL MODE COUNT``. MODE is ``whole``
(``yield from response.read()``), ``whole-and-a-copy`` (the same, and a
second large object made while the body is alive, as decoding it would) or
``chunks`` (``for wait in response.read()``). Prints one JSON line: the
minor page faults and the bytes per body over the last three quarters of
the COUNT requests (the first quarter opens the connection).
"""

from __future__ import annotations

import json
import resource
import sys
from collections.abc import Generator
from typing import Any

import tasklets
from tasklets.http import Client


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main(url: str, mode: str, count: int) -> Generator[Any, Any, dict[str, float]]:
    with Client(proxies=None) as client:
        start = count // 4
        faults = 0
        size = 0
        for number in range(count):
            if number == start:
                faults = _faults()
            response = yield client.urlopen(url)
            if mode == "chunks":
                size = 0
                for wait in response.read():
                    size += len((yield wait))
            else:
                body = yield from response.read()
                size = len(body)
                if mode == "whole-and-a-copy":
                    copy = body[1:]
                    del copy
                del body
        return {"faults_per_body": (_faults() - faults) / (count - start), "size": size}


if __name__ == "__main__":
    print(json.dumps(tasklets.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))))
