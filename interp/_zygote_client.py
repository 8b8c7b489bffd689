"""The parent's end of a zygote (``interp/_worker/zygote.py``): the command
that starts one (loading the worker package by path; a sandboxed one seals
itself first), and the request/answer exchange over its socket, every wait
with a deadline. Used by ``interp.process``."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ._worker.proctree import is_stopped

_HERE = os.path.dirname(os.path.realpath(__file__))  # a sandbox shows it at its real path
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
#: While waiting for the zygote, how often to check that it was not stopped.
ZYGOTE_POLL = 0.1
#: Most workers one spawn request asks for (the zygote's MAX_BATCH).
ZYGOTE_BATCH = 16
#: How much of a worker's start-up stderr is kept to explain a failed start.
STARTUP_ERR_LIMIT = 64 * 1024


class ZygoteError(Exception):
    """The zygote could not be started or stopped answering."""


class _Zygote:
    """The parent's end of one zygote process (see zygote.py).

    ``wrap`` turns the zygote's command into the one to run (a sandbox's
    bwrap command line); ``limits`` are RLIMIT_* values it sets on itself;
    ``env`` its environment (None: this process's)."""

    def __init__(self, python: str, wrap: Optional[Callable[[List[str], Optional[int]], List[str]]] = None,
                 limits: Optional[Mapping[str, int]] = None, seccomp: Optional[bytes] = None,
                 seal: Optional[Mapping[str, Any]] = None, env: Optional[Mapping[str, str]] = None) -> None:
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # A sandboxed zygote starts isolated (-I: no cwd or user site on its
        # path, no PYTHON* variables) and without site (-S: no .pth file, no
        # sitecustomize, which the code could have written into a
        # site-packages directory it can write): nothing the code wrote runs
        # in it before it seals the sandbox. Its workers run site.main()
        # once forked (zygote._child).
        isolated = ["-I", "-S"] if wrap is not None else []
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
            command = wrap(argv, seccomp_fd) if wrap is not None else argv
            stderr = self.stderr

            def start() -> subprocess.Popen[bytes]:
                return subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=stderr if stderr is not None else subprocess.DEVNULL,
                    close_fds=True, pass_fds=passed, start_new_session=True,
                    env=None if env is None else dict(env))
            # bwrap's --die-with-parent (PR_SET_PDEATHSIG) fires when the
            # *thread* that started it exits: start sandboxes from one that
            # lives as long as the process
            self.popen = _in_lasting_thread(start) if wrap is not None else start()
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
        self._answered = 0  # replies read (the zygote answers in order)
        self._answers: Dict[int, Tuple[Dict[str, Any], List[int]]] = {}  # read, not yet taken by their asker
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

    def request(self, message: Dict[str, object], fds: Tuple[int, ...] = (), keep: bool = False) -> Dict[str, Any]:
        """Send one request and wait for its answer. A zygote that is stopped
        (user code can SIGSTOP it: it is every worker's parent) or does not
        answer within ZYGOTE_TIMEOUT is killed, and ZygoteError raised.
        With ``keep``, the descriptors the zygote attached (pidfds, or the
        directory an ``open`` asked for) are in the reply as ``"fds"`` (the
        caller closes them); else they are closed."""
        reply = self.answer(self.ask(message, fds))
        if not keep:
            for fd in reply.pop("fds"):
                os.close(fd)
        return reply

    def ask(self, message: Dict[str, object], fds: Tuple[int, ...] = ()) -> int:
        """Send one request without waiting for its answer; return its
        number, for :meth:`answer` (which must be called for it: the answer
        may hold a descriptor). ZygoteError as for request()."""
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
            except (OSError, ValueError, ZygoteError) as exc:
                raise self._broken(exc) from None
            return number

    def answer(self, number: int) -> Dict[str, Any]:
        """The answer to request ``number`` (see ask), waiting for it as
        request() does. The zygote answers in order: answers to other
        requests read meanwhile are kept for their askers, and an answer out
        of that order breaks the zygote. The descriptors attached are in
        the reply as ``"fds"``: the caller closes them."""
        with self.lock:
            while number not in self._answers:
                if self.broken:
                    raise ZygoteError("the zygote is not running")
                if not self._answered < number <= self._requests:
                    raise ZygoteError("no request %d is waiting for its answer" % number)
                try:
                    data, got = self._answer()
                    if not data:
                        raise ZygoteError("the zygote exited")
                    try:
                        reply = json.loads(data)
                        if not isinstance(reply, dict) or reply.get("n") != self._answered + 1:
                            raise ValueError("a reply to another request (out of step)")
                    except ValueError:
                        for fd in got:
                            os.close(fd)
                        raise
                except (OSError, ValueError, ZygoteError) as exc:
                    raise self._broken(exc) from None
                self._answered += 1
                self._answers[self._answered] = (reply, got)
            reply, got = self._answers.pop(number)
        if "error" in reply:
            for fd in got:
                os.close(fd)
            raise ZygoteError("the zygote refused: %s" % (reply.get("error"),))
        reply["fds"] = got  # the caller's to close
        return reply

    def _broken(self, exc: BaseException) -> ZygoteError:
        """Give up on the zygote (with ``lock`` held): kill it; the error to raise."""
        self.broken = True
        self._stop()
        return ZygoteError("the zygote stopped answering: %s" % exc)

    def open_directory(self, path: str) -> int:
        """A descriptor (``O_PATH``) of the directory ``path`` as the
        zygote sees it (inside its sandbox), opened there without following a
        link; the caller closes it. ZygoteError if the zygote cannot."""
        fds: List[int] = self.request({"t": "open", "path": path}, keep=True)["fds"]
        for extra in fds[1:]:
            os.close(extra)
        if not fds:
            raise ZygoteError("the zygote sent no descriptor for %r" % path)
        return fds[0]

    def _answer(self) -> Tuple[bytes, List[int]]:
        """The zygote's next message and the fds attached; ZygoteError if it is stopped or slow."""
        give_up_at = time.monotonic() + ZYGOTE_TIMEOUT
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.sock, 1 << 16, ZYGOTE_BATCH)
                return data, fds
            except socket.timeout:
                if is_stopped(self.pid):
                    raise ZygoteError("the zygote was stopped (SIGSTOP)") from None
                if time.monotonic() >= give_up_at:
                    raise ZygoteError("no answer in %gs" % ZYGOTE_TIMEOUT) from None

    def _stop(self) -> None:
        self.sock.close()
        for _reply, got in self._answers.values():
            for fd in got:
                os.close(fd)
        self._answers.clear()
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

    def alive(self) -> bool:
        """True while the zygote runs (its unreaped children's numbers are theirs)."""
        if self.broken:
            return False
        if self.pidfd is None:
            return self.popen.poll() is None
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        return not poller.poll(0)

    def abandon(self) -> None:
        """In a forked copy of the owning process: close our copies of the
        zygote's socket and of the descriptors it sent, touching nothing."""
        self.sock.close()
        for fd in [fd for _reply, got in self._answers.values() for fd in got] + [self.pidfd]:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._answers.clear()
        self.pidfd = None

    def close(self) -> None:
        with self.lock:
            if not self.broken:
                self.broken = True
                self._stop()


class _LastingThread:
    """One daemon thread, started on first use, that runs what it is given
    and lives as long as the process (see _in_lasting_thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner = -1
        self.work: List[Tuple[Callable[[], Any], List[Any], threading.Event]] = []
        self.ready = threading.Condition(self.lock)

    def run(self, function: Callable[[], Any]) -> Any:
        done = threading.Event()
        box: List[Any] = []
        with self.lock:
            if self.owner != os.getpid():  # first use, or a fork (which has no such thread)
                self.owner = os.getpid()
                self.work = []
                threading.Thread(target=self._serve, name="interp-sandbox-starter", daemon=True).start()
            self.work.append((function, box, done))
            self.ready.notify()
        done.wait()
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def _serve(self) -> None:
        while True:
            with self.lock:
                while not self.work:
                    self.ready.wait()
                function, box, done = self.work.pop(0)
            try:
                box.append(function())
            except BaseException as exc:
                box.append(exc)
            done.set()


_lasting = _LastingThread()


def _after_fork_in_child() -> None:
    global _lasting
    _lasting = _LastingThread()  # its lock may have been held at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _in_lasting_thread(function: Callable[[], Any]) -> Any:
    """``function()``, run in a thread that lives as long as the process."""
    if threading.current_thread() is threading.main_thread():
        return function()
    return _lasting.run(function)


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
