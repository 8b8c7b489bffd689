"""Issue 10, points 1-9: the engine's contract against hostile and odd code.

User code can reach everything in its worker process, the channel to the
parent included; these tests forge frames from inside a run the way an
attacker would (the Channel object is found through the garbage collector,
the id of the command in progress through the worker's stack frames).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time

import pytest

from interp import AsyncCodeInterpreter, CodeInterpreter, InvalidCwdError, WorkerDiedError
from interp.process import SpawnLauncher
from helpers import process_exists, wait_until, zygote_pids

# Defines forge(message=None, body=None), which writes one frame to the
# worker's channel, and command_id(), the id of the command being run.
FORGE = r'''
import gc as _gc, json as _json, os as _os, struct as _struct, sys as _sys
_channel = next(o for o in _gc.get_objects() if type(o).__name__ == "Channel" and hasattr(o, "wfd"))
def forge(message=None, body=None):
    if body is None:
        body = _json.dumps(message).encode()
    with _channel.lock:
        _os.write(_channel.wfd, _struct.pack(">I", len(body)) + body)
def command_id():
    frame = _sys._getframe()
    while frame is not None:
        command = frame.f_locals.get("command")
        if isinstance(command, dict) and "id" in command:
            return command["id"]
        frame = frame.f_back
'''


def _engine_context(ci, ref=None):
    return ci._engine.resolve(ref)


def _bystander(ci):
    ctx = ci.create_context()
    ci.run_code("kept = 'bystander'", context=ctx)
    return ctx


def _assert_bystander(ci, ctx):
    assert ci.run_code("print(kept)", context=ctx).stdout == "bystander\n"


# -- 1. deep JSON -------------------------------------------------------------------------

DEEP = "import sys\nsys.setrecursionlimit(20000)\nv = []\nfor _ in range(3000):\n    v = [v]\n"


def test_deep_json_in_a_result_is_dropped_and_the_state_survives(ci):
    ci.run_code("kept = 1")
    result = ci.run_code(DEEP + "display({'text/plain': 'x', 'application/json': v}, raw=True)\n"
                         "display({'text/plain': 'y', 'application/json': [[[1]]]}, raw=True)")
    assert result.error is None
    assert [r.text for r in result.results] == ["x", "y"]
    assert result.results[0].json is None and result.results[1].json == [[[1]]]
    assert ci.run_code("print(kept)").stdout == "1\n"


def test_forged_deep_frame_during_a_run_is_a_protocol_error_for_that_context_only(ci):
    bystander = _bystander(ci)
    ci.run_code(FORGE)
    with pytest.raises(WorkerDiedError, match="invalid frame"):
        ci.run_code("forge(body=b'{\"t\":' + b'[' * 100000 + b']' * 100000 + b'}')")
    assert ci.run_code("print('fresh')").stdout == "fresh\n"
    _assert_bystander(ci, bystander)


def test_forged_deep_frame_while_idle_does_not_brick_the_context(ci):
    ci.run_code(FORGE + "import threading, time\n"
                "threading.Thread(target=lambda: (time.sleep(0.3), forge(body=b'[' * 5000 + b']' * 5000))).start()")
    time.sleep(0.8)
    with pytest.raises(WorkerDiedError):
        ci.run_code("print('late')")
    for _ in range(3):  # replaced, not bricked
        assert ci.run_code("print('ok')").stdout == "ok\n"


def test_forged_deep_frame_reaches_the_async_caller_at_once(tmp_path):
    async def main():
        async with AsyncCodeInterpreter(cwd=str(tmp_path)) as aci:
            await aci.run_code(FORGE)
            started = time.monotonic()
            with pytest.raises(WorkerDiedError):
                await aci.run_code("forge(body=b'[' * 100000)\nimport time\ntime.sleep(60)", timeout=0)
            assert time.monotonic() - started < 30  # not the run's (absent) timeout
            assert (await aci.run_code("print(1)")).stdout == "1\n"
    asyncio.run(main())


def test_decoder_refuses_deep_frames_whatever_the_recursion_limit():
    from interp.protocol import FrameDecoder, ProtocolError, encode
    import struct

    body = b'{"t":' + b"[" * 200000 + b"]" * 200000 + b"}"
    decoder = FrameDecoder()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10 ** 6)  # an application may do this; the decoder must not rely on it
    try:
        with pytest.raises(ProtocolError, match="deeper"):
            decoder.feed(struct.pack(">I", len(body)) + body)
    finally:
        sys.setrecursionlimit(limit)
    # the bad frame was dropped: the next one decodes
    assert decoder.feed(encode({"t": "ready", "pid": 1})) == [{"t": "ready", "pid": 1}]


# -- 2. forged frames ---------------------------------------------------------------------

def test_forged_done_for_another_command_is_a_protocol_error(ci):
    bystander = _bystander(ci)
    ci.run_code(FORGE)
    with pytest.raises(WorkerDiedError, match="names command"):
        ci.run_code("forge({'t': 'done', 're': 12345, 'error': None, 'count': 1})\n1 / 0")
    _assert_bystander(ci, bystander)
    assert ci.run_code("print('fresh')").stdout == "fresh\n"


def test_a_forged_reply_is_never_attributed_to_a_later_run(ci):
    """The code forges its own run's 'done' (with the right id) and then
    raises: that run may believe the lie it told about itself, but the real
    'done' that follows is caught as a second reply, so the next run does
    not return the first one's error, and the one after is clean again."""
    ci.run_code(FORGE)
    first = ci.run_code("forge({'t': 'done', 're': command_id(), 'error': None, 'count': 99})\n"
                        "import time\ntime.sleep(0.2)\n1 / 0")
    assert first.error is None  # its own lie
    with pytest.raises(WorkerDiedError, match="names command"):
        ci.run_code("print('second')")
    third = ci.run_code("print('third')")
    assert third.stdout == "third\n" and third.error is None


def test_forged_completions_during_a_run_is_a_protocol_error(ci):
    ci.run_code(FORGE)
    with pytest.raises(WorkerDiedError, match="completions"):
        ci.run_code("forge({'t': 'completions', 're': command_id(), 'matches': []})\nimport time\ntime.sleep(5)")


def test_forged_done_before_the_next_command_was_read(ci):
    """A background thread forges replies for the ids it could guess while
    the worker is idle: none can name a command not yet sent."""
    ci.run_code(FORGE)
    ci.run_code("import threading, time\nguess = command_id()\n"
                "threading.Thread(target=lambda: (time.sleep(0.2), [forge({'t': 'done', 're': guess + k, "
                "'error': None, 'count': 1}) for k in range(-2, 3)])).start()")
    time.sleep(0.6)
    with pytest.raises(WorkerDiedError, match="names command"):
        ci.run_code("print('never reported as done by a forgery')")
    assert ci.run_code("print('ok')").stdout == "ok\n"


def test_forged_started_for_another_command_is_a_protocol_error(ci):
    ci.run_code(FORGE)
    with pytest.raises(WorkerDiedError):
        ci.run_code("forge({'t': 'started', 're': command_id() + 1})\nimport time\ntime.sleep(5)")


# -- 3. signal handlers -------------------------------------------------------------------

@pytest.mark.limit(120)
def test_a_1khz_timer_handler_never_kills_the_worker(ci):
    ci.run_code("import signal\nticks = 0\ndef tick(signum, frame):\n    global ticks\n    ticks += 1\n"
                "signal.signal(signal.SIGALRM, tick)\nsignal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)")
    for index in range(200):
        result = ci.run_code("x = %d\nsum(range(2000))" % index)
        assert result.error is None
        time.sleep(0.05)  # ticks pile up while idle, to be handled as the next run starts
    assert int(ci.run_code("ticks").text) > 0


def test_signals_held_while_idle_are_kept_once_per_signal(ci):
    ci.run_code("import signal, time\nticks = 0\ndef tick(signum, frame):\n    global ticks\n    ticks += 1\n"
                "signal.signal(signal.SIGALRM, tick)\nsignal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)\n"
                "time.sleep(0.05)")
    before = int(ci.run_code("signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)\nticks").text)
    time.sleep(0.5)  # ~500 ticks while idle: held once, not 500 times
    after = int(ci.run_code("signal.setitimer(signal.ITIMER_REAL, 0)\nticks").text)
    assert after - before < 20


# -- 4. what the parent keeps -------------------------------------------------------------

def test_max_output_bounds_the_results_kept(tmp_path):
    seen = []
    with CodeInterpreter(cwd=str(tmp_path), max_output=1000) as ci:
        result = ci.run_code("s = 'x' * (2 << 20)\nfor _ in range(40):\n    display(s)\n'last'",
                             on_result=lambda r: seen.append(len(r.text)))
        assert len(seen) == 41 and seen[0] > 2 << 20  # callbacks get every result whole
        assert result.truncated
        assert sum(len(r.text or "") for r in result.results) < 41 * 200
        assert "not kept" in result.results[0].text
        assert result.results[-1].is_main_result
        small = ci.run_code("display('a')\n'b'")
        assert [r.text for r in small.results] == ["'a'", "'b'"] and not small.truncated


def test_output_printed_during_a_completion_is_bounded(tmp_path):
    with CodeInterpreter(cwd=str(tmp_path), max_output=10000) as ci:
        ci.run_code("import threading, time, sys\n"
                    "class Slow:\n    def __dir__(self):\n        time.sleep(1.5)\n        return ['value']\n"
                    "slow = Slow()\n"
                    "def flood():\n    time.sleep(0.2)\n    for _ in range(20000):\n        print('y' * 100)\n"
                    "threading.Thread(target=flood, daemon=True).start()")
        assert ci.complete("slow.va") == ["slow.value"]
        result = ci.run_code("time.sleep(0.5)\nprint('end')", timeout=30)
        assert result.truncated
        assert "printed between runs were dropped" in result.stderr
        assert len(result.stdout) < 2 * 10000 + 500


# -- 5. interrupts at the start of a run ---------------------------------------------------

def _interrupt_as_soon_as_busy(ci, context, code="import time\ntime.sleep(30)", tries=1):
    ctx = _engine_context(ci, context)
    outcome = []
    for _ in range(tries):
        worker = threading.Thread(target=lambda: outcome.append(ci.run_code(code, context=context, timeout=60)))
        worker.start()
        assert wait_until(lambda: ctx.busy, timeout=10, interval=0.0005)
        ci.interrupt(context)
        worker.join(30)
        assert not worker.is_alive()
    return outcome


@pytest.mark.limit(120)
def test_an_interrupt_at_the_start_of_a_run_is_never_lost(ci):
    ci.run_code("kept = 'state'")
    results = _interrupt_as_soon_as_busy(ci, None, tries=40)
    assert [r.error.name for r in results] == ["KeyboardInterrupt"] * 40
    assert ci.run_code("print(kept)").stdout == "state\n"


@pytest.mark.limit(120)
def test_an_interrupt_of_a_starting_spawned_worker_does_not_kill_it(tmp_path):
    with CodeInterpreter(cwd=str(tmp_path), launcher=SpawnLauncher()) as ci:
        for _ in range(3):
            ctx = ci.create_context()
            results = _interrupt_as_soon_as_busy(ci, ctx.id)
            assert results[0].error.name == "KeyboardInterrupt"
            assert ci.run_code("print('alive')", context=ctx).stdout == "alive\n"


def test_a_stale_interrupt_does_not_reach_the_next_run(ci):
    """An interrupt that lands after its run ended (a race the worker cannot
    see) is not taken for the next run's."""
    ctx = _engine_context(ci)
    ci.run_code("pass")
    for _ in range(20):
        ctx.worker.signal_group(signal.SIGINT)  # as if sent just as the last run ended
        result = ci.run_code("import time\ntime.sleep(0.05)\nprint('ran')")
        assert result.error is None and result.stdout == "ran\n"


# A SIGINT whose C handler ran while the main thread was not in a system call
# (just before time.sleep, say) wakes nothing: CPython runs the Python handler
# only when that call returns. A SIGINT the kernel gives another thread is the
# same case, and one a test can make happen every time.
POKE_SIGINT_FROM_A_THREAD = (
    "import signal, threading, time\n"
    "def poke():\n"
    "    time.sleep(0.3)\n"
    "    signal.pthread_kill(threading.get_ident(), signal.SIGINT)\n"
    "threading.Thread(target=poke).start()\n"
)


def test_a_sigint_whose_handler_waits_for_a_blocking_call_still_interrupts_it(ci):
    started = time.monotonic()
    result = ci.run_code(POKE_SIGINT_FROM_A_THREAD + "time.sleep(30)", timeout=60)
    assert result.error.name == "KeyboardInterrupt"
    assert time.monotonic() - started < 20  # the sleep's end: 30 s


@pytest.mark.limit(120)
def test_one_interrupt_is_one_keyboard_interrupt(ci):
    """Nothing sends a handled SIGINT again: cleanup after KeyboardInterrupt
    runs undisturbed, and a handler of the code's runs once per interrupt."""
    ctx = _engine_context(ci)
    cleanup = ("import time\ntry:\n    time.sleep(30)\nexcept KeyboardInterrupt:\n"
               "    time.sleep(0.2)\n    print('cleaned up')\n")
    for _ in range(10):
        runner = threading.Thread(target=lambda: outcome.append(ci.run_code(cleanup, timeout=60)))
        outcome = []
        runner.start()
        assert wait_until(lambda: ctx.busy, timeout=10, interval=0.0005)
        time.sleep(0.05)
        ci.interrupt()
        runner.join(30)
        assert outcome[0].error is None and outcome[0].stdout == "cleaned up\n", outcome[0]
    ci.run_code("import signal\ncalls = []\nsignal.signal(signal.SIGINT, lambda *a: calls.append(1))")
    threading.Timer(0.3, ci.interrupt).start()
    assert ci.run_code("time.sleep(1)\nprint(len(calls))", timeout=30).stdout == "1\n"


# Code that counts the KeyboardInterrupts one interrupt() gives it, cleanup included.
COUNT_INTERRUPTS = (
    "import signal, time\n"
    "n = 0\n"
    "try:\n"
    "    {body}\n"
    "except KeyboardInterrupt:\n"
    "    n += 1\n"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {{signal.SIGINT}})\n"
    "for _ in range(3):\n"
    "    try:\n"
    "        time.sleep(0.2)\n"
    "    except KeyboardInterrupt:\n"
    "        n += 1\n"
    "print(n)\n")


@pytest.mark.parametrize("setup, body", [
    # the kernel gives the SIGINT to a thread of the code's while the main thread holds it off
    ("import signal, threading, time\nthreading.Thread(target=time.sleep, args=(3,), daemon=True).start()",
     "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})\n    time.sleep(1)"),
    # a frozen clock (freezegun, mock.patch) must not make handled interrupts look lost
    ("import time\ntime.monotonic = lambda: 1000.0", "time.sleep(30)"),
    # a SIGINT handler the signal gate does not see (the module reloaded)
    ("import importlib, signal, time\nimportlib.reload(signal)\n"
     "signal.signal(signal.SIGINT, signal.default_int_handler)", "time.sleep(30)"),
], ids=["sigmask", "frozen-clock", "ungated-handler"])
def test_one_interrupt_is_one_keyboard_interrupt_whatever_the_code_did(ci, setup, body):
    assert ci.run_code(setup).error is None
    for _ in range(2):
        threading.Timer(0.3, ci.interrupt).start()
        result = ci.run_code(COUNT_INTERRUPTS.format(body=body), timeout=30)
        assert result.error is None and result.stdout == "1\n", result
    assert ci.run_code("time.sleep(0.3)\nprint('undisturbed')").stdout == "undisturbed\n"


@pytest.mark.parametrize("setup", [
    "signal.signal(signal.SIGURG, signal.SIG_IGN)",
    "signal.signal(signal.SIGURG, signal.SIG_DFL)",
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGURG})",
    "urgent = []\nsignal.signal(signal.SIGURG, lambda *a: urgent.append(1))",
], ids=["ignored", "default", "blocked", "own-handler"])
def test_the_wake_signal_is_the_codes_to_set(ci, setup):
    """What the worker wakes its main thread with (SIGURG) may be set by
    the code as it likes: getsignal shows the code's setting, a handler of
    its own is not called by the worker, and a lost-looking interrupt
    still comes at once."""
    assert ci.run_code("import signal\nprint(signal.getsignal(signal.SIGURG) is signal.SIG_DFL)").stdout == "True\n"
    assert ci.run_code(setup).error is None
    started = time.monotonic()
    result = ci.run_code(POKE_SIGINT_FROM_A_THREAD + "time.sleep(30)", timeout=60)
    assert result.error.name == "KeyboardInterrupt" and time.monotonic() - started < 20
    if "SIG_IGN" in setup:
        assert ci.run_code("print(signal.getsignal(signal.SIGURG) is signal.SIG_IGN)").stdout == "True\n"
    if "urgent" in setup:
        assert ci.run_code("print(urgent)").stdout == "[]\n"


def test_the_watch_outlives_the_code_mocking_what_it_uses(ci):
    """os.read mocked for a while (its ticker reads with it) does not stop
    the ticker that flushes the code's output."""
    ci.run_code("import os, time\nfrom unittest import mock\n"
                "with mock.patch('os.read', side_effect=ValueError('mocked')):\n    time.sleep(0.1)")
    arrived = []
    started = time.monotonic()
    ci.run_code("print('early', flush=False)\ntime.sleep(1.5)\nprint('late')",
                on_stdout=lambda line: arrived.append(time.monotonic() - started))
    assert len(arrived) == 2 and arrived[1] - arrived[0] > 0.75  # 'early' came at once, not with 'late'


def test_an_event_loop_that_took_the_wakeup_fd_gives_it_back(ci):
    """asyncio's add_signal_handler sets the wakeup fd and unsets it when the
    loop closes; trio warns if it finds one set: the code sees none of the
    worker's, and the worker's is back once the code's is gone."""
    result = ci.run_code(
        "import asyncio, signal\n"
        "async def main():\n"
        "    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, print)\n"
        "asyncio.run(main())\n"
        "import socket\n"
        "a, b = socket.socketpair()\n"
        "a.setblocking(False)\n"
        "print(signal.set_wakeup_fd(a.fileno()), signal.set_wakeup_fd(-1) == a.fileno())")
    assert result.stdout == "-1 True\n", result
    started = time.monotonic()
    result = ci.run_code(POKE_SIGINT_FROM_A_THREAD + "time.sleep(30)", timeout=60)
    assert result.error.name == "KeyboardInterrupt" and time.monotonic() - started < 20


def test_the_code_may_take_over_the_descriptors_of_the_wakeup_pipe(ci):
    """Code that puts its own pipe on the worker's wakeup pipe's numbers
    (dup2) keeps what it writes there, and no signal writes to it."""
    ci.run_code(
        "import os, signal, time\n"
        "watch = signal.signal.__self__.watch  # the worker's signal gate's\n"
        "r, w = watch.rfd, watch._wfd\n"
        "a, b = os.pipe()\n"
        "os.dup2(a, r)\n"
        "os.dup2(b, w)\n"
        "os.set_blocking(r, False)\n"
        "os.write(w, b'mine')\n"
        "time.sleep(0.1)\n"
        "kept = os.read(r, 100)")
    assert ci.run_code("print(kept)").stdout == "b'mine'\n"
    threading.Timer(0.3, ci.interrupt).start()
    assert ci.run_code("time.sleep(5)", timeout=30).error.name == "KeyboardInterrupt"
    result = ci.run_code("try:\n    print(os.read(r, 100))\nexcept BlockingIOError:\n    print('empty')")
    assert result.stdout == "empty\n"


@pytest.mark.parametrize("fork", ["os.fork()", "ctypes.CDLL(None).fork()"], ids=["python", "libc"])
def test_a_sigint_to_a_process_the_code_forked_does_not_reach_the_worker(ci, fork):
    """Neither through Python's fork (whose hooks drop the wakeup pipe) nor
    through libc's (which keeps it: a wake, never a SIGINT, is all it can cause)."""
    result = ci.run_code(
        "import ctypes, os, signal, time\n"
        "pid = %s\n"
        "if pid == 0:\n"
        "    try:\n"
        "        time.sleep(10)\n"
        "    finally:\n"
        "        os._exit(0)\n"
        "time.sleep(0.2)\n"
        "os.kill(pid, signal.SIGINT)\n"
        "time.sleep(0.5)\n"
        "os.waitpid(pid, 0)\n"
        "print('not interrupted')" % fork, timeout=30)
    assert result.error is None and result.stdout == "not interrupted\n", result


# -- 6. input replies name their prompt ---------------------------------------------------

def test_an_answer_to_an_abandoned_prompt_goes_nowhere(ci):
    prompts = []

    def on_input(prompt):
        prompts.append(prompt)
        if prompt == "p0":
            time.sleep(0.6)  # the code is interrupted meanwhile and asks again
        return "answer-" + prompt

    threading.Timer(0.3, ci.interrupt).start()
    result = ci.run_code("try:\n    a = input('p0')\nexcept KeyboardInterrupt:\n    a = input('p1')\nprint(a)",
                         on_input=on_input, timeout=20)
    assert prompts == ["p0", "p1"]
    assert result.stdout == "answer-p1\n", result


# -- 7. odd objects in sys.std* -----------------------------------------------------------

@pytest.mark.parametrize("name", ["stdout", "stderr", "stdin"])
def test_a_stream_whose_closed_attribute_raises_does_not_brick_the_context(ci, name):
    ci.run_code("import sys\nclass Odd:\n    @property\n    def closed(self):\n        raise RuntimeError('no')\n"
                "    @property\n    def __class__(self):\n        raise RuntimeError('no class either')\n"
                "sys.%s = Odd()" % name)
    result = ci.run_code("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert result.error is None and result.stdout == "out\n" and result.stderr == "err\n"
    assert ci.run_code("print(input())", stdin="in\n").stdout == "in\n"


# -- 8. oversized bundles -----------------------------------------------------------------

@pytest.mark.parametrize("shape", ["keys", "values"])
def test_an_oversized_bundle_is_cut_to_fit_and_the_state_survives(ci, shape):
    ci.run_code("kept = 'yes'")
    make = ("{'text/plain': 'big', **{('k%%d' %% i) + %s: %s for i in range(1000)}}"
            % (("'x' * 40000", "'v'") if shape == "keys" else ("''", "'v' * 40000")))
    seen = []
    result = ci.run_code("display(%s, raw=True)" % make, on_result=seen.append)
    assert result.error is None
    bundle = seen[0]
    assert bundle.text == "big" and bundle.extra["application/x-interp-dropped"]
    assert result.results[0].text == "big"  # the parent's budget cuts it the same way, keeping its text
    assert ci.run_code("print(kept)").stdout == "yes\n"


# -- 9. minor ones ------------------------------------------------------------------------

def test_a_huge_timeout_means_no_limit(ci):
    assert ci.run_code("print(1)", timeout=10 ** 400).stdout == "1\n"
    assert ci.run_code("print(2)", timeout=1e300).stdout == "2\n"
    with pytest.raises(ValueError):
        CodeInterpreter(grace_period=10 ** 400)


def test_a_removed_application_directory_is_an_invalid_cwd_error(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    here = os.getcwd()
    os.chdir(str(gone))
    try:
        os.rmdir(str(gone))
        with CodeInterpreter() as ci:
            with pytest.raises(InvalidCwdError):
                ci.create_context()
            with pytest.raises(InvalidCwdError):
                ci.run_code("1")
    finally:
        os.chdir(here)


def test_complete_from_a_callback_on_its_own_context_returns_nothing(ci):
    answers = []
    ci.run_code("import os")
    ci.run_code("print('x')", on_stdout=lambda message: answers.append(ci.complete("os.pa")))
    assert answers == [[]]


def test_os_putenv_in_a_run_with_envs_does_not_leak(ci):
    ci.run_code("import os\nos.putenv('LEAKED', 'yes')\nos.unsetenv('PATH_BEFORE')", envs={"A": "b"})
    out = ci.run_code("import subprocess\nprint(subprocess.run(['sh', '-c', 'echo ${LEAKED:-none} ${A:-none}'], "
                      "capture_output=True, text=True).stdout, end='')").stdout
    assert out == "none none\n"


def test_a_stopped_zygote_does_not_stall_context_creation(ci):
    ci.run_code("import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)")
    stopped = zygote_pids()[:1]
    started = time.monotonic()
    ctx = ci.create_context()
    assert time.monotonic() - started < 5  # the zygote's request timeout is 10 s
    assert ci.run_code("print('ok')", context=ctx).stdout == "ok\n"
    for pid in stopped:
        assert wait_until(lambda: not process_exists(pid), timeout=10)


CLONE_PARENT_ESCAPE = r"""
import ctypes, os, signal, sys, time
# PyDLL: the GIL stays held across the call, so the clone (a copy of this one
# thread) does not wait for a GIL some other thread held at that instant; and
# a long switch interval, so that no other thread (the worker's flush ticker)
# has asked for the GIL at that instant, which the clone would wait to hand over
sys.setswitchinterval(60)
libc = ctypes.PyDLL(None, use_errno=True)
SYS_clone = {"x86_64": 56, "aarch64": 220}[os.uname().machine]
pid = libc.syscall(SYS_clone, 0x00008000 | signal.SIGCHLD, 0, 0, 0, 0)  # CLONE_PARENT: a sibling
if pid == 0:
    os.setsid()
    os.execv('/bin/sleep', ['sleep', '600'])
give_up = time.monotonic() + 10
while os.getsid(pid) != pid and time.monotonic() < give_up:  # out of the worker's session and group
    time.sleep(0.01)
print(pid if os.getsid(pid) == pid else 'no-setsid')
"""


@pytest.mark.parametrize("launcher", ["spawn", "zygote"])
def test_a_clone_parent_sibling_dies_with_its_context(tmp_path, launcher):
    if os.uname().machine not in ("x86_64", "aarch64"):
        pytest.skip("clone syscall number unknown here")
    with CodeInterpreter(cwd=str(tmp_path), launcher=SpawnLauncher() if launcher == "spawn" else None) as ci:
        ctx = ci.create_context()
        sibling = int(ci.run_code(CLONE_PARENT_ESCAPE, context=ctx).stdout)
        assert process_exists(sibling)
        ci.delete_context(ctx)
        assert wait_until(lambda: not process_exists(sibling), timeout=10)


def test_restart_at_the_process_limit_retires_the_old_worker_first(tmp_path):
    """A context whose new worker cannot start beside the old one (a process
    limit) is still restarted: the old worker goes first."""
    from interp.errors import InterpError as _InterpError
    from interp.process import ZygoteLauncher

    class Crowded(ZygoteLauncher):
        """Refuses a second worker while one is alive, like a process limit."""
        alive = None

        def start(self, *args, **kwargs):
            if Crowded.alive is not None and Crowded.alive.alive():
                raise OSError(11, "Resource temporarily unavailable (a process limit)")
            Crowded.alive = super().start(*args, **kwargs)
            return Crowded.alive

    launcher = Crowded()
    try:
        with CodeInterpreter(cwd=str(tmp_path), launcher=launcher) as ci:
            ctx = ci.create_context()
            ci.run_code("kept = 1", context=ctx)
            ci.restart_context(ctx)
            assert ci.run_code("kept", context=ctx).error.name == "NameError"
            assert ci.run_code("print('fresh')", context=ctx).stdout == "fresh\n"
            with pytest.raises(_InterpError):
                ci.create_context()  # the limit holds for a second context
    finally:
        launcher.close()
