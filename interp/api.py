"""CodeInterpreter: the synchronous API.

The thread that calls :meth:`CodeInterpreter.run_code` drives that run's I/O
itself with ``poll`` and a deadline, so callbacks run on that thread, in
order, before ``run_code`` returns, and no thread is kept per context.
"""

from __future__ import annotations

import math
import os
import select
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

from . import core
from .engine import DEFAULT_GRACE_PERIOD, ContextRef, Engine, FifoLock, check_run_args
from .process import Launcher
from .types import ExecutionError, ExecutionResult, InterpreterContext, OutputMessage

OutputCallback = Callable[[OutputMessage], Any]
ErrorCallback = Callable[[ExecutionError], Any]

READ_SIZE = 256 * 1024


class CodeInterpreter:
    """Stateful Python execution contexts, each in its own worker process.

    ``cwd`` is the default working directory of new contexts (default: the
    current directory when each context is created). ``grace_period`` is how
    long a timed-out run may take to stop after its interrupt before its
    worker is killed and replaced. Use it as a context manager, or call
    :meth:`close`, to kill every worker.

    Thread-safe: runs on different contexts proceed in parallel from
    different threads; runs on the same context are serialised in call order.
    """

    def __init__(self, cwd: Optional[str] = None, *, grace_period: float = DEFAULT_GRACE_PERIOD,
                 launcher: Optional[Launcher] = None) -> None:
        self._engine = Engine(cwd, grace_period, launcher, FifoLock)

    def __enter__(self) -> "CodeInterpreter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<CodeInterpreter cwd=%r contexts=%d%s>" % (
            self._engine.cwd, len(self._engine._contexts), " closed" if self._engine._closed else "")

    def run_code(self, code: str, *, context: ContextRef = None,
                 on_stdout: Optional[OutputCallback] = None,
                 on_stderr: Optional[OutputCallback] = None,
                 on_error: Optional[ErrorCallback] = None,
                 envs: Optional[Mapping[str, str]] = None,
                 timeout: Optional[float] = None) -> ExecutionResult:
        """Run ``code`` in ``context`` (default: the default context) and wait.

        Output lines reach ``on_stdout`` / ``on_stderr`` as they are written;
        an uncaught exception is returned as ``result.error`` (and passed to
        ``on_error``). ``envs`` sets environment variables for this run only.
        ``timeout`` is in seconds: None means 600, 0 means none.

        Raises InterpTimeoutError on timeout, WorkerDiedError if the worker
        died, ContextNotFoundError for an unknown context, TypeError or
        ValueError for bad arguments, and whatever a callback raised.
        """
        return self._run(code, context, {"stdout": on_stdout, "stderr": on_stderr, "error": on_error},
                         envs, timeout)

    def _run(self, code: str, context: ContextRef, callbacks: Dict[str, Any],
             envs: Optional[Mapping[str, str]], timeout: Optional[float],
             filename: Optional[str] = None) -> ExecutionResult:
        seconds = check_run_args(code, envs, timeout)
        ctx = self._engine.resolve(context)
        with ctx.run_lock:
            run = ctx.begin(code, dict(envs) if envs is not None else None, seconds,
                            time.monotonic(), filename)
            try:
                _drive(ctx, run, callbacks)
            finally:
                result = ctx.finish(run)
            if run.abort_reason is not None:
                raise run.abort_reason
            return result

    def create_context(self, cwd: Optional[str] = None) -> InterpreterContext:
        """Start a new isolated context in ``cwd`` (default: the interpreter's cwd)."""
        return self._engine.create(cwd).snapshot()

    def list_contexts(self) -> List[InterpreterContext]:
        """The contexts made by create_context (not the default one), oldest first."""
        return self._engine.list()

    def delete_context(self, context: ContextRef) -> None:
        """Kill a context's worker and every process it started; forget the context."""
        self._engine.delete(context)

    def close(self) -> None:
        """Kill every worker. Further calls raise InterpError. Idempotent."""
        self._engine.close()


def _drive(ctx: Any, run: core.Run, callbacks: Dict[str, Optional[Callable[[Any], Any]]]) -> None:
    """Pump one run until it finishes: send its command, read frames, keep time."""
    worker = ctx.worker
    poller = select.poll()
    poller.register(worker.recv_fd, select.POLLIN)
    poller.register(worker.send_fd, select.POLLOUT)
    outgoing = memoryview(run.command)
    items = run.start(time.monotonic())
    while True:
        for callback, payload in ctx.route(run, items, callbacks):
            try:
                callback(payload)
            except BaseException as exc:
                ctx.abort(run, exc)
        if run.finished:
            return
        items = []
        try:
            wake = run.wakeup_at()
            wait_ms = None if wake is None else max(0, math.ceil((wake - time.monotonic()) * 1000))
            for fd, _ in poller.poll(wait_ms):
                if fd == worker.send_fd:
                    try:
                        outgoing = outgoing[os.write(fd, outgoing):]
                    except BlockingIOError:
                        continue
                    except OSError:  # the worker is gone; its EOF will follow
                        outgoing = outgoing[:0]
                    if not outgoing:
                        poller.unregister(fd)
                else:
                    try:
                        data = os.read(fd, READ_SIZE)
                    except BlockingIOError:
                        continue
                    items += ctx.receive(run, data, time.monotonic())
            items += run.on_timer(time.monotonic())
        except BaseException as exc:  # e.g. KeyboardInterrupt in the caller's thread
            ctx.abort(run, exc)
