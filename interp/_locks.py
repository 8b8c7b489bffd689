"""The lock that puts a context's runs in line, for threads and tasks alike.

One :class:`FifoLock` per context serialises its runs in the order they were
requested, whether they come from threads (the sync API) or from asyncio
tasks (the async API, the HTTP server), so both APIs can drive the same
contexts: the server serves a :class:`~interp.CodeInterpreter` that other
threads also use.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any, Callable, Deque, Optional, Union

from .errors import InterpError, RunCancelledError

#: How often a thread waiting with a ``cancel`` event checks it (seconds).
CANCEL_POLL = 0.05

REENTRANT = ("a callback tried to use the context whose run called it; that would wait "
             "for itself forever (use another context, or act after run_code returns)")

#: A thread waits on a held threading.Lock; a task on a future of its loop.
_Waiter = Union[threading.Lock, "asyncio.Future[None]"]


class FifoLock:
    """A mutex granted in the order it was requested (threading.Lock is not),
    to threads (:meth:`acquire`) and to asyncio tasks (``async with``).

    Acquiring it again from the thread or task that holds it raises
    InterpError (a callback that runs code on its own context), where a
    plain lock would deadlock.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: Deque[_Waiter] = deque()
        self._locked = False
        self._owner: Any = None  # the holding thread's ident, or task

    def locked(self) -> bool:
        return self._locked

    def acquire(self, blocking: bool = True, cancel: Optional[threading.Event] = None,
                queued: Optional[Callable[[], None]] = None) -> bool:
        """Take the lock from a thread (False at once if ``blocking`` is false
        and it is taken). Raises RunCancelledError if ``cancel`` is set while
        waiting. ``queued`` is called once the caller has its place in line
        (before waiting), so that a front end can hand work over in arrival order."""
        me = threading.get_ident()
        with self._mutex:
            if not self._locked:
                self._locked = True
                self._owner = me
                waiter = None
            elif not blocking:
                return False
            elif self._owner == me or _loop_thread_of(self._owner) == me:
                raise InterpError(REENTRANT)
            else:
                waiter = threading.Lock()
                waiter.acquire()
                self._waiters.append(waiter)
        try:
            if queued is not None:
                queued()
            if waiter is None:
                return True
            # release() hands the lock over by releasing ``waiter``
            while not waiter.acquire(timeout=CANCEL_POLL if cancel is not None else -1):
                if cancel is not None and cancel.is_set():
                    raise RunCancelledError("the run was cancelled before it started")
        except BaseException:
            self._give_up(waiter)
            raise
        self._owner = me
        return True

    async def acquire_async(self, queued: Optional[Callable[[], None]] = None) -> bool:
        """Take the lock from an asyncio task; cancelling the task while it
        waits gives its place up. ``queued`` is called only if the task must
        wait, once it has its place in line; returns whether it was (a task
        that got the lock at once does what ``queued`` stands for when it
        suits it: the server, once the run's command is on its way)."""
        task = asyncio.current_task()
        with self._mutex:
            if not self._locked:
                self._locked = True
                self._owner = task
                waiter = None
            elif self._owner is task:
                raise InterpError(REENTRANT)
            else:
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
        if waiter is None:
            return False
        try:
            if queued is not None:
                queued()
            await waiter  # release() hands the lock over by resolving ``waiter``
        except BaseException:
            self._give_up(waiter)
            raise
        self._owner = task
        return True

    def _give_up(self, waiter: Optional[_Waiter]) -> None:
        """A waiter was interrupted: leave the line, or, if the lock was
        handed to it meanwhile (or it held it at once: None), pass it on."""
        with self._mutex:
            if waiter is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
                return
        self.release()

    def release(self) -> None:
        with self._mutex:
            self._owner = None
            while self._waiters:
                waiter = self._waiters.popleft()
                if isinstance(waiter, asyncio.Future):
                    try:
                        waiter.get_loop().call_soon_threadsafe(_grant, waiter)
                    except RuntimeError:  # its loop is closed: nobody waits there any more
                        continue
                else:
                    waiter.release()
                return
            self._locked = False

    def __enter__(self) -> FifoLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    async def __aenter__(self) -> FifoLock:
        await self.acquire_async()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()


def _grant(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # else its task was cancelled, and gives the lock back (_give_up)
        waiter.set_result(None)


def _loop_thread_of(owner: Any) -> Optional[int]:
    """The thread running the task ``owner`` (None for a thread's ident):
    a thread that would wait for that task would block its loop forever."""
    if isinstance(owner, asyncio.Task):
        return getattr(owner.get_loop(), "_thread_id", None)
    return None
