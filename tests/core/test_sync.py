"""Event, Lock, Semaphore and Queue: waits are futures, waiters are served fairly."""

from __future__ import annotations

import queue
import threading

import pytest

import tasklets
from tasklets import Cancelled, Event, Future, Lock, Queue, QueueEmpty, QueueFull, Semaphore


class TestEvent:
    """Event.wait() is a future that resolves once the flag is set."""

    def test_set_wakes_every_waiter(self, vrun) -> None:
        event = Event()
        woken: list[tuple[str, float]] = []

        def waiter(name):
            assert (yield event.wait()) is True
            woken.append((name, tasklets.current_loop().time()))

        def main():
            tasks = [tasklets.spawn(waiter, n) for n in "abc"]
            yield tasklets.sleep(3)
            assert not event.is_set() and woken == []
            event.set()
            yield tasks

        vrun(main)
        assert woken == [("a", 3), ("b", 3), ("c", 3)]
        assert event.is_set()

    def test_wait_on_a_set_event_is_done_at_once_and_clear_resets(self) -> None:
        event = Event()
        event.set()
        assert event.wait().done()
        event.clear()
        assert not event.is_set() and not event.wait().done()
        assert "unset" in repr(event)

    def test_a_cancelled_waiter_does_not_disturb_the_others(self) -> None:
        event = Event()
        first, second = event.wait(), event.wait()
        first.cancel()
        event.set()
        assert first.cancelled() and second.result(timeout=0) is True

    def test_set_from_another_thread_wakes_a_task(self, vrun) -> None:
        event = Event()

        def main():
            setter = threading.Thread(target=event.set)
            setter.start()
            value = yield event.wait()
            setter.join()
            return value

        assert vrun(main) is True

    def test_plain_code_waits_on_an_event_set_by_a_task(self) -> None:
        event = Event()

        @tasklets.task
        def setter():
            yield tasklets.sleep(0.001)
            event.set()

        setter()
        assert event.wait().result(timeout=30) is True


class TestLock:
    """Lock: mutual exclusion, first come first served, cancellation-safe."""

    def test_mutual_exclusion(self, vrun) -> None:
        lock = Lock()
        inside = [0]
        peak = [0]

        def worker(i):
            with (yield lock.acquire()):
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
                yield tasklets.sleep(1)
                yield None
                inside[0] -= 1

        def main():
            yield [tasklets.spawn(worker, i) for i in range(5)]
            return lock.locked(), tasklets.current_loop().time()

        assert vrun(main) == (False, 5)
        assert peak[0] == 1

    def test_waiters_get_the_lock_in_arrival_order(self, vrun) -> None:
        lock = Lock()
        order: list[int] = []

        def worker(i):
            yield lock.acquire()
            order.append(i)
            yield tasklets.sleep(1)
            lock.release()

        def main():
            yield lock.acquire()
            tasks = []
            for i in range(5):
                tasks.append(tasklets.spawn(worker, i))
                yield None  # each queues up before the next is spawned
            lock.release()
            yield tasks

        vrun(main)
        assert order == [0, 1, 2, 3, 4]

    def test_a_cancelled_waiter_is_skipped(self, vrun) -> None:
        lock = Lock()
        got: list[str] = []

        def worker(name):
            try:
                yield lock.acquire()
            except Cancelled:
                got.append(f"{name} cancelled")
                raise
            got.append(name)
            lock.release()

        def main():
            yield lock.acquire()
            first = tasklets.spawn(worker, "first")
            second = tasklets.spawn(worker, "second")
            yield None
            first.cancel()
            yield tasklets.wait([first])
            lock.release()
            yield second
            return first.cancelled(), lock.locked()

        assert vrun(main) == (True, False)
        assert got == ["first cancelled", "second"]

    def test_with_timeout_on_acquire(self, vrun) -> None:
        lock = Lock()

        def main():
            yield lock.acquire()
            with pytest.raises(TimeoutError):
                yield tasklets.with_timeout(lock.acquire(), 5)
            lock.release()
            assert not lock.locked()  # the timed-out waiter did not take it
            yield lock.acquire()
            return tasklets.current_loop().time()

        assert vrun(main) == 5

    def test_release_of_an_unlocked_lock_is_an_error(self) -> None:
        with pytest.raises(RuntimeError, match="not locked"):
            Lock().release()

    def test_async_with(self, vrun) -> None:
        lock = Lock()
        order: list[str] = []

        async def worker(name):
            async with lock:
                order.append(f"{name} in")
                await tasklets.sleep(1)
                order.append(f"{name} out")

        def main():
            yield [tasklets.spawn(worker, "a"), tasklets.spawn(worker, "b")]

        vrun(main)
        assert order == ["a in", "a out", "b in", "b out"]

    def test_threads_and_tasks_share_a_lock(self) -> None:
        lock = Lock()
        counter = [0]

        def thread_worker():
            for _ in range(200):
                lock.acquire().result(timeout=30)
                value = counter[0]
                counter[0] = value + 1
                lock.release()

        threads = [threading.Thread(target=thread_worker) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert counter[0] == 600 and not lock.locked()


class TestSemaphore:
    """Semaphore: at most ``value`` holders at once, fairly."""

    def test_at_most_value_holders(self, vrun) -> None:
        sem = Semaphore(2)
        inside = [0]
        peak = [0]

        def worker():
            with (yield sem.acquire()):
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
                yield tasklets.sleep(1)
                inside[0] -= 1

        def main():
            yield [tasklets.spawn(worker) for _ in range(6)]
            return tasklets.current_loop().time()

        assert vrun(main) == 3
        assert peak[0] == 2

    def test_fairness_and_locked(self, vrun) -> None:
        sem = Semaphore(1)
        order: list[int] = []

        def worker(i):
            holder = yield sem.acquire()
            assert holder is sem
            order.append(i)
            yield tasklets.sleep(1)
            sem.release()

        def main():
            yield sem.acquire()
            assert sem.locked()
            tasks = []
            for i in range(4):
                tasks.append(tasklets.spawn(worker, i))
                yield None
            sem.release()
            yield tasks
            return sem.locked()

        assert vrun(main) is False
        assert order == [0, 1, 2, 3]

    def test_a_cancelled_waiter_does_not_take_a_slot(self) -> None:
        sem = Semaphore(0)
        cancelled, live = sem.acquire(), sem.acquire()
        cancelled.cancel()
        sem.release()
        assert live.result(timeout=0) is sem and sem.locked()
        sem.release()
        assert not sem.locked()

    def test_negative_value_is_refused(self) -> None:
        with pytest.raises(ValueError):
            Semaphore(-1)

    def test_async_with(self, vrun) -> None:
        sem = Semaphore(2)
        peak = [0, 0]

        async def worker():
            async with sem:
                peak[0] += 1
                peak[1] = max(peak)
                await tasklets.sleep(1)
                peak[0] -= 1

        def main():
            yield [tasklets.spawn(worker) for _ in range(5)]

        vrun(main)
        assert peak == [0, 2]


class TestQueue:
    """Queue: FIFO; get/put are futures; bounded puts wait; nowait variants raise."""

    def test_fifo_and_get_waits_for_put(self, vrun) -> None:
        q: Queue[str] = Queue()

        def consumer():
            got = []
            for _ in range(3):
                got.append((yield q.get()))
            return got, tasklets.current_loop().time()

        def main():
            c = tasklets.spawn(consumer)
            for item in "xyz":
                yield tasklets.sleep(1)
                yield q.put(item)
            return (yield c)

        assert vrun(main) == (["x", "y", "z"], 3)

    def test_put_waits_while_the_queue_is_full(self, vrun) -> None:
        q: Queue[int] = Queue(maxsize=2)
        events: list[tuple[str, int, float]] = []

        def producer():
            for i in range(4):
                yield q.put(i)
                events.append(("put", i, tasklets.current_loop().time()))

        def main():
            p = tasklets.spawn(producer)
            yield tasklets.sleep(5)
            assert q.full() and q.qsize() == 2
            got = []
            for _ in range(4):
                got.append((yield q.get()))
                yield tasklets.sleep(1)
            yield p
            return got

        assert vrun(main) == [0, 1, 2, 3]
        assert events == [("put", 0, 0), ("put", 1, 0), ("put", 2, 5), ("put", 3, 6)]

    def test_nowait_variants(self) -> None:
        q: Queue[int] = Queue(maxsize=1)
        assert q.empty() and not q.full()
        with pytest.raises(QueueEmpty):
            q.get_nowait()
        q.put_nowait(1)
        assert q.full() and q.qsize() == 1
        with pytest.raises(QueueFull):
            q.put_nowait(2)
        assert q.get_nowait() == 1
        assert QueueEmpty is queue.Empty and QueueFull is queue.Full

    def test_get_nowait_admits_a_waiting_putter(self) -> None:
        q: Queue[str] = Queue(maxsize=1)
        q.put_nowait("a")
        waiting_put = q.put("b")
        assert not waiting_put.done()
        assert q.get_nowait() == "a"
        assert waiting_put.done() and q.get_nowait() == "b"

    def test_getters_are_served_in_order(self, vrun) -> None:
        q: Queue[int] = Queue()
        got: list[tuple[str, int]] = []

        def getter(name):
            got.append((name, (yield q.get())))

        def main():
            tasks = []
            for name in "abc":
                tasks.append(tasklets.spawn(getter, name))
                yield None
            for i in range(3):
                q.put_nowait(i)
            yield tasks

        vrun(main)
        assert got == [("a", 0), ("b", 1), ("c", 2)]

    def test_a_cancelled_getter_does_not_swallow_an_item(self, vrun) -> None:
        q: Queue[str] = Queue()

        def getter():
            return (yield q.get())

        def main():
            doomed = tasklets.spawn(getter)
            survivor = tasklets.spawn(getter)
            yield None
            doomed.cancel()
            yield tasklets.wait([doomed])
            q.put_nowait("item")
            return (yield survivor), doomed.cancelled(), q.qsize()

        assert vrun(main) == ("item", True, 0)

    def test_a_cancelled_putter_item_never_enters(self) -> None:
        q: Queue[str] = Queue(maxsize=1)
        q.put_nowait("first")
        abandoned = q.put("abandoned")
        kept = q.put("kept")
        abandoned.cancel()
        assert q.get_nowait() == "first"
        assert kept.done() and q.get_nowait() == "kept" and q.empty()

    def test_get_with_timeout(self, vrun) -> None:
        q: Queue[int] = Queue()

        def main():
            with pytest.raises(TimeoutError):
                yield tasklets.with_timeout(q.get(), 10)
            q.put_nowait(7)
            return (yield q.get()), q.qsize(), tasklets.current_loop().time()

        assert vrun(main) == (7, 0, 10)

    def test_producer_threads_and_a_consumer_task(self, vrun) -> None:
        q: Queue[int] = Queue(maxsize=10)

        def produce(start):
            for i in range(start, start + 100):
                q.put(i).result(timeout=30)

        def main():
            threads = [threading.Thread(target=produce, args=(k * 100,)) for k in range(3)]
            for t in threads:
                t.start()
            got = []
            for _ in range(300):
                got.append((yield q.get()))
            for t in threads:
                t.join()
            return got

        got = vrun(main)
        assert sorted(got) == list(range(300))
        for k in range(3):  # each producer's items arrive in its order
            mine = [g for g in got if k * 100 <= g < (k + 1) * 100]
            assert mine == sorted(mine)

    def test_get_returns_a_future(self) -> None:
        q: Queue[int] = Queue()
        f = q.get()
        assert isinstance(f, Future) and not f.done()
        q.put_nowait(5)
        assert f.result(timeout=0) == 5


class TestCancelledWaitersAreDropped:
    """A waiter cancelled while queued (timed out, say) does not stay until the next set() or put()."""

    def test_a_polling_loop_does_not_grow_the_waiters(self, vrun) -> None:
        event, q = Event(), Queue()

        def main():
            for _ in range(1000):
                with pytest.raises(TimeoutError):
                    yield tasklets.with_timeout(event.wait(), 1)
                with pytest.raises(TimeoutError):
                    yield tasklets.with_timeout(q.get(), 1)
            return len(event._waiters), len(q._getters), tasklets.current_loop().time()

        event_waiters, getters, now = vrun(main)
        assert event_waiters < 50 and getters < 50 and now == 2000

    def test_cancelled_acquires_and_puts_are_dropped(self) -> None:
        lock, sem, q = Lock(), Semaphore(0), Queue(maxsize=1)
        assert lock.acquire().done()
        q.put_nowait("full")
        for i in range(1000):
            assert lock.acquire().cancel() and sem.acquire().cancel() and q.put(i).cancel()
        assert len(lock._waiters) < 50 and len(sem._waiters) < 50 and len(q._putters) < 50

    def test_live_waiters_keep_their_turn(self) -> None:
        event, getting, putting = Event(), Queue(), Queue(maxsize=1)
        putting.put_nowait("first")
        waits, gets, puts = [], [], []
        for i in range(100):
            waits.append(event.wait())
            gets.append(getting.get())
            puts.append(putting.put(i))
            for _ in range(10):
                event.wait().cancel()
                getting.get().cancel()
                putting.put("cancelled").cancel()
        event.set()
        for i in range(100):
            getting.put_nowait(i)
        assert all(w.result(timeout=0) is True for w in waits)
        assert [g.result(timeout=0) for g in gets] == list(range(100))
        assert [putting.get_nowait() for _ in range(101)] == ["first", *range(100)]
        assert all(p.done() for p in puts) and putting.empty()
