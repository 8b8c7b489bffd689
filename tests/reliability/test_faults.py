"""The hostile-code and fault suite (issue 5): every fault below is inflicted
on a real worker; afterwards the parent is healthy, a bystander context kept
its state, the victim is usable, and no process or fd is left behind."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from helpers import kill_parent_after_report, open_fds, process_exists, wait_until, worker_processes_of, zygote_pids
from interp import (CodeInterpreter, InterpError, InterpTimeoutError, InvalidCwdError, OutputMessage,
                    WorkerDiedError)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class World:
    """An interpreter with a victim context and a bystander holding state."""

    def __init__(self, ci: CodeInterpreter) -> None:
        self.ci = ci
        self.victim = ci.create_context()
        self.bystander = ci.create_context()
        ci.run_code("precious = 'intact'", context=self.bystander)
        ci.run_code("import os, sys, time, signal, subprocess, threading", context=self.victim)
        self.fds = open_fds()

    def run(self, code: str, **kwargs):
        return self.ci.run_code(code, context=self.victim, **kwargs)

    def assert_healthy(self, extra_processes: int = 0) -> None:
        assert self.ci.run_code("print(precious)", context=self.bystander).stdout == "intact\n"
        assert self.run("print('victim usable')").stdout == "victim usable\n"
        assert open_fds() == self.fds
        # the two workers (and what the test deliberately left running), nothing else
        assert len(worker_processes_of(os.getpid())) == 2 + extra_processes


@pytest.fixture
def world(ci):
    return World(ci)


def victim_pid(world: World) -> int:
    return int(world.run("print(os.getpid())").stdout)


# -- 1. worker death mid-run ---------------------------------------------------------------


@pytest.mark.parametrize("code, status", [
    ("os._exit(3)", "status 3"),
    ("os.kill(os.getpid(), 9)", "SIGKILL"),
    # a crash in C code does not flush print()'s buffer (the ticker does, within 5 ms; python never does)
    ("sys.stdout.flush(); import ctypes; ctypes.string_at(0)", "SIGSEGV"),
], ids=["os_exit", "self_sigkill", "segfault"])
def test_worker_death_mid_run(world, code, status):
    world.run("lost = 1")
    with pytest.raises(WorkerDiedError, match=status) as info:
        world.run("print('last words')\n" + code)
    assert info.value.result.stdout == "last words\n"
    assert world.run("lost").error.name == "NameError"
    world.assert_healthy()


def test_outside_sigkill_mid_run(world):
    pid = victim_pid(world)
    threading.Timer(0.3, os.kill, (pid, signal.SIGKILL)).start()
    with pytest.raises(WorkerDiedError, match="SIGKILL"):
        world.run("time.sleep(30)")
    world.assert_healthy()


# -- 2. output floods ------------------------------------------------------------------------


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.limit(120)
def test_flood_one_gib_of_short_lines(world):
    before = _peak_rss_mib()
    code = "block = ('x' * 63 + '\\n') * 16384\nfor _ in range(1024):\n    sys.stdout.write(block)"
    result = world.run(code, timeout=110)
    assert result.truncated
    assert result.stdout.startswith("x" * 63 + "\n")
    assert "[interp: output truncated: %d more characters" % ((1 << 30) - (16 << 20)) in result.stdout
    assert _peak_rss_mib() - before < 400  # bounded by max_output, not by the flood
    world.assert_healthy()


def test_flood_callbacks_see_every_line_beyond_max_output(tmp_path):
    with CodeInterpreter(cwd=str(tmp_path), max_output=1000) as ci:
        count = [0]
        result = ci.run_code("for i in range(100_000):\n    print(i)",
                             on_stdout=lambda m: count.__setitem__(0, count[0] + 1))
        assert count[0] == 100_000
        assert result.truncated and len(result.stdout) < 1200
        assert "callbacks received all of it" in result.stdout
        assert not ci.run_code("print('small')").truncated


@pytest.mark.limit(90)
def test_flood_one_100_mib_line_without_newline(world):
    sizes = []
    before = _peak_rss_mib()
    result = world.run("sys.stdout.write('y' * (100 << 20))", timeout=80,
                       on_stdout=lambda m: sizes.append(len(m.output)))
    assert sum(sizes) == 100 << 20
    assert max(sizes) <= 2 << 20  # released in bounded pieces
    assert result.truncated
    assert _peak_rss_mib() - before < 400
    world.assert_healthy()


def test_flood_binary_garbage_on_both_streams(world):
    result = world.run("for _ in range(200):\n    os.write(1, os.urandom(4096))\n    os.write(2, os.urandom(4096))\n"
                       "os.write(1, b'\\xff\\xfe\\xc3 end\\n')")
    assert result.error is None
    assert result.stdout.endswith("\ufffd\ufffd\ufffd end\n")
    assert len(result.stderr) > 100_000
    world.assert_healthy()


def test_flood_both_streams_at_full_speed(world):
    out, err = [0], [0]
    code = textwrap.dedent("""
        def spam(stream, tag):
            for i in range(50_000):
                stream.write('%s %d\\n' % (tag, i))
        threads = [threading.Thread(target=spam, args=(sys.stdout, 'o')),
                   threading.Thread(target=spam, args=(sys.stderr, 'e'))]
        for t in threads: t.start()
        for t in threads: t.join()
    """)
    result = world.run(code, on_stdout=lambda m: out.__setitem__(0, out[0] + 1),
                       on_stderr=lambda m: err.__setitem__(0, err[0] + 1), timeout=60)
    assert out[0] == err[0] == 50_000
    assert result.stdout.splitlines()[-1] == "o 49999" and result.stderr.splitlines()[-1] == "e 49999"
    world.assert_healthy()


# -- 3. the worker's plumbing attacked from user code -----------------------------------------


@pytest.mark.parametrize("sabotage", [
    "os.close(0)", "os.close(1)", "os.close(2)", "os.close(1); os.close(2)",
    "os.dup2(os.open(os.devnull, os.O_WRONLY), 1)",
    "os.dup2(os.open(os.devnull, os.O_RDWR), 2)",
    "sys.stdout = None", "sys.stdout.close()", "sys.stderr.close(); sys.stdin.close()",
    "r, w = os.pipe(); os.dup2(r, 0)",
], ids=["close0", "close1", "close2", "close12", "dup2_over_1", "dup2_over_2", "stdout_none",
        "stdout_close", "stderr_stdin_close", "pipe_over_0"])
def test_std_fds_and_streams_are_repaired(world, sabotage):
    world.run(sabotage)
    result = world.run("print('out'); print('err', file=sys.stderr); os.write(1, b'raw\\n')\n"
                       "subprocess.run(['echo', 'child'])")
    assert (result.stdout, result.stderr) == ("out\nraw\nchild\n", "err\n")
    assert world.run("input()").error.name == "EOFError"
    world.assert_healthy()


FIND_CHANNEL = "import gc\nchannel = [o for o in gc.get_objects() if type(o).__name__ == 'Channel'][0]\n"


@pytest.mark.parametrize("payload", [b"garbage!" * 10, b"\xff\xff\xff\xff", b"\x00\x00\x00\x05{}{}{"],
                         ids=["garbage", "4gib_prefix", "not_an_object"])
def test_garbage_on_the_protocol_fd(world, payload):
    with pytest.raises(WorkerDiedError, match="invalid frame"):
        world.run(FIND_CHANNEL + "os.write(channel.wfd, %r)\ntime.sleep(5)" % payload, timeout=20)
    world.assert_healthy()


def test_partial_frame_on_the_protocol_fd(world):
    # The stream is desynchronised: the run can only end by its timeout, never hang the parent.
    with pytest.raises((InterpTimeoutError, WorkerDiedError)):
        world.run(FIND_CHANNEL + "os.write(channel.wfd, b'\\x00\\x00')", timeout=1)
    world.assert_healthy()


def test_closing_the_capture_read_end_ends_the_context(world):
    world.run("import gc\nrelay = [o for o in gc.get_objects() if type(o).__name__ == 'Relay'][0]\n"
              "for fd in list(relay.pipes):\n    os.close(fd)\nprint('gone')")
    with pytest.raises(WorkerDiedError):
        world.run("print('after')")
    world.assert_healthy()


def test_replacing_the_capture_read_end_ends_the_context(world):
    """dup2 over the relay's read end: reported at the next run, no busy loop."""
    world.run("import gc\nrelay = [o for o in gc.get_objects() if type(o).__name__ == 'Relay'][0]\n"
              "zero = os.open('/dev/zero', os.O_RDONLY)\nfor fd in list(relay.pipes):\n    os.dup2(zero, fd)")
    with pytest.raises(WorkerDiedError, match="output capture"):
        world.run("print('after')")
    world.assert_healthy()


# -- 4. child processes -----------------------------------------------------------------------

SPAWN_CHILDREN = textwrap.dedent("""
    kids = [subprocess.Popen(['sleep', '1000']) for _ in range(50)]
    stubborn = subprocess.Popen([sys.executable, '-c',
        'import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(1000)'])
    r, w = os.pipe()
    if os.fork() == 0:           # a daemon: new session, double fork, parent gone
        os.setsid()
        if os.fork() == 0:
            os.write(w, b'%d\\n' % os.getpid())
            time.sleep(1000)
        os._exit(0)
    daemon = int(os.read(r, 100))
    print(' '.join(str(p) for p in [k.pid for k in kids] + [stubborn.pid, daemon]))
""")


def _spawn_children(world):
    pids = [int(p) for p in world.run(SPAWN_CHILDREN).stdout.split()]
    assert len(pids) == 52 and all(process_exists(p) for p in pids)
    return pids


@pytest.mark.parametrize("how", ["delete", "timeout_kill", "restart", "close"])
@pytest.mark.limit(60)
def test_children_are_killed(world, how):
    pids = _spawn_children(world)
    ci = world.ci
    if how == "delete":
        ci.delete_context(world.victim)
    elif how == "timeout_kill":
        world.run("signal.signal(signal.SIGINT, signal.SIG_IGN)")
        ci._engine.grace_period = 0.3
        with pytest.raises(InterpTimeoutError) as info:
            world.run("while True: time.sleep(0.01)", timeout=0.3)
        assert info.value.restarted
    elif how == "restart":
        ci.restart_context(world.victim)
    else:
        ci.close()
    assert wait_until(lambda: not any(process_exists(p) for p in pids), timeout=5)
    if how in ("timeout_kill", "restart"):
        world.assert_healthy()


# -- 5. threads -----------------------------------------------------------------------------


def test_thread_printing_after_the_run(world):
    world.run("def chatter():\n    for i in range(3):\n        time.sleep(0.1)\n        print('late', i)\n"
              "threading.Thread(target=chatter).start()")
    time.sleep(0.6)
    assert world.run("print('now')").stdout == "late 0\nlate 1\nlate 2\nnow\n"
    world.assert_healthy()


@pytest.mark.parametrize("how", ["delete", "close"])
def test_never_ending_thread_and_hanging_atexit_do_not_delay_teardown(world, how):
    world.run("import atexit\natexit.register(lambda: time.sleep(1000))\n"
              "threading.Thread(target=lambda: time.sleep(1000)).start()")
    pid = victim_pid(world)
    start = time.monotonic()
    if how == "delete":
        world.ci.delete_context(world.victim)
    else:
        world.ci.close()
    assert time.monotonic() - start < 5
    assert not process_exists(pid)


def test_thread_calling_input(world):
    code = ("got = []\ndef read():\n    try:\n        input()\n    except EOFError:\n        got.append('eof')\n"
            "t = threading.Thread(target=read)\nt.start(); t.join()\nprint(got)")
    assert world.run(code).stdout == "['eof']\n"
    assert world.run(code, on_input=lambda prompt: "never asked").stdout == "['eof']\n"
    world.assert_healthy()


# -- 6. signals and exits ---------------------------------------------------------------------


def test_sigint_ignored_then_timeout_kills(world):
    world.ci._engine.grace_period = 0.3
    world.run("signal.signal(signal.SIGINT, signal.SIG_IGN)\nkept = 1")
    with pytest.raises(InterpTimeoutError) as info:
        world.run("time.sleep(30)", timeout=0.3)
    assert info.value.restarted
    assert world.run("kept").error.name == "NameError"
    world.assert_healthy()


def test_sys_exit_in_a_thread(world):
    result = world.run("t = threading.Thread(target=sys.exit, args=(3,))\nt.start(); t.join()\nprint('alive')")
    assert result.stdout == "alive\n"
    world.assert_healthy()


def test_fork_whose_child_keeps_running(world):
    child = int(world.run("pid = os.fork()\nif pid == 0:\n    time.sleep(1000)\n    os._exit(0)\nprint(pid)").stdout)
    assert process_exists(child)
    world.assert_healthy(extra_processes=1)
    world.ci.delete_context(world.victim)
    assert wait_until(lambda: not process_exists(child))


# -- 7. parent death ---------------------------------------------------------------------------


@pytest.mark.limit(60)
def test_parent_sigkill_leaves_nothing(tmp_path):
    script = textwrap.dedent("""
        import os, sys, threading, time
        sys.path.insert(0, {root!r})
        from interp import CodeInterpreter, process
        ci = CodeInterpreter()
        busy, idle = ci.create_context(), ci.create_context()
        code = {spawn!r}
        pids = []
        for ctx in (busy, idle):
            pids += ci.run_code("import os, sys, time, subprocess\\n" + code, context=ctx).stdout.split()
            pids.append(ci.run_code("print(os.getpid())", context=ctx).stdout.strip())
        pids += [str(pid) for pid in process.default_launcher().helper_pids()]
        threading.Thread(target=ci.run_code, args=("time.sleep(1000)",), kwargs={{"context": busy}},
                         daemon=True).start()
        time.sleep(0.3)
        print(" ".join(pids), flush=True)
        time.sleep(1000)
    """).format(root=ROOT, spawn=SPAWN_CHILDREN)
    pids = kill_parent_after_report(script)
    assert len(pids) >= 2 * 53 + 2  # and the zygote with its pooled worker
    start = time.monotonic()
    assert wait_until(lambda: not any(process_exists(p) for p in pids), timeout=10)
    assert time.monotonic() - start < 5  # the issue asks for 2 s (typically 0.1 s here); slack for a loaded CI


# -- 8. callbacks that raise -------------------------------------------------------------------


@pytest.mark.parametrize("callback, code", [
    ("on_stdout", "print('x')\ntime.sleep(30)"),
    ("on_stderr", "print('x', file=sys.stderr)\ntime.sleep(30)"),
    ("on_error", "1/0"),
    ("on_result", "display(1)\ntime.sleep(30)"),
])
def test_callback_that_raises(world, callback, code):
    world.run("kept = 1")

    def boom(_):
        raise LookupError("callback failed")

    start = time.monotonic()
    with pytest.raises(LookupError, match="callback failed"):
        world.run(code, **{callback: boom})
    assert time.monotonic() - start < 10  # the run was interrupted, not waited for
    assert world.run("print(kept)").stdout == "1\n"
    world.assert_healthy()


# -- 9. memory limit ---------------------------------------------------------------------------


def test_memory_limit(tmp_path):
    with CodeInterpreter(cwd=str(tmp_path), memory_limit=1 << 30) as ci:
        other = ci.create_context()
        ci.run_code("kept = 'yes'", context=other)
        ci.run_code("kept = 'here too'")
        result = ci.run_code("hog = bytearray(4 << 30)")
        assert result.error is not None and result.error.name == "MemoryError"
        assert ci.run_code("print(kept)").stdout == "here too\n"
        assert ci.run_code("print(kept)", context=other).stdout == "yes\n"
        assert ci.run_code("small = bytearray(50 << 20); print(len(small))").stdout == "52428800\n"
    with CodeInterpreter(cwd=str(tmp_path)) as ci:  # default: no limit
        assert ci.run_code("import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0])").stdout == "-1\n"
    with pytest.raises(ValueError):
        CodeInterpreter(memory_limit=0)


def test_zygote_stays_alive_and_is_the_only_helper(world):
    helpers = zygote_pids()  # the zygote and its idle pooled worker
    assert len(helpers) >= 1 and all(process_exists(pid) for pid in helpers)
    world.assert_healthy()


def test_output_message_type_is_what_callbacks_get(world):
    seen = []
    world.run("print('typed')", on_stdout=seen.append)
    assert seen == [OutputMessage("typed\n")]


def test_interp_error_for_closed_interpreter_during_run(world):
    threading.Timer(0.3, world.ci.close).start()
    with pytest.raises(InterpError):
        world.run("time.sleep(30)")


# -- found in review: interrupts, slow callers, forks of the application ----------------------


def test_interrupt_never_cuts_a_result_frame(world):
    world.run("class Big:\n    def _repr_html_(self):\n        return 'h' * (8 << 20)\n"
              "    def __repr__(self):\n        return 'Big()'\nkept = 1")
    with pytest.raises(InterpTimeoutError) as info:
        world.run("while True:\n    display(Big())", timeout=1)
    assert info.value.restarted is False
    assert world.run("print(kept)").stdout == "1\n"
    world.assert_healthy()


@pytest.mark.parametrize("install, period", [
    ("signal.signal(signal.SIGALRM, lambda *a: 1 / 0)", 0.05),
    ("signal.signal(signal.SIGINT, signal.default_int_handler)", 0),  # raised by our timeout's SIGINT
])
def test_raising_signal_handlers_never_cut_a_frame(world, install, period):
    """User handlers run only in user code: one that raises while the worker
    writes a frame (here, while display() waits for a slow parent) is held
    until the frame is out, and the run ends cleanly."""
    world.run(install + "\nkept = 1")
    code = ("signal.setitimer(signal.ITIMER_REAL, %s, %s)\ntry:\n"
            "    while True:\n        os.write(1, b'y' * 30000 + b'\\n')\n        display(1)\n"
            "finally:\n    signal.setitimer(signal.ITIMER_REAL, 0)" % (period, period))
    for _ in range(6):
        try:
            result = world.run(code, on_stdout=lambda m: time.sleep(0.005), timeout=1)
        except InterpTimeoutError as exc:  # the SIGINT variant: our own timeout's KeyboardInterrupt
            assert exc.restarted is False
        else:
            assert result.error.name == "ZeroDivisionError"
    assert world.run("print(kept)").stdout == "1\n"
    world.assert_healthy()


def test_a_signal_between_runs_is_handled_when_the_next_run_starts(world):
    """A handler that raises while the worker waits for a command must not
    end the worker: it runs as the next run starts, and that run reports it."""
    world.run("kept = 1\ndef on_alarm(*a):\n    raise TimeoutError('alarm between runs')\n"
              "signal.signal(signal.SIGALRM, on_alarm)\nsignal.setitimer(signal.ITIMER_REAL, 0.05)")
    time.sleep(0.3)
    error = world.run("print('not reached')").error
    assert (error.name, error.value) == ("TimeoutError", "alarm between runs")
    assert world.run("signal.getsignal(signal.SIGALRM) is on_alarm").text == "True"  # not our wrapper
    assert world.run("print(kept)").stdout == "1\n"
    world.assert_healthy()


def test_slow_callbacks_do_not_eat_the_grace_period(world):
    world.run("kept = 1")
    start = time.monotonic()
    with pytest.raises(InterpTimeoutError) as info:
        world.run("i = 0\nwhile True:\n    i += 1\n    print(i)", timeout=1,
                  on_stdout=lambda m: time.sleep(0.001))
    # The clock is checked between callbacks: 1 s + the 2 s grace period,
    # not the minute the backlog of lines would take to deliver.
    assert time.monotonic() - start < 15
    assert info.value.restarted is False  # the worker had answered; the parent was just behind
    assert world.run("print(kept)").stdout == "1\n"
    world.assert_healthy()


@pytest.mark.limit(60)
def test_slow_completion_is_interrupted_not_fatal(world):
    world.run("class Slow:\n    @property\n    def slow(self):\n        time.sleep(60)\no = Slow()\nkept = 1")
    start = time.monotonic()
    assert world.ci.complete("o.slow.", context=world.victim) == []
    assert time.monotonic() - start < 30
    assert world.run("print(kept)").stdout == "1\n"
    world.assert_healthy()


def test_restarting_a_busy_context_repeatedly_leaks_nothing(world):
    fds = open_fds()
    for _ in range(3):
        def doomed_run() -> None:
            with pytest.raises(InterpError):
                world.run("import time; time.sleep(5)")

        runner = threading.Thread(target=doomed_run)
        runner.start()
        time.sleep(0.3)
        for _ in range(3):
            world.ci.restart_context(world.victim)
        runner.join(20)
    world.run("import os, sys, time, signal, subprocess, threading")  # the fresh worker's first run
    assert open_fds() == fds
    world.assert_healthy()


def test_a_fork_of_the_application_leaves_its_contexts_alone(world):
    pid = os.fork()
    if pid == 0:  # the child never uses interp and exits as Python would (atexit handlers run)
        try:
            import atexit
            atexit._run_exitfuncs()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    world.assert_healthy()


@pytest.mark.limit(60)
def test_parent_killed_while_its_fork_lives_still_takes_workers_down(tmp_path):
    script = textwrap.dedent("""
        import os, sys, time
        sys.path.insert(0, {root!r})
        from interp import CodeInterpreter
        ci = CodeInterpreter()
        pid = ci.run_code("import os; print(os.getpid())").stdout.strip()
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        print(pid, flush=True)
        time.sleep(1000)
    """).format(root=ROOT)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        worker = int(parent.stdout.readline())
        parent.kill()
        parent.wait()
        assert wait_until(lambda: not process_exists(worker), timeout=5)
    finally:
        os.killpg(parent.pid, signal.SIGKILL)  # the sleeping fork
        parent.stdout.close()


def test_default_context_snapshot_and_id_are_accepted(world):
    snapshot = world.ci.restart_context()
    assert snapshot.id == "default"
    world.ci.run_code("here = 1", context=snapshot)
    assert world.ci.run_code("print(here)", context="default").stdout == "1\n"
    world.ci.delete_context("default")
    assert world.ci.run_code("here").error.name == "NameError"  # a new default context


def test_restart_after_the_cwd_vanished(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    with CodeInterpreter(cwd=str(tmp_path)) as ci:
        ctx = ci.create_context(cwd=str(gone))
        ci.run_code("1", context=ctx)
        gone.rmdir()
        with pytest.raises(InvalidCwdError):
            ci.restart_context(ctx)


def test_daemons_of_a_worker_that_died_abruptly_are_killed(world):
    pids = _spawn_children(world)
    daemon = pids[-1]
    with pytest.raises(WorkerDiedError):
        world.run("os.kill(os.getpid(), signal.SIGKILL)")
    assert wait_until(lambda: not any(process_exists(p) for p in pids), timeout=5)
    assert not process_exists(daemon)
    world.assert_healthy()
