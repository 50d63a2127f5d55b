"""The seed's wait_first/as_completed example, adapted to run without a network.

The 2012 sketch loaded URLs in parallel and handled each page the moment it
arrived. Here each "page" is a task that takes a different time to load (a
timer standing in for the network), so the output shows pages handled in the
order they finish, not the order requested. One page fails, as pages do.

Run it:  python examples/seed_as_completed.py
"""

from __future__ import annotations

import time

import tasklets
from tasklets import as_completed, task, wait_first

#: url -> (seconds to load, size in bytes); a size of None fails the load.
PAGES = {
    "http://example.test/slow": (0.30, 51_200),
    "http://example.test/fast": (0.05, 1_024),
    "http://example.test/missing": (0.10, None),
    "http://example.test/medium": (0.15, 8_192),
}


@task
def load_url_async(url: str):
    """Pretend to load ``url``: wait as long as the page takes, then return its bytes."""
    seconds, size = PAGES[url]
    yield tasklets.sleep(seconds)
    if size is None:
        raise LookupError(f"404 Not Found: {url}")
    return b"x" * size


@task
def example(urls: list[str]):
    """The seed's example: handle each page as it arrives."""
    future_to_url = {load_url_async(url): url for url in urls}
    first = wait_first(future_to_url)
    try:
        yield first
    except Exception:
        pass  # the first page to finish may be a failure; as_completed reports it below
    print(f"First to finish: {future_to_url[first.completed]!r}")
    for wait_for_page in as_completed(future_to_url):
        try:
            data = yield wait_for_page
        except Exception as exc:
            url = future_to_url[wait_for_page.completed]
            print(f"Something broke for {url!r} ({type(exc).__name__}: {exc})")
        else:
            url = future_to_url[wait_for_page.completed]
            print(f"Loaded {len(data)} bytes from {url!r}")


def main() -> None:
    started = time.perf_counter()
    tasklets.run(example, list(PAGES))
    print(f"All pages handled in {time.perf_counter() - started:.2f} s "
          f"(one at a time would take {sum(s for s, _ in PAGES.values()):.2f} s)")


if __name__ == "__main__":
    main()
