"""A worker process as the parent holds it: its pid, the parent's ends of
its channel and capture pipes, and how to signal, kill and reap it
(:class:`WorkerProcess`), whichever launcher started it (see
:mod:`interp.process`); and the pipes a new worker is given."""

from __future__ import annotations

import os
import select
import signal
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ._worker.proctree import is_live, kill_tree
from ._zygote_client import STARTUP_ERR_LIMIT


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
                 kill: Optional[Callable[[], None]] = None, reserved: Callable[[], bool] = lambda: True):
        self.pid = pid
        self._reserved = reserved  # True while the pid number cannot be another process's
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
        if not self._reserved():  # its number may be another process's by now
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
        if not self._reserved():
            return
        self.signal_group(signal.SIGSTOP)  # nothing in the group forks meanwhile
        kill_tree(self.pid)
        self.signal_group(signal.SIGKILL)

    def read_channel(self) -> bytes:
        """What the channel holds now (at most SALVAGE_LIMIT bytes), without waiting."""
        return read_available(self.recv_fd, SALVAGE_LIMIT)

    def salvage(self) -> Dict[str, bytes]:
        """After the channel closed: kill everything left and return the output
        left unforwarded in the capture pipes (bytes the worker died holding)."""
        self.kill()
        return {stream: read_available(fd, SALVAGE_LIMIT)
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
                self.startup_stderr = read_available(self._err_fd, STARTUP_ERR_LIMIT).decode(
                    "utf-8", "replace")
                os.close(self._err_fd)
                self._err_fd = None
            self._release()
        return self.returncode


def read_available(fd: int, limit: int) -> bytes:
    """Read what ``fd`` (a descriptor of ours opened O_NONBLOCK, see
    private_reader) holds now, never waiting."""
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


class Pipes:
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
        out_r, errp_r = private_reader(self.out_r), private_reader(self.errp_r)
        for fd in (self.to_worker_w, self.from_worker_r, self.err_r):
            os.set_blocking(fd, False)  # these ends are ours alone
        return WorkerProcess(pid, self.to_worker_w, self.from_worker_r, self.err_r,
                             {"stdout": out_r, "stderr": errp_r}, **how)


def private_reader(fd: int) -> int:
    """A new, non-blocking open file description for the pipe ``fd`` reads
    (``fd`` is closed), so nobody else can make our reads block."""
    try:
        private = os.open("/proc/self/fd/%d" % fd, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # no /proc: the shared description, non-blocking (best effort)
        os.set_blocking(fd, False)
        return fd
    os.close(fd)
    return private


def pidfd_signal(pidfd: int, sig: int) -> None:
    """Send ``sig`` through ``pidfd`` (ignored if that process is gone)."""
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except (OSError, AttributeError):
        pass


def pidfd_exited(pid: int, pidfd: Optional[int] = None) -> Tuple[Callable[[], bool], Callable[[], None]]:
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
