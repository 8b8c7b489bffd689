"""CodeInterpreter: the synchronous API.

The thread that calls :meth:`CodeInterpreter.run_code` drives that run's I/O
itself with ``poll`` and a deadline, so callbacks run on that thread, in
order, before ``run_code`` returns, and no thread is kept per context.
"""

from __future__ import annotations

import math
import os
import select
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from . import core
from ._locks import CANCEL_POLL
from .commands import completion_command, run_command
from .context import Context
from .engine import COMPLETION_TIMEOUT, DEFAULT_DIALECT, DEFAULT_GRACE_PERIOD, DEFAULT_MAX_OUTPUT, ContextRef, Engine
from .errors import RunCancelledError
from .fs import FileSystem, engine_root
from .process import Launcher
from .sandbox import Sandbox
from .types import ExecutionError, ExecutionResult, InterpreterContext, OutputMessage, Result

#: Most bytes of a streamed stdin read (and sent to the worker) at a time.
STDIN_CHUNK = 65536

OutputCallback = Callable[[OutputMessage], Any]
ErrorCallback = Callable[[ExecutionError], Any]
ResultCallback = Callable[[Result], Any]
InputCallback = Callable[[str], str]

MAX_WAIT_MS = 3_600_000  # poll() takes a C int
CANCEL_POLL_MS = int(CANCEL_POLL * 1000)


class CodeInterpreter:
    """Stateful Python execution contexts, each in its own worker process.

    ``cwd`` is the default working directory of new contexts (default: the
    current directory when each context is created). ``env`` replaces the
    environment workers start with (default: inherit this process's, like
    ``subprocess``); pass a small dict to keep your own secrets away from
    the code you run. ``max_output`` bounds the characters of each stream
    an ExecutionResult keeps (None: no bound; callbacks always see every
    line). ``memory_limit`` caps each worker's address space in bytes
    (``RLIMIT_AS``), so an over-allocating run fails with MemoryError.
    ``grace_period`` is how long a timed-out run may take to stop after its
    interrupt before its worker is killed and replaced. ``launcher`` starts
    workers (default: a shared zygote that forks them; see interp.process).
    ``sandbox`` (a :class:`interp.sandbox.Sandbox`, or True for the default
    one) runs every context inside one bubblewrap sandbox, whose workspace
    is the default cwd; then ``env`` and ``launcher`` are not given.
    ``dialect="notebook"`` (the default) also runs notebook-style cells
    (``!cmd``, ``%magic``, ``%%magic``, a common indentation) where they are
    not valid Python; ``"python"`` runs Python only.
    Use it as a context manager, or call :meth:`close`, to kill every worker.

    Thread-safe: runs on different contexts proceed in parallel from
    different threads; runs on the same context are serialised in call order.
    """

    def __init__(self, cwd: Optional[str] = None, *, env: Optional[Mapping[str, str]] = None,
                 max_output: Optional[int] = DEFAULT_MAX_OUTPUT, memory_limit: Optional[int] = None,
                 grace_period: float = DEFAULT_GRACE_PERIOD, launcher: Optional[Launcher] = None,
                 sandbox: Union[Sandbox, bool, None] = None, dialect: str = DEFAULT_DIALECT) -> None:
        self._engine = Engine(cwd, env=env, max_output=max_output, memory_limit=memory_limit,
                              grace_period=grace_period, launcher=launcher, sandbox=sandbox, dialect=dialect)
        #: Files in and out (Daytona's ``fs``): see :class:`interp.fs.FileSystem`.
        self.fs = FileSystem(engine_root(self._engine))

    @property
    def sandbox(self) -> Optional[Sandbox]:
        """The sandbox every context runs in (None: not sandboxed)."""
        return self._engine.sandbox

    @property
    def dialect(self) -> str:
        """What cells are written in: "notebook" or "python" (see the constructor)."""
        return self._engine.dialect

    def __enter__(self) -> CodeInterpreter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<CodeInterpreter %s>" % self._engine.describe()

    def run_code(self, code: str, *, context: ContextRef = None,
                 on_stdout: Optional[OutputCallback] = None,
                 on_stderr: Optional[OutputCallback] = None,
                 on_error: Optional[ErrorCallback] = None,
                 on_result: Optional[ResultCallback] = None,
                 on_input: Optional[InputCallback] = None,
                 stdin: Optional[str] = None,
                 envs: Optional[Mapping[str, str]] = None,
                 timeout: Optional[float] = None,
                 cancel: Optional[threading.Event] = None) -> ExecutionResult:
        """Run ``code`` in ``context`` (default: the default context) and wait.

        Output lines reach ``on_stdout`` / ``on_stderr`` as they are written,
        rich results (``display()``, the last expression) reach ``on_result``;
        an uncaught exception is returned as ``result.error`` (and passed to
        ``on_error``). ``stdin`` is text for ``input()`` and ``sys.stdin``;
        ``on_input(prompt)`` instead answers each ``input()`` (raise EOFError
        for EOF). ``envs`` sets environment variables for this run only.
        ``timeout`` is in seconds: None means 600, 0 means none. Setting the
        ``cancel`` event (from any thread) stops this run like a timeout, or
        drops it if it is still waiting for its turn on the context.

        Raises InterpTimeoutError on timeout, RunCancelledError on cancel, WorkerDiedError if the worker
        died, ContextRestartedError if the context was restarted meanwhile,
        ContextNotFoundError for an unknown context, TypeError or ValueError
        for bad arguments, and whatever a callback raised.
        """
        callbacks = {"stdout": on_stdout, "stderr": on_stderr, "error": on_error,
                     "result": on_result, "input": on_input}
        command, seconds = run_command(code, envs=envs, timeout=timeout, stdin=stdin,
                                       on_input=on_input, callbacks=callbacks)
        return self._submit(context, command, seconds, callbacks, cancel)

    def _submit(self, context: ContextRef, command: Dict[str, Any], seconds: Optional[float],
                callbacks: Mapping[str, Any], cancel: Optional[threading.Event] = None,
                queued: Optional[Callable[[], None]] = None) -> ExecutionResult:
        """Run a validated command (see engine.run_command); for the front ends.
        ``queued`` is called once the run has its place in the context's line."""
        if cancel is not None and not hasattr(cancel, "is_set"):
            raise TypeError("cancel must be a threading.Event, not %s" % type(cancel).__name__)
        ctx = self._engine.resolve(context)
        ctx.run_lock.acquire(cancel=cancel, queued=queued)
        try:
            return _execute(ctx, command, seconds, callbacks, cancel)[1]
        finally:
            ctx.run_lock.release()

    def complete(self, code: str, cursor: Optional[int] = None,
                 context: ContextRef = None) -> List[str]:
        """Completions for the name or attribute being typed at ``cursor``
        (default: the end of ``code``), from the context's live globals and
        builtins. Nothing is executed beyond attribute lookups (which may run
        properties); lookups still going after 5 s are interrupted. Returns
        [] at once when the context is busy running code."""
        command = completion_command(code, cursor)
        ctx = self._engine.resolve(context)
        if not ctx.run_lock.acquire(blocking=False):
            return []
        try:
            return _execute(ctx, command, COMPLETION_TIMEOUT, {})[0].matches
        finally:
            ctx.run_lock.release()

    def interrupt(self, context: ContextRef = None) -> None:
        """Raise KeyboardInterrupt in the code running in ``context`` (SIGINT
        also reaches its child processes); its run ends with that error and
        the state survives. Does nothing when the context is idle. May be
        called from any thread."""
        self._engine.resolve(context).interrupt()

    def restart_context(self, context: ContextRef = None) -> InterpreterContext:
        """Kill the context's worker and its process group and start a fresh
        one with the same id and cwd (state is lost). A run in progress ends
        with ContextRestartedError."""
        return self._engine.resolve(context).restart()

    def create_context(self, cwd: Optional[str] = None) -> InterpreterContext:
        """Start a new isolated context in ``cwd`` (default: the interpreter's cwd)."""
        return self._engine.create(cwd).snapshot()

    def list_contexts(self) -> List[InterpreterContext]:
        """The contexts made by create_context, oldest first. The default
        context (``context=None``, id ``"default"``) is never listed: it
        is started on first use, and deleting it ends its worker: the next
        run on it starts a fresh one."""
        return self._engine.list()

    def delete_context(self, context: ContextRef) -> None:
        """Kill a context's worker and every process it started; forget the context."""
        self._engine.delete(context)

    def close(self) -> None:
        """Kill every worker. Further calls raise InterpError. Idempotent."""
        self._engine.close()


def _execute(ctx: Context, command: Dict[str, Any], seconds: Optional[float],
             callbacks: Mapping[str, Any],
             cancel: Optional[threading.Event] = None) -> Tuple[core.Run, ExecutionResult]:
    """Run one request on ``ctx`` (whose run lock the caller holds)."""
    if cancel is not None and cancel.is_set():
        raise RunCancelledError("the run was cancelled before it started")
    run = ctx.begin(command, seconds, time.monotonic(), callbacks)
    try:
        _drive(ctx, run, callbacks, cancel)
    finally:
        result = ctx.conclude(run)
    return run, result


def _drive(ctx: Context, run: core.Run, callbacks: Mapping[str, Any],
           cancel: Optional[threading.Event] = None) -> None:
    """Pump one run until it finishes: send to the worker, read its frames,
    keep time, and call the callbacks for what the core says happened."""
    worker = run.worker
    poller = select.poll()
    poller.register(worker.recv_fd, select.POLLIN)
    writing = reading_stdin = False
    ctx.send(run)  # a pipe almost always takes the whole command at once
    items = run.start(time.monotonic())
    while True:
        for kind, callback, payload in ctx.route(run, items, callbacks):
            try:
                value = callback(payload)
            except BaseException as exc:
                ctx.settle(run, kind, exc=exc)
            else:
                if kind == "input":
                    ctx.settle(run, kind, value)
        if run.finished:
            return
        items = []
        try:
            if run.wants_write and not writing:
                poller.register(worker.send_fd, select.POLLOUT)
                writing = True
            if run.stdin_fd is not None and run.wants_stdin and not reading_stdin:  # stdin from a fd of ours
                poller.register(run.stdin_fd, select.POLLIN)
                reading_stdin = True
            if cancel is not None and cancel.is_set() and run.abort_reason is None:
                ctx.abort(run, RunCancelledError("the run was cancelled"))
            wake = run.wakeup_at()
            limit = MAX_WAIT_MS if cancel is None else CANCEL_POLL_MS
            wait_ms = limit if wake is None else min(limit, max(0, math.ceil((wake - time.monotonic()) * 1000)))
            for fd, _ in poller.poll(wait_ms):
                if fd == run.stdin_fd and reading_stdin:
                    data = _read_stdin(fd)
                    if data is not None:
                        poller.unregister(fd)
                        reading_stdin = False
                        run.feed_stdin(data)
                        ctx.send(run)
                elif fd == worker.send_fd:
                    ctx.send(run)
                    if not run.wants_write:
                        poller.unregister(fd)
                        writing = False
                else:
                    try:
                        data = os.read(fd, core.READ_SIZE)
                    except BlockingIOError:
                        continue
                    items += ctx.receive(run, data, time.monotonic())
            items += run.on_timer(time.monotonic())
        except BaseException as exc:  # e.g. KeyboardInterrupt in the caller's thread
            ctx.abort(run, exc)



def _read_stdin(fd: int) -> Optional[bytes]:
    """The next bytes of a run's stdin source: b"" at its end (or if it
    failed), None if it has nothing after all (a non-blocking fd)."""
    try:
        return os.read(fd, STDIN_CHUNK)
    except BlockingIOError:
        return None
    except OSError:
        return b""
