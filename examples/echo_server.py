"""A line-based TCP echo server and its clients, in one run.

``start_server`` listens on 127.0.0.1 and a free port and runs the handler as
a task per connection; ``open_connection`` connects clients to it. Every read
and write is a future the task yields. Three clients talk to the server at
once, then the server is closed and waits for its connections to finish.

Run it:  python examples/echo_server.py
"""

from __future__ import annotations

import tasklets


def handle(stream: tasklets.Stream):
    """Per-connection handler (a generator function): echo each line, upper-cased."""
    peer = stream.peername
    while True:
        line = yield stream.read_until(b"\n")         # fails with IncompleteReadError at EOF mid-line
        if line.strip() == b"bye":
            yield stream.write(b"BYE\n")
            break
        yield stream.write(line.upper())
    print(f"server: {peer[0]} said bye")
    # returning closes the stream


@tasklets.task
def client(port: int, name: str, lines: list[str]):
    stream = yield tasklets.open_connection("127.0.0.1", port, timeout=5)
    with stream:                                       # closes the stream at the end
        replies = []
        for line in [*lines, "bye"]:
            yield stream.write(f"{line}\n".encode())
            reply = yield stream.read_until(b"\n")
            replies.append(reply.decode().strip())
    print(f"{name}: {replies}")
    return replies


@tasklets.task
def main():
    server = yield tasklets.start_server(handle, "127.0.0.1", 0)
    with server:                                       # stops listening at the end
        print(f"server: listening on 127.0.0.1:{server.port}")
        replies = yield [
            client(server.port, "alice", ["hello", "world"]),
            client(server.port, "bob", ["tasklets"]),
            client(server.port, "carol", ["one", "two", "three"]),
        ]
    yield server.wait_closed()                         # every handler has finished
    print(f"echoed {sum(len(r) - 1 for r in replies)} lines for {len(replies)} clients")


if __name__ == "__main__":
    tasklets.run(main)
