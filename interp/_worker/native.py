"""The few C library functions the worker needs, through ctypes, resolved
once (in the zygote, before it forks)."""

from __future__ import annotations

import sys
from typing import Any, Dict

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36

_libc: Dict[str, Any] = {}  # name -> C function


def load() -> Dict[str, Any]:
    """``prctl``, ``fflush`` and ``clearenv`` from the C library (empty if unavailable)."""
    if not _libc:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            _libc.update(prctl=libc.prctl, fflush=libc.fflush, clearenv=libc.clearenv)
        except Exception:
            _libc["unavailable"] = None
    return _libc


def become_subreaper() -> None:
    """Make orphaned descendants (daemons that setsid and double-fork) become
    children of this process instead of init, so that kill_tree finds them."""
    if not sys.platform.startswith("linux"):
        return
    prctl = load().get("prctl")
    if prctl is not None:
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def set_dumpable(dumpable: bool) -> None:
    """Whether processes of the same user may ptrace this one, read its
    /proc/<pid>/fd or copy its fds (pidfd_getfd). The zygote is not: in a
    sandbox, its workers could otherwise take its socket to the parent."""
    prctl = load().get("prctl")
    if prctl is not None and sys.platform.startswith("linux"):
        prctl(PR_SET_DUMPABLE, 1 if dumpable else 0, 0, 0, 0)


def fflush_all() -> None:
    """Flush C stdio buffers (printf in an extension module)."""
    fflush = _libc.get("fflush")
    if fflush is not None:
        try:
            fflush(None)
        except BaseException:
            pass


def clearenv() -> bool:
    """Empty the C library's environment; False if that is not available."""
    function = load().get("clearenv")
    if function is None:
        return False
    function()
    return True
