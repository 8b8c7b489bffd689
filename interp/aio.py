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
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Tuple, Union

from . import core
from .commands import completion_command, run_command
from .context import Context
from .engine import COMPLETION_TIMEOUT, DEFAULT_DIALECT, DEFAULT_GRACE_PERIOD, DEFAULT_MAX_OUTPUT, ContextRef, Engine
from .errors import InterpError
from .fs import AsyncFileSystem, engine_root
from .process import Launcher
from .sandbox import Sandbox
from .types import ExecutionResult, InterpreterContext


#: A plain or coroutine function taking an OutputMessage, ExecutionError, Result
#: or (for on_input) the prompt string.
Callback = Callable[[Any], Union[Any, Awaitable[Any]]]


class AsyncCodeInterpreter:
    """The asyncio twin of :class:`interp.CodeInterpreter`.

    Same constructor options, arguments, results, exceptions and semantics; methods are
    coroutines and callbacks may be plain or coroutine functions (coroutines
    are awaited, in order, before the next message is handled). Cancelling
    a ``run_code`` task interrupts the run like a timeout and re-raises
    ``CancelledError``; the context stays usable.

    An instance belongs to the event loop it is first used in; using it
    from another loop raises InterpError.
    """

    def __init__(self, cwd: Optional[str] = None, *, env: Optional[Mapping[str, str]] = None,
                 max_output: Optional[int] = DEFAULT_MAX_OUTPUT, memory_limit: Optional[int] = None,
                 grace_period: float = DEFAULT_GRACE_PERIOD, launcher: Optional[Launcher] = None,
                 sandbox: Union[Sandbox, bool, None] = None, dialect: str = DEFAULT_DIALECT) -> None:
        self._engine = Engine(cwd, env=env, max_output=max_output, memory_limit=memory_limit,
                              grace_period=grace_period, launcher=launcher, sandbox=sandbox, dialect=dialect)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        #: Files in and out (Daytona's ``fs``), as coroutines: see :class:`interp.fs.AsyncFileSystem`.
        self.fs = AsyncFileSystem(engine_root(self._engine))

    @classmethod
    def _sharing(cls, engine: Engine) -> AsyncCodeInterpreter:
        """An async view of another interpreter's contexts (the HTTP server
        serves a CodeInterpreter this way): runs from both are put in one line
        per context. Closing the view does not close ``engine``."""
        view = cls.__new__(cls)
        view._engine = engine
        view._loop = None
        view._owns_engine = False
        view.fs = AsyncFileSystem(engine_root(engine))
        return view

    _owns_engine = True  # a view made by _sharing does not

    @property
    def sandbox(self) -> Optional[Sandbox]:
        """The sandbox every context runs in (None: not sandboxed)."""
        return self._engine.sandbox

    @property
    def dialect(self) -> str:
        """What cells are written in: "notebook" or "python" (see the constructor)."""
        return self._engine.dialect

    async def __aenter__(self) -> AsyncCodeInterpreter:
        self._check_loop()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return "<AsyncCodeInterpreter %s>" % self._engine.describe()

    def _check_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise InterpError("this AsyncCodeInterpreter belongs to another event loop; "
                              "create one per loop")
        return loop

    async def run_code(self, code: str, *, context: ContextRef = None,
                       on_stdout: Optional[Callback] = None,
                       on_stderr: Optional[Callback] = None,
                       on_error: Optional[Callback] = None,
                       on_result: Optional[Callback] = None,
                       on_input: Optional[Callback] = None,
                       stdin: Optional[str] = None,
                       envs: Optional[Mapping[str, str]] = None,
                       timeout: Optional[float] = None) -> ExecutionResult:
        """Run ``code``; see :meth:`interp.CodeInterpreter.run_code`."""
        self._check_loop()
        callbacks = {"stdout": on_stdout, "stderr": on_stderr, "error": on_error,
                     "result": on_result, "input": on_input}
        command, seconds = run_command(code, envs=envs, timeout=timeout, stdin=stdin,
                                       on_input=on_input, callbacks=callbacks)
        return await self._submit(context, command, seconds, callbacks)

    async def _submit(self, context: ContextRef, command: Dict[str, Any], seconds: Optional[float],
                      callbacks: Mapping[str, Any], queued: Optional[Callable[[], None]] = None,
                      keep: Optional[int] = None) -> ExecutionResult:
        """Run a validated command (see engine.run_command); for the front ends.
        ``queued`` is called once the run has its place in the context's line:
        before it waits for runs ahead of it, or, with none, once its command
        is on its way to the worker (what ``queued`` does then overlaps the run);
        ``keep`` caps the output the result keeps (see Context.begin)."""
        loop = self._check_loop()
        ctx = self._engine.resolve(context)
        if await ctx.run_lock.acquire_async(queued):
            queued = None
        try:
            if ctx.worker is None:  # the default context's first run: start it off the loop
                if queued is not None:  # the start takes a while: tell now
                    queued()
                    queued = None
                await asyncio.to_thread(ctx.start)
            return (await _execute(loop, ctx, command, seconds, callbacks, keep, queued))[1]
        finally:
            ctx.run_lock.release()

    async def complete(self, code: str, cursor: Optional[int] = None,
                       context: ContextRef = None) -> List[str]:
        """See :meth:`interp.CodeInterpreter.complete`."""
        loop = self._check_loop()
        command = completion_command(code, cursor)
        ctx = self._engine.resolve(context)
        if ctx.run_lock.locked():
            return []
        async with ctx.run_lock:
            return (await _execute(loop, ctx, command, COMPLETION_TIMEOUT, {}))[0].matches

    async def interrupt(self, context: ContextRef = None) -> None:
        """See :meth:`interp.CodeInterpreter.interrupt`."""
        self._check_loop()
        self._engine.resolve(context).interrupt()

    async def restart_context(self, context: ContextRef = None) -> InterpreterContext:
        """See :meth:`interp.CodeInterpreter.restart_context`."""
        self._check_loop()
        return await asyncio.to_thread(self._engine.resolve(context).restart)

    async def create_context(self, cwd: Optional[str] = None) -> InterpreterContext:
        """Start a new isolated context in ``cwd`` (default: the interpreter's cwd)."""
        self._check_loop()
        return (await asyncio.to_thread(self._engine.create, cwd)).snapshot()

    async def list_contexts(self) -> List[InterpreterContext]:
        """The contexts made by create_context, oldest first. The default
        context (``context=None``, id ``"default"``) is never listed: it
        is started on first use, and deleting it ends its worker: the next
        run on it starts a fresh one."""
        self._check_loop()
        return self._engine.list()

    async def delete_context(self, context: ContextRef) -> None:
        """Kill a context's worker and every process it started; forget the context."""
        self._check_loop()
        await asyncio.to_thread(self._engine.delete, context)  # kills and reaps: never on the loop

    async def close(self) -> None:
        """Kill every worker. Further calls raise InterpError. Idempotent."""
        if self._owns_engine:
            await asyncio.to_thread(self._engine.close)  # kills and reaps: never on the loop


async def _execute(loop: asyncio.AbstractEventLoop, ctx: Context, command: Dict[str, Any],
                   seconds: Optional[float], callbacks: Mapping[str, Any],
                   keep: Optional[int] = None, sent: Optional[Callable[[], None]] = None,
                   ) -> Tuple[core.Run, ExecutionResult]:
    """Run one request on ``ctx`` (whose run lock the caller holds); ``sent``
    is called once the command is on its way (an exception there aborts the run)."""
    try:
        run = ctx.begin(command, seconds, time.monotonic(), callbacks, keep)
    except BaseException:
        if sent is not None:  # the run had its place in line: its front end hears of this as of any outcome
            sent()
        raise
    try:
        await _drive(loop, ctx, run, callbacks, sent)
    finally:
        if run.state == core.DONE:
            result = ctx.conclude(run)
        else:  # the worker is reaped and a fresh one started: off the loop
            result = await loop.run_in_executor(None, ctx.conclude, run)
    return run, result


async def _drive(loop: asyncio.AbstractEventLoop, ctx: Context, run: core.Run,
                 callbacks: Mapping[str, Any], sent: Optional[Callable[[], None]] = None) -> None:
    """Pump one run from the event loop until it finishes."""
    worker = run.worker
    # Frames are decoded as they are read, so that the bytes of the channel
    # always reach the run in order (a last look reads the fd directly);
    # their events wait here for the loop below.
    arrived: List[core.Item] = []
    failures: List[BaseException] = []  # raised while reading: stop the run like a driver's own failure
    backlog = 0  # bytes behind ``arrived``; reading pauses past READ_SIZE, so the worker blocks
    closed = False
    reading = True
    writing = False
    wake: Optional[asyncio.Future[None]] = None

    def notify() -> None:
        if wake is not None and not wake.done():
            wake.set_result(None)

    def on_readable() -> None:
        nonlocal closed, reading, backlog
        try:
            data = os.read(worker.recv_fd, core.READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            try:
                arrived.extend(ctx.receive(run, data, time.monotonic()))
            except BaseException as exc:  # reported at once, never left to the loop's logger
                failures.append(exc)
            backlog += len(data)
        else:
            closed = True
        if closed or backlog >= core.READ_SIZE:
            loop.remove_reader(worker.recv_fd)
            reading = False
        notify()

    def on_writable() -> None:
        nonlocal writing
        ctx.send(run)
        if not run.wants_write:
            loop.remove_writer(worker.send_fd)
            writing = False

    ctx.send(run)  # first, so that the worker runs while the loop does the rest (a pipe takes it at once)
    loop.add_reader(worker.recv_fd, on_readable)
    deferred: List[str] = []  # a last look, which reads for up to LAST_LOOK_LIMIT: done off the loop
    try:
        items = run.start(time.monotonic())
        if sent is not None:
            try:
                sent()
            except BaseException as exc:
                ctx.abort(run, exc)
        while True:
            for kind, callback, payload in ctx.route(run, items, callbacks, deferred):
                try:
                    value = callback(payload)
                    if inspect.isawaitable(value):
                        value = await value
                except BaseException as exc:
                    ctx.settle(run, kind, exc=exc)
                else:
                    if kind == "input":
                        ctx.settle(run, kind, value)
            if deferred and not arrived:
                deferred.clear()
                if reading:  # the last look reads the channel itself
                    loop.remove_reader(worker.recv_fd)
                    reading = False
                await loop.run_in_executor(None, ctx.perform, run, core.LAST_LOOK)
                items = []
                continue
            if run.finished and not arrived:  # events read during the callbacks come first
                return
            items = []
            try:
                if run.wants_write and not writing:
                    loop.add_writer(worker.send_fd, on_writable)
                    writing = True
                if not arrived and not closed and not run.finished and not failures:
                    wake = loop.create_future()
                    at = run.wakeup_at()
                    timer = None if at is None else loop.call_later(max(0.0, at - time.monotonic()), notify)
                    try:
                        await wake
                    finally:
                        if timer is not None:
                            timer.cancel()
                items += arrived
                arrived.clear()
                backlog = 0
                if failures:
                    raise failures.pop()
                if not reading and not closed:
                    loop.add_reader(worker.recv_fd, on_readable)
                    reading = True
                if closed and not run.finished:
                    items += ctx.receive(run, b"", time.monotonic())
                items += run.on_timer(time.monotonic())
            except BaseException as exc:  # cancellation: interrupt, settle, re-raise
                ctx.abort(run, exc)
    finally:
        if reading:
            loop.remove_reader(worker.recv_fd)
        if writing:
            loop.remove_writer(worker.send_fd)
