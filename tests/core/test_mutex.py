"""The futures' mutex (``tasklets._mutex``): a lock made of a one-item list."""

from __future__ import annotations

import threading
import time

import pytest

from tasklets._mutex import MutexLock, new_mutex, take


class TestMutex:
    def test_take_holds_it_and_append_gives_it_back(self) -> None:
        mutex = new_mutex()
        assert take(mutex) is True
        assert MutexLock(mutex).locked()
        mutex.append(True)
        assert not MutexLock(mutex).locked()

    def test_take_gives_up_after_its_timeout_while_another_holds_it(self) -> None:
        mutex = new_mutex()
        take(mutex)
        assert take(mutex, timeout=0.01) is False
        assert take(mutex, timeout=0) is False
        assert mutex == []  # still held, by the first take

    def test_take_waits_for_the_holder_on_another_thread(self) -> None:
        mutex = new_mutex()
        take(mutex)
        holding = threading.Event()
        order: list[str] = []

        def other() -> None:
            holding.set()
            take(mutex)
            order.append("other")
            mutex.append(True)

        thread = threading.Thread(target=other)
        thread.start()
        holding.wait(30)
        order.append("first")
        mutex.append(True)
        thread.join(30)
        assert order == ["first", "other"]
        assert mutex == [True]

    def test_it_excludes_other_threads(self, busy_switching: None) -> None:
        mutex = new_mutex()
        count = [0]

        def add(times: int) -> None:
            for i in range(times):
                take(mutex)
                value = count[0]  # a read-modify-write: without the mutex, most updates are lost
                if i % 10 == 0:
                    time.sleep(0)  # let another thread run right here
                count[0] = value + 1
                mutex.append(True)

        threads = [threading.Thread(target=add, args=(2_000,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert count[0] == 8_000
        assert mutex == [True]


class TestMutexLock:
    def test_non_blocking_acquire_says_false_while_held(self) -> None:
        lock = MutexLock(new_mutex())
        assert lock.acquire(blocking=False) is True
        assert lock.acquire(blocking=False) is False
        assert lock.acquire(timeout=0.01) is False
        lock.release()
        assert lock.acquire(False) is True

    def test_releasing_a_free_lock_is_an_error_and_does_not_add_a_second_token(self) -> None:
        mutex = new_mutex()
        with pytest.raises(RuntimeError, match="release unlocked lock"):
            MutexLock(mutex).release()
        assert mutex == [True]

    def test_with_statement(self) -> None:
        mutex = new_mutex()
        with MutexLock(mutex):
            assert mutex == []
        assert mutex == [True]

    def test_a_condition_on_it_waits_and_notifies_both_ways(self) -> None:
        # Each side can only get past its wait_for when the other has released the lock in
        # its own wait and notified: no step depends on timing.
        mutex = new_mutex()
        cond = threading.Condition(MutexLock(mutex))  # type: ignore[arg-type]
        state = {"started": False, "go": False, "woken": False}

        def waiter() -> None:
            with cond:
                state["started"] = True
                cond.notify_all()
                assert cond.wait_for(lambda: state["go"], timeout=60)
                state["woken"] = True

        thread = threading.Thread(target=waiter)
        with cond:
            thread.start()
            assert cond.wait_for(lambda: state["started"], timeout=60)
            state["go"] = True
            cond.notify_all()
        thread.join(60)
        assert state["woken"]
        assert mutex == [True]
