"""Issue 18's hostile review: one regression test per finding fixed (each
failed before its fix). Every test bounds what it starts and cleans up."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
import types

import pytest

from conftest import no_leftovers
from helpers import _children
from interp import CodeInterpreter
from interp.errors import InvalidCwdError, SandboxError, SandboxUnavailableError
from interp.sandbox import Sandbox, _Cgroup

MiB = 1 << 20


def _workspace(tmp_path, name="workspace"):
    path = tmp_path / name
    path.mkdir()
    return path


# 1. Sandbox(python=<a venv in the workspace>): the venv was writable (only
#    the host's own installation was shown read-only), and the zygote ran
#    its .pth files before it sealed the sandbox

WRITE_CELL = (
    "import errno, sys\n"
    "for path in sys.argv[1:] or PATHS:\n"
    "    try:\n"
    "        open(path, 'a').write('#planted\\n')\n"
    "        print('wrote', path)\n"
    "    except OSError as exc:\n"
    "        print(errno.errorcode[exc.errno], path)\n"
)


def _venv(where):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120,
                   stdout=subprocess.DEVNULL)
    site_packages = [str(path) for path in where.glob("lib/python3*/site-packages")]
    assert len(site_packages) == 1, site_packages
    return site_packages[0]


def _write_into(ci, paths):
    out = ci.run_code("PATHS = %r\n" % [str(path) for path in paths] + WRITE_CELL).stdout
    return out.splitlines()


def test_a_venv_python_inside_the_workspace_is_shown_read_only(tmp_path):
    workspace = _workspace(tmp_path)
    site_packages = _venv(workspace / ".venv")
    targets = [os.path.join(site_packages, "zz.pth"), workspace / ".venv" / "pyvenv.cfg",
               workspace / ".venv" / "bin" / "activate", workspace / "fine.txt"]
    with CodeInterpreter(sandbox=Sandbox(workspace, python=str(workspace / ".venv" / "bin" / "python"))) as ci:
        assert ci.run_code("import sys; print(sys.prefix)").stdout == "%s\n" % (workspace / ".venv")
        out = _write_into(ci, targets)
    assert out == ["EROFS %s" % path for path in targets[:3]] + ["wrote %s" % targets[3]], out
    assert not os.path.exists(targets[0]) and "#planted" not in (workspace / ".venv" / "pyvenv.cfg").read_text()
    no_leftovers()


def test_site_start_up_code_runs_in_workers_only_never_before_the_seal(tmp_path):
    workspace = _workspace(tmp_path)
    site_packages = _venv(tmp_path / "venv")  # a .pth the venv holds (or one planted before)
    with open(os.path.join(site_packages, "zz_probe.pth"), "w") as handle:
        handle.write("import os; open(os.path.join(%r, 'ran-%%d-%%s' %% (os.getpid(), [line.split()[1] for line in "
                     "open('/proc/self/status') if line.startswith('CapEff')][0])), 'w').close()\n"
                     % str(workspace))
    box = Sandbox(workspace, python=str(tmp_path / "venv" / "bin" / "python"), read_only=[tmp_path / "venv"])
    with CodeInterpreter(sandbox=box) as ci:
        assert ci.run_code("import sys; print(sys.prefix)").stdout == "%s\n" % (tmp_path / "venv")
        ran = sorted(name for name in os.listdir(workspace) if name.startswith("ran-"))
        pid = int(ci.run_code("import os; print(os.getpid())").stdout)
    assert ran and all(name.endswith("-0000000000000000") for name in ran), ran
    assert "ran-1-" not in " ".join(ran) and "ran-%d-0000000000000000" % pid in ran, ran
    no_leftovers()


def test_a_python_that_cannot_run_is_refused_before_anything_starts(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(SandboxError, match="did not say where its installation lies"):
        CodeInterpreter(sandbox=Sandbox(_workspace(tmp_path), python=str(fake)))
    no_leftovers()


# 2. a workspace and a venv or read_only= path named through different
#    (symlinked) spellings left the venv and the read_only= path writable

def test_paths_named_through_symlinks_are_compared_and_bound_as_real_paths(tmp_path, monkeypatch):
    real = tmp_path / "real"
    (real / "proj" / "ro").mkdir(parents=True)
    (real / "proj" / "ro" / "f").write_text("kept\n")
    site_packages = _venv(real / "proj" / ".venv")
    (tmp_path / "link").symlink_to(real)
    linked = tmp_path / "link" / "proj"
    # the host runs the venv through the link; the workspace is named by its real path
    monkeypatch.setattr(sys, "path", [*sys.path, site_packages.replace(str(real), str(tmp_path / "link"))])
    venv_files = [os.path.join(site_packages, "x.pth"), real / "proj" / ".venv" / "pyvenv.cfg",
                  real / "proj" / ".venv" / "bin" / "activate"]
    with CodeInterpreter(sandbox=Sandbox(real / "proj", python=str(linked / ".venv" / "bin" / "python"))) as ci:
        out = _write_into(ci, venv_files)
    assert out == ["EROFS %s" % path for path in venv_files], out
    for workspace, read_only in ((linked, real / "proj" / "ro"), (real / "proj", linked / "ro")):
        with CodeInterpreter(sandbox=Sandbox(workspace, read_only=[read_only])) as ci:
            out = _write_into(ci, [real / "proj" / "ro" / "f", linked / "ro" / "f", "ro/f"])
        assert all(line.startswith(("EROFS ", "ENOENT ")) for line in out), out
        assert out[0].startswith("EROFS") and out[2].startswith("EROFS"), out
    assert (real / "proj" / "ro" / "f").read_text() == "kept\n"
    no_leftovers()


def test_a_workspace_named_through_a_symlink_is_its_real_path(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    box = Sandbox(tmp_path / "link")
    assert box.workspace == str(tmp_path / "real")
    with CodeInterpreter(sandbox=box) as ci:
        assert ci.run_code("import os; print(os.getcwd())").stdout == "%s\n" % (tmp_path / "real")
    no_leftovers()


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


# 5. a cell stopped the pool's next worker and filled its channel through
#    /proc/<pid>/fd: the parent's setup write then waited 5 s (on the event
#    loop, for an AsyncCodeInterpreter) for each replacement

STALL_CELL = r'''
import os, signal, time
me, found = os.getpid(), []
for pid in [int(name) for name in os.listdir('/proc') if name.isdigit()]:
    if pid in (1, me):
        continue
    os.kill(pid, signal.SIGSTOP)
    for _ in range(1000):  # it stops once it is scheduled: on a busy machine, a while later
        with open('/proc/%d/stat' % pid) as stat:
            if stat.read().rsplit(')', 1)[1].split()[0] in 'Tt':
                break
        time.sleep(0.01)
    try:
        fds = os.listdir('/proc/%d/fd' % pid)
        opened = filled = 0
        for fd in fds:
            try:
                writer = os.open('/proc/%d/fd/%s' % (pid, fd), os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue
            opened += 1
            try:
                while True:
                    filled += os.write(writer, b'x' * 4096)
            except OSError:
                pass
        found.append('opened %d' % opened)
    except OSError as exc:
        found.append('refused %d' % exc.errno)
print(pid if found else None, found)
'''


def test_a_pooled_worker_is_not_open_to_the_code_and_a_stopped_one_is_not_handed_out(tmp_path):
    with CodeInterpreter(sandbox=Sandbox(_workspace(tmp_path))) as ci:
        assert ci.run_code("1").error is None
        for _ in range(100):  # the pool's next worker is forked while the first run goes on: wait for it
            out = ci.run_code(STALL_CELL).stdout.split(None, 1)
            if out[0] != "None":
                break
            time.sleep(0.05)
        # the fd directory is root's (uid 0 sees it), but nothing in it opens
        assert out[0] != "None" and out[1].strip() in ("['refused %d']" % errno.EACCES, "['opened 0']"), out
        stopped = int(out[0])
        context = ci.create_context()  # the pool's worker, stopped: not this context's
        result = ci.run_code("import os; print(os.getpid())", context=context, timeout=30)
        assert result.error is None and int(result.stdout) != stopped, (result, stopped)
        ci.delete_context(context)
    no_leftovers()


# 6 (b). the home-directory refusal trusted $HOME alone

def test_the_home_directory_of_the_password_database_is_refused_too(tmp_path, monkeypatch):
    import interp._sandbox_paths

    home = tmp_path / "a" / "home"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(_workspace(tmp_path, "b")))
    entry = types.SimpleNamespace(pw_dir=str(home))
    monkeypatch.setattr(interp._sandbox_paths.pwd, "getpwuid", lambda uid: entry)
    for workspace in (home, tmp_path / "a"):
        with pytest.raises(SandboxError, match="holds your home directory %s" % home):
            CodeInterpreter(sandbox=Sandbox(workspace))
    no_leftovers()


# 6 (c). bwrap failing on a path it shows was blamed on namespaces

def test_a_path_bwrap_cannot_show_is_not_blamed_on_namespaces(tmp_path):
    workspace = _workspace(tmp_path)
    (workspace / "gone").mkdir()
    box = Sandbox(workspace, read_only=[workspace / "gone"])
    (workspace / "gone").rmdir()
    with CodeInterpreter(sandbox=box) as ci:
        with pytest.raises(SandboxUnavailableError) as info:
            ci.run_code("open('ran', 'w')")
    message = str(info.value)
    assert "could not set up the sandbox's files" in message and "namespaces" not in message, message
    assert "Can't find source path %s" % (workspace / "gone") in message, message
    assert not (workspace / "ran").exists()
    no_leftovers()


def test_a_cwd_named_through_the_workspace_symlink_is_renamed_not_refused(tmp_path):
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with CodeInterpreter(sandbox=Sandbox(tmp_path / "link"), cwd=str(tmp_path / "link" / "sub")) as ci:
        out = ci.run_code("import os; print(os.getcwd())").stdout
        assert out == "%s\n" % (tmp_path / "real" / "sub"), out
        context = ci.create_context(cwd=str(tmp_path / "link" / "sub"))
        assert ci.run_code("import os; print(os.getcwd())", context=context).stdout == out
        with pytest.raises(InvalidCwdError):
            ci.create_context(cwd=str(tmp_path))
    no_leftovers()
