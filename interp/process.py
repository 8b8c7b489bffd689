"""Starting, signalling and killing worker processes.

Everything about *how* a worker comes to life sits behind :class:`Launcher`:
the rest of the package only sees :class:`WorkerProcess` handles. A faster
launcher (a forking zygote, a warm pool) or a remote one (a command that
gives a byte stream) can be slotted in here without touching the rest.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from typing import Dict, List, Mapping, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))
PROTOCOL_PATH = os.path.join(_HERE, "protocol.py")
WORKER_PATH = os.path.join(_HERE, "worker.py")

# Loads protocol.py and worker.py by path under private names, so the worker
# needs no package on sys.path and user code cannot shadow it. ``-c`` leaves
# sys.path[0] == "" (the cwd), exactly like the interactive interpreter.
BOOTSTRAP = """\
import importlib.util, sys
def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
_load("_interp_protocol", sys.argv[1])
_load("_interp_worker", sys.argv[2]).main([int(fd) for fd in sys.argv[3:7]] or None)
"""

#: How much of a worker's start-up stderr is kept to explain a failed start.
STARTUP_ERR_LIMIT = 64 * 1024
#: How much output is recovered from each capture pipe after a worker died.
SALVAGE_LIMIT = 1024 * 1024


class WorkerProcess:
    """A live worker: a process-group leader and the two ends of its channel.

    ``send_fd`` carries commands to the worker, ``recv_fd`` brings its frames
    back. Methods never signal a process that has already been reaped, so a
    recycled pid is never hit.
    """

    def __init__(self, popen: subprocess.Popen, send_fd: int, recv_fd: int, err_fd: int,
                 salvage_fds: Mapping[str, int]):
        self.popen = popen
        self.pid = popen.pid
        self.send_fd = send_fd
        self.recv_fd = recv_fd
        self._err_fd: Optional[int] = err_fd
        self._salvage_fds = dict(salvage_fds)
        self.returncode: Optional[int] = None
        self.startup_stderr = ""

    def alive(self) -> bool:
        """True while the worker has not exited (does not reap it)."""
        if self.returncode is not None:
            return False
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False
        return info is None

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the worker's whole process group (it and its children)."""
        if self.returncode is not None:
            return
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def salvage(self) -> Dict[str, bytes]:
        """After the channel closed: kill the group and return the output left
        unforwarded in the capture pipes (bytes the worker died holding)."""
        self.signal_group(signal.SIGKILL)
        return {stream: _read_available(fd, SALVAGE_LIMIT)
                for stream, fd in self._salvage_fds.items()}

    def started(self) -> None:
        """The worker reported ready: its start-up stderr is no longer needed."""
        if self._err_fd is not None:
            os.close(self._err_fd)
            self._err_fd = None

    def destroy(self) -> int:
        """Kill the process group, reap the worker, close the channel. Idempotent.

        Returns the worker's exit status (negative: killed by that signal).
        """
        if self.returncode is None:
            self.signal_group(signal.SIGKILL)
            self.returncode = self.popen.wait()
            for fd in (self.send_fd, self.recv_fd, *self._salvage_fds.values()):
                os.close(fd)
            if self._err_fd is not None:
                self.startup_stderr = _read_available(self._err_fd, STARTUP_ERR_LIMIT).decode(
                    "utf-8", "replace")
                os.close(self._err_fd)
                self._err_fd = None
        return self.returncode


def _read_available(fd: int, limit: int) -> bytes:
    os.set_blocking(fd, False)
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


class Launcher:
    """Starts workers as fresh processes of ``python`` (default: sys.executable).

    ``sys.executable`` is used as is: a PATH lookup could find a slow shim and
    resolving symlinks would step out of a virtualenv.
    """

    def __init__(self, python: Optional[str] = None):
        self.python = python or sys.executable

    def start(self, cwd: str, env: Optional[Mapping[str, str]] = None) -> WorkerProcess:
        """Start a worker in ``cwd`` with ``env`` (None: inherit os.environ)."""
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        err_r, err_w = os.pipe()
        capture = os.pipe() + os.pipe()  # stdout r/w, stderr r/w; the worker moves them to fds 1, 2
        try:
            popen = subprocess.Popen(
                [self.python, "-c", BOOTSTRAP, PROTOCOL_PATH, WORKER_PATH, *map(str, capture)],
                stdin=to_worker_r,
                stdout=from_worker_w,
                stderr=err_w,
                cwd=cwd,
                env=None if env is None else dict(env),
                close_fds=True,
                pass_fds=capture,
                start_new_session=True,  # its own process group, for signals and kills
            )
        except BaseException:
            for fd in (to_worker_r, to_worker_w, from_worker_r, from_worker_w, err_r, err_w, *capture):
                os.close(fd)
            raise
        for fd in (to_worker_r, from_worker_w, err_w, capture[1], capture[3]):
            os.close(fd)
        for fd in (capture[0], capture[2], to_worker_w, from_worker_r):
            os.set_blocking(fd, False)
        return WorkerProcess(popen, to_worker_w, from_worker_r, err_r,
                             {"stdout": capture[0], "stderr": capture[2]})
