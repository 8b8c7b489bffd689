"""Starting, signalling and killing worker processes.

Everything about *how* a worker comes to life sits behind a launcher's
``start(cwd, env) -> WorkerProcess``; the rest of the package only sees
:class:`WorkerProcess` handles. Two launchers exist:

* :class:`SpawnLauncher` starts ``python -c <bootstrap>`` for every worker
  (any interpreter, ~20-40 ms);
* :class:`ZygoteLauncher` (the default) asks a warmed zygote process to fork
  one (~1-2 ms), and falls back to spawning if the zygote cannot be used.

Either way a worker is a session and process-group leader whose stdin and
stdout are its channel, with capture pipes for its fds 1 and 2.
"""

from __future__ import annotations

import atexit
import errno
import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Tuple

from . import protocol
from ._worker.proctree import is_stopped
from ._worker_handle import Pipes, WorkerProcess, pidfd_exited, pidfd_signal
from ._zygote_client import (BOOTSTRAP, PROTOCOL_PATH, WORKER_PACKAGE, ZYGOTE_BATCH, ZYGOTE_BOOTSTRAP,
                             ZYGOTE_TIMEOUT, ZygoteError, _Zygote, host_pid)

__all__ = [
    "BOOTSTRAP",
    "PROTOCOL_PATH",
    "WORKER_PACKAGE",
    "ZYGOTE_BOOTSTRAP",
    "ZYGOTE_TIMEOUT",
    "Launcher",
    "SpawnLauncher",
    "WorkerProcess",
    "ZygoteError",
    "ZygoteLauncher",
    "check_cwd",
    "default_launcher",
    "host_pid",
]


#: Contexts started within this many seconds of each other are a burst (see ZygoteLauncher).
BURST_GAP = 0.1
#: How many workers the pool grows to in a burst, by default: refilled 4 at a
#: time, a request's cost to the zygote is a quarter per worker, and at most
#: 8 idle workers are left (16 would save a few more microseconds a context).
BURST_POOL = 8
#: How long a spawned worker's supervisor may take to follow its worker out.
SUPERVISOR_GRACE = 1.0


def check_cwd(cwd: str) -> str:
    """Return ``cwd`` made absolute, or raise InvalidCwdError."""
    from .errors import InvalidCwdError

    path = os.path.abspath(os.fspath(cwd))
    if not os.path.exists(path):
        raise InvalidCwdError(errno.ENOENT, "context cwd does not exist", path)
    if not os.path.isdir(path):
        raise InvalidCwdError(errno.ENOTDIR, "context cwd is not a directory", path)
    return path


def _supervisor_exited(pid: int, channel: int) -> Callable[[], bool]:
    """exited() for a spawned worker's supervisor (our child), which exits
    right after its worker, with the worker's status: once the worker's
    channel hung up, give the supervisor a moment to do so."""
    def gone() -> bool:
        try:
            return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def exited() -> bool:
        if gone():
            return True
        poller = select.poll()
        poller.register(channel, 0)  # POLLHUP: the worker closed its end (it exited)
        if not poller.poll(0):
            return False
        give_up_at = time.monotonic() + SUPERVISOR_GRACE
        while not gone() and time.monotonic() < give_up_at:
            time.sleep(0.001)
        return True
    return exited


class Launcher(Protocol):
    """What the engine needs from a launcher."""

    def start(self, cwd: str, env: Optional[Mapping[str, str]] = None, *,
              memory_limit: Optional[int] = None) -> WorkerProcess:
        """Start a worker in ``cwd`` with environment ``env`` (None: inherit)
        and an address-space limit of ``memory_limit`` bytes (None: none)."""
        ...


class SpawnLauncher:
    """Starts each worker as a fresh ``python`` process (default: sys.executable).

    ``sys.executable`` is used as is: a PATH lookup could find a slow shim and
    resolving symlinks would step out of a virtualenv. Works with any Python
    >= 3.9 given as ``python``. The process started forks the worker and
    stays as its supervisor (see ``zygote.supervise``), so that processes
    the worker starts as its siblings (``clone(CLONE_PARENT)``) are still
    found and killed with it.
    """

    def __init__(self, python: Optional[str] = None):
        self.python = python or sys.executable

    def start(self, cwd: str, env: Optional[Mapping[str, str]] = None, *,
              memory_limit: Optional[int] = None) -> WorkerProcess:
        """Start a worker in ``cwd`` with ``env`` (None: inherit os.environ)."""
        pipes = Pipes()
        capture = pipes.child_ends()[3:]
        options = json.dumps({"memory_limit": memory_limit})
        try:
            popen = subprocess.Popen(
                [self.python, "-c", BOOTSTRAP, PROTOCOL_PATH, WORKER_PACKAGE, *map(str, capture), options],
                stdin=pipes.to_worker_r, stdout=pipes.from_worker_w, stderr=pipes.err_w,
                cwd=cwd, env=None if env is None else dict(env), close_fds=True,
                pass_fds=capture, start_new_session=True)
        except BaseException:
            pipes.close_all()
            raise
        return pipes.handle(popen.pid, exited=_supervisor_exited(popen.pid, pipes.from_worker_r),
                            reap=lambda: _reap_child(popen))

    def close(self) -> None:
        pass


def _reap_child(popen: subprocess.Popen[bytes]) -> Optional[int]:
    """Reap a killed worker's supervisor (our child), waiting at most
    SUPERVISOR_GRACE: one that does not follow is killed first, never waited for
    without a deadline."""
    try:
        return popen.wait(SUPERVISOR_GRACE)
    except subprocess.TimeoutExpired:
        popen.kill()  # our unreaped child: its pid is still its own
        return popen.wait()


class _Batch:
    """Workers asked of the zygote in one spawn request: its number, and
    the answer (read once, by whichever of them is taken first) that names
    them all, a pid and a pidfd each."""

    def __init__(self, zygote: _Zygote, number: int, size: int) -> None:
        self.zygote = zygote
        self.number = number
        self.lock = threading.Lock()
        self.pids: Optional[List[Any]] = None
        self.pidfds: List[Optional[int]] = [None] * size
        self.error = ""

    def take(self, index: int) -> Tuple[Any, Optional[int]]:
        """The pid and pidfd (the caller's to close) of the ``index``-th
        worker; ZygoteError if the zygote did not fork it."""
        with self.lock:
            if self.pids is None and not self.error:
                try:
                    reply = self.zygote.answer(self.number)
                except ZygoteError as exc:
                    self.error = str(exc)
                else:
                    pids, fds = reply.get("pids"), reply["fds"]
                    if not isinstance(pids, list) or len(pids) > len(self.pidfds) or (fds and len(fds) != len(pids)):
                        for fd in fds:
                            os.close(fd)
                        self.error = "the zygote's reply does not name the workers asked: %r" % (reply,)
                    else:
                        self.pids = pids
                        self.pidfds[:len(fds)] = fds
            if self.pids is None:
                raise ZygoteError(self.error)
            if index >= len(self.pids):
                raise ZygoteError("the zygote forked %d of the %d workers asked" % (len(self.pids), len(self.pidfds)))
            pidfd, self.pidfds[index] = self.pidfds[index], None
            return self.pids[index], pidfd

    def abandon(self) -> None:
        """In a forked copy of the owning process: close the pidfds not taken."""
        for index, fd in enumerate(self.pidfds):
            if fd is not None:
                self.pidfds[index] = None
                os.close(fd)


class _Forked:
    """A worker asked of the zygote: its batch, its place in it and the
    pipes sent for it, until the answer makes it a WorkerProcess."""

    def __init__(self, batch: _Batch, index: int, pipes: Pipes) -> None:
        self.batch = batch
        self.index = index
        self.pipes: Optional[Pipes] = pipes
        self.worker: Optional[WorkerProcess] = None

    def abandon(self) -> None:
        """In a forked copy of the owning process: close our copies of its fds."""
        if self.worker is not None:
            self.worker.abandon()
        elif self.pipes is not None:
            self.pipes.close_all()
            self.pipes = None
        self.batch.abandon()


class ZygoteLauncher:
    """Forks workers from a warmed zygote process; spawns when it cannot.

    The zygote is started on first use (or by :meth:`prestart`) and shared
    by every interpreter in this process that uses the default launcher. It
    forks workers ahead of need: ``pool_size`` of them wait, fully started,
    and :meth:`start` hands one out with a ``setup`` command (cwd,
    environment, limits), then forks its replacement (one zygote round
    trip, about a millisecond), so a new context's first run does not wait
    for a Python to start. While contexts start in a burst (each within
    BURST_GAP of the one before) the pool grows, doubling up to
    ``burst_pool`` workers, and is refilled by half of that at a time in one
    request (a request costs the zygote more than a fork); after a burst,
    the workers left wait in the pool until used, :meth:`trim` or
    :meth:`close`. Each worker gets the environment given
    (default: this process's ``os.environ`` at the time of the request).
    What Python reads only at start-up (``sys.path``, the locale, hashing;
    see STARTUP_VARIABLES) is the zygote's: an ``env`` that changes any of
    those variables is started by spawning instead.
    """

    def __init__(self, python: Optional[str] = None, pool_size: int = 1, burst_pool: int = BURST_POOL):
        self.python = python or sys.executable
        self.pool_size = pool_size
        self.burst_pool = max(pool_size, burst_pool)
        self._target = pool_size  # how many workers the pool holds at most now (more in a burst)
        self._last_start = -math.inf
        self.fallback = SpawnLauncher(self.python)
        self._zygote: Optional[_Zygote] = None
        self._zygote_env: Dict[str, str] = {}
        # The environment the zygote was started with (os.environ's bytes, when
        # it was started with os.environ): while os.environ is unchanged, a
        # worker that inherits it keeps the one it has, and its setup sends none.
        self._zygote_environ: Optional[Dict[bytes, bytes]] = None
        self._pool: List[_Forked] = []  # asked of the zygote, answered or not
        self._lock = threading.Lock()
        self._failures = 0
        _launchers.add(self)

    def _forget_inherited(self) -> None:
        """In a forked copy of the owning process: drop the zygote and the
        pool without touching them, and close our copies of their fds."""
        self._lock = threading.Lock()
        zygote, pool = self._zygote, self._pool
        self._zygote, self._pool = None, []
        if zygote is not None:
            zygote.abandon()
        for forked in pool:
            forked.abandon()

    def prestart(self) -> None:
        """Start the zygote process now without waiting for it: it warms up
        while the caller does other work (the first start() fills the pool)."""
        try:
            self._get_zygote()
        except (OSError, ZygoteError):
            pass

    def helper_pids(self) -> List[int]:
        """The zygote's pid and those of the idle pooled workers (waiting
        for the zygote's answer about a worker still being forked)."""
        with self._lock:
            zygote = self._zygote
            if zygote is None or zygote.broken or zygote.owner_pid != os.getpid():
                return []
            pids = [zygote.pid]
            for forked in self._pool:
                try:
                    pids.append(self._take(forked).pid)
                except (OSError, ZygoteError):
                    pass
            return pids

    def _get_zygote(self) -> _Zygote:
        with self._lock:
            zygote = self._zygote
            if zygote is not None and not zygote.broken and zygote.owner_pid == os.getpid():
                return zygote
            if self._failures >= 3:
                raise ZygoteError("the zygote failed %d times; spawning instead" % self._failures)
            if zygote is not None and zygote.owner_pid == os.getpid():
                self._stop_locked()
            else:
                self._pool = []  # inherited through a fork of this process: not ours to touch
            self._zygote_env = _python_vars(self._environment())
            self._zygote_environ = None  # unless _make_zygote says which
            self._zygote = self._make_zygote()
            return self._zygote

    def _environment(self) -> Mapping[str, str]:
        """The environment workers get by default (and the zygote starts with)."""
        return os.environ

    def _make_zygote(self) -> _Zygote:
        environ = dict(os.environ)
        self._zygote_environ = dict(_environ_bytes())
        return _Zygote(self.python, env=environ)

    def start(self, cwd: str, env: Optional[Mapping[str, str]] = None, *,
              memory_limit: Optional[int] = None) -> WorkerProcess:
        """Start a worker in ``cwd`` with ``env`` (None: this process's os.environ)."""
        try:
            return self._start_forked(cwd, env, memory_limit)
        except (OSError, ZygoteError):
            return self.fallback.start(cwd, env, memory_limit=memory_limit)

    def _start_forked(self, cwd: str, env: Optional[Mapping[str, str]],
                      memory_limit: Optional[int]) -> WorkerProcess:
        """Hand out a worker forked by the zygote (OSError or ZygoteError if it cannot)."""
        zygote = self._get_zygote()
        with self._lock:
            now = time.monotonic()
            burst = now - self._last_start < BURST_GAP
            self._target = min(2 * self._target, self.burst_pool) if burst else self.pool_size
            self._last_start = now
        inherited = self._zygote_environ
        environ: Optional[Dict[str, str]] = None  # the zygote's (the worker has it)
        if env is not None or inherited is None or _environ_bytes() != inherited:
            environ = dict(self._environment() if env is None else env)
            if _python_vars(environ) != self._zygote_env:
                raise ZygoteError("the environment changes variables read at start-up")
        with self._lock:
            forked = self._pool.pop(0) if self._pool else None
        worker: Optional[WorkerProcess] = None
        if forked is not None:
            try:
                worker = self._take(forked)
            except (OSError, ZygoteError):
                pass  # a fresh fork below (or this raises again: the zygote is gone)
        # a pooled worker that died, or was stopped (it would not read its setup), is replaced
        if worker is not None and (not worker.alive() or is_stopped(worker.pid)):
            worker.destroy()
            worker = None
        setup = protocol.encode({"t": "setup", "cwd": cwd, "env": environ,
                                 "options": {"memory_limit": memory_limit}})
        while True:
            pooled, worker = worker is not None, worker or self._fork(zygote)
            try:
                _write_frame(worker.send_fd, setup)
                break
            except OSError:
                worker.destroy()
                if not pooled:
                    raise
                worker = None  # the pooled one died since (code in the sandbox can kill it): a fresh one
        self._refill(zygote)
        return worker

    def _fork(self, zygote: _Zygote) -> WorkerProcess:
        """A fresh worker from the zygote (which waits for its setup)."""
        forked = self._ask_fork(zygote)[0]
        try:
            return self._take(forked)
        except ZygoteError:
            with self._lock:
                self._failures += 1
            raise

    def _ask_fork(self, zygote: _Zygote, count: int = 1) -> List[_Forked]:
        """Ask the zygote for ``count`` fresh workers in one request, without
        waiting for its answer: it forks while this process goes on (see _take)."""
        pipes: List[Pipes] = []
        try:
            for _ in range(count):
                pipes.append(Pipes())
            number = zygote.ask({"t": "spawn", "count": count},
                                tuple(fd for each in pipes for fd in each.child_ends()))
        except (OSError, ZygoteError) as exc:
            for each in pipes:
                each.close_all()
            if isinstance(exc, ZygoteError):
                with self._lock:
                    self._failures += 1
            raise
        batch = _Batch(zygote, number, count)
        return [_Forked(batch, index, each) for index, each in enumerate(pipes)]

    def _take(self, forked: _Forked) -> WorkerProcess:
        """The worker the zygote forked for ``forked``, once it answered (the
        answer is read once; its pipes are closed if it failed). Called with
        or without the launcher's lock held."""
        if forked.worker is None:
            if forked.pipes is None:
                raise ZygoteError("the zygote could not fork that worker")
            pipes, forked.pipes = forked.pipes, None
            try:
                pid, pidfd = forked.batch.take(forked.index)
            except ZygoteError:
                pipes.close_all()
                raise
            forked.worker = self._handle(forked.batch.zygote, pid, pidfd, pipes)
        return forked.worker

    def _handle(self, zygote: _Zygote, pid: Any, pidfd: Optional[int], pipes: Pipes) -> WorkerProcess:
        """Make a worker the zygote says it forked (``pid`` in its PID
        namespace, which a sandbox's is not ours, and a pidfd of it) and the
        pipes sent for it a WorkerProcess; the pipes and the pidfd are closed
        if that does not do."""
        try:
            if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
                raise ZygoteError("the zygote's reply names no pid: %r" % (pid,))
            if pidfd is None and zygote.sandboxed:
                # only a pidfd says which host process it is: a bare number
                # from inside a sandbox could name any process of the host
                raise ZygoteError("the sandboxed zygote sent no pidfd for its worker")
            seen = host_pid(pidfd) if pidfd is not None and zygote.sandboxed else pid  # else our namespace's
        except ZygoteError:
            if pidfd is not None:
                os.close(pidfd)
            pipes.close_all()
            raise
        self._failures = 0
        exited, release = pidfd_exited(seen, pidfd)

        def reap() -> Optional[int]:
            try:
                status = zygote.request({"t": "reap", "pid": pid}).get("returncode")
            except ZygoteError:  # the zygote died: init reaps its orphans
                return None
            return status if isinstance(status, int) and not isinstance(status, bool) else None

        if not zygote.sandboxed or pidfd is None:
            # the number is the zygote's unreaped child's while the zygote
            # lives; after that, only while the worker runs (init reaps it)
            return pipes.handle(seen, exited=exited, reap=reap, release=release,
                                reserved=lambda: zygote.alive() or not exited())
        held: int = pidfd

        def signal_group(sig: int) -> None:
            # The zygote signals the group by the number in its own namespace
            # (its child, not reaped: the number cannot be reused); if it is
            # gone, only the pidfd we hold is used, never a host number.
            try:
                zygote.request({"t": "signal", "pid": pid, "sig": int(sig)})
            except ZygoteError:
                pidfd_signal(held, sig)

        def kill() -> None:
            try:
                zygote.request({"t": "kill", "pid": pid})
            except ZygoteError:
                pidfd_signal(held, signal.SIGKILL)

        return pipes.handle(seen, exited=exited, reap=reap, release=release, signal_group=signal_group,
                            kill=kill)

    def _refill(self, zygote: _Zygote, wait: bool = False) -> None:
        """Fill the pool again, in one request, once it is down to half its
        target (below ``pool_size``; best effort), without waiting for the
        workers to be forked unless ``wait``: the zygote forks the next
        contexts' workers while this one's caller goes on."""
        with self._lock:
            have, target = len(self._pool), self._target
            if self._zygote is not zygote or (have >= self.pool_size and have > target // 2):
                return
        try:
            batch = self._ask_fork(zygote, min(target - have, ZYGOTE_BATCH))
            if wait:
                for forked in batch:
                    self._take(forked)
        except (OSError, ZygoteError):
            return
        with self._lock:
            room = max(0, self._target - len(self._pool)) if self._zygote is zygote else 0
            self._pool.extend(batch[:room])
        for forked in batch[room:]:
            self._discard(forked)

    def _discard(self, forked: _Forked) -> None:
        """Kill and reap a worker asked for and no longer wanted."""
        try:
            self._take(forked).destroy()
        except (OSError, ZygoteError):
            pass

    def trim(self) -> None:
        """End the idle workers a burst left in the pool beyond ``pool_size``."""
        with self._lock:
            extra, self._pool = self._pool[self.pool_size:], self._pool[:self.pool_size]
        for forked in extra:
            self._discard(forked)

    def close(self) -> None:
        """Stop the zygote and its idle pool (workers handed out keep running)."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        zygote, pool = self._zygote, self._pool
        self._zygote, self._pool = None, []
        if zygote is not None and zygote.owner_pid == os.getpid():
            for forked in pool:
                self._discard(forked)
            zygote.close()


def _write_frame(fd: int, data: bytes, timeout: float = 5.0) -> None:
    """Write all of ``data`` to a non-blocking pipe, waiting for room if needed."""
    view = memoryview(data)
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    while view:
        if not poller.poll(timeout * 1000):
            raise OSError(errno.ETIMEDOUT, "the worker does not read its channel")
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            pass


#: Variables Python reads once, at start-up (sys.path, hashing, I/O, warnings):
#: a worker forked from the zygote keeps the zygote's reading of them.
STARTUP_VARIABLES = frozenset((
    "PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH", "PYTHONNOUSERSITE", "PYTHONUSERBASE",
    "PYTHONPLATLIBDIR", "PYTHONHASHSEED", "PYTHONUTF8", "PYTHONIOENCODING", "PYTHONWARNINGS",
    "PYTHONDEVMODE", "PYTHONOPTIMIZE", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX",
    "PYTHONMALLOC", "PYTHONFAULTHANDLER", "PYTHONTRACEMALLOC", "PYTHONINTMAXSTRDIGITS",
    "PYTHONCOERCECLOCALE", "PYTHONLEGACYWINDOWSFSENCODING", "LC_ALL", "LC_CTYPE", "LANG",
))


def _environ_bytes() -> Mapping[bytes, bytes]:
    """os.environ as bytes (compared without decoding every variable): its
    own mapping where it keeps one, else a copy."""
    data = getattr(os.environ, "_data", None)
    if isinstance(data, dict):
        return data
    return {os.fsencode(key): os.fsencode(value) for key, value in os.environ.items()}


def _python_vars(environ: Mapping[str, str]) -> Dict[str, str]:
    return {key: value for key, value in environ.items() if key in STARTUP_VARIABLES}


_launchers: weakref.WeakSet[ZygoteLauncher] = weakref.WeakSet()
_default_lock = threading.Lock()
_default_launcher: Optional[ZygoteLauncher] = None


def _after_fork_in_child() -> None:
    global _default_lock
    _default_lock = threading.Lock()
    for launcher in list(_launchers):
        launcher._forget_inherited()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def default_launcher() -> ZygoteLauncher:
    """The process-wide zygote launcher for ``sys.executable``."""
    global _default_launcher
    with _default_lock:
        if _default_launcher is None:
            _default_launcher = ZygoteLauncher()
            atexit.register(_default_launcher.close)
        return _default_launcher
