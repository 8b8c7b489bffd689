"""Contexts and their registry: the I/O-free bookkeeping under both APIs.

:class:`Engine` owns the contexts of one interpreter (sync or async) and
validates arguments; :class:`Context` owns one worker process and turns the
end state of a :class:`~interp.core.Run` into a result or an exception.
Neither waits on a pipe: the drivers in ``api.py`` and ``aio.py`` do that.
"""

from __future__ import annotations

import atexit
import errno
import math
import os
import select
import signal
import sys
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from . import core
from ._locks import FifoLock
from .errors import (ContextNotFoundError, ContextRestartedError, InterpError, InterpTimeoutError,
                     InvalidCwdError, RunCancelledError, WorkerDiedError)
from ._sandbox_launcher import SandboxLauncher
from .process import Launcher, WorkerProcess, check_cwd, default_launcher
from .sandbox import Sandbox, sandbox_option
from .types import ExecutionResult, InterpreterContext

DEFAULT_TIMEOUT = 600.0
#: A last look (see Context._last_look) reads for at most this many seconds,
#: and stops once the worker has sent nothing for LAST_LOOK_PAUSE_MS.
LAST_LOOK_LIMIT = 0.5
LAST_LOOK_PAUSE_MS = 50
#: Characters of each stream an ExecutionResult keeps (callbacks see all).
DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024
DEFAULT_GRACE_PERIOD = 2.0
#: The least memory_limit accepted: a worker maps up to about 160 MB of address
#: space before it runs anything (its threads' malloc arenas reserve 64 MiB each,
#: used or not), and interp/_worker/worker.py's apply_options demands 64 MiB more.
MIN_MEMORY_LIMIT = 256 << 20
#: How a worker's fatal message starts when it refused its setup (interp/_worker/worker.py).
SETUP_REFUSED = "the context could not be set up: "
DEFAULT_CONTEXT_ID = "default"
#: What a cell may be written in: "notebook" (Python, plus IPython's syntax where
#: the cell is not valid Python: see interp/_worker/dialect.py) or "python".
DIALECTS = ("notebook", "python")
DEFAULT_DIALECT = "notebook"
#: A completion that takes longer than this (a property that blocks) gives up.
COMPLETION_TIMEOUT = 5.0

ContextRef = Union[InterpreterContext, str, None]


class InputInterrupted(Exception):
    """Raised by an ``on_input`` callback (a front end whose user pressed
    Ctrl-C while it read a line): the code's ``input()`` raises
    KeyboardInterrupt, as python's does, and the run goes on. (Any other
    exception from ``on_input`` but EOFError stops the run and is raised by
    ``run_code``.)"""
#: Timeouts this long (about 31 years) or longer mean no limit.
FOREVER = 1e9


def run_command(code: Any, *, envs: Any = None, timeout: Any = None, stdin: Any = None,
                on_input: Any = None, filename: Optional[str] = None,
                callbacks: Optional[Mapping[str, Any]] = None,
                stdin_fd: Optional[int] = None) -> Tuple[Dict[str, Any], Optional[float]]:
    """Validate ``run_code`` arguments; return the ``run`` command and the
    timeout in seconds (None: no limit). Raises TypeError / ValueError.

    ``stdin_fd`` (for the command line, with the sync driver): a file
    descriptor of this process whose bytes become the code's fd 0 and
    ``sys.stdin`` as they come, as python's own stdin would be."""
    if not isinstance(code, str):
        raise TypeError("code must be a str, not %s" % type(code).__name__)
    envs = check_environment("envs", envs)
    if stdin is not None and not isinstance(stdin, str):
        raise TypeError("stdin must be a str, not %s" % type(stdin).__name__)
    if stdin is not None and on_input is not None:
        raise ValueError("give stdin or on_input, not both")
    if stdin_fd is not None and (stdin is not None or on_input is not None):
        raise ValueError("a run with stdin_fd takes neither stdin nor on_input")
    for name, callback in dict(callbacks or {}, input=on_input).items():
        if callback is not None and not callable(callback):
            raise TypeError("on_%s must be callable, not %s" % (name, type(callback).__name__))
    seconds = check_seconds("timeout", timeout, DEFAULT_TIMEOUT)
    command = {"t": "run", "code": code, "envs": envs, "filename": filename, "stdin": stdin,
               "input": on_input is not None}
    if stdin_fd is not None:
        command.update(stdin_stream=True, stdin_fd=stdin_fd)  # the core keeps the fd, sends the rest
    return command, seconds


def check_environment(name: str, env: Any) -> Optional[Dict[str, str]]:
    """Validate a mapping of environment variables; return a plain dict copy."""
    if env is None:
        return None
    if not isinstance(env, Mapping):
        raise TypeError("%s must be a mapping of str to str, not %s" % (name, type(env).__name__))
    for key, value in env.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("%s keys and values must be str; got a %s key and a %s value (key %r)"
                            % (name, type(key).__name__, type(value).__name__, key))
        if not key or "=" in key or "\0" in key or "\0" in value or not _encodable(key + value):
            # the value is not shown: it may be a secret
            raise ValueError("%s: invalid environment variable %r (empty, '=' or NUL in the name, "
                             "or a NUL or unencodable character)" % (name, key))
    return dict(env)


def _check_size(name: str, value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int (or None), not %s" % (name, type(value).__name__))
    if value <= 0:
        raise ValueError("%s must be positive, got %d" % (name, value))
    return value


def completion_command(code: Any, cursor: Any) -> Dict[str, Any]:
    """Validate ``complete`` arguments; return the ``complete`` command."""
    if not isinstance(code, str):
        raise TypeError("code must be a str, not %s" % type(code).__name__)
    if cursor is None:
        cursor = len(code)
    if isinstance(cursor, bool) or not isinstance(cursor, int):
        raise TypeError("cursor must be an int, not %s" % type(cursor).__name__)
    if not 0 <= cursor <= len(code):
        raise ValueError("cursor %d is outside the code (0..%d)" % (cursor, len(code)))
    return {"t": "complete", "code": code, "cursor": cursor}


def _encodable(text: str) -> bool:
    try:
        text.encode(sys.getfilesystemencoding(), "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def check_seconds(name: str, value: Any, default: Optional[float]) -> Optional[float]:
    """None -> default; 0, infinity or FOREVER and beyond -> None (no limit);
    reject negatives, NaN and non-numbers."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be a number of seconds, not %s" % (name, type(value).__name__))
    if value < 0 or (isinstance(value, float) and math.isnan(value)):
        raise ValueError("%s must be >= 0 seconds, got %r" % (name, value))
    if not value or value >= FOREVER:
        return None  # 0, infinity and anything longer than FOREVER: no limit
    return float(value)


def current_directory() -> str:
    """os.getcwd(), or InvalidCwdError if the application's directory was removed."""
    try:
        return os.getcwd()
    except FileNotFoundError:
        raise InvalidCwdError(errno.ENOENT, "the current directory was removed; pass cwd= to "
                              "choose where contexts run", ".") from None


def describe_exit(returncode: Optional[int]) -> str:
    """Say how a process ended, from its return code (negative: a signal)."""
    if returncode is None:
        return "with an unknown status"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal %d" % -returncode
        return "killed by %s (status %d)" % (name, returncode)
    return "exited with status %d" % returncode


class Context:
    """One execution context: an id, a cwd and (usually) a live worker."""

    def __init__(self, context_id: str, cwd: str, engine: Engine) -> None:
        self.id = context_id
        self.cwd = cwd
        self._engine = engine
        self.worker: Optional[WorkerProcess] = None
        self.conn = core.Connection()
        self.run_lock = FifoLock()  # serialises runs in call order, from threads and tasks alike
        self._state = threading.Lock()  # guards worker, removed, _running, _run
        self.removed: Optional[str] = None  # why the context went away
        self._running: Optional[WorkerProcess] = None  # the worker a driver is using
        self._run: Optional[core.Run] = None  # the run a driver is pumping

    @property
    def busy(self) -> bool:
        """A run (or completion) is in progress."""
        return self._run is not None

    def snapshot(self) -> InterpreterContext:
        """The public view of this context, with ``active`` read now."""
        worker = self.worker
        return InterpreterContext(self.id, self.cwd, "python", worker is not None and worker.alive())

    def _spawn(self) -> WorkerProcess:
        """Start this context's worker (with ``_state`` held) and return it."""
        if self.removed:
            raise ContextNotFoundError("context %r was %s" % (self.id, self.removed))
        engine = self._engine
        if engine.sandbox is None:  # a sandbox's worker checks it inside (no host oracle)
            check_cwd(self.cwd)  # InvalidCwdError if the directory went away since
        try:
            worker = engine.launcher.start(self.cwd, engine.env, memory_limit=engine.memory_limit)
        except OSError as exc:
            raise InterpError("could not start a worker for context %r: %s" % (self.id, exc)) from exc
        self.worker = worker
        self.conn = core.Connection()
        return worker

    def start(self) -> None:
        """Start the worker now if the context has none yet."""
        with self._state:
            if self.worker is None:
                self._spawn()

    def begin(self, command: Dict[str, Any], timeout: Optional[float], now: float,
              callbacks: Mapping[str, Any], keep: Optional[int] = None) -> core.Run:
        """Make sure a worker is there and make a Run of ``command`` the context's current one.
        ``keep`` lowers the engine's ``max_output`` for this run (a front end
        that streams every line to its client keeps little).

        Raises WorkerDiedError (after starting a fresh worker) when the
        previous worker died while idle, so that death is never silent.
        """
        with self._state:
            if self.removed:
                raise ContextNotFoundError("context %r was %s" % (self.id, self.removed))
            worker = self.worker
            if worker is None:
                worker = self._spawn()
            elif not worker.alive():
                remains = self._remains(worker, now)
                returncode = self._replace(worker)
                self._check_setup(remains, returncode)
                why = describe_exit(returncode) if remains.fatal is None else remains.fatal
                raise WorkerDiedError(
                    "the worker of context %r died while idle (%s); its state is lost and "
                    "a fresh worker has been started: run the code again"
                    % (self.id, why), remains.result(), returncode)
            listen = [name for name in ("stdout", "stderr") if callbacks.get(name) is not None]
            if command.get("t") == "run":
                command = dict(command, dialect=self._engine.dialect)
            max_output = self._engine.max_output
            if keep is not None:
                max_output = keep if max_output is None else min(keep, max_output)
            run = core.Run(self.conn, worker, command, timeout=timeout, grace=self._engine.grace_period,
                           now=now, listen=listen, max_output=max_output)
            self._running = worker
            self._run = run
            return run

    def _replace(self, worker: WorkerProcess) -> Optional[int]:
        """Reap a dead or killed worker and start a fresh one (with ``_state``
        held); return the old one's exit status. A fresh worker that cannot
        start (the cwd is gone, say) is left for the next run to report."""
        returncode = worker.destroy()
        self.worker = None
        try:
            self._spawn()
        except (InterpError, OSError):
            pass
        return returncode

    def _remains(self, worker: WorkerProcess, now: float) -> core.Run:
        """What a worker that died while idle sent since its last run (a
        background thread's output, why it stopped), read from its channel
        and capture pipes into a Run that never ran."""
        run = core.Run(self.conn, worker, {"t": "run"}, timeout=None, grace=0.0, now=now)
        run.on_bytes(worker.read_channel(), now)
        run.on_eof(now, worker.salvage())
        return run

    def perform(self, run: core.Run, action: str) -> None:
        """Carry out a core action (INTERRUPT, LAST_LOOK or KILL) on the run's worker."""
        if action == core.INTERRUPT:
            run.worker.signal_group(signal.SIGINT)
        elif action == core.LAST_LOOK:
            self._last_look(run)
        else:
            run.worker.kill()

    def _last_look(self, run: core.Run) -> None:
        """The grace period is over: read what the channel holds (the answer
        may be there, behind output the caller's callbacks were slow to take),
        without calling callbacks; kill if it is not. A worker that obeyed
        the interrupt but was blocked on a full channel needs a moment to send
        the rest, so while bytes keep coming reading goes on, for at most
        LAST_LOOK_LIMIT seconds (this blocks an event loop as long)."""
        fd = run.worker.recv_fd
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        give_up_at = time.monotonic() + LAST_LOOK_LIMIT
        pause = 0  # a silent worker is killed at once; one that is sending gets a moment
        while not run.finished and poller.poll(pause) and time.monotonic() < give_up_at:
            pause = LAST_LOOK_PAUSE_MS
            try:
                data = os.read(fd, 1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            for item in self.receive(run, data, time.monotonic()):
                if isinstance(item, str):
                    self.perform(run, item)
            if not data:
                break
        for item in run.give_up():
            if isinstance(item, str):  # the rest is lines for callbacks, which are over (overdue)
                self.perform(run, item)

    def send(self, run: core.Run) -> None:
        """Write what the worker's channel takes now of the run's outgoing bytes."""
        try:
            run.sent(os.write(run.worker.send_fd, run.to_send()))
        except BlockingIOError:
            pass
        except OSError:  # the worker is gone; its EOF will follow
            run.cannot_send()

    def receive(self, run: core.Run, data: bytes, now: float) -> List[core.Item]:
        """Feed what the channel gave (``b""``: it closed) to the run."""
        if data:
            return run.on_bytes(data, now)
        return run.on_eof(now, run.worker.salvage())

    def route(self, run: core.Run, items: List[core.Item],
              callbacks: Mapping[str, Any]) -> Iterator[Tuple[str, Callable[[Any], Any], Any]]:
        """Perform the actions among ``items`` (first); yield ``(kind, callback,
        payload)`` for each event still to be delivered (nothing more once the
        run is aborted). Report each callback's outcome to :meth:`settle`.

        The clock is checked after each callback, so slow callbacks with a
        backlog of lines delay neither the deadline's interrupt nor the end
        of the grace period."""
        queue = deque(self._act(run, items))
        wake = run.wakeup_at()
        while queue:
            kind, payload = queue.popleft()
            if run.delivering:
                callback = callbacks.get(kind)
                if callback is not None:
                    yield kind, callback, payload
                    if wake is not None and time.monotonic() >= wake:
                        queue.extend(self._act(run, run.on_timer(time.monotonic())))
                        wake = run.wakeup_at()
                elif kind == "input":
                    run.answer_input(None)

    def _act(self, run: core.Run, items: List[core.Item]) -> List[core.Event]:
        """Perform the actions among ``items`` at once (an interrupt must not
        wait behind a backlog of lines); return the events, in order."""
        events = []
        for item in items:
            if isinstance(item, str):
                self.perform(run, item)
            else:
                events.append(item)
        return events

    def settle(self, run: core.Run, kind: str, value: Any = None,
               exc: Optional[BaseException] = None) -> None:
        """A callback raised ``exc``, or ``on_input`` returned ``value``: pass
        an input answer on (EOFError means EOF), or abort the run if it raised."""
        if kind == "input" and exc is None and not isinstance(value, str):
            exc = TypeError("on_input must return a str, not %s" % type(value).__name__)
        if kind == "input" and isinstance(exc, InputInterrupted):
            run.answer_input(None, interrupt=True)
        elif kind == "input" and (exc is None or isinstance(exc, EOFError)):
            run.answer_input(None if exc is not None else value)
        elif exc is not None:
            for action in run.abort(exc, time.monotonic()):
                self.perform(run, action)

    def abort(self, run: core.Run, reason: BaseException) -> None:
        """The caller was interrupted (KeyboardInterrupt, cancellation): stop the run."""
        self.settle(run, "abort", exc=reason)

    def interrupt(self) -> None:
        """SIGINT to the running code (and its children); no-op when idle.

        Never lost and never fatal: a worker still starting is signalled once
        it is ready, and one that got the SIGINT before it began the run asks
        for it again (see the ``started`` message in protocol)."""
        with self._state:
            run = self._run
            if run is None or run.finished:
                return
            run.interrupt_requested = True
            if run.conn.ready:
                run.worker.signal_group(signal.SIGINT)

    def restart(self) -> InterpreterContext:
        """Replace the worker with a fresh one (same id and cwd); state is lost.

        A run in progress ends with ContextRestartedError. The old worker
        stays until the new one has started, unless the new one cannot start
        beside it (a process limit reached, say): then it goes first.
        """
        with self._state:
            if self.removed:
                raise ContextNotFoundError("context %r was %s" % (self.id, self.removed))
            old = self.worker
            try:
                self._spawn()
            except InvalidCwdError:
                raise  # the old worker keeps running where it is
            except (InterpError, OSError):
                if old is None:
                    raise
                self._retire(old)
                self.worker = old = None
                self._spawn()
            if old is not None:
                self._retire(old)
        return self.snapshot()

    def _retire(self, worker: WorkerProcess) -> None:
        """Kill a worker this context no longer uses. The one a driver is
        using is only killed: the driver sees EOF and finish() reaps it."""
        if worker is self._running:
            worker.kill()
        else:
            worker.destroy()

    def _check_setup(self, run: core.Run, returncode: Optional[int]) -> None:
        """Raise what a worker that refused its setup means, whether its end
        was seen during a run or before one: InvalidCwdError if a sandbox's
        worker could not enter its cwd (checked inside, where the code's
        files are, never on the host; unsandboxed, that is a WorkerDiedError
        as before); WorkerDiedError saying the code did not run if it
        refused a limit (too low, say)."""
        if run.fatal_errno is not None and self._engine.sandbox is not None:
            raise InvalidCwdError(run.fatal_errno, "context cwd is not a usable directory where the code "
                                  "runs (%s)" % run.fatal, self.cwd)
        if run.fatal is not None and run.fatal.startswith(SETUP_REFUSED):
            raise WorkerDiedError("the worker of context %r could not start: %s; the code did not run"
                                  % (self.id, run.fatal), run.result(), returncode)

    def finish(self, run: core.Run) -> ExecutionResult:
        """Settle the context after a run; return its result or raise.

        A run the driver left unfinished (the driver itself was interrupted)
        is killed. A killed or lost worker is replaced by a fresh one.
        """
        with self._state:
            self._running = None
            self._run = None
            worker = run.worker
            if run.conn.ready:
                worker.started()
            if self.removed:
                worker.destroy()
                raise ContextNotFoundError("context %r was %s during the run" % (self.id, self.removed))
            if worker is not self.worker:
                worker.destroy()
                raise ContextRestartedError(
                    "context %r was restarted during the run; its state is lost" % self.id, run.result())
            if run.state == core.DONE:
                if run.timed_out and run.abort_reason is None and not run.is_completion:
                    raise InterpTimeoutError(
                        "the run exceeded its timeout and was interrupted; the context "
                        "kept its state", run.result(), restarted=False)
                return run.result()
            was_ready = run.conn.ready
            returncode = self._replace(worker)
        if run.state == core.LOST:
            self._check_setup(run, returncode)
            if run.protocol_error is not None:
                why = "sent an invalid frame (%s) and was killed" % run.protocol_error
            elif run.fatal is not None:
                why = "stopped: %s" % run.fatal
            elif not was_ready:
                startup_stderr = worker.startup_stderr
                why = "failed to start (%s)" % describe_exit(returncode)
                if startup_stderr.strip():
                    why += ":\n" + startup_stderr.strip()
            else:
                why = "died during the run (%s)" % describe_exit(returncode)
            raise WorkerDiedError(
                "the worker of context %r %s; its state is lost and a fresh worker has been "
                "started" % (self.id, why), run.result(), returncode)
        if run.timed_out and run.abort_reason is None:
            raise InterpTimeoutError(
                "the run exceeded its timeout, ignored the interrupt for %gs and was "
                "killed; the context was restarted and its state is lost"
                % self._engine.grace_period, run.result(), restarted=True)
        if run.abort_reason is not None and hasattr(run.abort_reason, "add_note"):
            run.abort_reason.add_note(
                "interp: the run did not stop on interrupt, so context %r was restarted "
                "and its state is lost" % self.id)
        return run.result()

    def conclude(self, run: core.Run) -> ExecutionResult:
        """After a driver's loop: settle the context (finish) and raise what
        stopped the run from the caller's side, if anything did."""
        result = self.finish(run)
        reason = run.abort_reason
        if reason is not None:
            if isinstance(reason, RunCancelledError):
                reason.result = result
            raise reason
        return result

    def remove(self, reason: str) -> None:
        """Take the context away for good: kill its worker and every child."""
        with self._state:
            self.removed = reason
            for worker in self._workers():
                self._retire(worker)

    def abandon(self) -> None:
        """In a forked copy of the parent: let go of the worker without
        touching it (it belongs to the original process)."""
        self.removed = "left to the parent process"
        for worker in self._workers():
            worker.abandon()

    def _workers(self) -> List[WorkerProcess]:
        """The context's worker and the one a driver is using, if another."""
        workers = [self.worker] if self.worker is not None else []
        if self._running is not None and self._running is not self.worker:
            workers.append(self._running)
        return workers


_live_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for engine in list(_live_engines):
        if engine.owner_pid == os.getpid():
            engine.close()


def _forget_inherited() -> None:
    """After os.fork() in the application: the child must neither kill the
    parent's workers nor keep their channels open (which would keep them
    alive after the parent dies). Its interpreters become closed."""
    for engine in list(_live_engines):
        if engine.owner_pid != os.getpid():
            engine.abandon()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited)


class Engine:
    """The contexts of one interpreter, shared by the sync and async APIs."""

    def __init__(self, cwd: Optional[str] = None, *,
                 env: Optional[Mapping[str, str]] = None,
                 max_output: Optional[int] = DEFAULT_MAX_OUTPUT,
                 memory_limit: Optional[int] = None,
                 grace_period: float = DEFAULT_GRACE_PERIOD,
                 launcher: Optional[Launcher] = None, sandbox: Union[Sandbox, bool, None] = None,
                 dialect: str = DEFAULT_DIALECT) -> None:
        if dialect not in DIALECTS:
            raise ValueError("dialect must be one of %s, not %r" % (", ".join(map(repr, DIALECTS)), dialect))
        self.dialect = dialect
        self.sandbox = sandbox_option(sandbox)
        if self.sandbox is not None and (launcher is not None or env is not None):
            raise ValueError("a sandboxed interpreter takes no %s: %s" % (
                ("launcher", "it starts its own") if launcher is not None
                else ("env", "give the environment as Sandbox(env=...)")))
        self.cwd = self.check_cwd(cwd) if cwd is not None else None
        self.env: Optional[Dict[str, str]] = check_environment("env", env)  # None: inherit
        self.max_output = _check_size("max_output", max_output)
        self.memory_limit = _check_size("memory_limit", memory_limit)
        if self.memory_limit is not None and self.memory_limit < MIN_MEMORY_LIMIT:
            raise ValueError("memory_limit=%d is too low to start a worker: a worker maps up to about 100 MB "
                             "of address space before it runs anything and needs 64 MiB more to run code; "
                             "give at least %d (256 MiB), or None for no limit"
                             % (self.memory_limit, MIN_MEMORY_LIMIT))
        grace = check_seconds("grace_period", grace_period, DEFAULT_GRACE_PERIOD)
        if grace is None and grace_period:
            raise ValueError("grace_period must be finite: a run that ignores its interrupt "
                             "must eventually be killed")
        self.grace_period = grace if grace is not None else 0.0
        if self.sandbox is not None:
            launcher = self._own_launcher = SandboxLauncher.for_sandbox(self.sandbox)
            self.cwd = self.cwd or self.sandbox.workspace
        self.launcher = launcher or default_launcher()
        prestart = getattr(self.launcher, "prestart", None)
        if prestart is not None:
            try:
                prestart()
            except BaseException:
                if self._own_launcher is not None:
                    self._own_launcher.close()
                raise
        self._lock = threading.Lock()
        self._contexts: Dict[str, Context] = {}
        self._default: Optional[Context] = None
        self._closed = False
        self.owner_pid = os.getpid()
        _live_engines.add(self)

    _own_launcher: Optional[SandboxLauncher] = None  # the sandbox's, closed with the engine

    def check_cwd(self, cwd: str) -> str:
        """``cwd`` made absolute; InvalidCwdError if it is no directory (or the sandbox does not show it).
        A sandbox's cwd is only checked by name here, and for real by the
        worker inside: the host never follows the workspace's symlinks."""
        if self.sandbox is not None:
            return self.sandbox.check_cwd(os.path.abspath(os.fspath(cwd)))
        return check_cwd(cwd)

    def describe(self) -> str:
        """A short text for the interpreters' reprs."""
        return "cwd=%r contexts=%d%s" % (self.cwd, len(self._contexts), " closed" if self._closed else "")

    def _check_open(self) -> None:
        if self._closed:
            if self.owner_pid != os.getpid():
                raise InterpError("this interpreter belongs to the process that created it, not "
                                  "to this fork of it; create a new one here")
            raise InterpError("this interpreter is closed; create a new one")

    def abandon(self) -> None:
        """Forget every context without touching its worker (see _forget_inherited)."""
        self._closed = True
        self._lock = threading.Lock()  # it may have been held by another thread at fork time
        contexts = list(self._contexts.values()) + ([self._default] if self._default else [])
        self._contexts.clear()
        for context in contexts:
            context.abandon()

    def create(self, cwd: Optional[str]) -> Context:
        path = self.check_cwd(cwd if cwd is not None else (self.cwd or current_directory()))
        context = Context(str(uuid.uuid4()), path, self)
        with self._lock:
            self._check_open()
            self._contexts[context.id] = context
        try:
            with context._state:
                context._spawn()
        except BaseException:
            with self._lock:
                self._contexts.pop(context.id, None)
            raise
        return context

    def resolve(self, ref: ContextRef) -> Context:
        """The context for a run: None (or the id ``"default"``) is the default
        one, started on first use."""
        with self._lock:
            self._check_open()
            return self._lookup(ref)

    def workspace_fd(self) -> int:
        """A descriptor of the sandbox's workspace as its code sees it (see
        SandboxLauncher.workspace_fd); InterpError once closed."""
        with self._lock:
            self._check_open()
            launcher = self._own_launcher
        if launcher is None:
            raise InterpError("this interpreter has no sandbox")
        return launcher.workspace_fd()

    def _lookup(self, ref: ContextRef) -> Context:
        if ref is None:
            key = DEFAULT_CONTEXT_ID
        elif isinstance(ref, InterpreterContext):
            key = ref.id
        elif isinstance(ref, str):
            key = ref
        else:
            raise TypeError("context must be an InterpreterContext or its id, not %s"
                            % type(ref).__name__)
        if key == DEFAULT_CONTEXT_ID:
            if self._default is None:
                self._default = Context(DEFAULT_CONTEXT_ID, self.cwd or current_directory(), self)
            return self._default
        context = self._contexts.get(key)
        if context is None:
            raise ContextNotFoundError("no context with id %r (deleted, or never created)" % key)
        return context

    def list(self) -> List[InterpreterContext]:
        with self._lock:
            self._check_open()
            contexts = list(self._contexts.values())
        return [context.snapshot() for context in contexts]

    def delete(self, ref: ContextRef) -> None:
        if ref is None:
            raise TypeError("delete_context needs a context (or its id)")
        with self._lock:
            self._check_open()
            context = self._lookup(ref)
            if context is self._default:
                self._default = None  # the next run on the default context starts a new one
            else:
                del self._contexts[context.id]
        context.remove("deleted")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            contexts = list(self._contexts.values())
            if self._default is not None:
                contexts.append(self._default)
            self._contexts.clear()
        for context in contexts:
            context.remove("closed")
        if self._own_launcher is not None:
            self._own_launcher.close()
