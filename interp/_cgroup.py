"""The cgroup a sandbox gets when one can be made (``interp.sandbox``): its
memory and process limits, and the removal of what killed parents left."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from typing import Dict, List, Optional, Tuple


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _kernel() -> Tuple[int, int]:
    try:
        major, minor = os.uname().release.split(".")[:2]
        return int(major), int("".join(c for c in minor if c.isdigit()) or 0)
    except ValueError:
        return (0, 0)


#: Cgroups made for sandboxes are named so; empty ones older than
#: STALE_CGROUP_AGE seconds are left-overs of parents that were killed.
CGROUP_PREFIX = "interp-sandbox-"
STALE_CGROUP_AGE = 60.0


class _Cgroup:
    """A cgroup made for one sandbox: v2 (one directory) or v1 (one per
    controller), under this process's own cgroup, where we may write."""

    def __init__(self, version: str, dirs: Dict[str, str]) -> None:
        self.version = version
        self.dirs = dirs  # controller ("memory", "pids") -> directory (the parent's, until create())

    @property
    def memory(self) -> bool:
        return "memory" in self.dirs

    @property
    def pids(self) -> bool:
        return "pids" in self.dirs

    @staticmethod
    def probe() -> Optional[_Cgroup]:
        """Where a sandbox's cgroup could be made, or None."""
        own = _read("/proc/self/cgroup") or ""
        v1: Dict[str, str] = {}
        v2_path = None
        for line in own.splitlines():
            _id, controllers, path = line.split(":", 2)
            if controllers == "":
                v2_path = path
            for controller in ("memory", "pids"):
                if controller in controllers.split(","):
                    v1[controller] = os.path.join("/sys/fs/cgroup", controller, path.lstrip("/"))
        if v2_path is not None and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            base = os.path.join("/sys/fs/cgroup", v2_path.lstrip("/"))
            enabled = (_read(os.path.join(base, "cgroup.subtree_control")) or "").split()
            unified: Dict[str, str] = {c: base for c in ("memory", "pids") if c in enabled}
            if unified and os.access(base, os.W_OK):
                return _Cgroup("v2", unified)
        dirs: Dict[str, str] = {c: d for c, d in v1.items() if os.path.isdir(d) and os.access(d, os.W_OK)}
        return _Cgroup("v1", dirs) if dirs else None

    def remove_stale(self, min_age: float = STALE_CGROUP_AGE) -> None:
        """Remove the empty cgroups that sandboxes of parents killed by SIGKILL
        left behind here (older than ``min_age`` seconds: a younger one may be
        a sandbox still starting)."""
        now = time.time()
        for parent in set(self.dirs.values()):
            try:
                names = [name for name in os.listdir(parent) if name.startswith(CGROUP_PREFIX)]
            except OSError:
                continue
            for name in names:
                path = os.path.join(parent, name)
                try:
                    if now - os.stat(path).st_mtime >= min_age and not (_read(os.path.join(path, "cgroup.procs"))
                                                                         or "").strip():
                        os.rmdir(path)  # fails harmlessly if a process entered meanwhile
                except OSError:
                    pass

    def create(self, memory: Optional[int], processes: Optional[int]) -> Optional[_Cgroup]:
        """Make this sandbox's cgroup with those limits (None if it cannot be made)."""
        name = CGROUP_PREFIX + uuid.uuid4().hex[:12]
        made: Dict[str, str] = {}
        try:
            for controller, parent in self.dirs.items():
                path = os.path.join(parent, name)
                if path not in made.values():
                    os.mkdir(path)
                made[controller] = path
            if memory is not None and "memory" in made:
                if self.version == "v2":
                    _write(os.path.join(made["memory"], "memory.max"), str(memory))
                    _write(os.path.join(made["memory"], "memory.swap.max"), "0", required=False)
                else:
                    _write(os.path.join(made["memory"], "memory.limit_in_bytes"), str(memory))
                    _write(os.path.join(made["memory"], "memory.memsw.limit_in_bytes"), str(memory), required=False)
            if processes is not None and "pids" in made:
                _write(os.path.join(made["pids"], "pids.max"), str(processes))
        except OSError:
            _Cgroup(self.version, made).destroy()
            return None
        return _Cgroup(self.version, made)

    def enter_command(self) -> List[str]:
        """A prefix that moves the command into this cgroup, then runs it."""
        procs = sorted({os.path.join(path, "cgroup.procs") for path in self.dirs.values()})
        script = "".join('echo $$ > "%s" && ' % path for path in procs) + 'exec "$@"'
        return ["/bin/sh", "-c", script, "sh"]

    def destroy(self) -> None:
        """Kill whatever is left in the cgroup and remove it."""
        for path in sorted(set(self.dirs.values())):
            if not os.path.isdir(path):
                continue
            if not _write(os.path.join(path, "cgroup.kill"), "1", required=False):
                for _ in range(10):
                    pids = (_read(os.path.join(path, "cgroup.procs")) or "").split()
                    if not pids:
                        break
                    for pid in pids:
                        _kill_member(pid, path)
            for _ in range(100):
                try:
                    os.rmdir(path)
                    break
                except OSError:
                    threading.Event().wait(0.01)  # the killed processes are still exiting


def _kill_member(pid: str, cgroup: str) -> None:
    """SIGKILL ``pid`` if it is still a member of ``cgroup``: through a pidfd
    opened first, so a number recycled meanwhile is never signalled."""
    try:
        pidfd = os.pidfd_open(int(pid))
    except (OSError, ValueError, AttributeError):
        return
    try:
        procs = (_read(os.path.join(cgroup, "cgroup.procs")) or "").split()
        if pid in procs:  # the pidfd names the process that is in the cgroup now
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(pidfd)


def _write(path: str, text: str, required: bool = True) -> bool:
    try:
        with open(path, "w") as handle:
            handle.write(text)
        return True
    except OSError:
        if required:
            raise
        return False
