"""The zygote: a warmed, single-threaded process that forks new workers.

Starting Python costs tens of milliseconds; forking a process that has
already imported the worker costs about one. The parent (``process.py``)
starts one zygote and sends it requests over a ``SOCK_SEQPACKET`` Unix
socket, one JSON message each, with file descriptors attached:

On start the zygote sends ``{"t": "hello", "pid": int}`` with a pidfd of
itself attached (when the kernel has pidfds): in a sandbox's PID namespace
the pid it knows is not the host's, and the parent reads the host pid from
the pidfd's ``/proc/self/fdinfo`` entry.

``{"t": "spawn", "count": int}`` + 7 fds per worker (default count 1, at most MAX_BATCH)
    (each worker's channel in, channel out, start-up stderr, stdout capture
    read/write, stderr capture read/write). The zygote forks ``count``
    times; each child closes the other workers' fds, becomes a session
    leader, puts the channel on fds 0 and 1 and runs the worker, which waits
    for a ``setup`` command (cwd, environment, limits) before its first run.
    Answer: ``{"pids": [int]}`` in the order asked (fewer if forking failed
    after the first), with a pidfd of each attached (when available), or
    ``{"error": str}``. One request for many workers spares the zygote the
    pages a request touches (each fork makes them shared again).
``{"t": "signal", "pid": int, "sig": int}``
    Send ``sig`` to that worker's process group. Answer ``{}``.
``{"t": "kill", "pid": int}``
    SIGKILL that worker, its group and every descendant. Answer ``{}``.
``{"t": "open", "path": str}``
    Open that directory as the sandbox shows it (``O_PATH``, never through a
    link) and answer ``{}`` with the descriptor attached: the parent reaches
    the workspace through it, even a tmpfs that exists only in here.
``{"t": "reap", "pid": int}``
    Kill that worker and reap it; answer ``{"returncode": int}``, or
    ``{"returncode": null}`` if a process traces it (the tracer holds its
    exit: it is reaped later, never waited for) or it is not reapable
    within REAP_WAIT. Workers are only reaped when the parent asks, so a worker's pid
    (and process group id) cannot be reused while the parent may still
    signal it. The parent signals sandboxed workers only through these
    requests and the pidfds it holds, never by host pid numbers.

When the parent goes away the socket reaches EOF and the zygote exits;
its workers notice their own channels closing and take their process groups
down. The zygote is also the subreaper of its workers' descendants: daemons
left by a worker that died abruptly become its children, and it kills them
when that worker is reaped (or when it exits). Like the worker, this module
imports only the standard library and the rest of the worker package, loaded
by path (see ``interp._zygote_client.ZYGOTE_BOOTSTRAP``).
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Set, Union

from . import native, proctree
from .worker import Worker, main

SPAWN_FDS = 7
#: Most workers one spawn request asks for (the parent's ZYGOTE_BATCH).
MAX_BATCH = 16
#: The zygote warms up once no request came for this many seconds.
WARM_UP_WHEN_IDLE = 0.05
MAX_MESSAGE = 1 << 20
#: How long a reap request waits for a killed, untraced worker to become
#: reapable (a SIGKILLed process exits; under load that may take a while);
#: below the parent's ZYGOTE_TIMEOUT.
REAP_WAIT = 5.0
#: How long it waits for a traced one (its tracer may never let it go).
REAP_WAIT_TRACED = 0.1


def _warm_up() -> None:
    """Import what workers use sooner or later, once, so every fork shares it."""
    import ast  # noqa: F401
    import asyncio  # noqa: F401
    import codeop  # noqa: F401
    import ctypes  # noqa: F401
    import importlib.resources  # .pth files often reach it (certifi, setuptools)
    import importlib.util  # noqa: F401
    import pathlib  # noqa: F401
    import rlcompleter  # noqa: F401
    import site  # noqa: F401 (imported, not run: workers run site.main() once forked)
    import traceback  # noqa: F401

    native.load()
    # Objects that exist now are never collected: keeping the collector off
    # them keeps their pages shared between the zygote and its workers.
    gc.collect()
    gc.freeze()


def _child(fds: Sequence[int], template: Optional[Worker]) -> None:
    """In the forked child: become a worker (``template``, if the zygote
    built one). Never returns."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote's handler is not the code's
        os.setsid()
        _set_limits(_child_limits, PER_PROCESS)
        channel_in, channel_out, startup_err = fds[:3]
        for fd, target in ((channel_in, 0), (channel_out, 1), (startup_err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        # Not dumpable yet (nothing of it is open to the other workers through
        # /proc/<pid>/fd, ptrace or pidfd_getfd): it becomes so once it is a
        # context's, set up (Worker.setup), its descriptors all its own.
        if sys.flags.no_site:  # a sandboxed zygote starts without site (-S): see _zygote_client
            import site

            site.main()
        main(fds[3:7], worker=template)
    except BaseException as exc:  # report to the start-up stderr the parent reads
        try:
            os.write(2, ("interp worker failed to start: %r\n" % (exc,)).encode("utf-8", "replace"))
        except OSError:
            pass
    finally:
        proctree._exit(1)  # not the flushing os._exit of user code


def serve(sock_fd: int, limits: Union[str, Dict[str, int], None] = None) -> None:
    """The zygote's loop: answer requests until the parent closes the socket.

    ``limits`` (a dict or its JSON) maps ``resource.RLIMIT_*`` names to
    values the zygote sets on itself first, so every worker inherits them
    (a sandbox's limits, see ``interp.sandbox``)."""
    # Nothing but the parent may stop the zygote: in a sandbox it is PID 1 of
    # the namespace, which the kernel shields from every signal it ignores
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Workers must not reach the socket to the parent through this process
    # (ptrace, /proc/<pid>/fd, pidfd_getfd): forged replies would name host
    # processes for the parent to kill. Each worker is made dumpable again
    # once a context's (Worker.setup): a pooled one is not open to the code.
    native.set_dumpable(False)
    sock = socket.socket(fileno=sock_fd)
    try:
        _set_limits(json.loads(limits) if isinstance(limits, str) else limits)
    except (ValueError, OSError) as exc:
        sock.send(json.dumps({"t": "hello", "error": "limits: %s" % exc}).encode())
        os._exit(1)
    _send(sock, {"t": "hello", "pid": os.getpid()}, [os.getpid()])
    # Its stderr (in a sandbox, a host file that keeps what bwrap said) is
    # not needed after the hello: no descriptor of the host's stays here.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 2):  # 0 as in every worker (its sys.stdin is built here, over fd 0: see Worker)
        os.dup2(null, fd)
    os.close(null)
    # The worker every fork starts as, built once here: a fork only takes its
    # descriptors and starts its threads (each object a worker builds itself
    # costs it the pages it writes). A zygote without site (a sandbox's) does
    # not: its workers run site.main() first, then build theirs.
    template = None if sys.flags.no_site else Worker()
    gc.freeze()  # a collection in a worker must not touch (and copy) what it shares with us
    warm = False
    # Daemons started by a worker that then died abruptly (a segfault, the
    # OOM killer) are re-parented here instead of to init; _sweep ends them.
    native.become_subreaper()
    signal.signal(signal.SIGCHLD, _child_changed)
    workers: Set[int] = set()
    while True:
        if _unreaped[0] and not select.select([sock], [], [], SWEEP_WAIT)[0]:
            _sweep(workers)  # idle, with orphans a tracer held: try them again
            continue
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, SPAWN_FDS * MAX_BATCH)
        except OSError:
            break
        if not data:
            break
        reply: Dict[str, Any]
        number = None
        try:
            request = json.loads(data)
            number = request.get("n")
            reply = _handle(request, fds, sock, workers, template)
        except Exception as exc:
            reply = {"error": "%s: %s" % (type(exc).__name__, exc)}
        finally:
            for fd in fds:
                os.close(fd)
        reply["n"] = number  # the request it answers
        try:
            _send(sock, reply, reply.get("pids", ()))
        except OSError:
            break
        if not warm and not select.select([sock], [], [], WARM_UP_WHEN_IDLE)[0]:
            # warm up once idle: the first workers (the first context and the
            # pool's next one, asked for right after) need not wait for it
            _warm_up()
            warm = True
    _sweep(workers)
    os._exit(0)


def _send(sock: socket.socket, reply: Dict[str, Any], pids: Sequence[int]) -> None:
    """Send ``reply`` with the descriptor in its ``fd`` attached (and
    closed), else a pidfd of each of ``pids`` (all or none: if pidfds exist)."""
    fd = reply.pop("fd", -1)
    attached = [fd] if fd >= 0 else []
    if not attached and hasattr(os, "pidfd_open"):
        try:
            for pid in pids:
                attached.append(os.pidfd_open(pid))
        except OSError:
            for pidfd in attached:
                os.close(pidfd)
            attached = []
    try:
        socket.send_fds(sock, [json.dumps(reply).encode()], attached)
    finally:
        for fd in attached:
            os.close(fd)


#: Limits each worker sets on itself once forked (CPU time counts per process,
#: and the zygote's own must not run out).
_child_limits: Dict[str, int] = {}
PER_PROCESS = ("RLIMIT_CPU",)


def _set_limits(limits: Optional[Dict[str, int]], names: Optional[Sequence[str]] = None) -> None:
    """Set these RLIMIT_* names (all but the per-process ones, when ``names`` is None)."""
    import resource

    for name, value in (limits or {}).items():
        if names is None and name in PER_PROCESS:
            _child_limits[name] = int(value)
        elif names is None or name in names:
            resource.setrlimit(getattr(resource, name), (int(value), int(value)))


def _fork(workers: Set[int], attempts: int = 5) -> int:
    """os.fork(), retried while the process limit is reached and processes
    left by dead workers are being killed."""
    for attempt in range(attempts):
        try:
            return os.fork()
        except BlockingIOError:
            if attempt == attempts - 1:
                raise
            _sweep(workers)
            select.select([], [], [], 0.02 * (attempt + 1))
    raise AssertionError("unreachable")


#: Seconds a sweep waits for the orphans it killed to exit. A tracer may hold
#: one's exit for ever: that one is reaped by a later sweep (see serve).
SWEEP_WAIT = 0.5
_unreaped = [False]  # the last sweep left an orphan to reap
# A child of ours exited (or stopped) since the last sweep began. Orphans are
# only adopted here when a process below a worker dies after that worker
# died, and each such death is a SIGCHLD here (the kernel re-parents a dying
# process's children before it signals its parent): without one, no orphan
# can be waiting, and a spawn need not list the children, which takes time in
# proportion to their number (with 1,000 contexts, every spawn read 1,000 pids).
_sweep_due = [True]


def _child_changed(signum: int, frame: Any) -> None:
    _sweep_due[0] = True


def _sweep(workers: Set[int]) -> None:
    """Kill and reap every child that is not one of our workers: orphans of
    workers that died, adopted by the zygote as their subreaper."""
    _sweep_due[0] = False  # before listing: a death from now on calls for the next sweep
    left = []
    for child in proctree.children_of(os.getpid()):
        if child in workers:
            continue
        proctree.kill_tree(child)
        try:
            os.kill(child, signal.SIGKILL)
        except OSError:
            pass
        left.append(child)
    give_up = time.monotonic() + SWEEP_WAIT
    while left:
        left = [child for child in left if not _reaped(child)]
        if not left or time.monotonic() >= give_up:
            break
        select.select([], [], [], 0.005)
    _unreaped[0] = bool(left)


def _reaped(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] != 0
    except ChildProcessError:
        return True


def _handle(request: Dict[str, Any], fds: List[int], sock: socket.socket, workers: Set[int],
            template: Optional[Worker] = None) -> Dict[str, Any]:
    kind = request.get("t")
    if kind == "spawn":
        count = request.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_BATCH:
            return {"error": "spawn asks for 1 to %d workers, not %r" % (MAX_BATCH, count)}
        if len(fds) != SPAWN_FDS * count:
            return {"error": "spawn needs %d file descriptors per worker, got %d for %d"
                             % (SPAWN_FDS, len(fds), count)}
        if _sweep_due[0]:
            _sweep(workers)  # orphans of dead workers' children hold process slots (a bomb's)
        pids: List[int] = []
        for index in range(count):
            try:
                pid = _fork(workers)
            except OSError:
                if not pids:
                    raise
                break  # the parent learns which it got
            if pid == 0:
                os.close(sock.detach())  # (not socket.close(): its Python code costs the fork pages)
                own = fds[index * SPAWN_FDS:(index + 1) * SPAWN_FDS]
                for fd in fds:
                    if fd not in own:  # another context's channel and pipes: never this one's
                        os.close(fd)
                _child(own, template)
            workers.add(pid)
            pids.append(pid)
        return {"pids": pids}
    if kind == "open":
        path = request.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            return {"error": "open needs an absolute path"}
        return {"fd": os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)}
    if kind in ("signal", "kill", "reap"):
        target = request.get("pid")
        if not isinstance(target, int) or target not in workers:
            return {"error": "no worker %r" % (target,)}
        pid = target
        if kind == "signal":
            _signal_group(pid, int(request["sig"]))
            return {}
        _kill(pid)
        if kind == "kill":
            return {}
        status = _reap(pid)
        workers.discard(pid)  # not reaped yet: a later _sweep reaps it as an orphan
        _sweep(workers)
        return {"returncode": None if status is None else os.waitstatus_to_exitcode(status)}
    return {"error": "unknown request %r" % (kind,)}


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:  # forked a moment ago: not a group leader yet
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    except OSError:
        pass


def _kill(pid: int) -> None:
    """SIGKILL a worker (our unreaped child), its group and its descendants."""
    _signal_group(pid, signal.SIGSTOP)  # nothing in the group forks meanwhile
    proctree.kill_tree(pid)
    _signal_group(pid, signal.SIGKILL)


def _reap(pid: int) -> Optional[int]:
    """The wait status of a killed worker, or None if it is not reapable
    within REAP_WAIT (REAP_WAIT_TRACED while a process traces it)."""
    started = time.monotonic()
    try:  # readable once it exited: a wait wakes then, not at the next 5 ms tick
        exit_fds = [os.pidfd_open(pid)]
    except (AttributeError, OSError):
        exit_fds = []
    try:
        while True:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return 0
            if done:
                return status
            waited = time.monotonic() - started
            if waited >= REAP_WAIT or (waited >= REAP_WAIT_TRACED and _traced(pid)):
                return None
            select.select(exit_fds, [], [], 0.005)
    finally:
        for fd in exit_fds:
            os.close(fd)


def _traced(pid: int) -> bool:
    try:
        with open("/proc/%d/status" % pid) as handle:
            for line in handle:
                if line.startswith("TracerPid:"):
                    return line.split()[1] != "0"
    except (OSError, IndexError):
        pass
    return False


def supervise(capture: Sequence[int], options: Union[str, Dict[str, Any], None]) -> None:
    """A spawned worker's process (see ``process.SpawnLauncher``): fork the
    worker and stay as its parent until it exits, then kill and reap every
    process left (children it made siblings with ``clone(CLONE_PARENT)``,
    orphans adopted as subreaper) and exit with the worker's status.

    The worker stays in this process's session and process group, so that
    signals to the group reach it; this process ignores SIGINT (an interrupt
    is for the code, and a worker still starting inherits the SIG_IGN)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    native.become_subreaper()
    pid = os.fork()
    if pid == 0:
        try:
            main(capture, options)
        finally:
            os._exit(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the channel and the start-up stderr are the worker's
        os.dup2(null, fd)
    for fd in (null, *capture):
        os.close(fd)
    status: Optional[int] = None
    while status is None:
        try:
            child, code = os.wait()
        except ChildProcessError:
            break
        if child == pid:
            status = code
    proctree.kill_tree(os.getpid())
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    _exit_as(status)


def _exit_as(status: Optional[int]) -> None:
    """Exit as a child whose wait status was ``status`` did (a signal too)."""
    code = os.waitstatus_to_exitcode(status) if status is not None else 1
    if code >= 0:
        os._exit(code)
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(-code, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [-code])
        os.kill(os.getpid(), -code)
    finally:
        os._exit(128 - code)
