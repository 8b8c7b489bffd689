"""Helpers for tests: process inspection (Linux /proc), protocol checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Callable, Dict, List


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


def _children() -> Dict[int, List[int]]:
    tree: Dict[int, List[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = _stat_fields(int(name))
        except (FileNotFoundError, ProcessLookupError):
            continue
        tree.setdefault(int(fields[1]), []).append(int(name))
    return tree


def zygote_pids() -> List[int]:
    """The zygote of this process's default launcher and its idle pooled
    workers: shared helpers that outlive any one interpreter."""
    from interp import process

    launcher = process._default_launcher
    return launcher.helper_pids() if launcher is not None else []


def worker_processes_of(parent: int) -> List[int]:
    """Pids of the processes (zombies included: those are leaks too) that
    descend from ``parent``, not counting interp's zygote itself (its forked
    workers do count)."""
    tree = _children()
    zygotes = zygote_pids()
    found = []
    stack = list(tree.get(parent, []))
    while stack:
        pid = stack.pop()
        if pid not in zygotes:
            found.append(pid)
        stack.extend(tree.get(pid, []))
    return sorted(found)


def open_fds() -> int:
    """How many fds this process has open, the shared launcher's pool
    trimmed to its pooled worker (a burst of contexts grows it) and that
    worker answered: until the zygote's answer about it is read (the launcher
    asks for it ahead of need and reads the answer later), it holds its
    pipes' fds and, once read ahead, the pidfd too."""
    from interp import process

    if process._default_launcher is not None:
        process._default_launcher.trim()
    zygote_pids()  # reads that answer
    return len(os.listdir("/proc/self/fd"))


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def kill_parent_after_report(script: str, before_kill: Callable[[List[int]], None] = lambda pids: None,
                             **popen_args) -> List[int]:
    """Run ``script`` as a parent process with interp; read the pids it
    prints on its first line, run ``before_kill(pids)``, SIGKILL the parent
    and reap it. Returns the pids."""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              **popen_args)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        before_kill(pids)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
    return pids


def assert_decoded(conn) -> None:
    """What a core.Connection queues is valid: output as non-empty text, the
    rest per the protocol's schema, all of it JSON-serialisable."""
    from interp.protocol import STREAMS, validate_event

    for message in conn.pending:
        if message["t"] == "out":
            assert message["s"] in STREAMS and isinstance(message["d"], str) and message["d"]
        else:
            assert validate_event(message) is message
    json.dumps(list(conn.pending))


def network_unavailable(why: str) -> None:
    """For tests marked ``network``: skip with ``why`` (offline, say), but fail
    when CI=true, where the network tests are required."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail("%s (CI=true requires the network tests)" % why)
    pytest.skip(why)
