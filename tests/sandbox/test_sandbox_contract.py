"""The engine's contract holds inside a sandbox.

A representative subset of the contract tests (tests/test_engine.py and
tests/test_semantics.py) is collected again here, run on the ``ci`` fixture
below: a sandboxed interpreter whose workspace is the test's tmp_path (those
tests give tmp_path as the contexts' cwd). Tests that compare the pids user
code reports with host processes do not apply as written (inside, pids are the
sandbox's); their sandboxed versions, on host pids, follow.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from conftest import no_leftovers
from helpers import process_exists, wait_until
from interp import CodeInterpreter, InterpTimeoutError, WorkerDiedError
from interp.sandbox import Sandbox
from test_engine import (test_c_level_stdio_is_captured, test_delete_during_a_run,  # noqa: F401
                         test_envs_for_one_run_only, test_error_traceback_reads_like_python,
                         test_every_writer_is_captured_in_order, test_lines_stream_while_the_code_runs,
                         test_no_stdin, test_output_before_a_crash_is_never_lost,
                         test_output_cannot_forge_protocol_frames, test_partial_line_is_delivered_before_the_run_ends,
                         test_runs_on_different_contexts_proceed_in_parallel, test_state_persists_between_runs,
                         test_timeout_interrupts_and_keeps_state, test_timeout_reaches_child_processes,
                         test_worker_death_mid_run_is_reported)
from test_semantics import (test_completion_of_names_and_attributes, test_display_adds_results_in_order,  # noqa: F401
                            test_interrupt_from_another_thread, test_interrupt_reaches_child_processes,
                            test_last_expression_is_the_main_result, test_matplotlib_figures_become_png_results,
                            test_on_input_callback, test_restart_during_a_run,
                            test_stdin_reaches_subprocesses_and_large_input, test_stdin_text_feeds_input_and_sys_stdin,
                            test_top_level_await)
from reliability.test_hardening import (  # noqa: F401
    test_a_sigint_whose_handler_waits_for_a_blocking_call_still_interrupts_it,
    test_one_interrupt_is_one_keyboard_interrupt)


@pytest.fixture
def ci(tmp_path):
    """A sandboxed interpreter whose workspace (and default cwd) is tmp_path."""
    interpreter = CodeInterpreter(sandbox=Sandbox(tmp_path))
    try:
        yield interpreter
    finally:
        interpreter.close()
        no_leftovers()


def _worker(ci, context=None):
    """The host-side handle of a context's worker."""
    return ci._engine.resolve(context).worker


def _nspid(status) -> list:
    """The NSpid line of a /proc/<pid>/status file: host pid first, the sandbox's last."""
    return next(line.split()[1:] for line in status if line.startswith("NSpid:"))


def _host_pid_of(inner: int, worker_pid: int) -> int:
    """The host pid of the sandbox process whose pid inside is ``inner`` (a
    descendant of the worker whose host pid is ``worker_pid``, or itself)."""
    stack = [worker_pid]
    while stack:
        pid = stack.pop()
        try:
            with open("/proc/%d/status" % pid) as handle:
                nspid = _nspid(handle)
            if int(nspid[-1]) == inner:
                return pid
            for task in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/children" % (pid, task)) as handle:
                    stack.extend(int(child) for child in handle.read().split())
        except (OSError, StopIteration):
            continue
    raise AssertionError("no process %d inside the sandbox" % inner)


def test_worker_handles_carry_host_pids(ci):
    """The pid the parent signals is the host's pid of the very process that
    runs the code (the zygote sent a pidfd; see process.host_pid)."""
    inner = int(ci.run_code("import os; print(os.getpid())").stdout)
    worker = _worker(ci)
    with open("/proc/%d/status" % worker.pid) as handle:
        nspid = _nspid(handle)
    assert int(nspid[0]) == worker.pid and int(nspid[-1]) == inner and len(nspid) == 2
    assert worker.pid != inner


@pytest.mark.limit(30)
def test_timeout_kills_code_that_ignores_interrupts(tmp_path):
    with CodeInterpreter(sandbox=Sandbox(tmp_path), grace_period=0.5) as ci:
        ctx = ci.create_context()
        ci.run_code("import signal, time\nkept = 1\nsignal.signal(signal.SIGINT, signal.SIG_IGN)", context=ctx)
        old = _worker(ci, ctx).pid
        with pytest.raises(InterpTimeoutError) as info:
            ci.run_code("while True:\n    time.sleep(0.01)", context=ctx, timeout=0.3)
        assert info.value.restarted is True
        assert ci.run_code("kept", context=ctx).error.name == "NameError"
        assert not process_exists(old) and _worker(ci, ctx).pid != old
    no_leftovers()


def test_interrupt_and_timeout_act_on_their_own_context_only(ci):
    """An interrupt is delivered to the right host process group: a
    neighbouring context's run and its child process are untouched."""
    a, b = ci.create_context(), ci.create_context()
    ci.run_code("import subprocess\nchild = subprocess.Popen(['sleep', '1000'])", context=b)
    child = _host_pid_of(int(ci.run_code("print(child.pid)", context=b).stdout), _worker(ci, b).pid)
    with pytest.raises(InterpTimeoutError) as info:
        ci.run_code("import time\ntime.sleep(30)", context=a, timeout=0.5)
    assert info.value.restarted is False
    assert process_exists(child)
    assert ci.run_code("print(child.poll())", context=b).stdout == "None\n"


def test_restart_and_delete_kill_the_right_processes(ci, tmp_path):
    ctx, other = ci.create_context(), ci.create_context()
    ci.run_code("kept = 1", context=ctx)
    keep = _worker(ci, other).pid
    old = _worker(ci, ctx).pid
    inner = int(ci.run_code("import subprocess\nprint(subprocess.Popen(['sleep', '1000']).pid)", context=ctx).stdout)
    child = _host_pid_of(inner, old)
    info = ci.restart_context(ctx)
    assert (info.cwd, info.active) == (str(tmp_path), True)
    assert ci.run_code("kept", context=ctx).error.name == "NameError"
    assert not process_exists(old)
    assert wait_until(lambda: not process_exists(child))
    new = _worker(ci, ctx).pid
    ci.delete_context(ctx)
    assert not process_exists(new)
    assert process_exists(keep) and ci.run_code("print('alive')", context=other).stdout == "alive\n"


def test_death_while_idle_is_reported_on_next_run(ci):
    ci.run_code("1")
    pid = _worker(ci).pid
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not process_exists(pid))
    with pytest.raises(WorkerDiedError, match="state is lost") as info:
        ci.run_code("print('x')")
    assert info.value.returncode == -signal.SIGKILL
    assert ci.run_code("print('x')").stdout == "x\n"


@pytest.mark.limit(40)
def test_parent_death_leaves_no_orphans(tmp_path):
    """A parent killed by SIGKILL takes its sandbox with it: the zygote (PID 1
    inside) sees its socket close and exits, and the kernel kills every
    process of the namespace, daemons included."""
    marker = "interp-orphan-%s" % uuid.uuid4().hex
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, %r)
        from interp import CodeInterpreter
        from interp.sandbox import Sandbox
        ci = CodeInterpreter(sandbox=Sandbox(%r))
        ctx = ci.create_context()
        cgroup = ci.sandbox._cgroup
        for c in (None, ctx):
            ci.run_code("import subprocess, sys\\n"
                        "subprocess.Popen([sys.executable, '-c', "
                        "'import os, time\\\\nif os.fork() == 0: os.setsid()\\\\ntime.sleep(1000)', %r])",
                        context=c)
        print("ready", *(sorted(set(cgroup.dirs.values())) if cgroup else []), flush=True)
        import time
        time.sleep(1000)
    """) % (os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), str(tmp_path), marker)

    def marked():  # the processes the code started (not the parent, whose script holds the marker too)
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == parent.pid:
                continue
            try:
                with open("/proc/%s/cmdline" % name, "rb") as handle:
                    if marker.encode() in handle.read():
                        found.append(int(name))
            except OSError:
                pass
        return found

    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        ready, *cgroups = parent.stdout.readline().split()
        assert ready == "ready"
        assert wait_until(lambda: len(marked()) == 4)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
    assert wait_until(lambda: marked() == [], timeout=15)
    # the sandbox's cgroup (when it had one) is empty: the next sandbox made
    # here removes it once stale; this test does so now
    def empty(path):
        with open(os.path.join(path, "cgroup.procs")) as handle:
            return handle.read() == ""

    for path in cgroups:
        assert wait_until(functools.partial(empty, path))
        os.rmdir(path)
    time.sleep(0.2)
    assert marked() == []
