"""Generated and mutated HTTP/1.1 responses for the fuzz tests: seeded, so every case can be made again.

A case is a well-formed response (status, 1xx before it, headers, framing by
Content-Length, chunked or EOF, a body maybe content-coded, chunk extensions
and trailers), then, in most cases, one to three mutations of its bytes:
flipped, inserted, deleted or repeated bytes, a cut, a number off by one, a
framing header added. ``Case.expected`` is known for an unmutated case only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from _encodings import ENCODINGS, encode

__all__ = ["Case", "make_case"]

_STATUSES = [200] * 8 + [201, 203, 206, 299, 204, 304, 404, 500]
_REASONS = [b"OK", b"", b"Fine Thanks", b"caf\xe9", b"A\tB"]
_INTERESTING = [b"\r", b"\n", b"\r\n", b"\x00", b" ", b"\t", b":", b";", b"0", b"f", b"\x1b", b"\x7f", b"\xff", b'"']
_SIZES = [0, 1, 2, 7, 100, 1000, 5000, 20000]
_FIELDS = [
    b"Content-Length: 0",
    b"Content-Length: 5",
    b"Transfer-Encoding: chunked",
    b"Connection: close",
    b"Content-Length: 5, 5",
    b"Content-Encoding: gzip",
    b"X-Folded: a\r\n b",
]


@dataclass
class Case:
    seed: int
    data: bytes
    mutated: bool
    status: int  # of the unmutated response
    encoded: bytes  # its body as sent (content coding kept): what the sans-IO layer yields
    body: bytes  # its body decoded: what the client yields
    trailers: list[tuple[bytes, bytes]]


def _chunked(rng: random.Random, body: bytes, trailers: list[tuple[bytes, bytes]]) -> bytes:
    out = []
    pos = 0
    while pos < len(body):
        size = min(len(body) - pos, rng.choice([1, 3, 10, 100, 999, 4096, 100_000]))
        line = b"%x" % size if rng.random() < 0.8 else b"%X" % size
        if rng.random() < 0.1:
            line = b"000" + line
        if rng.random() < 0.15:
            line += rng.choice([b";a=b", b";x", b' ;q="v; \\"w\\""', b"; n = 1 ;m"])
        out.append(line + b"\r\n" + body[pos : pos + size] + b"\r\n")
        pos += size
    out.append(b"0\r\n" + b"".join(name + b": " + value + b"\r\n" for name, value in trailers) + b"\r\n")
    return b"".join(out)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    kind = rng.randrange(8)
    pos = rng.randrange(len(data) + 1)
    if kind == 0 and data:  # a flipped byte
        pos = min(pos, len(data) - 1)
        return data[:pos] + bytes([rng.randrange(256)]) + data[pos + 1 :]
    if kind == 1:  # an interesting byte or two inserted
        return data[:pos] + rng.choice(_INTERESTING) + data[pos:]
    if kind == 2:  # bytes deleted
        return data[:pos] + data[pos + rng.randint(1, 4) :]
    if kind == 3:  # a stretch repeated
        end = min(len(data), pos + rng.randint(1, 40))
        return data[:end] + data[pos:end] + data[end:]
    if kind == 4:  # cut short
        return data[:pos]
    if kind == 5:  # a number off by one (a status, a Content-Length, a chunk size)
        digits = [i for i, byte in enumerate(data[:4096]) if 48 <= byte <= 57]
        if digits:
            i = rng.choice(digits)
            return data[:i] + bytes([48 + (data[i] - 48 + rng.choice([1, 9])) % 10]) + data[i + 1 :]
        return data
    if kind == 6:  # a framing field added to the head
        head_end = data.find(b"\r\n")
        if head_end >= 0:
            return data[: head_end + 2] + rng.choice(_FIELDS) + b"\r\n" + data[head_end + 2 :]
        return data
    return data + rng.choice([b"HTTP/1.1 200 OK\r\n\r\n", b"\r\n", b"garbage"])  # bytes after the response


def make_case(seed: int) -> Case:
    """The case of ``seed``: the same bytes for the same seed, on every run and machine."""
    rng = random.Random(seed)
    status = rng.choice(_STATUSES)
    version = b"1.1" if rng.random() < 0.9 else b"1.0"
    lines = [b"HTTP/%s %d %s" % (version, status, rng.choice(_REASONS))]
    for i in range(rng.choice([0, 0, 1, 3, 8])):
        value = rng.randbytes(rng.randrange(12)).hex().encode()
        lines.append(b"X-Field-%d:%s%s" % (i, rng.choice([b" ", b"", b"\t"]), value))
    body = rng.randbytes(rng.choice(_SIZES)) if rng.random() < 0.5 else b"text " * (rng.choice(_SIZES) // 5)
    encoding = rng.choice([None, None, *ENCODINGS])
    encoded = encode(encoding, body) if encoding else body
    if encoding:
        lines.append(b"Content-Encoding: " + encoding.encode())
    trailers: list[tuple[bytes, bytes]] = []
    framing = rng.choice(["length", "length", "chunked", "chunked", "close"])
    if status in (204, 304):
        payload = b""
        body = encoded = b""
        if rng.random() < 0.5:
            lines.append(b"Content-Length: %d" % rng.choice([0, 10]))
    elif framing == "length":
        lines.append(b"Content-Length: %d" % len(encoded))
        payload = encoded
    elif framing == "chunked" and version == b"1.1":
        lines.append(b"Transfer-Encoding: chunked")
        if rng.random() < 0.2:
            trailers = [(b"X-Trailer-%d" % i, b"v%d" % i) for i in range(rng.randint(1, 4))]
        payload = _chunked(rng, encoded, trailers)
    else:
        lines.append(b"Connection: close")
        payload = encoded
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    n_info = rng.choice([0] * 8 + [1, 2])
    info = b"".join(b"HTTP/1.1 %d Info\r\nX-Hint: %d\r\n\r\n" % (rng.choice([100, 102, 103]), i) for i in range(n_info))
    data = info + head + payload
    mutated = rng.random() < 0.7
    if mutated:
        for _ in range(rng.choice([1, 1, 2, 3])):
            data = _mutate(rng, data)
    return Case(seed, data, mutated, status, encoded, body, trailers)
