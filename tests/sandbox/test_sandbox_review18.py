"""Issue 18's hostile review: one regression test per finding fixed (each
failed before its fix). Every test bounds what it starts and cleans up."""

from __future__ import annotations

import errno
import os

import pytest

from conftest import no_leftovers
from helpers import _children
from interp import CodeInterpreter
from interp.sandbox import Sandbox, _Cgroup

MiB = 1 << 20


def _workspace(tmp_path, name="workspace"):
    path = tmp_path / name
    path.mkdir()
    return path


# 3. System V shared memory escaped `memory` (RLIMIT_AS): detached segments
#    are held outside every address space and outlive the worker

SHM_CELL = (
    "import ctypes\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "sid = libc.shmget(0, 64 << 20, 0o1600)\n"
    "print('refused', ctypes.get_errno()) if sid < 0 else print('made', sid)\n"
)


def test_system_v_shared_memory_is_refused_under_rlimit_as(tmp_path, monkeypatch):
    monkeypatch.setattr(_Cgroup, "probe", staticmethod(lambda: None))  # as an unprivileged user
    box = Sandbox(_workspace(tmp_path), memory=256 * MiB)
    assert box.enforcement()["shm"].startswith("seccomp"), box.enforcement()
    with CodeInterpreter(sandbox=box) as ci:
        out = ci.run_code(SHM_CELL).stdout
        assert out == "refused %d\n" % errno.ENOSYS, out
        assert ci.run_code("print(open('/proc/sysvipc/shm').read().count('\\n'))").stdout == "1\n"
    no_leftovers()


def test_system_v_shared_memory_works_without_a_memory_limit(tmp_path):
    box = Sandbox(_workspace(tmp_path), memory=None)
    assert "shm" not in box.enforcement()
    with CodeInterpreter(sandbox=box) as ci:
        assert ci.run_code(SHM_CELL).stdout.startswith("made ")
    no_leftovers()


# 4. a new worker was dumpable while its fd 2 was still the zygote's stderr (a
#    host file): another context could open it through /proc/<pid>/fd/2

SPY = r'''
import os, threading
found = []
def spy():
    seen = set()
    while not stop:
        for name in os.listdir('/proc'):
            if not name.isdigit() or name in seen:
                continue
            seen.add(name)
            for fd in (0, 1, 2):
                try:
                    link = os.readlink('/proc/%s/fd/%d' % (name, fd))
                except OSError:
                    continue
                if not link.startswith(('pipe:', 'socket:', '/dev/null', 'anon_inode:')):
                    found.append((name, fd, link))
stop = False
spying = threading.Thread(target=spy, daemon=True)
spying.start()
'''


def test_no_worker_exposes_a_host_descriptor_while_it_starts(tmp_path):
    with CodeInterpreter(sandbox=Sandbox(_workspace(tmp_path))) as ci:
        assert ci.run_code(SPY).error is None
        for _ in range(25):
            ci.delete_context(ci.create_context())
        out = ci.run_code("stop = True\nspying.join(5)\nprint(found)").stdout
        assert out == "[]\n", out
    no_leftovers()


@pytest.mark.skipif(os.getuid() != 0, reason="the zygote is not dumpable: only root reads its /proc/<pid>/fd")
def test_the_zygote_keeps_no_host_file_as_its_stderr(tmp_path):
    with CodeInterpreter(sandbox=Sandbox(_workspace(tmp_path))) as ci:
        assert ci.run_code("print(1)").stdout == "1\n"
        tree, stack, pythons = _children(), [os.getpid()], []
        while stack:
            pid = stack.pop()
            stack.extend(tree.get(pid, []))
            try:  # inside the sandbox's PID namespace (not bwrap): two NSpid numbers
                with open("/proc/%d/status" % pid) as handle:
                    if any(line.startswith("NSpid:") and len(line.split()) > 2 for line in handle):
                        pythons.append(pid)
            except OSError:
                pass
        assert len(pythons) >= 2  # the zygote and the context's worker
        for pid in pythons:
            assert not os.path.isfile("/proc/%d/fd/2" % pid), (pid, os.readlink("/proc/%d/fd/2" % pid))
    no_leftovers()
