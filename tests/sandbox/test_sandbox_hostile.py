"""Hostile cells: one per property the sandbox promises. Each asserts that
the attack fails inside AND that the host is untouched."""

from __future__ import annotations

import errno
import os
import pathlib
import pty
import socket
import subprocess
import uuid

import pytest

from conftest import no_leftovers
from helpers import process_exists
from interp import CodeInterpreter, InterpTimeoutError, WorkerDiedError
from interp.sandbox import Sandbox

MiB = 1 << 20


def test_secret_in_home_is_invisible(box):
    home = pathlib.Path.home()
    secret = home / (".interp-secret-%s" % uuid.uuid4().hex)
    secret.write_text("hunter2")
    try:
        result = box.run_code(
            "import os\n"
            "for path in (%r, os.path.expanduser('~/' + %r)):\n"
            "    try:\n"
            "        print(open(path).read())\n"
            "    except OSError as exc:\n"
            "        print(type(exc).__name__)\n"
            "print(sorted(os.listdir(%r)) if os.path.isdir(%r) else 'no home')"
            % (str(secret), secret.name, str(home), str(home)))
        assert "hunter2" not in result.stdout
        assert result.stdout.splitlines()[:2] == ["FileNotFoundError", "FileNotFoundError"]
        assert secret.name not in result.stdout
    finally:
        secret.unlink()


def test_writes_outside_the_workspace_do_not_reach_the_host(box, tmp_path):
    import interp

    target = tmp_path / "outside" / "planted.txt"  # a host path beside the workspace
    package_file = pathlib.Path(interp.__file__).parent / "_worker" / "planted.py"
    result = box.run_code(
        "import errno, os\n"
        "for path in (%r, '/usr/planted', '/etc/planted', %r):\n"
        "    try:\n"
        "        os.makedirs(os.path.dirname(path), exist_ok=True)\n"
        "        with open(path, 'w') as f:\n"
        "            f.write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print(errno.errorcode[exc.errno])\n" % (str(target), str(package_file)),
        )
    # in the sandbox, /tmp is a private tmpfs: the first write lands there, not on the host
    assert result.stdout.splitlines()[1:] == ["EROFS", "EROFS", "EROFS"], result
    assert not target.exists() and not (tmp_path / "outside").exists()
    assert not os.path.exists("/usr/planted") and not os.path.exists("/etc/planted")
    assert not package_file.exists()
    assert box.run_code("open('inside.txt', 'w').write('ok')").error is None
    assert (tmp_path / "workspace" / "inside.txt").read_text() == "ok"


def test_no_network_not_even_the_hosts_loopback(box):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        result = box.run_code(
            "import socket\n"
            "try:\n"
            "    socket.create_connection(('127.0.0.1', %d), timeout=3)\n"
            "    print('connected')\n"
            "except OSError as exc:\n"
            "    print(type(exc).__name__)\n"
            "try:\n"
            "    socket.create_connection(('1.1.1.1', 53), timeout=3)\n"
            "    print('connected')\n"
            "except OSError as exc:\n"
            "    print(type(exc).__name__)\n"
            "import os\nprint(sorted(os.listdir('/sys/class/net')) if os.path.isdir('/sys/class/net') else ['lo'])"
            % port, timeout=30)
        assert result.stdout.splitlines()[:2] == ["ConnectionRefusedError", "OSError"], result
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody came
    finally:
        listener.close()


def test_host_processes_are_invisible_and_unsignalable(box):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        result = box.run_code(
            "import os, signal\n"
            "pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
            "cmdlines = [open('/proc/%%d/cmdline' %% p, 'rb').read() for p in pids]\n"
            "print(len(pids), any(b'pytest' in c for c in cmdlines))\n"
            "for pid in (%d, %d, %d):\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n"
            "        print('signalled', pid)\n"
            "    except OSError as exc:\n"
            "        print(type(exc).__name__)\n"
            "for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP):\n"
            "    os.kill(1, sig)  # the zygote, PID 1 here, is shielded\n"
            "os.kill(-1, signal.SIGTERM)  # every process this one may signal\n"
            % (os.getpid(), os.getppid(), sleeper.pid))
        count, saw_runner = result.stdout.split()[:2]
        assert int(count) <= 6 and saw_runner == "False"
        assert "signalled %d" % sleeper.pid not in result.stdout
        assert process_exists(os.getpid()) and sleeper.poll() is None and process_exists(os.getppid())
        # the zygote survived: new contexts still start (kill(-1) may have hit the idle
        # pre-forked worker the next context takes: the sandbox is shared, see SECURITY.md)
        ctx = box.create_context()
        try:
            box.run_code("pass", context=ctx)
        except WorkerDiedError:
            pass
        assert box.run_code("print('zygote alive')", context=ctx).stdout == "zygote alive\n"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_host_unix_sockets_are_unreachable(box, tmp_path):
    path = str(tmp_path / "agent.sock")
    abstract = "\0interp-test-%s" % uuid.uuid4().hex
    servers = []
    try:
        for address in (path, abstract):
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            servers.append(server)
            server.bind(address)
            server.listen(4)
            server.setblocking(False)
        result = box.run_code(
            "import socket\n"
            "for address in (%r, %r, '/run/docker.sock', '/tmp/.X11-unix/X0'):\n"
            "    s = socket.socket(socket.AF_UNIX)\n"
            "    try:\n"
            "        s.connect(address)\n"
            "        print('connected')\n"
            "    except OSError as exc:\n"
            "        print(type(exc).__name__)\n"
            "    finally:\n"
            "        s.close()\n" % (path, abstract))
        assert "connected" not in result.stdout and len(result.stdout.splitlines()) == 4, result
        for server in servers:
            with pytest.raises(BlockingIOError):
                server.accept()
    finally:
        for server in servers:
            server.close()


@pytest.mark.limit(60)
def test_fork_bomb_is_bounded_by_the_process_limit(tmp_path):
    box = Sandbox(tmp_path, processes=32)
    if "processes" in box.unenforced():
        pytest.skip(box.enforcement()["processes"])
    with CodeInterpreter(sandbox=box) as ci:
        result = ci.run_code(
            "import os, time\n"
            "n = 0\n"
            "try:\n"
            "    while n < 500:\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(60)\n"
            "            os._exit(0)\n"
            "        n += 1\n"
            "except OSError as exc:\n"
            "    print('stopped', n, exc.errno)\n", timeout=30)
        words = result.stdout.split()
        assert words[0] == "stopped" and int(words[1]) < 32 and int(words[2]) == errno.EAGAIN, result
        ci.restart_context()
        assert ci.run_code("print('fine')").stdout == "fine\n"
        # a real bomb (every child forks too) ends with its run, and the host can still fork;
        # deleting its context frees the sandbox's process slots (its orphans, adopted by its
        # worker as their subreaper, die with it)
        bombed = ci.create_context()
        with pytest.raises(InterpTimeoutError):
            ci.run_code("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
                        timeout=2, context=bombed)
        assert subprocess.run(["true"]).returncode == 0
        ci.delete_context(bombed)
        assert ci.run_code("print('fine')", context=ci.create_context()).stdout == "fine\n"
    no_leftovers()


@pytest.mark.limit(60)
def test_memory_bomb_is_bounded_by_the_memory_limit(tmp_path):
    with CodeInterpreter(sandbox=Sandbox(tmp_path, memory=512 * MiB)) as ci:
        ci.run_code("kept = 1")
        bomb = "chunks = []\nwhile True:\n    chunks.append(bytearray(b'x') * (16 << 20))\n"
        try:
            result = ci.run_code(bomb, timeout=30)
            assert result.error is not None and result.error.name == "MemoryError", result
            ci.run_code("del chunks")
        except WorkerDiedError:
            pass  # a cgroup's OOM killer took the worker: the context gets a fresh one
        assert ci.run_code("print('fine')").stdout == "fine\n"
        assert process_exists(os.getpid())
    no_leftovers()


def test_filling_tmp_is_bounded_by_its_size(tmp_path):
    with CodeInterpreter(sandbox=Sandbox(tmp_path, tmp_size=8 * MiB)) as ci:
        result = ci.run_code(
            "import os, errno\n"
            "written = 0\n"
            "try:\n"
            "    with open('/tmp/fill', 'wb') as f:\n"
            "        while written < (64 << 20):\n"
            "            written += f.write(b'x' * (1 << 20))\n"
            "            f.flush()\n"
            "except OSError as exc:\n"
            "    print(errno.errorcode[exc.errno], written <= (8 << 20))\n", timeout=30)
        assert result.stdout == "ENOSPC True\n", result
        assert not os.path.exists("/tmp/fill")
    no_leftovers()


def test_the_parents_secret_environment_is_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_TEST_SECRET", "hunter2")
    with CodeInterpreter(sandbox=Sandbox(tmp_path)) as ci:
        result = ci.run_code(
            "import os\nprint(sorted(os.environ))\n"
            "def text(path):\n    try:\n        return open(path).read()\n"
            "    except PermissionError:  # the zygote (pid 1) is not dumpable\n        return ''\n"
            "print('hunter2' in text('/proc/self/environ') + text('/proc/1/environ'))\n"
            "import subprocess\nprint(subprocess.run(['env'], capture_output=True, text=True).stdout)")
        assert "hunter2" not in result.stdout and "INTERP_TEST_SECRET" not in result.stdout
        assert result.stdout.splitlines()[1] == "False"
    no_leftovers()


def test_tiocsti_cannot_type_into_the_hosts_terminal(box):
    master, slave = pty.openpty()
    try:
        name = os.ttyname(slave)
        os.set_blocking(master, False)
        result = box.run_code(
            "import fcntl, os, termios\n"
            "fds = [0, 1, 2]\n"
            "for path in ('/dev/tty', %r):\n"
            "    try:\n"
            "        fds.append(os.open(path, os.O_RDWR))\n"
            "    except OSError as exc:\n"
            "        print(path, type(exc).__name__)\n"
            "for fd in fds:\n"
            "    try:\n"
            "        fcntl.ioctl(fd, termios.TIOCSTI, b'x')\n"
            "        print('typed', fd)\n"
            "    except OSError:\n"
            "        pass\n"
            "print(os.getsid(0) == os.getpid())" % name)
        assert "typed" not in result.stdout, result
        assert "/dev/tty " in result.stdout and (name + " ") in result.stdout
        with pytest.raises(BlockingIOError):
            os.read(master, 100)  # nothing was typed into it
    finally:
        os.close(master)
        os.close(slave)


def test_no_capabilities_no_new_privileges_own_namespaces(box):
    result = box.run_code(
        "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
        "print(status['CapEff'].strip(), status['CapBnd'].strip(), status['NoNewPrivs'].strip())\n"
        "import os\nprint(sorted(os.listdir('/')))")
    caps, bounding, nnp = result.stdout.split()[:3]
    assert int(caps, 16) == 0 and int(bounding, 16) == 0 and nnp == "1"
    assert "home" not in result.stdout and "'run'" not in result.stdout
    own = set(os.listdir("/proc/self/ns"))
    assert own  # the host view exists; inside, each namespace differs from ours
    inside = box.run_code("import os\nprint({n: os.readlink('/proc/self/ns/' + n) for n in %r})"
                          % sorted(own - {"time", "time_for_children"})).stdout
    for name in own - {"time", "time_for_children"}:
        assert os.readlink("/proc/self/ns/" + name) not in inside, name


# -- found by a hostile review: the zygote, /proc, /dev ------------------------------------

STEAL_THE_ZYGOTE_SOCKET = r"""
import ctypes, json, os, socket
args = open('/proc/1/cmdline', 'rb').read().split(b'\0')
fdnum = int(args[args.index(b'-c') + 4])
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(438, os.pidfd_open(1), fdnum, 0)  # pidfd_getfd: copy the zygote's socket
if fd < 0:
    print('refused', ctypes.get_errno())
else:
    socket.socket(fileno=fd).send(json.dumps({"pid": VICTIM, "n": 1}).encode())
    print('forged')
"""


def test_workers_cannot_take_the_zygotes_socket_to_forge_replies(tmp_path):
    """A worker that copied the zygote's socket (pidfd_getfd) could answer the
    parent in its place and name any host process for it to kill. The zygote
    is not dumpable, so the copy is refused; and a sandboxed zygote's reply
    without a pidfd is never believed."""
    victim = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        with CodeInterpreter(sandbox=Sandbox(tmp_path)) as ci:
            out = ci.run_code(STEAL_THE_ZYGOTE_SOCKET.replace("VICTIM", str(victim.pid))).stdout
            assert out.startswith("refused"), out
            assert ci.run_code("import os\nargs = open('/proc/1/cmdline', 'rb').read().split(b'\\0')\n"
                               "fdnum = int(args[args.index(b'-c') + 4])\n"
                               "try:\n    os.readlink('/proc/1/fd/%d' % fdnum)\nexcept OSError as e:\n"
                               "    print(type(e).__name__)").stdout == "PermissionError\n"
            for _ in range(3):
                ctx = ci.create_context()
                assert ci.run_code("print('ok')", context=ctx).stdout == "ok\n"
                ci.delete_context(ctx)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()
    no_leftovers()


def test_sysctls_and_the_hosts_tls_keys_are_out_of_reach(box):
    """Started by root, the sandbox still runs as uid 0 (no capability), which
    the kernel lets write sysctls by their owner bits: /proc is read-only."""
    out = box.run_code(
        "import os\n"
        "for path in ('/proc/sys/kernel/core_pattern', '/proc/sys/vm/drop_caches', '/proc/sysrq-trigger'):\n"
        "    try:\n        os.close(os.open(path, os.O_WRONLY))\n        print('WRITABLE', path)\n"
        "    except OSError as exc:\n        print('refused', exc.errno)\n"
        "print(os.path.exists('/etc/ssl/private'), os.path.exists('/etc/machine-id'))").stdout
    assert "WRITABLE" not in out and out.splitlines()[-1] == "False False", out


def test_dev_is_read_only_and_dev_shm_is_bounded(tmp_path):
    with CodeInterpreter(sandbox=Sandbox(tmp_path, tmp_size=64 * MiB, memory=None)) as ci:
        out = ci.run_code(
            "import os\ntry:\n    open('/dev/filler', 'w')\nexcept OSError as exc:\n    print('dev', exc.errno)\n"
            "written = 0\ntry:\n    with open('/dev/shm/filler', 'wb') as f:\n"
            "        for _ in range(200):\n            f.write(b'x' * (1 << 20))\n            written += 1\n"
            "except OSError as exc:\n    print('shm full', exc.errno)\nprint(written)\n"
            "open('/dev/null', 'w').write('still a device')").stdout.split()
        assert out[:2] == ["dev", "30"] and out[2:4] == ["shm", "full"] and int(out[-1]) <= 64, out
    no_leftovers()
