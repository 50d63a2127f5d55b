"""Testing timeouts with ``tasklets.testing.VirtualClock``: a 30 s timeout in milliseconds.

The code under test, ``watch``, waits for heartbeats on a queue and gives up
after ``timeout`` seconds of silence. Its tests run the loop with a virtual
clock: when every task is blocked, the clock jumps straight to the next timer
instead of sleeping, so minutes of virtual time pass in no real time, and
the outcome does not depend on how busy the machine is.

The ``test_*`` functions are ordinary pytest tests; this script also runs
them itself.

Run it:  python examples/virtual_clock.py   (or: python -m pytest examples/virtual_clock.py)
"""

from __future__ import annotations

import time

import tasklets
from tasklets.testing import VirtualClock

# -- the code under test ---------------------------------------------------------------------------


def watch(heartbeats: tasklets.Queue, timeout: float = 30.0):
    """Count heartbeats until ``None`` arrives; raise TimeoutError after ``timeout`` s of silence."""
    count = 0
    while True:
        beat = yield tasklets.with_timeout(heartbeats.get(), timeout)
        if beat is None:
            return count
        count += 1


def beat(heartbeats: tasklets.Queue, interval: float, times: int):
    """Put ``times`` heartbeats, ``interval`` seconds apart, then ``None``."""
    for i in range(times):
        yield tasklets.sleep(interval)
        yield heartbeats.put(i)
    yield heartbeats.put(None)


# -- its tests -------------------------------------------------------------------------------------


def test_heartbeats_every_20_seconds_keep_it_alive():
    def scenario():
        heartbeats = tasklets.Queue()
        tasklets.spawn(beat, heartbeats, 20.0, 10)  # 200 virtual seconds
        return (yield tasklets.spawn(watch, heartbeats))

    clock = VirtualClock()
    assert tasklets.run(scenario, clock=clock) == 10
    assert clock.time() == 200.0  # exactly: virtual time is deterministic


def test_silence_times_out_after_30_seconds():
    def scenario():
        heartbeats = tasklets.Queue()
        tasklets.spawn(beat, heartbeats, 45.0, 1)  # too late
        started = tasklets.current_loop().time()
        try:
            yield tasklets.spawn(watch, heartbeats)
        except TimeoutError:
            return tasklets.current_loop().time() - started
        raise AssertionError("watch() should have timed out")

    assert tasklets.run(scenario, clock=VirtualClock()) == 30.0


def main() -> None:
    for test in (test_heartbeats_every_20_seconds_keep_it_alive, test_silence_times_out_after_30_seconds):
        started = time.perf_counter()
        test()
        print(f"{test.__name__}: passed in {time.perf_counter() - started:.3f} s of real time")


if __name__ == "__main__":
    main()
