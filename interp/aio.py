"""AsyncCodeInterpreter: the asyncio API over the same engine.

Worker I/O is driven by the event loop (``add_reader`` / ``add_writer`` on
the channel's non-blocking pipes): no thread per run or per context. Frame
decoding, message handling, timeouts and result building are the sans-IO
core and the contexts of the sync API; only the waiting differs.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Union

from . import core
from .engine import DEFAULT_GRACE_PERIOD, Context, ContextRef, Engine, check_run_args
from .errors import InterpError
from .process import Launcher
from .types import ExecutionError, ExecutionResult, InterpreterContext, OutputMessage

READ_SIZE = 256 * 1024

AsyncOutputCallback = Callable[[OutputMessage], Union[Any, Awaitable[Any]]]
AsyncErrorCallback = Callable[[ExecutionError], Union[Any, Awaitable[Any]]]


class AsyncCodeInterpreter:
    """The asyncio twin of :class:`interp.CodeInterpreter`.

    Same arguments, results, exceptions and semantics; methods are
    coroutines and callbacks may be plain or coroutine functions (coroutines
    are awaited, in order, before the next message is handled). Cancelling
    a ``run_code`` task interrupts the run like a timeout and re-raises
    ``CancelledError``; the context stays usable.

    An instance belongs to the event loop it is first used in; using it
    from another loop raises InterpError.
    """

    def __init__(self, cwd: Optional[str] = None, *, grace_period: float = DEFAULT_GRACE_PERIOD,
                 launcher: Optional[Launcher] = None) -> None:
        self._engine = Engine(cwd, grace_period, launcher, asyncio.Lock)
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    async def __aenter__(self) -> "AsyncCodeInterpreter":
        self._check_loop()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return "<AsyncCodeInterpreter cwd=%r contexts=%d%s>" % (
            self._engine.cwd, len(self._engine._contexts), " closed" if self._engine._closed else "")

    def _check_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise InterpError("this AsyncCodeInterpreter belongs to another event loop; "
                              "create one per loop")
        return loop

    async def run_code(self, code: str, *, context: ContextRef = None,
                       on_stdout: Optional[AsyncOutputCallback] = None,
                       on_stderr: Optional[AsyncOutputCallback] = None,
                       on_error: Optional[AsyncErrorCallback] = None,
                       envs: Optional[Mapping[str, str]] = None,
                       timeout: Optional[float] = None) -> ExecutionResult:
        """Run ``code``; see :meth:`interp.CodeInterpreter.run_code`."""
        loop = self._check_loop()
        seconds = check_run_args(code, envs, timeout)
        ctx = self._engine.resolve(context)
        callbacks = {"stdout": on_stdout, "stderr": on_stderr, "error": on_error}
        async with ctx.run_lock:
            run = ctx.begin(code, dict(envs) if envs is not None else None, seconds, time.monotonic())
            try:
                await _drive(loop, ctx, run, callbacks)
            finally:
                result = ctx.finish(run)
            if run.abort_reason is not None:
                raise run.abort_reason
            return result

    async def create_context(self, cwd: Optional[str] = None) -> InterpreterContext:
        """Start a new isolated context in ``cwd`` (default: the interpreter's cwd)."""
        self._check_loop()
        return self._engine.create(cwd).snapshot()

    async def list_contexts(self) -> List[InterpreterContext]:
        """The contexts made by create_context (not the default one), oldest first."""
        self._check_loop()
        return self._engine.list()

    async def delete_context(self, context: ContextRef) -> None:
        """Kill a context's worker and every process it started; forget the context."""
        self._check_loop()
        self._engine.delete(context)

    async def close(self) -> None:
        """Kill every worker. Further calls raise InterpError. Idempotent."""
        self._engine.close()


async def _drive(loop: asyncio.AbstractEventLoop, ctx: Context, run: core.Run,
                 callbacks: Dict[str, Any]) -> None:
    """Pump one run from the event loop until it finishes."""
    worker = ctx.worker
    assert worker is not None
    incoming = bytearray()
    closed = False
    outgoing = memoryview(run.command)
    wake: Optional[asyncio.Future] = None

    def notify() -> None:
        if wake is not None and not wake.done():
            wake.set_result(None)

    def on_readable() -> None:
        nonlocal closed
        try:
            data = os.read(worker.recv_fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            incoming.extend(data)
        else:
            closed = True
            loop.remove_reader(worker.recv_fd)
        notify()

    def on_writable() -> None:
        nonlocal outgoing
        try:
            outgoing = outgoing[os.write(worker.send_fd, outgoing):]
        except BlockingIOError:
            return
        except OSError:  # the worker is gone; its EOF will follow
            outgoing = outgoing[:0]
        if not outgoing:
            loop.remove_writer(worker.send_fd)

    loop.add_reader(worker.recv_fd, on_readable)
    loop.add_writer(worker.send_fd, on_writable)
    try:
        items = run.start(time.monotonic())
        while True:
            for callback, payload in ctx.route(run, items, callbacks):
                try:
                    value = callback(payload)
                    if inspect.isawaitable(value):
                        await value
                except BaseException as exc:
                    ctx.abort(run, exc)
            if run.finished:
                return
            items = []
            try:
                if not incoming and not closed:
                    wake = loop.create_future()
                    at = run.wakeup_at()
                    timer = None if at is None else loop.call_later(max(0.0, at - time.monotonic()), notify)
                    try:
                        await wake
                    finally:
                        if timer is not None:
                            timer.cancel()
                if incoming:
                    data = bytes(incoming)
                    incoming.clear()
                    items += ctx.receive(run, data, time.monotonic())
                if closed and not run.finished:
                    items += ctx.receive(run, b"", time.monotonic())
                items += run.on_timer(time.monotonic())
            except BaseException as exc:  # cancellation: interrupt, settle, re-raise
                ctx.abort(run, exc)
    finally:
        loop.remove_reader(worker.recv_fd)
        loop.remove_writer(worker.send_fd)
