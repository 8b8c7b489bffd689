"""interp._locks.FifoLock: one line per context for threads and asyncio
tasks alike (the HTTP server drives a CodeInterpreter's contexts from its
event loop while other threads use them)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from interp import CodeInterpreter, InterpError
from interp._locks import FifoLock
from interp.aio import AsyncCodeInterpreter
from interp.errors import RunCancelledError


def test_threads_and_tasks_are_served_in_arrival_order():
    lock = FifoLock()
    order = []
    lock.acquire()  # held by the test's thread: everyone below waits in line

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def task(name: str) -> None:
            async with lock:
                order.append(name)

        def thread(name: str) -> None:
            with lock:
                order.append(name)

        workers = []
        for i in range(6):
            if i % 2:
                workers.append(loop.create_task(task("task%d" % i)))
                await asyncio.sleep(0.05)  # it is in line
            else:
                started = threading.Thread(target=thread, args=("thread%d" % i,))
                started.start()
                workers.append(loop.run_in_executor(None, started.join))
                await asyncio.sleep(0.05)
        lock.release()
        await asyncio.wait_for(asyncio.gather(*workers), 10)

    asyncio.run(main())
    assert order == ["thread0", "task1", "thread2", "task3", "thread4", "task5"]
    assert not lock.locked()


def test_a_cancelled_task_gives_its_place_up_and_never_keeps_the_lock():
    lock = FifoLock()
    lock.acquire()

    async def main() -> None:
        waiting = asyncio.get_running_loop().create_task(lock.acquire_async())
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # cancelled just as the lock is handed over: it passes the lock on
        handed = asyncio.get_running_loop().create_task(lock.acquire_async())
        await asyncio.sleep(0.05)
        lock.release()
        handed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handed
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert lock.acquire(blocking=False), "the lock was left held by a cancelled task"
    lock.release()


def test_a_front_end_whose_queued_callback_fails_leaves_the_lock_free():
    lock = FifoLock()

    def fail() -> None:
        raise ConnectionError("the client left")

    with pytest.raises(ConnectionError):
        lock.acquire(queued=fail)
    lock.acquire()  # a task must wait: its callback is called while it has its place in line

    async def queue_up() -> None:
        with pytest.raises(ConnectionError):
            await lock.acquire_async(queued=fail)
        assert not lock._waiters
    asyncio.run(queue_up())
    lock.release()
    assert lock.acquire(blocking=False)
    lock.release()


def test_a_task_that_gets_the_lock_at_once_is_told_so_and_its_callback_is_left_to_it():
    lock = FifoLock()
    called = []

    async def main() -> None:
        assert await lock.acquire_async(queued=lambda: called.append(1)) is False
        lock.release()
    asyncio.run(main())
    assert called == []


def test_re_entry_from_the_holder_is_an_error_not_a_deadlock():
    lock = FifoLock()

    async def main() -> None:
        async with lock:
            with pytest.raises(InterpError, match="wait for itself"):
                await lock.acquire_async()
            with pytest.raises(InterpError, match="wait for itself"):  # a thread would block the loop
                lock.acquire()

    asyncio.run(main())
    with lock:
        with pytest.raises(InterpError, match="wait for itself"):
            lock.acquire()


def test_a_thread_cancelled_while_waiting():
    lock = FifoLock()
    holder = threading.Thread(target=lock.acquire)
    holder.start()
    holder.join(10)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(RunCancelledError):
        lock.acquire(cancel=cancel)
    lock.release()
    assert lock.acquire(blocking=False)
    lock.release()


@pytest.mark.limit(60)
def test_an_async_view_and_threads_share_a_context_in_order(tmp_path):
    """The HTTP server's view of a CodeInterpreter: runs from the loop and
    from another thread on one context take turns and see each other's state."""
    with CodeInterpreter(cwd=str(tmp_path)) as ci:
        ctx = ci.create_context()
        ci.run_code("log = []", context=ctx)

        def from_thread() -> None:
            for i in range(5):
                ci.run_code("log.append(('thread', %d))\nimport time; time.sleep(0.01)" % i, context=ctx)

        async def main() -> None:
            view = AsyncCodeInterpreter._sharing(ci._engine)
            thread = threading.Thread(target=from_thread)
            thread.start()
            for i in range(5):
                await view.run_code("log.append(('task', %d))\nimport time; time.sleep(0.01)" % i, context=ctx)
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 30)

        async def close_view() -> None:  # a view's close leaves the interpreter it shares open
            async with AsyncCodeInterpreter._sharing(ci._engine) as view:
                await view.run_code("pass", context=ctx)

        started = time.monotonic()
        asyncio.run(main())
        asyncio.run(close_view())
        log = ci.run_code("print(sorted(log))", context=ctx).stdout
        assert log.strip() == str(sorted([("thread", i) for i in range(5)] + [("task", i) for i in range(5)]))
        assert time.monotonic() - started < 30
