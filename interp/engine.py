"""Contexts and their registry: the I/O-free bookkeeping under both APIs.

:class:`Engine` owns the contexts of one interpreter (sync or async) and
validates arguments; :class:`Context` owns one worker process and turns the
end state of a :class:`~interp.core.Run` into a result or an exception.
Neither waits on a pipe: the drivers in ``api.py`` and ``aio.py`` do that.
"""

from __future__ import annotations

import atexit
import math
import os
import signal
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from . import core
from .errors import ContextNotFoundError, InterpError, InterpTimeoutError, WorkerDiedError
from .process import Launcher, WorkerProcess, check_cwd
from .types import ExecutionResult, InterpreterContext

DEFAULT_TIMEOUT = 600.0
DEFAULT_GRACE_PERIOD = 2.0
DEFAULT_CONTEXT_ID = "default"

ContextRef = Union[InterpreterContext, str, None]


def check_run_args(code: Any, envs: Any, timeout: Any) -> Optional[float]:
    """Validate ``run_code`` arguments; return the timeout in seconds (None: none)."""
    if not isinstance(code, str):
        raise TypeError("code must be a str, not %s" % type(code).__name__)
    if envs is not None:
        if not isinstance(envs, Mapping):
            raise TypeError("envs must be a mapping of str to str, not %s" % type(envs).__name__)
        for key, value in envs.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError("envs keys and values must be str; got %r: %r" % (key, value))
            if not key or "=" in key or "\0" in key or "\0" in value:
                raise ValueError("invalid environment variable %r=%r" % (key, value))
    return check_seconds("timeout", timeout, DEFAULT_TIMEOUT)


def check_seconds(name: str, value: Any, default: Optional[float]) -> Optional[float]:
    """None -> default, 0 -> None (no limit); reject negatives, NaN and non-numbers."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be a number of seconds, not %s" % (name, type(value).__name__))
    if math.isnan(value) or value < 0:
        raise ValueError("%s must be >= 0 seconds, got %r" % (name, value))
    return float(value) if value else None


def describe_exit(returncode: Optional[int]) -> str:
    if returncode is None:
        return "with an unknown status"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal %d" % -returncode
        return "killed by %s (status %d)" % (name, returncode)
    return "exited with status %d" % returncode


class FifoLock:
    """A mutex granted in the order it was requested (threading.Lock is not)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: "list[threading.Lock]" = []
        self._locked = False

    def __enter__(self) -> "FifoLock":
        with self._mutex:
            if not self._locked:
                self._locked = True
                return self
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        try:
            waiter.acquire()  # release() hands the lock over by releasing this
        except BaseException:
            with self._mutex:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                    raise
            self.__exit__()  # it was handed to us as we were interrupted
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.pop(0).release()
            else:
                self._locked = False


class Context:
    """One execution context: an id, a cwd and (usually) a live worker."""

    def __init__(self, context_id: str, cwd: str, engine: "Engine") -> None:
        self.id = context_id
        self.cwd = cwd
        self._engine = engine
        self.worker: Optional[WorkerProcess] = None
        self.conn = core.Connection()
        self.run_lock: Any = engine.lock_factory()  # serialises runs in call order
        self._state = threading.Lock()  # guards worker, busy, removed
        self.busy = False
        self.removed: Optional[str] = None  # why the context went away

    def snapshot(self) -> InterpreterContext:
        worker = self.worker
        return InterpreterContext(self.id, self.cwd, "python", worker is not None and worker.alive())

    def _spawn(self) -> None:
        self.worker = self._engine.launcher.start(self.cwd, self._engine.env)
        self.conn = core.Connection()

    def begin(self, code: str, envs: Optional[Dict[str, str]], timeout: Optional[float],
              now: float, filename: Optional[str] = None) -> core.Run:
        """Make sure a worker is there and mark the context busy; return the Run.

        Raises WorkerDiedError (after starting a fresh worker) when the
        previous worker died while idle, so that death is never silent.
        """
        with self._state:
            if self.removed:
                raise ContextNotFoundError("context %r was %s" % (self.id, self.removed))
            if self.worker is None:
                self._spawn()
            elif not self.worker.alive():
                returncode = self.worker.destroy()
                self.worker = None
                self._spawn()
                raise WorkerDiedError(
                    "the worker of context %r died while idle (%s); its state is lost and "
                    "a fresh worker has been started: run the code again"
                    % (self.id, describe_exit(returncode)), None, returncode)
            self.busy = True
            return core.Run(self.conn, code, envs=envs, timeout=timeout,
                            grace=self._engine.grace_period, now=now, filename=filename)

    def perform(self, action: str) -> None:
        """Carry out a core action (INTERRUPT or KILL) on the worker."""
        worker = self.worker
        if worker is not None:
            worker.signal_group(signal.SIGINT if action == core.INTERRUPT else signal.SIGKILL)

    def receive(self, run: core.Run, data: bytes, now: float) -> List[core.Item]:
        """Feed what the channel gave (``b""``: it closed) to the run."""
        if data:
            return run.on_bytes(data, now)
        return run.on_eof(now, self.worker.salvage() if self.worker is not None else {})

    def route(self, run: core.Run, items: List[core.Item],
              callbacks: Mapping[str, Optional[Callable[[Any], Any]]]) -> Iterator[Tuple[Callable[[Any], Any], Any]]:
        """Perform the actions among ``items``; yield each (callback, payload)
        still to be delivered. Stops yielding once the run is aborted."""
        for item in items:
            if isinstance(item, str):
                self.perform(item)
            elif run.delivering:
                callback = callbacks.get(item[0])
                if callback is not None:
                    yield callback, item[1]

    def abort(self, run: core.Run, reason: BaseException) -> None:
        """A callback raised or the caller was interrupted: stop the run."""
        for action in run.abort(reason, time.monotonic()):
            self.perform(action)

    def finish(self, run: core.Run) -> ExecutionResult:
        """Settle the context after a run; return its result or raise.

        A run the driver left unfinished (the driver itself was interrupted)
        is killed. A killed or lost worker is replaced by a fresh one.
        """
        with self._state:
            self.busy = False
            worker = self.worker
            assert worker is not None
            if self.conn.ready:
                worker.started()
            if self.removed:
                worker.destroy()
                raise ContextNotFoundError("context %r was %s during the run" % (self.id, self.removed))
            if run.state == core.DONE:
                if run.timed_out and run.abort_reason is None:
                    raise InterpTimeoutError(
                        "the run exceeded its timeout and was interrupted; the context "
                        "kept its state", run.result(), restarted=False)
                return run.result()
            returncode = worker.destroy()
            was_ready = self.conn.ready
            self.worker = None
            self._spawn()
        if run.state == core.LOST:
            if run.protocol_error is not None:
                why = "sent an invalid frame (%s) and was killed" % run.protocol_error
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

    def remove(self, reason: str) -> None:
        """Take the context away for good: kill its worker and every child."""
        with self._state:
            self.removed = reason
            worker = self.worker
            if worker is None:
                return
            if self.busy:  # the running driver sees EOF and finishes the job
                worker.signal_group(signal.SIGKILL)
            else:
                worker.destroy()


_live_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for engine in list(_live_engines):
        engine.close()


class Engine:
    """The contexts of one interpreter, shared by the sync and async APIs."""

    def __init__(self, cwd: Optional[str], grace_period: float, launcher: Optional[Launcher],
                 lock_factory: Callable[[], Any]) -> None:
        self.cwd = check_cwd(cwd) if cwd is not None else None
        grace = check_seconds("grace_period", grace_period, DEFAULT_GRACE_PERIOD)
        self.grace_period = grace if grace is not None else 0.0
        self.launcher = launcher or Launcher()
        self.env: Optional[Mapping[str, str]] = None  # None: inherit os.environ
        self.lock_factory = lock_factory
        self._lock = threading.Lock()
        self._contexts: Dict[str, Context] = {}
        self._default: Optional[Context] = None
        self._closed = False
        _live_engines.add(self)

    def _check_open(self) -> None:
        if self._closed:
            raise InterpError("this interpreter is closed; create a new one")

    def create(self, cwd: Optional[str]) -> Context:
        path = check_cwd(cwd if cwd is not None else (self.cwd or os.getcwd()))
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
        """The context for a run: None is the default one, started on first use."""
        with self._lock:
            self._check_open()
            if ref is None:
                if self._default is None:
                    self._default = Context(DEFAULT_CONTEXT_ID, self.cwd or os.getcwd(), self)
                return self._default
            return self._lookup(ref)

    def _lookup(self, ref: ContextRef) -> Context:
        if isinstance(ref, InterpreterContext):
            key = ref.id
        elif isinstance(ref, str):
            key = ref
        else:
            raise TypeError("context must be an InterpreterContext or its id, not %s"
                            % type(ref).__name__)
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
        with self._lock:
            self._check_open()
            context = self._lookup(ref)
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
