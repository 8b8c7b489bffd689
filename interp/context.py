"""One execution context: its worker's life (start, replace, retire) and
how the end of a :class:`~interp.core.Run` on it becomes a result or an
exception. I/O-free like the engine: the drivers in ``api.py`` and
``aio.py`` wait on the pipes and call back here.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple

from . import core
from ._locks import FifoLock
from .commands import InputInterrupted, describe_exit
from .errors import (ContextNotFoundError, ContextRestartedError, InterpError, InterpTimeoutError,
                     InvalidCwdError, RunCancelledError, WorkerDiedError)
from .process import WorkerProcess, check_cwd
from .types import ExecutionResult, InterpreterContext

if TYPE_CHECKING:
    from .engine import Engine

#: A last look (see Context._last_look) reads for at most this many seconds,
#: and stops once the worker has sent nothing for LAST_LOOK_PAUSE_MS.
LAST_LOOK_LIMIT = 0.5
LAST_LOOK_PAUSE_MS = 50
#: How a worker's fatal message starts when it refused its setup (interp/_worker/worker.py).
SETUP_REFUSED = "the context could not be set up: "


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

    def route(self, run: core.Run, items: List[core.Item], callbacks: Mapping[str, Any],
              deferred: Optional[List[str]] = None) -> Iterator[Tuple[str, Callable[[Any], Any], Any]]:
        """Perform the actions among ``items`` (first); yield ``(kind, callback,
        payload)`` for each event still to be delivered (nothing more once the
        run is aborted). Report each callback's outcome to :meth:`settle`.
        With ``deferred``, a LAST_LOOK (which may read for a while) is put
        there for the driver to perform off its event loop.

        The clock is checked after each callback, so slow callbacks with a
        backlog of lines delay neither the deadline's interrupt nor the end
        of the grace period."""
        queue = deque(self._act(run, items, deferred))
        wake = run.wakeup_at()
        while queue:
            kind, payload = queue.popleft()
            if run.delivering:
                callback = callbacks.get(kind)
                if callback is not None:
                    yield kind, callback, payload
                    if wake is not None and time.monotonic() >= wake:
                        queue.extend(self._act(run, run.on_timer(time.monotonic()), deferred))
                        wake = run.wakeup_at()
                elif kind == "input":
                    run.answer_input(None)

    def _act(self, run: core.Run, items: List[core.Item], deferred: Optional[List[str]] = None) -> List[core.Event]:
        """Perform the actions among ``items`` at once (an interrupt must not
        wait behind a backlog of lines); return the events, in order."""
        events = []
        for item in items:
            if deferred is not None and item == core.LAST_LOOK:
                deferred.append(item)
            elif isinstance(item, str):
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
