"""Process inspection helpers for tests (Linux /proc)."""

from __future__ import annotations

import os
import time
from typing import Callable, List


def _stat_fields(pid: int) -> List[str]:
    with open("/proc/%d/stat" % pid) as handle:
        data = handle.read()
    # the command name is in parentheses and may contain spaces
    return data[data.rindex(")") + 2:].split()


def process_exists(pid: int) -> bool:
    """True if ``pid`` is a live process (zombies count as gone)."""
    try:
        return _stat_fields(pid)[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def worker_processes_of(parent: int) -> List[int]:
    """Pids of the live (non-zombie) children of ``parent``, zombies included
    only when unreaped ones remain (those are leaks too)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = _stat_fields(int(name))
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == parent:
            found.append(int(name))
    return found


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
