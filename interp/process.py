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
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Tuple

from . import protocol
from .sandbox import Sandbox
from ._worker.proctree import is_live, is_stopped, kill_tree

_HERE = os.path.dirname(os.path.abspath(__file__))
PROTOCOL_PATH = os.path.join(_HERE, "protocol.py")
WORKER_PACKAGE = os.path.join(_HERE, "_worker")

# Loads protocol.py and the worker package by path under private names
# (_interp_protocol, _interp_worker), so nothing is needed on sys.path and
# user code cannot shadow them; then runs a zygote or a supervised worker.
# ``-c`` leaves sys.path[0] == "" (the cwd), like the interactive interpreter.
_LOADER = """\
import importlib.util, os, sys
def _load(name, path, package=None):
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=package)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
_load("_interp_protocol", sys.argv[1])
_load("_interp_worker", os.path.join(sys.argv[2], "__init__.py"), [sys.argv[2]])
import _interp_worker.zygote as _zygote
"""
# A sandboxed zygote seals itself first, before it loads anything of ours:
# not dumpable, the tmpfs mounts remounted with their bounds (sys.argv[5],
# see Sandbox.seal) using the capabilities bwrap left it, then every
# capability dropped for good (bounding set, ambient, then capset) and checked.
_SEAL = """\
import ctypes, json, os, sys
_seal = json.loads(sys.argv[5]) if len(sys.argv) > 5 else None
if _seal is not None:
    _libc = ctypes.CDLL(None, use_errno=True)
    def _fail(what):
        sys.stderr.write("interp: the zygote could not seal the sandbox: %s: %s\\n"
                         % (what, os.strerror(ctypes.get_errno())))
        os._exit(70)
    if _libc.prctl(4, 0, 0, 0, 0) != 0:
        _fail("PR_SET_DUMPABLE")
    for _path, _options in _seal.get("remount", []):
        if _libc.mount(b"tmpfs", _path.encode(), b"tmpfs", 32 | 2 | 4, _options.encode()) != 0:
            _fail("remount " + _path)
    if _seal.get("devpts") and _libc.mount(b"devpts", _seal["devpts"].encode(), b"devpts", 2 | 8,
                                           b"newinstance,ptmxmode=0666,mode=0620") != 0:
        _fail("mount devpts")
    _libc.prctl(47, 4, 0, 0, 0)
    for _cap in range(64):
        _libc.prctl(24, _cap, 0, 0, 0)
    if _libc.capset((ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()) != 0:
        _fail("capset")
    with open("/proc/self/status") as _status:
        for _line in _status:
            if _line.startswith("Cap") and int(_line.split()[1], 16) != 0:
                _fail("capabilities left: " + _line.strip())
    del _libc, _fail
"""
BOOTSTRAP = _LOADER + "_zygote.supervise([int(fd) for fd in sys.argv[3:7]], sys.argv[7])\n"
ZYGOTE_BOOTSTRAP = _SEAL + _LOADER + "_zygote.serve(int(sys.argv[3]), sys.argv[4])\n"

#: A zygote that does not answer a request within this many seconds is
#: abandoned (killed); workers are then spawned until a new one is up.
ZYGOTE_TIMEOUT = 10.0
#: How long a spawned worker's supervisor may take to follow its worker out.
SUPERVISOR_GRACE = 1.0
#: While waiting for the zygote, how often to check that it was not stopped.
ZYGOTE_POLL = 0.1
#: How much of a worker's start-up stderr is kept to explain a failed start.
STARTUP_ERR_LIMIT = 64 * 1024
#: How much output is recovered from each capture pipe after a worker died.
SALVAGE_LIMIT = 1024 * 1024


class WorkerProcess:
    """A live worker: a process-group leader and the two ends of its channel.

    ``send_fd`` carries commands to the worker, ``recv_fd`` brings its frames
    back. The launcher supplies how to tell whether it exited (without
    reaping it) and how to reap it; until it is reaped its pid, which is
    also its process group id, cannot be reused, so signalling it is safe.
    """

    def __init__(self, pid: int, send_fd: int, recv_fd: int, err_fd: int,
                 salvage_fds: Mapping[str, int], *, exited: Callable[[], bool],
                 reap: Callable[[], Optional[int]], release: Callable[[], None] = lambda: None,
                 signal_group: Optional[Callable[[int], None]] = None,
                 kill: Optional[Callable[[], None]] = None):
        self.pid = pid
        self._signal_group = signal_group
        self._kill = kill
        self.send_fd = send_fd
        self.recv_fd = recv_fd
        self._err_fd: Optional[int] = err_fd
        self._salvage_fds = dict(salvage_fds)
        self._exited = exited
        self._reap = reap
        self._release = release
        self.reaped = False
        self.returncode: Optional[int] = None
        self.startup_stderr = ""

    def alive(self) -> bool:
        """True while the worker has not exited (does not reap it)."""
        return not self.reaped and not self._exited()

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the worker's whole process group (it and its children)."""
        if self.reaped:
            return
        if self._signal_group is not None:
            self._signal_group(sig)
            return
        if self._exited():  # its number may be another process's by now
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            # A worker forked a moment ago may not lead its group yet (setsid
            # comes first thing in the child); then it has no children either.
            try:
                os.kill(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        except PermissionError:
            pass

    def kill(self) -> None:
        """SIGKILL the worker, its process group and every descendant, also
        daemons that left the group (the worker is their subreaper)."""
        if self.reaped:
            return
        if self._kill is not None:
            self._kill()
            return
        if self._exited():
            return
        self.signal_group(signal.SIGSTOP)  # nothing in the group forks meanwhile
        kill_tree(self.pid)
        self.signal_group(signal.SIGKILL)

    def read_channel(self) -> bytes:
        """What the channel holds now (at most SALVAGE_LIMIT bytes), without waiting."""
        return _read_available(self.recv_fd, SALVAGE_LIMIT)

    def salvage(self) -> Dict[str, bytes]:
        """After the channel closed: kill everything left and return the output
        left unforwarded in the capture pipes (bytes the worker died holding)."""
        self.kill()
        return {stream: _read_available(fd, SALVAGE_LIMIT)
                for stream, fd in self._salvage_fds.items()}

    def started(self) -> None:
        """The worker reported ready: its start-up stderr is no longer needed."""
        if self._err_fd is not None:
            os.close(self._err_fd)
            self._err_fd = None

    def abandon(self) -> None:
        """Close this handle's fds without signalling or reaping the worker
        (in a forked copy of the process that owns it)."""
        if not self.reaped:
            self.reaped = True
            for fd in (self.send_fd, self.recv_fd, *self._salvage_fds.values(), self._err_fd):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._err_fd = None
            try:
                self._release()
            except OSError:
                pass

    def destroy(self) -> Optional[int]:
        """Kill the process group, reap the worker, close the channel. Idempotent.

        Returns the worker's exit status (negative: killed by that signal;
        None if it could not be known).
        """
        if not self.reaped:
            self.kill()
            self.returncode = self._reap()
            self.reaped = True
            for fd in (self.send_fd, self.recv_fd, *self._salvage_fds.values()):
                os.close(fd)
            if self._err_fd is not None:
                self.startup_stderr = _read_available(self._err_fd, STARTUP_ERR_LIMIT).decode(
                    "utf-8", "replace")
                os.close(self._err_fd)
                self._err_fd = None
            self._release()
        return self.returncode


def _read_available(fd: int, limit: int) -> bytes:
    """Read what ``fd`` (a descriptor of ours opened O_NONBLOCK, see
    _private_reader) holds now, never waiting."""
    chunks: List[bytes] = []
    size = 0
    while size < limit:
        try:
            data = os.read(fd, limit - size)
        except (BlockingIOError, OSError):
            break
        if not data:
            break
        chunks.append(data)
        size += len(data)
    return b"".join(chunks)


def check_cwd(cwd: str) -> str:
    """Return ``cwd`` made absolute, or raise InvalidCwdError."""
    from .errors import InvalidCwdError

    path = os.path.abspath(os.fspath(cwd))
    if not os.path.exists(path):
        raise InvalidCwdError(errno.ENOENT, "context cwd does not exist", path)
    if not os.path.isdir(path):
        raise InvalidCwdError(errno.ENOTDIR, "context cwd is not a directory", path)
    return path


class _Pipes:
    """The seven pipe ends a new worker needs, and the parent's ends of them."""

    def __init__(self) -> None:
        fds: List[int] = []
        try:
            for _ in range(5):
                fds.extend(os.pipe())
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        (self.to_worker_r, self.to_worker_w, self.from_worker_r, self.from_worker_w,
         self.err_r, self.err_w, self.out_r, self.out_w, self.errp_r, self.errp_w) = fds
        self._all = fds

    def child_ends(self) -> List[int]:
        """Channel in, channel out, start-up stderr, then stdout r/w and stderr r/w."""
        return [self.to_worker_r, self.from_worker_w, self.err_w,
                self.out_r, self.out_w, self.errp_r, self.errp_w]

    def close_all(self) -> None:
        for fd in self._all:
            os.close(fd)

    def handle(self, pid: int, **how: Callable[..., Any]) -> WorkerProcess:
        """Close the child's ends here; wrap the parent's ends in a WorkerProcess.

        The worker holds the read ends of its capture pipes too, and
        O_NONBLOCK belongs to the open file description: a process it left
        behind could clear it while we read. So the parent reads the capture
        pipes through descriptions of its own (reopened from /proc)."""
        for fd in (self.to_worker_r, self.from_worker_w, self.err_w, self.out_w, self.errp_w):
            os.close(fd)
        out_r, errp_r = _private_reader(self.out_r), _private_reader(self.errp_r)
        for fd in (self.to_worker_w, self.from_worker_r, self.err_r):
            os.set_blocking(fd, False)  # these ends are ours alone
        return WorkerProcess(pid, self.to_worker_w, self.from_worker_r, self.err_r,
                             {"stdout": out_r, "stderr": errp_r}, **how)


def _private_reader(fd: int) -> int:
    """A new, non-blocking open file description for the pipe ``fd`` reads
    (``fd`` is closed), so nobody else can make our reads block."""
    try:
        private = os.open("/proc/self/fd/%d" % fd, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # no /proc: the shared description, non-blocking (best effort)
        os.set_blocking(fd, False)
        return fd
    os.close(fd)
    return private


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
        pipes = _Pipes()
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


class ZygoteError(Exception):
    """The zygote could not be started or stopped answering."""


class _Zygote:
    """The parent's end of one zygote process (see zygote.py).

    ``wrap`` turns the zygote's command into the one to run (a sandbox's
    bwrap command line); ``limits`` are RLIMIT_* values it sets on itself."""

    def __init__(self, python: str, wrap: Optional[Callable[[List[str], Optional[int]], List[str]]] = None,
                 limits: Optional[Mapping[str, int]] = None, seccomp: Optional[bytes] = None,
                 seal: Optional[Mapping[str, Any]] = None) -> None:
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # A sandboxed zygote starts isolated (-I: no cwd or user site on its
        # path, no PYTHON* variables): nothing the code wrote runs in it.
        isolated = ["-I"] if wrap is not None else []
        argv = [python, *isolated, "-c", ZYGOTE_BOOTSTRAP, PROTOCOL_PATH, WORKER_PACKAGE,
                str(child_sock.fileno()), json.dumps(dict(limits or {}))]
        if wrap is not None:
            argv.append(json.dumps(dict(seal or {})))
        passed = [child_sock.fileno()]
        seccomp_fd = None
        if seccomp is not None:  # bwrap reads the filter from a pipe (a few hundred bytes: fits)
            seccomp_fd, writer = os.pipe()
            try:
                os.write(writer, seccomp)
            finally:
                os.close(writer)
            passed.append(seccomp_fd)
        # bwrap reports why it could not start the sandbox on its stderr
        self.sandboxed = wrap is not None
        self.stderr = tempfile.TemporaryFile() if wrap is not None else None
        self._said = ""
        try:
            self.popen = subprocess.Popen(
                wrap(argv, seccomp_fd) if wrap is not None else argv,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=self.stderr if self.stderr is not None else subprocess.DEVNULL,
                close_fds=True, pass_fds=passed, start_new_session=True)
        except BaseException:
            parent_sock.close()
            if self.stderr is not None:
                self.stderr.close()
            raise
        finally:
            child_sock.close()
            if seccomp_fd is not None:
                os.close(seccomp_fd)
        self.sock = parent_sock
        self.sock.settimeout(ZYGOTE_POLL)  # a stopped or wedged zygote must not hang callers
        self.lock = threading.Lock()
        self.owner_pid = os.getpid()  # a fork of the parent must not share this zygote
        self.broken = False
        self.pid = self.popen.pid  # the zygote's host pid, once it said hello
        self._requests = 0  # requests sent; each reply names the one it answers
        self.pidfd: Optional[int] = None
        self._greeted = False

    def said(self) -> str:
        """What the zygote's wrapper (bwrap) wrote on its stderr, if it was kept."""
        if self.stderr is None:
            return self._said
        try:
            self.stderr.seek(0)
            return self.stderr.read(STARTUP_ERR_LIMIT).decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _greet(self) -> None:
        """Read the zygote's hello (its first message) and learn its host pid."""
        data, fds = self._answer()
        if not data:
            raise ZygoteError("the zygote exited before it started")
        hello = json.loads(data)
        if not isinstance(hello, dict) or hello.get("t") != "hello" or "error" in hello:
            for fd in fds:
                os.close(fd)
            raise ZygoteError("the zygote could not start: %s" % (hello.get("error") if isinstance(hello, dict)
                                                                  else hello))
        if fds:
            self.pidfd = fds[0]
            for fd in fds[1:]:
                os.close(fd)
            self.pid = host_pid(self.pidfd)
        self._greeted = True

    def request(self, message: Dict[str, object], fds: Tuple[int, ...] = ()) -> Dict[str, Any]:
        """Send one request and wait for its answer. A zygote that is stopped
        (user code can SIGSTOP it: it is every worker's parent) or does not
        answer within ZYGOTE_TIMEOUT is killed, and ZygoteError raised.
        A pidfd the zygote attached is in the reply as ``"pidfd"`` (the
        caller closes it)."""
        with self.lock:
            if self.broken:
                raise ZygoteError("the zygote is not running")
            try:
                if not self._greeted:
                    self._greet()
                if is_stopped(self.pid):
                    raise ZygoteError("the zygote was stopped (SIGSTOP)")
                self._requests += 1
                number = self._requests
                socket.send_fds(self.sock, [json.dumps(dict(message, n=number)).encode()], list(fds))
                data, got = self._answer()
                if not data:
                    raise ZygoteError("the zygote exited")
                try:
                    reply = json.loads(data)
                    if not isinstance(reply, dict) or reply.get("n") != number:
                        raise ValueError("a reply to another request (out of step)")
                except ValueError:
                    for fd in got:
                        os.close(fd)
                    raise
            except (OSError, ValueError, ZygoteError) as exc:
                self.broken = True
                self._stop()
                raise ZygoteError("the zygote stopped answering: %s" % exc) from None
        if "error" in reply:
            for fd in got:
                os.close(fd)
            raise ZygoteError("the zygote refused: %s" % (reply.get("error"),))
        for fd in got[1:]:
            os.close(fd)
        if got:
            reply["pidfd"] = got[0]
        return reply

    def _answer(self) -> Tuple[bytes, List[int]]:
        """The zygote's next message and the fds attached; ZygoteError if it is stopped or slow."""
        give_up_at = time.monotonic() + ZYGOTE_TIMEOUT
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.sock, 1 << 16, 2)
                return data, fds
            except socket.timeout:
                if is_stopped(self.pid):
                    raise ZygoteError("the zygote was stopped (SIGSTOP)") from None
                if time.monotonic() >= give_up_at:
                    raise ZygoteError("no answer in %gs" % ZYGOTE_TIMEOUT) from None

    def _stop(self) -> None:
        self.sock.close()
        if self.pidfd is not None:
            try:  # in a sandbox the zygote is PID 1 of its namespace: everything inside dies with it
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except OSError:
                pass
            os.close(self.pidfd)
            self.pidfd = None
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()
        if self.stderr is not None:
            self._said = self.said()
            self.stderr.close()
            self.stderr = None

    def close(self) -> None:
        with self.lock:
            if not self.broken:
                self.broken = True
                self._stop()


def host_pid(pidfd: int) -> int:
    """The pid, in this process's PID namespace, of the process ``pidfd``
    refers to (from /proc/self/fdinfo); ZygoteError if it has exited."""
    try:
        with open("/proc/self/fdinfo/%d" % pidfd) as handle:
            for line in handle:
                if line.startswith("Pid:"):
                    pid = int(line.split()[1])
                    if pid > 0:
                        return pid
                    break
    except (OSError, ValueError, IndexError):
        pass
    raise ZygoteError("the process behind a pidfd the zygote sent has exited or is not visible")


def _pidfd_signal(pidfd: int, sig: int) -> None:
    """Send ``sig`` through ``pidfd`` (ignored if that process is gone)."""
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except (OSError, AttributeError):
        pass


def _pidfd_exited(pid: int, pidfd: Optional[int] = None) -> Tuple[Callable[[], bool], Callable[[], None]]:
    """An exited() check for a process that is not our child, and its cleanup
    (``pidfd``: one already open for it, which the check takes over)."""
    if pidfd is None:
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):  # no pidfd (old kernel): read /proc
            return (lambda: not is_live(pid)), (lambda: None)
    fd: int = pidfd

    def exited() -> bool:
        poller = select.poll()  # one per call: threads may ask at once, and poll() refuses that
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return exited, (lambda: os.close(fd))


class ZygoteLauncher:
    """Forks workers from a warmed zygote process; spawns when it cannot.

    The zygote is started on first use (or by :meth:`prestart`) and shared
    by every interpreter in this process that uses the default launcher. It
    forks workers ahead of need: ``pool_size`` of them wait, fully started,
    and :meth:`start` hands one out with a ``setup`` command (cwd,
    environment, limits), then forks its replacement (one zygote round
    trip, about a millisecond), so a new context's first run does not wait
    for a Python to start. Each worker gets the environment given
    (default: this process's ``os.environ`` at the time of the request).
    What Python reads only at start-up (``sys.path``, the locale, hashing;
    see STARTUP_VARIABLES) is the zygote's: an ``env`` that changes any of
    those variables is started by spawning instead.
    """

    def __init__(self, python: Optional[str] = None, pool_size: int = 1):
        self.python = python or sys.executable
        self.pool_size = pool_size
        self.fallback = SpawnLauncher(self.python)
        self._zygote: Optional[_Zygote] = None
        self._zygote_env: Dict[str, str] = {}
        self._pool: List[WorkerProcess] = []
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
            zygote.sock.close()
        for worker in pool:
            worker.abandon()

    def prestart(self) -> None:
        """Start the zygote process now without waiting for it: it warms up
        while the caller does other work (the first start() fills the pool)."""
        try:
            self._get_zygote()
        except (OSError, ZygoteError):
            pass

    def helper_pids(self) -> List[int]:
        """The zygote's pid and those of the idle pooled workers."""
        with self._lock:
            zygote = self._zygote
            if zygote is None or zygote.broken or zygote.owner_pid != os.getpid():
                return []
            return [zygote.pid] + [worker.pid for worker in self._pool]

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
            self._zygote = self._make_zygote()
            return self._zygote

    def _environment(self) -> Mapping[str, str]:
        """The environment workers get by default (and the zygote starts with)."""
        return os.environ

    def _make_zygote(self) -> _Zygote:
        return _Zygote(self.python)

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
        environ = dict(self._environment() if env is None else env)
        zygote = self._get_zygote()
        if _python_vars(environ) != self._zygote_env:
            raise ZygoteError("the environment changes variables read at start-up")
        with self._lock:
            worker = self._pool.pop(0) if self._pool else None
        if worker is None or not worker.alive():
            if worker is not None:
                worker.destroy()
            worker = self._fork(zygote)
        setup = {"t": "setup", "cwd": cwd, "env": environ, "options": {"memory_limit": memory_limit}}
        try:
            _write_frame(worker.send_fd, protocol.encode(setup))
        except OSError:
            worker.destroy()
            raise
        self._refill(zygote)
        return worker

    def _fork(self, zygote: _Zygote) -> WorkerProcess:
        """Ask the zygote for a fresh worker (which waits for its setup)."""
        pipes = _Pipes()
        try:
            reply = zygote.request({"t": "spawn"}, tuple(pipes.child_ends()))
        except ZygoteError:
            pipes.close_all()
            with self._lock:
                self._failures += 1
            raise
        pid = reply.get("pid")  # in the zygote's PID namespace (a sandbox's is not ours)
        pidfd: Optional[int] = reply.get("pidfd")
        try:
            if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
                raise ZygoteError("the zygote's reply names no pid: %r" % (reply,))
            if pidfd is None and zygote.sandboxed:
                # only a pidfd says which host process it is: a bare number
                # from inside a sandbox could name any process of the host
                raise ZygoteError("the sandboxed zygote sent no pidfd for its worker")
            seen = host_pid(pidfd) if pidfd is not None else pid
        except ZygoteError:
            if pidfd is not None:
                os.close(pidfd)
            pipes.close_all()
            raise
        self._failures = 0
        exited, release = _pidfd_exited(seen, pidfd)

        def reap() -> Optional[int]:
            try:
                status = zygote.request({"t": "reap", "pid": pid}).get("returncode")
            except ZygoteError:  # the zygote died: init reaps its orphans
                return None
            return status if isinstance(status, int) and not isinstance(status, bool) else None

        if not zygote.sandboxed or pidfd is None:
            return pipes.handle(seen, exited=exited, reap=reap, release=release)
        held: int = pidfd

        def signal_group(sig: int) -> None:
            # The zygote signals the group by the number in its own namespace
            # (its child, not reaped: the number cannot be reused); if it is
            # gone, only the pidfd we hold is used, never a host number.
            try:
                zygote.request({"t": "signal", "pid": pid, "sig": int(sig)})
            except ZygoteError:
                _pidfd_signal(held, sig)

        def kill() -> None:
            try:
                zygote.request({"t": "kill", "pid": pid})
            except ZygoteError:
                _pidfd_signal(held, signal.SIGKILL)

        return pipes.handle(seen, exited=exited, reap=reap, release=release, signal_group=signal_group,
                            kill=kill)

    def _refill(self, zygote: _Zygote) -> None:
        """Fork workers until the pool is full again (best effort)."""
        while True:
            with self._lock:
                if len(self._pool) >= self.pool_size or self._zygote is not zygote:
                    return
            try:
                worker = self._fork(zygote)
            except (OSError, ZygoteError):
                return
            with self._lock:
                pooled = self._zygote is zygote and len(self._pool) < self.pool_size
                if pooled:
                    self._pool.append(worker)
            if not pooled:
                worker.destroy()

    def close(self) -> None:
        """Stop the zygote and its idle pool (workers handed out keep running)."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        zygote, pool = self._zygote, self._pool
        self._zygote, self._pool = None, []
        if zygote is not None and zygote.owner_pid == os.getpid():
            for worker in pool:
                worker.destroy()
            zygote.close()


class SandboxLauncher(ZygoteLauncher):
    """Forks workers from a zygote that runs inside a bubblewrap sandbox
    (see :mod:`interp.sandbox`): one sandbox, started once, and a fork per
    context. Owned by one interpreter, whose close() ends it.

    Never falls back to running anything unsandboxed: if the sandboxed zygote
    cannot start or stops answering, :meth:`start` raises
    SandboxUnavailableError (it could not start at all) or InterpError.
    Workers get the sandbox's environment unless ``env`` is given, and a cwd
    outside what the sandbox shows is an InvalidCwdError.
    """

    def __init__(self, sandbox: Sandbox, pool_size: int = 1) -> None:
        super().__init__(sandbox.python, pool_size)
        self.sandbox = sandbox
        sandbox.acquire()
        self._started = False  # a zygote of ours once said hello

    @classmethod
    def for_sandbox(cls, sandbox: Sandbox) -> SandboxLauncher:
        """A launcher for ``sandbox``: with ``prestart=N``, a warm one (its
        sandbox started and sealed, a worker forked) when one of the same
        options is ready, and N more made ready in the background."""
        if sandbox.prestart <= 0:
            return cls(sandbox)
        launcher = _warm.take(sandbox.config_key())
        if launcher is not None and not sandbox.adopt(launcher.sandbox):
            launcher.close()
            launcher = None
        if launcher is not None:
            launcher.sandbox = sandbox
        else:
            launcher = cls(sandbox)
        _warm.fill(sandbox, sandbox.prestart)
        return launcher

    def warm_up(self) -> None:
        """Start the sandbox, wait for its zygote and fork a worker ahead (for prestart)."""
        self._refill(self._get_zygote())

    def _environment(self) -> Mapping[str, str]:
        return self.sandbox.env

    def _make_zygote(self) -> _Zygote:
        return _Zygote(self.python, wrap=lambda argv, fd: self.sandbox.command(argv, seccomp_fd=fd),
                       limits=self.sandbox.rlimits(), seccomp=self.sandbox.seccomp(), seal=self.sandbox.seal())

    def prestart(self) -> None:
        """Start the sandbox now (without waiting for it); SandboxUnavailableError
        at once if bwrap is missing."""
        self.sandbox.find_bwrap()
        super().prestart()

    def start(self, cwd: str, env: Optional[Mapping[str, str]] = None, *,
              memory_limit: Optional[int] = None) -> WorkerProcess:
        """Start a worker inside the sandbox, in ``cwd`` (a path it shows)."""
        from .errors import InterpError

        self.sandbox.check_cwd(cwd)
        zygote = self._zygote
        try:
            worker = self._start_forked(cwd, env, memory_limit)
        except ZygoteError as exc:
            failed = self._zygote or zygote
            if failed is not None and not failed._greeted and not self._started:
                raise self.sandbox.diagnose(failed.said()) from None
            if failed is not None and not failed.broken:  # it answered, with an error
                raise InterpError("the sandbox could not start a worker: %s" % exc) from None
            raise InterpError("the sandbox stopped working (%s); the next context starts a new "
                              "one" % exc) from None
        self._started = True
        return worker

    def close(self) -> None:
        """Stop the sandbox (everything in it dies) and release its workspace and cgroup."""
        super().close()
        self.sandbox.release()


class _WarmSandboxes:
    """Sandboxes started ahead of need (``Sandbox(prestart=N)``), by options:
    each a SandboxLauncher whose zygote is sealed and has a worker forked.
    Filled by one background thread that lives as long as the process:
    bwrap's --die-with-parent (PR_SET_PDEATHSIG) follows the thread that
    started it. Closed at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: Dict[str, List[SandboxLauncher]] = {}
        self._wanted: Dict[str, Tuple[Sandbox, int]] = {}
        self._filler: Optional[threading.Thread] = None
        self._wake = threading.Event()
        self._building = threading.Lock()  # held while one is being started
        self._owner = os.getpid()

    def take(self, key: str) -> Optional[SandboxLauncher]:
        with self._lock:
            self._check_owner()
            ready = self._ready.get(key) or []
            return ready.pop(0) if ready else None

    def fill(self, template: Sandbox, count: int) -> None:
        """Keep ``count`` sandboxes like ``template`` ready (in the background)."""
        with self._lock:
            self._check_owner()
            self._wanted[template.config_key()] = (template, count)
            if self._filler is None or not self._filler.is_alive():
                self._filler = threading.Thread(target=self._fill, name="interp-prestart", daemon=True)
                self._filler.start()
        self._wake.set()

    def _fill(self) -> None:
        while True:
            with self._lock:
                todo = [(key, template) for key, (template, count) in self._wanted.items()
                        if len(self._ready.get(key, [])) < count]
                if self._owner != os.getpid():
                    return
            if not todo:
                self._wake.wait()
                self._wake.clear()
                continue
            key, template = todo[0]
            with self._building:
                self._build(key, template)

    def _build(self, key: str, template: Sandbox) -> None:
        import copy

        clone = copy.copy(template)
        clone.__dict__.update(_lock=threading.Lock(), _in_use=False, _started=False, _cgroup=None,
                              _temporary=None, _workspace=template._given_workspace, prestart=0)
        launcher: Optional[SandboxLauncher] = None
        try:
            launcher = SandboxLauncher(clone)
            launcher.warm_up()
        except Exception:  # it cannot start: the interpreter that asks starts its own, and says why
            if launcher is not None:
                launcher.close()
            with self._lock:
                self._wanted.pop(key, None)
            return
        with self._lock:
            kept = key in self._wanted
            if kept:
                self._ready.setdefault(key, []).append(launcher)
        if not kept:  # closed meanwhile
            launcher.close()

    def _check_owner(self) -> None:
        if self._owner != os.getpid():  # a fork: the parent's warm sandboxes are not ours
            self._ready, self._wanted, self._filler, self._owner = {}, {}, None, os.getpid()

    def close(self) -> None:
        with self._lock:
            if self._owner != os.getpid():
                return
            ready, self._ready, self._wanted = self._ready, {}, {}
        if self._building.acquire(timeout=ZYGOTE_TIMEOUT * 2):  # one being started is closed by _build
            self._building.release()
        for launchers in ready.values():
            for launcher in launchers:
                launcher.close()


_warm = _WarmSandboxes()
atexit.register(_warm.close)


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
