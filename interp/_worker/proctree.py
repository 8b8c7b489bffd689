"""Process trees from Linux /proc: finding and killing every descendant of a
process. Used by the worker, the zygote and the parent (``interp.process``)."""

from __future__ import annotations

import os
import signal
from typing import List, Optional

# As the engine found them: user code's are wrapped to flush its output first (see
# flushing.py), which must never hold up the worker's way out.
_exit, _kill, _killpg = os._exit, os.kill, os.killpg


def children_of(pid: int) -> List[int]:
    """The children of ``pid``, from every one of its threads."""
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return []
    children: List[int] = []
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as handle:
                children.extend(int(child) for child in handle.read().split())
        except (OSError, ValueError):
            pass
    return children


def state(pid: int) -> Optional[bytes]:
    """The state letter of ``pid`` (b"R", b"S", b"T", b"Z", ...), or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    end = data.rindex(b")")  # the command name, in parentheses, may hold anything
    return data[end + 2:end + 3]


def is_live(pid: int) -> bool:
    """True if ``pid`` runs (not gone, not a zombie)."""
    return state(pid) not in (None, b"Z", b"X")


def is_stopped(pid: int) -> bool:
    """True if ``pid`` is stopped (SIGSTOP, or traced)."""
    return state(pid) in (b"T", b"t")


def descendants(pid: int) -> List[int]:
    """The live processes below ``pid`` in the process tree."""
    found: List[int] = []
    stack = [pid]
    while stack:
        for child in children_of(stack.pop()):
            if is_live(child):
                found.append(child)
            stack.append(child)
    return found


def kill_tree(pid: int, rounds: int = 10) -> None:
    """SIGKILL every live descendant of ``pid`` (not ``pid`` itself), again
    while new ones keep appearing (a process forking as it dies)."""
    for _ in range(rounds):
        victims = descendants(pid)
        if not victims:
            return
        for victim in victims:
            try:
                _kill(victim, signal.SIGKILL)
            except OSError:
                pass


def orphaned() -> None:
    """The parent is gone (or closed the channel): take down this process and
    everything it started. Never returns."""
    kill_tree(os.getpid())
    if os.getpgrp() == os.getpid():
        _killpg(os.getpid(), signal.SIGKILL)
    _exit(1)
