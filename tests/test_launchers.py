"""Both ways of starting workers keep the engine's guarantees: the zygote
(default, with its pool of pre-forked workers) and plain spawning (any
Python interpreter)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from helpers import open_fds, process_exists, wait_until, worker_processes_of
from interp import CodeInterpreter, WorkerDiedError
from interp.process import BURST_GAP, SpawnLauncher, ZygoteLauncher, default_launcher


@pytest.fixture(params=["zygote", "spawn"])
def launcher(request):
    if request.param == "spawn":
        yield SpawnLauncher(sys.executable)
    else:
        yield default_launcher()


def test_guarantees_hold_for_each_launcher(launcher, tmp_path):
    (tmp_path / "sub").mkdir()
    with CodeInterpreter(cwd=str(tmp_path), launcher=launcher, env={"ONLY": "this", "PATH": os.environ["PATH"]},
                         memory_limit=2 << 30) as ci:
        ctx = ci.create_context(cwd=str(tmp_path / "sub"))
        code = ("import os, sys, resource\nprint(os.getcwd())\nprint(sorted(k for k in os.environ if k != 'PWD'))\n"
                "print(os.getpgrp() == os.getsid(0) != %d)\n"
                "print(resource.getrlimit(resource.RLIMIT_AS)[0])\nprint(sys.path[0] == '')" % os.getsid(0))
        lines = ci.run_code(code, context=ctx).stdout.splitlines()
        assert lines[0] == str(tmp_path / "sub")
        assert lines[1] in ("['ONLY', 'PATH']", "['LC_CTYPE', 'ONLY', 'PATH']")  # Python may add LC_CTYPE
        assert lines[2:] == ["True", str(2 << 30), "True"]  # its own session, whose group leader it is in
        assert ci.run_code("import os; print(os.environ.get('X'))", context=ctx, envs={"X": "1"}).stdout == "1\n"
        ci.run_code("kept = 1", context=ctx)
        pid = int(ci.run_code("import os; print(os.getpid())", context=ctx).stdout)
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: not process_exists(pid))
        with pytest.raises(WorkerDiedError):
            ci.run_code("1", context=ctx)
        assert ci.run_code("kept", context=ctx).error.name == "NameError"
        assert ci.run_code("import os; print(os.getcwd())", context=ctx).stdout == "%s\n" % (tmp_path / "sub")
    assert worker_processes_of(os.getpid()) == []


def test_an_inheriting_worker_gets_os_environ_as_it_is_at_each_start(monkeypatch):
    """A worker that inherits the environment gets os.environ as it is when
    its context starts: the zygote's while os.environ is unchanged since the
    zygote started (its setup then carries none), else the new one; a
    variable set with os.putenv alone (not in os.environ) in neither."""
    launcher = ZygoteLauncher()
    code = "import os; print(os.environ.get('INTERP_T1'), os.environ.get('INTERP_T2'), os.environ.get('INTERP_T3'))"
    monkeypatch.setenv("INTERP_T1", "before")
    os.putenv("INTERP_T3", "putenv only")
    try:
        with CodeInterpreter(launcher=launcher) as ci:
            assert ci.run_code(code).stdout == "before None None\n"
            assert launcher._zygote_environ is not None  # started with os.environ: setups may carry none
            monkeypatch.setenv("INTERP_T2", "later")
            monkeypatch.delenv("INTERP_T1")
            assert ci.run_code(code, context=ci.create_context()).stdout == "None later None\n"
            monkeypatch.delenv("INTERP_T2")
            assert ci.run_code(code, context=ci.create_context()).stdout == "None None None\n"
    finally:
        os.unsetenv("INTERP_T3")
        launcher.close()


def test_what_the_zygote_built_before_forking_is_each_worker_s_own():
    """The zygote builds the worker (its namespace, the builtins it patches,
    sys.stdin/stdout/stderr, sys.modules['__main__']) once, before it forks:
    what one context's code does to them never reaches a context forked
    after it, and each gets a fresh namespace and execution count."""
    launcher = ZygoteLauncher()
    try:
        with CodeInterpreter(launcher=launcher) as ci:
            first = ci.create_context()
            spoil = ("import builtins, sys\nbuiltins.print = None\nbuiltins.spoiled = 1\n"
                     "sys.modules['__main__'].marker = 1\nsys.stdout.write('held in the buffer')\n"
                     "sys.stdin = None\nx = 1")
            assert ci.run_code(spoil, context=first).error is None
            time.sleep(BURST_GAP)  # the next context comes from a later request
            second = ci.create_context()
            check = ("import builtins, sys\nprint(hasattr(builtins, 'spoiled'), 'x' in dir(), "
                     "hasattr(sys.modules['__main__'], 'marker'), sys.stdin.read(), __name__)")
            result = ci.run_code(check, context=second)
            assert result.stdout == "False False False  __main__\n"
            assert result.execution_count == 1
    finally:
        launcher.close()


def _pipes_of(pid):
    """The pipe inodes a process holds open."""
    found = set()
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except OSError:
            continue
        if target.startswith("pipe:"):
            found.add(target)
    return found


def test_a_burst_of_contexts_is_forked_in_batches_each_worker_with_its_own_pipes_only():
    """Contexts started in a burst grow the pool, refilled by several workers
    a request (forked one after the other from the same fds): every worker
    still holds its own pipes alone, never another context's channel; the
    pool never holds more than burst_pool, and trim() ends what is left."""
    launcher = ZygoteLauncher(burst_pool=8)
    asked = []
    ask = launcher._ask_fork

    def counting(zygote, count=1):
        asked.append(count)
        return ask(zygote, count)

    launcher._ask_fork = counting
    try:
        with CodeInterpreter(launcher=launcher) as ci:
            contexts = [ci.create_context() for _ in range(24)]
            pids = [int(ci.run_code("import os; print(os.getpid())", context=ctx).stdout) for ctx in contexts]
            assert len(set(pids)) == 24
            assert max(asked) > 1 and len(asked) < 24  # batches
            assert len(launcher.helper_pids()) <= 1 + 8  # the zygote and the pool
            pooled = launcher.helper_pids()[1:]
            held = [_pipes_of(pid) for pid in pids + pooled]
            for index, pipes in enumerate(held):
                assert pipes, "a worker holds its channel and capture pipes"
                for other in held[index + 1:]:
                    assert not pipes & other  # no worker holds another's channel or capture pipes
            launcher.trim()
            assert len(launcher.helper_pids()) == 2  # the zygote and pool_size workers
            ended = set(pooled) - set(launcher.helper_pids())
            assert wait_until(lambda: not any(process_exists(pid) for pid in ended))
            for ctx in contexts:
                ci.delete_context(ctx)
    finally:
        launcher.close()
    assert worker_processes_of(os.getpid()) == []


def test_the_zygote_refuses_a_spawn_whose_count_and_descriptors_disagree():
    """A spawn names how many workers it wants, 7 fds each, at most
    ZYGOTE_BATCH: anything else is refused, and the zygote goes on."""
    from interp._worker_handle import Pipes
    from interp._zygote_client import ZYGOTE_BATCH, ZygoteError

    launcher = ZygoteLauncher()
    try:
        with CodeInterpreter(launcher=launcher) as ci:
            ci.run_code("1")
            zygote = launcher._zygote
            pipes = [Pipes() for _ in range(2)]
            try:
                ends = tuple(fd for each in pipes for fd in each.child_ends())
                for count, fds in ((1, ends), (3, ends), (0, ()), (ZYGOTE_BATCH + 1, ends), (True, ends[:7]),
                                   ("2", ends)):
                    with pytest.raises(ZygoteError, match="refused"):
                        zygote.request({"t": "spawn", "count": count}, fds)
            finally:
                for each in pipes:
                    each.close_all()
            assert ci.run_code("2", context=ci.create_context()).results[0].text == "2"
    finally:
        launcher.close()


def test_a_spawn_kills_the_orphans_of_a_worker_that_died_unnoticed(tmp_path):
    """A worker that dies while idle leaves its daemon to the zygote (their
    subreaper); the zygote's next spawn kills it, before the parent has even
    looked at the dead worker. (Spawns list the zygote's children only after
    a child of it died: listing them on every spawn cost time in proportion
    to the number of contexts.)"""
    launcher = ZygoteLauncher()
    daemon = None
    try:
        with CodeInterpreter(cwd=str(tmp_path), launcher=launcher) as ci:
            ctx = ci.create_context()
            worker = int(ci.run_code("import os; print(os.getpid())", context=ctx).stdout)
            code = ("import os, signal, threading, time\n"
                    "r, w = os.pipe()\n"
                    "if os.fork() == 0:\n"
                    "    os.setsid()\n"
                    "    if os.fork() == 0:\n"
                    "        os.write(w, b'%d' % os.getpid())\n"
                    "        time.sleep(60)\n"
                    "    os._exit(0)\n"
                    "print(os.read(r, 64).decode())\n"
                    "threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGKILL)).start()")
            daemon = int(ci.run_code(code, context=ctx).stdout)
            assert wait_until(lambda: not process_exists(worker))
            assert process_exists(daemon)  # now the zygote's child, its worker unreaped
            ci.create_context()  # hands out the pooled worker and spawns the next one
            assert wait_until(lambda: not process_exists(daemon))
    finally:
        launcher.close()
        if daemon is not None and process_exists(daemon):
            os.kill(daemon, signal.SIGKILL)


@pytest.mark.limit(60)
def test_a_fork_of_the_application_keeps_no_worker_alive_not_even_one_being_forked():
    """The pool's next worker is asked of the zygote ahead of need and its
    answer read later: a fork of the application made meanwhile closes its
    copies of that worker's pipes too, so when the application is killed
    while its fork lives, every worker (the pooled one included) and the
    zygote go away."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = ("import os, sys, time\n"
              "sys.path.insert(0, %r)\n"
              "from interp import CodeInterpreter, process\n"
              "ci = CodeInterpreter(launcher=process.ZygoteLauncher())\n"
              "ci.run_code('x = 1', context=ci.create_context())  # the pool now waits for an answer\n"
              "if os.fork() == 0:\n"
              "    time.sleep(30)\n"
              "    os._exit(0)\n"
              "print(ci._engine.launcher._zygote.pid, flush=True)\n"
              "time.sleep(1000)\n" % root)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        zygote = int(parent.stdout.readline())

        def workers():
            with open("/proc/%d/task/%d/children" % (zygote, zygote)) as handle:
                return [int(pid) for pid in handle.read().split()]
        assert wait_until(lambda: len(workers()) == 2)  # the context's and the pooled one
        pids = [zygote] + workers()
        parent.kill()
        parent.wait()
        assert wait_until(lambda: not any(process_exists(pid) for pid in pids), timeout=10)
    finally:
        os.killpg(parent.pid, signal.SIGKILL)  # the sleeping fork
        parent.stdout.close()


def test_threads_creating_contexts_at_once_each_get_their_own_worker(ci):
    """The zygote answers in order and whichever thread reads an answer
    keeps the others' for them (a pooled worker's too, read later): threads
    creating, running and deleting contexts at once each get a worker of
    their own, and nothing is left behind."""
    ci.run_code("1", context=ci.create_context())
    before = open_fds()
    pids, failures = [], []

    def work():
        for _ in range(5):
            try:
                ctx = ci.create_context()
                pids.append(int(ci.run_code("import os; print(os.getpid())", context=ctx).stdout))
                ci.delete_context(ctx)
            except Exception as exc:
                failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == [] and len(set(pids)) == 30
    assert open_fds() == before
    assert len(worker_processes_of(os.getpid())) == 1  # the first context's (the pool's is the zygote's)


def test_zygote_death_is_survived(tmp_path):
    launcher = ZygoteLauncher()
    try:
        with CodeInterpreter(cwd=str(tmp_path), launcher=launcher) as ci:
            before = ci.create_context()
            ci.run_code("kept = 'still here'", context=before)
            zygote = launcher.helper_pids()[0]
            os.kill(zygote, signal.SIGKILL)
            assert wait_until(lambda: not process_exists(zygote))
            after = ci.create_context()  # a new zygote (or a spawned worker) serves it
            assert ci.run_code("print('new')", context=after).stdout == "new\n"
            assert ci.run_code("print(kept)", context=before).stdout == "still here\n"
            ci.delete_context(before)
        assert zygote not in launcher.helper_pids()
    finally:
        launcher.close()
    assert wait_until(lambda: worker_processes_of(os.getpid()) == [])


def test_python_variables_in_env_fall_back_to_spawning(tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "only_here.py").write_text("VALUE = 'from PYTHONPATH'\n")
    env = dict(os.environ, PYTHONPATH=str(extra))
    with CodeInterpreter(cwd=str(tmp_path), env=env) as ci:
        assert ci.run_code("import only_here; print(only_here.VALUE)").stdout == "from PYTHONPATH\n"


def test_pool_hands_out_configured_workers_quickly(tmp_path):
    launcher = default_launcher()
    launcher.trim()  # what bursts of earlier tests left
    with CodeInterpreter(cwd=str(tmp_path)) as ci:
        time.sleep(BURST_GAP)
        ci.run_code("1")
        assert len(launcher.helper_pids()) == 2  # the zygote and one pre-forked worker
        pooled = launcher.helper_pids()[1]
        time.sleep(BURST_GAP)  # one context at a time: the pool stays at one worker
        ctx = ci.create_context()
        assert int(ci.run_code("import os; print(os.getpid())", context=ctx).stdout) == pooled
        assert pooled not in launcher.helper_pids() and len(launcher.helper_pids()) == 2
        start = time.monotonic()
        assert ci.run_code("import os; print(os.getcwd())", context=ctx).stdout == "%s\n" % tmp_path
        assert time.monotonic() - start < 5


def test_setup_failure_is_reported(tmp_path):
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    with CodeInterpreter(cwd=str(tmp_path)) as ci:
        ci.run_code("1")
        ctx = ci.create_context(cwd=str(doomed))  # pooled worker: its setup is already on its way...
        doomed.rmdir()
        try:
            result = ci.run_code("import os; print(os.getcwd())", context=ctx)
        except WorkerDiedError as exc:  # ...and fails when the directory is gone by then
            assert "could not be set up" in str(exc)
        else:  # the worker entered the directory before it was removed, like a shell would
            assert result.error.name == "FileNotFoundError"
        assert ci.run_code("print('the interpreter is fine')").stdout == "the interpreter is fine\n"


def _other_pythons():
    import glob
    import shutil
    found = []
    for version in ("3.9", "3.12", "3.13"):
        candidates = sorted(glob.glob("/root/.pyenv/versions/%s*/bin/python%s" % (version, version)))
        candidates += [path for path in [shutil.which("python%s" % version)] if path]
        for path in candidates:
            if os.path.realpath(path) != os.path.realpath(sys.executable) and os.access(path, os.X_OK):
                found.append(path)
                break
    return found


@pytest.mark.parametrize("python", _other_pythons() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no other Python 3.9+ found"))])
def test_worker_runs_under_another_python(python, tmp_path):
    with CodeInterpreter(cwd=str(tmp_path), launcher=SpawnLauncher(python)) as ci:
        result = ci.run_code("import sys\nprint(sys.version_info[:2] >= (3, 9))\nx = 2 + 2\nx")
        assert (result.stdout, result.text, result.error) == ("True\n", "4", None)
        assert ci.run_code("import asyncio\nawait asyncio.sleep(0)\n1 / 0").error.name == "ZeroDivisionError"
        assert ci.run_code("print(input())", stdin="fed\n").stdout == "fed\n"


@pytest.mark.parametrize("python", _other_pythons() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no other Python 3.9+ found"))])
def test_the_parent_runs_under_another_python(python, tmp_path):
    """The library itself (not only the worker) supports Python >= 3.9: the
    sync and async APIs, with contexts created off the event loop."""
    script = ("import asyncio, sys\nfrom interp import AsyncCodeInterpreter, CodeInterpreter\n"
              "with CodeInterpreter() as ci:\n    print(ci.run_code('6 * 7').text)\n"
              "async def main():\n    async with AsyncCodeInterpreter() as aci:\n"
              "        ctx = await aci.create_context()\n"
              "        print((await aci.run_code('import sys; sys.version_info[0]', context=ctx)).text)\n"
              "asyncio.run(main())\n")
    proc = subprocess.run([python, "-c", script], cwd=str(tmp_path), capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert (proc.returncode, proc.stdout) == (0, "42\n3\n"), proc.stderr
