"""Issue 18: ten ways a sandboxed cell reached the host, one regression test
each (each failed on 04df231). Every test bounds what it starts and cleans up."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import no_leftovers
from interp import CodeInterpreter, InterpError
from interp.errors import InvalidCwdError, SandboxError
from interp.sandbox import Sandbox, _Cgroup, remove_tree

MiB = 1 << 20
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _workspace(tmp_path, name="workspace"):
    path = tmp_path / name
    path.mkdir()
    return path


# 1. read-only paths inside the workspace stayed writable (bwrap mounts in order)

def test_read_only_paths_inside_the_workspace_stay_read_only(tmp_path, monkeypatch):
    workspace = _workspace(tmp_path)
    (workspace / "ro").mkdir()
    site_packages = workspace / ".venv" / "lib" / "site-packages"  # a venv the host imports from
    site_packages.mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [*sys.path, str(site_packages)])
    box = Sandbox(workspace, read_only=[workspace / "ro"])
    with CodeInterpreter(sandbox=box) as ci:
        out = ci.run_code(
            "import errno\n"
            "for path in ('ro/evil.pth', '.venv/lib/site-packages/evil.pth', 'fine.txt'):\n"
            "    try:\n"
            "        open(path, 'w').write('import os')\n"
            "        print('wrote', path)\n"
            "    except OSError as exc:\n"
            "        print(errno.errorcode[exc.errno], path)").stdout
    assert out.splitlines() == ["EROFS ro/evil.pth", "EROFS .venv/lib/site-packages/evil.pth", "wrote fine.txt"]
    assert not (workspace / "ro" / "evil.pth").exists() and not (site_packages / "evil.pth").exists()
    no_leftovers()


def test_a_workspace_inside_a_read_only_path_is_refused(tmp_path):
    outer = _workspace(tmp_path, "outer")
    (outer / "inner").mkdir()
    with pytest.raises(SandboxError, match="shown read-only"):
        CodeInterpreter(sandbox=Sandbox(outer / "inner", read_only=[outer]))
    no_leftovers()


# 2. the next zygote imported what the workspace held (json.py, a user-site .pth)

PLANT = r"""
import os, site, sys
marker = os.path.join(os.getcwd(), 'ran-in-pid-')
hook = "import os; open(%r + str(os.getpid()), 'w').close()\n" % marker
open('json.py', 'w').write(hook + "del __import__('sys').modules['json']\n")
user_site = site.getusersitepackages()
os.makedirs(user_site, exist_ok=True)
open(os.path.join(user_site, 'zz-evil.pth'), 'w').write(hook)
print(user_site.startswith(os.environ['HOME']))
"""


def test_the_zygote_imports_nothing_the_workspace_holds(tmp_path):
    workspace = _workspace(tmp_path)
    with CodeInterpreter(sandbox=Sandbox(workspace)) as ci:
        assert ci.run_code(PLANT).stdout == "True\n"
    with CodeInterpreter(sandbox=Sandbox(workspace)) as ci:  # a new sandbox, the same workspace
        out = ci.run_code("import json, sys\nprint(json.dumps([1]), '' in sys.path)").stdout
        assert out == "[1] True\n"
    assert not (workspace / "ran-in-pid-1").exists()  # PID 1: the zygote, which the parent trusts
    no_leftovers()


# 3. the workspace was the host's launch directory (python -m interp ... --workspace .)

def test_the_launch_directory_cannot_be_the_workspace(tmp_path, monkeypatch):
    launch = _workspace(tmp_path, "project")
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-m", "interp", "--sandbox", "--workspace", ".", "-c",
                           "open('json.py', 'w').write('raise SystemExit(42)')"],
                          cwd=launch, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "imports Python code from" in done.stderr, done.stderr
    assert not (launch / "json.py").exists()
    monkeypatch.setattr(sys, "path", [str(launch), *sys.path])
    with pytest.raises(SandboxError, match="imports Python code from"):
        CodeInterpreter(sandbox=Sandbox(launch))
    no_leftovers()


def test_start_up_files_the_host_reads_cannot_be_planted(tmp_path, monkeypatch):
    """Beyond sys.path directories: a zip on sys.path, an entry not made yet,
    the user site of the host's HOME, the home directory itself."""
    workspace = _workspace(tmp_path)
    (workspace / "lib.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip archive
    monkeypatch.setattr(sys, "path", [*sys.path, str(workspace / "lib.zip")])
    with CodeInterpreter(sandbox=Sandbox(workspace)) as ci:
        assert ci.run_code("open('lib.zip', 'wb')").error.name == "OSError"
    monkeypatch.setattr(sys, "path", [*sys.path, str(workspace / "not-yet")])
    with pytest.raises(SandboxError, match="could create"):
        CodeInterpreter(sandbox=Sandbox(workspace))
    monkeypatch.setattr(sys, "path", sys.path[:-2])
    (tmp_path / "elsewhere").mkdir()
    os.symlink(str(tmp_path / "elsewhere"), workspace / "link")  # a symlink the code could replace
    monkeypatch.setattr(sys, "path", [*sys.path, str(workspace / "link")])
    with pytest.raises(SandboxError, match="symlink"):
        CodeInterpreter(sandbox=Sandbox(workspace))
    monkeypatch.setattr(sys, "path", sys.path[:-1])
    home = _workspace(tmp_path, "home")
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(SandboxError, match="home directory"):
        CodeInterpreter(sandbox=Sandbox(home))
    import site

    (home / ".local").mkdir()
    monkeypatch.setattr(site, "USER_SITE", str(home / ".local" / "lib" / "site-packages"))
    with pytest.raises(SandboxError, match="could create"):  # a .pth there would run at the next host start
        CodeInterpreter(sandbox=Sandbox(home / ".local"))
    no_leftovers()


# 4. recycled host pids were signalled (killpg/kill/kill_tree by number)

def test_sandboxed_workers_are_never_signalled_by_host_pid(tmp_path, monkeypatch):
    signalled = []
    real_kill, real_killpg = os.kill, os.killpg
    monkeypatch.setattr(os, "kill", lambda pid, sig: (signalled.append(pid), real_kill(pid, sig))[1])
    monkeypatch.setattr(os, "killpg", lambda pid, sig: (signalled.append(pid), real_killpg(pid, sig))[1])
    with CodeInterpreter(sandbox=Sandbox(_workspace(tmp_path))) as ci:
        ctx = ci.create_context()
        workers = {ci._engine._contexts[ctx.id].worker.pid}
        with pytest.raises(InterpError):
            ci.run_code("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)",
                        context=ctx, timeout=0.5)
        workers.add(ci._engine._contexts[ctx.id].worker.pid)
        ci.run_code("import os, subprocess\nsubprocess.Popen(['sleep', '60'])", context=ctx)
        ci.restart_context(ctx) if hasattr(ci, "restart_context") else None
        ci.delete_context(ctx)
    assert not set(signalled) & workers, (signalled, workers)
    no_leftovers()


SEIZE = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print(libc.ptrace(0x4206, %d, 0, 0), ctypes.get_errno())  # PTRACE_SEIZE the other context's worker
"""


def test_a_traced_worker_does_not_wedge_the_zygote(tmp_path):
    with CodeInterpreter(sandbox=Sandbox(_workspace(tmp_path))) as ci:
        tracer, traced = ci.create_context(), ci.create_context()
        inside = int(ci.run_code("import os\nprint(os.getpid())", context=traced).stdout)
        if ci.run_code(SEIZE % inside, context=tracer).stdout.split()[0] != "0":
            pytest.skip("ptrace is not allowed between workers here")
        started = time.monotonic()
        ci.delete_context(traced)  # the zygote used to wait for it for ever, then be killed after 10 s
        assert time.monotonic() - started < 8
        assert ci.run_code("print('alive')", context=tracer).stdout == "alive\n"
        other = ci.create_context()
        assert ci.run_code("print('new')", context=other).stdout == "new\n"
    no_leftovers()


def test_after_the_zygote_dies_contexts_get_a_clear_error_and_nothing_is_signalled(tmp_path, monkeypatch):
    with CodeInterpreter(sandbox=Sandbox(_workspace(tmp_path))) as ci:
        ctx = ci.create_context()
        assert ci.run_code("print(1)", context=ctx).stdout == "1\n"
        launcher = ci._engine.launcher
        zygote = launcher._zygote
        signalled = []
        real_kill, real_killpg = os.kill, os.killpg
        monkeypatch.setattr(os, "kill", lambda pid, sig: (signalled.append(pid), real_kill(pid, sig))[1])
        monkeypatch.setattr(os, "killpg", lambda pid, sig: (signalled.append(pid), real_killpg(pid, sig))[1])
        import signal as signals
        signals.pidfd_send_signal(zygote.pidfd, signals.SIGKILL)  # as an OOM kill would
        time.sleep(0.2)
        with pytest.raises(InterpError):
            ci.run_code("print(2)", context=ctx)
        started = time.monotonic()
        ci.delete_context(ctx)
        assert time.monotonic() - started < 8
        assert set(signalled) <= {zygote.popen.pid}, signalled  # bwrap, our own unreaped child
    no_leftovers()


# 5. a cell hung the parent: O_NONBLOCK is shared with the worker's orphans

CLEAR_NONBLOCK = r"""
import fcntl, os, stat
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        fds = [int(fd) for fd in os.listdir('/proc/self/fd')]
        fds = [fd for fd in fds if stat.S_ISFIFO(os.fstat(fd).st_mode)] if fds else []
        while True:
            for fd in fds:
                try:
                    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
                except OSError:
                    pass
    os._exit(0)
import time
time.sleep(0.3)
os.kill(os.getpid(), 9)
"""


@pytest.mark.parametrize("how", ["sync", "async"])
def test_orphans_clearing_o_nonblock_do_not_hang_the_parent(tmp_path, how):
    box = Sandbox(_workspace(tmp_path))
    outcome = []
    if how == "sync":
        ci = CodeInterpreter(sandbox=box)

        def go():
            try:
                ci.run_code(CLEAR_NONBLOCK, timeout=5)
            except Exception as exc:
                outcome.append(exc)
    else:
        import asyncio

        from interp import AsyncCodeInterpreter
        ci = None

        def go():
            async def main():
                async with AsyncCodeInterpreter(sandbox=box) as aci:
                    try:
                        await aci.run_code(CLEAR_NONBLOCK, timeout=5)
                    except Exception as exc:
                        outcome.append(exc)
            asyncio.run(main())
    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    thread.join(60)
    hung = thread.is_alive()
    if ci is not None:
        ci.close()
    thread.join(30)
    assert not hung, "the parent blocked on a pipe the code can touch"
    assert outcome and isinstance(outcome[0], InterpError)
    no_leftovers()


def test_salvage_reads_never_block_whatever_another_holder_of_the_pipe_does():
    """The same at the descriptor level, without a race to win: a thread
    clears O_NONBLOCK on the worker's copy of the capture pipe's read end in
    a loop while the parent salvages what the pipe holds."""
    import fcntl

    from interp._worker_handle import Pipes, read_available

    for _ in range(50):
        pipes = Pipes()
        shared = os.dup(pipes.out_r)  # the worker's copy: the same open file description
        writer = os.dup(pipes.out_w)  # a writer that stays (an orphan holding fd 1)
        worker = pipes.handle(os.getpid(), exited=lambda: True, reap=lambda: None)
        os.write(writer, b"x" * 100)
        stop = threading.Event()

        def clear():
            while not stop.is_set():
                fcntl.fcntl(shared, fcntl.F_SETFL, fcntl.fcntl(shared, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        clearer = threading.Thread(target=clear, daemon=True)
        clearer.start()
        got = []
        reader = threading.Thread(target=lambda: got.append(
            read_available(worker._salvage_fds["stdout"], 1 << 20)), daemon=True)
        reader.start()
        reader.join(5)
        blocked = reader.is_alive()
        stop.set()
        os.close(writer)  # unblocks a reader stuck on the old code
        reader.join(5)
        clearer.join(5)
        worker.reaped = True
        for fd in (shared, worker.send_fd, worker.recv_fd, *worker._salvage_fds.values(), worker._err_fd):
            os.close(fd)
        assert not blocked, "the parent's read blocked on a description another process controls"
        assert got == [b"x" * 100]


# 6. memfd memory escaped `memory` without a cgroup

def test_memfd_cannot_hold_memory_beyond_the_limit_without_a_cgroup(tmp_path, monkeypatch):
    monkeypatch.setattr(_Cgroup, "probe", staticmethod(lambda: None))  # as an unprivileged user
    box = Sandbox(_workspace(tmp_path), memory=256 * MiB)
    assert box.enforcement()["memfd"].startswith("seccomp"), box.enforcement()
    with CodeInterpreter(sandbox=box) as ci:
        out = ci.run_code(
            "import os\n"
            "try:\n"
            "    fd = os.memfd_create('hold')\n"
            "    for _ in range(1024):\n"
            "        os.write(fd, b'x' * (1 << 20))\n"
            "    print('held', os.fstat(fd).st_size >> 20)\n"
            "except OSError as exc:\n"
            "    print('refused', exc.errno)").stdout
    assert out == "refused %d\n" % errno.ENOSYS, out
    no_leftovers()


# 7. tmpfs inodes escaped tmp_size

@pytest.mark.parametrize("where", ["/tmp", "/dev/shm", "."])
def test_tmpfs_inodes_are_bounded(where):
    box = Sandbox(tmp_size=MiB, inodes=2000)
    assert box.enforcement()["inodes"].startswith("nr_inodes"), box.enforcement()
    with CodeInterpreter(sandbox=box) as ci:
        out = ci.run_code(
            "import os\nmade = 0\n"
            "try:\n"
            "    for i in range(20000):\n"
            "        open(os.path.join(%r, 'f%%d' %% i), 'w').close()\n"
            "        made += 1\n"
            "except OSError as exc:\n"
            "    print('stopped', exc.errno, made < 2000)" % where).stdout
    assert out == "stopped %d True\n" % errno.ENOSPC, out
    no_leftovers()


# 8. the temporary workspace survived close(), and close() raised

def test_remove_tree_survives_deep_and_unreadable_trees(tmp_path):
    top = tmp_path / "tree"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(3000):  # deeper than the recursion limit and PATH_MAX
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)
    (top / "locked").mkdir()
    (top / "locked" / "file").write_text("x")
    os.symlink("/etc", top / "link")
    os.chmod(top / "locked", 0o500)
    os.chmod(top / "d", 0)
    assert remove_tree(str(top)) is None
    assert not top.exists() and os.path.isdir("/etc")


def test_temporary_workspace_is_gone_after_close_whatever_the_code_made():
    ci = CodeInterpreter(sandbox=True)
    workspace = ci.sandbox.workspace
    ci.run_code("import os\nfor _ in range(3000):\n    os.mkdir('d')\n    os.chdir('d')\n"
                "os.chdir(%r)\nos.makedirs('locked/x')\nos.chmod('locked', 0o500)\nos.chmod('d', 0)")
    ci.close()  # must not raise
    assert not os.path.exists(workspace)
    no_leftovers()


# 9. the host answered about its own paths (cwd= checked by following planted symlinks)

def test_cwd_is_checked_inside_the_sandbox_not_on_the_host(tmp_path):
    workspace = _workspace(tmp_path)
    host_only = tmp_path / "host-only-dir"  # exists on the host, not in the sandbox
    host_only.mkdir()
    answers = []
    with CodeInterpreter(sandbox=Sandbox(workspace)) as ci:
        ci.run_code("import os\nos.symlink(%r, 'a')\nos.symlink(%r, 'b')\nos.symlink('/etc/hostname', 'c')"
                    % (str(host_only), str(tmp_path / "missing")))
        for name in ("a", "b", "c"):
            try:
                ctx = ci.create_context(cwd=str(workspace / name))
                ci.run_code("1", context=ctx)
                answers.append("ok")
            except InvalidCwdError as exc:
                answers.append(exc.errno)
        assert ci.run_code("print('still fine')").stdout == "still fine\n"
    assert answers[0] == answers[1] == errno.ENOENT, answers  # the host's answer differed
    assert answers[2] in (errno.ENOENT, errno.ENOTDIR)
    no_leftovers()


# 10. the workspace was unbounded (the temporary one now is a sized tmpfs)

def test_temporary_workspace_is_bounded():
    box = Sandbox(workspace_size=4 * MiB)
    assert "workspace" in box.enforcement()
    with CodeInterpreter(sandbox=box) as ci:
        out = ci.run_code("try:\n    open('big', 'wb').write(b'x' * (16 << 20))\n"
                          "except OSError as exc:\n    print('stopped', exc.errno)").stdout
    assert out == "stopped %d\n" % errno.ENOSPC, out
    no_leftovers()


# the sealing step (7): nothing of the zygote's start-up capability is left

SEALED = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
status = dict(line.split(':', 1) for line in open('/proc/self/status'))
print(all(int(status[k], 16) == 0 for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb')))
print(libc.unshare(0x10000000), ctypes.get_errno() == 1)  # CLONE_NEWUSER
print(libc.syscall(435, 0, 0), ctypes.get_errno() == 38)  # clone3
print(libc.mount(b'tmpfs', b'/tmp', b'tmpfs', 32 | 2 | 4, b'nr_inodes=0'), ctypes.get_errno() in (1, 13))
import subprocess
print(subprocess.run(['true']).returncode == 0 and 'forks')  # plain forks still work
"""


def test_the_sandbox_is_sealed_before_any_code_runs(box):
    out = box.run_code(SEALED).stdout.split("\n")
    assert out[:4] == ["True", "-1 True", "-1 True", "-1 True"], out
    assert "forks" in out
    mounts = box.run_code("print(open('/proc/self/mounts').read())").stdout
    tmpfs = [line for line in mounts.splitlines() if line.split()[1:2] in (["/tmp"], ["/dev/shm"])]
    assert len(tmpfs) == 2 and all("nr_inodes=%d" % Sandbox().inodes in line for line in tmpfs), mounts


# warm starts: Sandbox(prestart=N)

def _wait_warm(key, count=1, bound=60.0):
    from interp import _sandbox_launcher as process

    give_up_at = time.monotonic() + bound
    while len(process._warm._ready.get(key, [])) < count:
        assert time.monotonic() < give_up_at, "no warm sandbox after %gs" % bound
        time.sleep(0.05)


def test_prestart_hands_out_sealed_sandboxes_started_ahead():
    from interp import _sandbox_launcher as process

    try:
        first = CodeInterpreter(sandbox=Sandbox(prestart=1))
        with first:
            first.run_code("open('mine.txt', 'w').write('first')")
            key = first.sandbox.config_key()
        _wait_warm(key)
        warm = process._warm._ready[key][0]
        second = CodeInterpreter(sandbox=Sandbox(prestart=1))
        with second:
            assert second._engine.launcher is warm  # started before this interpreter was made
            workspace = second.sandbox.workspace
            out = second.run_code("import os\nprint(os.path.exists('mine.txt'), os.getcwd(), os.environ['HOME'])")
            assert out.stdout.split() == ["False", workspace, workspace]
            status = second.run_code("print(open('/proc/self/status').read())").stdout
            assert "CapBnd:\t0000000000000000" in status and "NoNewPrivs:\t1" in status
        assert not os.path.exists(workspace)
        with pytest.raises(ValueError):
            Sandbox(prestart=-1)
    finally:
        process._warm.close()
    no_leftovers()


def test_a_setuid_bwrap_reports_inodes_unenforced(tmp_path):
    """A setuid bwrap grants --cap-add to root only: no sealing is asked of it
    (the sandbox starts as before) and the inode bound is reported missing."""
    import shutil

    fake = tmp_path / "bwrap"
    shutil.copy(Sandbox().find_bwrap(), fake)
    os.chmod(fake, 0o4755)
    box = Sandbox(bwrap=str(fake))
    assert box.seal() == {}
    assert box.enforcement()["inodes"].startswith("NOT ENFORCED: bwrap is setuid"), box.enforcement()
    assert "inodes" in box.unenforced()
    fake.unlink()


def test_a_sandbox_made_in_a_thread_outlives_the_thread(tmp_path):
    """bwrap's --die-with-parent follows the thread that started it: an
    interpreter made in a short-lived thread lost its sandbox when it ended."""
    made = []

    def make():
        made.append(CodeInterpreter(sandbox=Sandbox(_workspace(tmp_path))))
        made.append(made[0].run_code("x = 1").error)
    thread = threading.Thread(target=make)
    thread.start()
    thread.join(60)
    ci = made[0]
    try:
        assert made[1] is None
        time.sleep(0.3)
        assert ci.run_code("print(x)").stdout == "1\n"
    finally:
        ci.close()
    no_leftovers()
