"""Each Sandbox option does what it says, and misuse gets a clear error."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import socket
import stat

import pytest

from conftest import no_leftovers
from interp import CodeInterpreter, InterpError, InvalidCwdError, WorkerDiedError
from interp.aio import AsyncCodeInterpreter
from interp.errors import SandboxUnavailableError
from interp.sandbox import Sandbox

MiB = 1 << 20


def test_default_sandbox_has_a_temporary_workspace_removed_on_close():
    with CodeInterpreter(sandbox=True) as ci:
        box = ci.sandbox
        assert isinstance(box, Sandbox)
        workspace = box.workspace
        assert os.path.isdir(workspace)
        cwd, home = ci.run_code("import os\nprint(os.getcwd())\nprint(os.environ['HOME'])").stdout.split()
        assert cwd == home == workspace
        # a private tmpfs inside the sandbox: its files never reach the host
        assert ci.run_code("open('made.txt', 'w').write('x')\nprint(open('made.txt').read())").stdout == "x\n"
        assert os.listdir(workspace) == []
    assert not os.path.exists(workspace)
    no_leftovers()


def test_given_workspace_is_kept_and_contexts_share_it(tmp_path):
    with CodeInterpreter(sandbox=Sandbox(tmp_path)) as ci:
        a, b = ci.create_context(), ci.create_context()
        ci.run_code("open('shared.txt', 'w').write('from a')", context=a)
        assert ci.run_code("print(open('shared.txt').read())", context=b).stdout == "from a\n"
        ci.run_code("open('/tmp/private', 'w').write('tmp')", context=a)
        assert ci.run_code("print(open('/tmp/private').read())", context=b).stdout == "tmp\n"  # one /tmp per sandbox
    assert (tmp_path / "shared.txt").read_text() == "from a"
    no_leftovers()


def test_separate_interpreters_are_separate_sandboxes(tmp_path):
    with CodeInterpreter(sandbox=True) as one, CodeInterpreter(sandbox=True) as two:
        one.run_code("open('/tmp/mine', 'w').write('x')")
        assert one.sandbox.workspace != two.sandbox.workspace
        assert two.run_code("import os\nprint(os.path.exists('/tmp/mine'))").stdout == "False\n"
    no_leftovers()


def test_read_only_and_writable_paths(tmp_path):
    (tmp_path / "ws").mkdir()
    data, out, hidden = tmp_path / "data", tmp_path / "out", tmp_path / "hidden"
    for path in (data, out, hidden):
        path.mkdir()
        (path / "file.txt").write_text(path.name)
    with CodeInterpreter(sandbox=Sandbox(tmp_path / "ws", read_only=[data], writable=[out])) as ci:
        result = ci.run_code(
            "import os\n"
            "for d in (%r, %r, %r):\n"
            "    try:\n"
            "        print(open(os.path.join(d, 'file.txt')).read(), end=' ')\n"
            "        open(os.path.join(d, 'new.txt'), 'w').write('x')\n"
            "        print('writable')\n"
            "    except OSError as exc:\n"
            "        print(type(exc).__name__)\n" % (str(data), str(out), str(hidden)))
        assert result.stdout.splitlines() == ["data OSError", "out writable", "FileNotFoundError"]
        ctx = ci.create_context(cwd=str(data))  # a shown path is a valid cwd
        assert ci.run_code("import os; print(os.getcwd())", context=ctx).stdout == str(data) + "\n"
    assert (out / "new.txt").exists() and not (data / "new.txt").exists() and not (hidden / "new.txt").exists()
    no_leftovers()


def test_network_true_shares_the_hosts_network(tmp_path):
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with CodeInterpreter(sandbox=Sandbox(tmp_path, network=True)) as ci:
            result = ci.run_code("import socket\ns = socket.create_connection(('127.0.0.1', %d), timeout=5)\n"
                                 "s.sendall(b'hi')\ns.close()\nprint('sent')" % listener.getsockname()[1])
            assert result.stdout == "sent\n", result
            listener.settimeout(5)
            conn, _ = listener.accept()
            with conn:
                assert conn.recv(2) == b"hi"
    finally:
        listener.close()
    no_leftovers()


def test_env_option_is_the_whole_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAKY", "1")
    with CodeInterpreter(sandbox=Sandbox(tmp_path, env={"ONLY": "this", "PATH": "/usr/bin:/bin"})) as ci:
        names = ci.run_code("import os\nprint(sorted(k for k in os.environ if k != 'LC_CTYPE'))").stdout
        assert names == "['ONLY', 'PATH']\n"
        assert ci.run_code("import os; print(os.environ.get('X'))", envs={"X": "1"}).stdout == "1\n"
    with CodeInterpreter(sandbox=Sandbox(tmp_path)) as ci:
        names = set(ci.run_code("import os\nprint(' '.join(os.environ))").stdout.split())
        assert {"PATH", "HOME", "TERM"} <= names
        assert names <= {"PATH", "HOME", "TERM", "LANG", "LANGUAGE", "TZ"} | {n for n in names if n.startswith("LC_")}
    no_leftovers()


def test_installed_packages_import_read_only(box):
    assert box.run_code("import json, sqlite3, ssl, ctypes\nprint('ok')").stdout == "ok\n"
    if importlib.util.find_spec("numpy") is not None:
        assert box.run_code("import numpy\nprint(numpy.arange(3).sum())").stdout == "3\n"
    import interp

    result = box.run_code("open(%r, 'a')" % interp.__file__.replace("__init__", "protocol"))
    assert result.error is not None and result.error.name == "OSError"


def test_file_size_and_cpu_time_limits(tmp_path):
    with CodeInterpreter(sandbox=Sandbox(tmp_path, file_size=MiB, cpu_time=1)) as ci:
        result = ci.run_code("import errno\ntry:\n    open('big', 'wb').write(b'x' * (2 * %d))\n"
                             "except OSError as exc:\n    print(errno.errorcode[exc.errno])" % MiB)
        assert result.stdout == "EFBIG\n"
        assert os.path.getsize(tmp_path / "big") <= MiB
        with pytest.raises(WorkerDiedError, match=r"SIGXCPU|SIGKILL"):
            ci.run_code("while True:\n    pass", timeout=30)
        assert ci.run_code("print('fresh')").stdout == "fresh\n"
    no_leftovers()


def test_enforcement_reports_every_limit_and_never_pretends(tmp_path):
    box = Sandbox(memory=256 * MiB, processes=64, cpu_time=10, file_size=MiB, tmp_size=MiB)
    report = box.enforcement()
    assert {"cpu_time", "file_size", "memory", "processes", "tmp_size", "inodes", "workspace"} <= set(report)
    assert set(report) <= {"cpu_time", "file_size", "memory", "processes", "tmp_size", "inodes", "workspace",
                           "memfd", "shm"}
    assert ("memfd" in report) == ("shm" in report) == (not report["memory"].startswith("cgroup"))
    assert all(isinstance(how, str) and how for how in report.values())
    assert box.unenforced() == [name for name, how in report.items() if how.startswith("NOT ENFORCED")]
    if os.getuid() == 0 and "cgroup" not in report["processes"]:
        assert "processes" in box.unenforced()  # RLIMIT_NPROC does not bind root
    unlimited = Sandbox(tmp_path, memory=None, processes=None, file_size=None, tmp_size=None, inodes=None)
    assert unlimited.enforcement() == {}
    with CodeInterpreter(sandbox=box) as ci:  # once started, the report is what applied
        ci.run_code("1")
        started = box.enforcement()
        limits = ci.run_code("import resource\nprint(resource.getrlimit(resource.RLIMIT_AS)[0], "
                             "resource.getrlimit(resource.RLIMIT_FSIZE)[0])").stdout.split()
        if started["memory"].startswith("RLIMIT_AS"):
            assert int(limits[0]) == 256 * MiB
        assert int(limits[1]) == MiB
    no_leftovers()


def test_missing_bwrap_is_a_clear_error_and_nothing_runs(tmp_path):
    with pytest.raises(SandboxUnavailableError, match=r"bubblewrap .*install"):
        CodeInterpreter(sandbox=Sandbox(tmp_path, bwrap=str(tmp_path / "no-such-bwrap")))
    box = Sandbox(bwrap=str(tmp_path / "no-such-bwrap"))
    with pytest.raises(SandboxUnavailableError):
        CodeInterpreter(sandbox=box)
    assert box._temporary is None  # no temporary workspace left behind
    no_leftovers()


def test_a_bwrap_that_cannot_create_namespaces_is_diagnosed(tmp_path):
    """A real executable standing in for bwrap on a host that forbids user
    namespaces: it fails the way bwrap does there. interp must raise, not
    run the code some other way."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    (tmp_path / "ws").mkdir()
    with CodeInterpreter(sandbox=Sandbox(tmp_path / "ws", bwrap=str(fake))) as ci:
        with pytest.raises(SandboxUnavailableError, match="uid map: Permission denied") as info:
            ci.run_code("open('ran', 'w')")
        assert isinstance(info.value, InterpError) and "could not start" in str(info.value)
        assert not (tmp_path / "ws" / "ran").exists()
    no_leftovers()


def test_cwd_outside_the_sandbox_is_invalid(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(InvalidCwdError, match="outside the sandbox"):
        CodeInterpreter(str(tmp_path / "elsewhere"), sandbox=Sandbox(tmp_path / "ws"))
    with CodeInterpreter(sandbox=Sandbox(tmp_path / "ws")) as ci:
        with pytest.raises(InvalidCwdError, match="outside the sandbox"):
            ci.create_context(cwd=str(tmp_path / "elsewhere"))
        (tmp_path / "ws" / "sub").mkdir()
        ctx = ci.create_context(cwd=str(tmp_path / "ws" / "sub"))
        assert ci.run_code("import os; print(os.getcwd())", context=ctx).stdout == str(tmp_path / "ws" / "sub") + "\n"
    no_leftovers()


def test_misuse_is_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="Sandbox\\(env="):
        CodeInterpreter(env={"A": "1"}, sandbox=True)
    with pytest.raises(TypeError):
        CodeInterpreter(sandbox="yes")
    with pytest.raises(ValueError):
        Sandbox(memory=-1)
    with pytest.raises(TypeError):
        Sandbox(read_only="/usr")
    with pytest.raises(ValueError, match="does not exist"):
        Sandbox(writable=[tmp_path / "missing"])
    with pytest.raises(InvalidCwdError):
        Sandbox(tmp_path / "missing")
    box = Sandbox(tmp_path)
    with CodeInterpreter(sandbox=box) as ci:
        with pytest.raises(ValueError, match="already serves"):
            CodeInterpreter(sandbox=box)
        ci.run_code("1")
    with CodeInterpreter(sandbox=box) as ci:  # free again once its interpreter closed
        assert ci.run_code("print(1)").stdout == "1\n"
    no_leftovers()


def test_async_interpreter_takes_a_sandbox(tmp_path):
    async def main():
        async with AsyncCodeInterpreter(sandbox=Sandbox(tmp_path)) as ci:
            result = await ci.run_code("import os\nprint(os.getcwd(), os.getpid() < 100)")
            ctx = await ci.create_context()
            other = await ci.run_code("print('second')", context=ctx)
            return result.stdout, other.stdout

    assert asyncio.run(main()) == ("%s True\n" % tmp_path, "second\n")
    no_leftovers()


def test_stale_cgroups_of_killed_parents_are_removed(tmp_path):
    """A parent killed by SIGKILL cannot remove its sandbox's cgroup; the
    next sandbox made there removes it once it is stale (and empty)."""
    from interp.sandbox import STALE_CGROUP_AGE, _Cgroup

    probe = _Cgroup.probe()
    if probe is None:
        pytest.skip("no cgroup interp may create here: limits use rlimits")
    made = [os.path.join(parent, "interp-sandbox-stale%s" % age) for parent in set(probe.dirs.values())
            for age in ("old", "new")]
    try:
        for path in made:
            os.mkdir(path)
            if path.endswith("old"):
                old = os.stat(path).st_mtime - STALE_CGROUP_AGE - 1
                os.utime(path, (old, old))
        with CodeInterpreter(sandbox=Sandbox(tmp_path)) as ci:
            ci.run_code("1")
        assert [os.path.exists(path) for path in made] == [path.endswith("new") for path in made]
    finally:
        for path in made:
            if os.path.exists(path):
                os.rmdir(path)
    no_leftovers()


def test_ci_never_skips_the_sandbox():
    """CI installs bubblewrap (.ci/run): there, a sandbox that cannot run is a
    failure, not a reason to skip every test in this folder."""
    reason = _sandbox_conftest().sandbox_unavailable_reason()
    if reason is not None and not os.environ.get("CI"):
        pytest.skip(reason)
    assert reason is None


def _sandbox_conftest():
    """This folder's conftest module (both conftests are named "conftest")."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conftest.py")
    return next(module for module in list(sys.modules.values())
                if os.path.abspath(getattr(module, "__file__", None) or "") == here)
