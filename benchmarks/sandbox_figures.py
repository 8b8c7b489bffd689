"""The sandbox figures, each beside its floors measured in the same
run: ``bwrap ... true`` (the sandbox alone), ``bwrap ... python -c
pass`` (the sandbox and a Python start) and a fork of a warmed process. The
cold start and the warm start (``Sandbox(prestart=1)``: a sandbox started and
sealed ahead) both stand against ``bwrap ... python -c pass``.

Skipped with a line in the table where bubblewrap cannot run.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from typing import List

from interp import CodeInterpreter
from interp.errors import SandboxUnavailableError
from interp.sandbox import Sandbox

from . import floors
from .common import PYTHON, Figure, Results, Settings, Target, chunks, timed

MS = 1e-3


def _check(result, what: str) -> None:
    if result.error is not None:
        raise RuntimeError("%s failed in the sandbox: %s: %s" % (what, result.error.name, result.error.value))


def _bwrap_floor(argv: List[str], workspace: str) -> float:
    """Run ``argv`` inside the same bwrap command line a sandbox uses, to its exit."""
    command = Sandbox(workspace).command(argv)
    start = time.perf_counter()
    subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def sandbox(results: Results, settings: Settings, peer) -> None:
    """Sandboxed interpreter start to first run done; create_context + first
    run inside a running sandbox; the round trip sandboxed and not."""
    try:
        Sandbox().find_bwrap()
    except SandboxUnavailableError as exc:
        results.skipped.append("sandbox: skipped: %s" % exc)
        return
    n = settings.count(30, 10, minimum=3)
    with tempfile.TemporaryDirectory(prefix="interp-bench-") as workspace:
        true_s, python_s, start_s = [], [], []
        _bwrap_floor(["true"], workspace)  # page in bwrap and the Python installation
        for _ in range(n):
            true_s.append(_bwrap_floor(["true"], workspace))
            python_s.append(_bwrap_floor([PYTHON, "-c", "pass"], workspace))
            start = time.perf_counter()
            ci = CodeInterpreter(sandbox=Sandbox(workspace))
            try:
                _check(ci.run_code("x=1"), "x=1")
                start_s.append(time.perf_counter() - start)
            finally:
                ci.close()
        results.add_floor("floor.bwrap_true", "bwrap ... true (the sandbox alone)", "bwrap", true_s)
        results.add_floor("floor.bwrap_python", "bwrap ... python -c pass", "bwrap+py", python_s)
        results.add(Figure("sandbox.start", "sandboxed interpreter start to first run done (cold)", "s",
                           start_s, "interp", floor="floor.bwrap_python",
                           note="cloud: Daytona ~110 ms, E2B ~440 ms create-to-first-command"))
        warm_s = _warm_starts(workspace, n)
        results.add(Figure("sandbox.warm_start", "sandboxed interpreter start to first run done, "
                           "Sandbox(prestart=1)", "s", warm_s, "interp", floor="floor.bwrap_python",
                           targets=[Target("value", 60 * MS, "<=60ms")],
                           note="a sandbox started and sealed ahead is handed out; the next is started behind"))

        m = settings.count(100, 20, minimum=3)
        fork_s, create_s = [], []
        rounds = settings.count(2000, 300, minimum=10)
        plain_s, boxed_s = [], []
        with floors.ForkServer() as fork, CodeInterpreter(sandbox=Sandbox(workspace)) as boxed, \
                CodeInterpreter(workspace) as plain:
            for _ in range(3):
                fork.once()
                boxed.delete_context(_create_and_run(boxed))
            for _ in range(m):
                fork_s.append(fork.once())
                start = time.perf_counter()
                ctx = _create_and_run(boxed)
                create_s.append(time.perf_counter() - start)
                boxed.delete_context(ctx)
            _check(boxed.run_code("x=1"), "x=1")
            _check(plain.run_code("x=1"), "x=1")
            timed(lambda: boxed.run_code("x=1"), min(50, rounds))
            timed(lambda: plain.run_code("x=1"), min(50, rounds))
            for block in chunks(rounds, 10):  # interleaved, so both see the same noise
                plain_s += timed(lambda: plain.run_code("x=1"), block)
                boxed_s += timed(lambda: boxed.run_code("x=1"), block)
    results.add_floor("floor.fork", "fork a warmed process until it answers", "fork", fork_s)
    results.add(Figure("sandbox.create", "sandboxed create_context + first run", "s", create_s, "interp",
                       floor="floor.fork", targets=[Target("value", 5 * MS, "<=5ms")]))
    results.add_floor("floor.round_trip_plain", "run_code('x=1') round trip, not sandboxed", "plain", plain_s)
    results.add(Figure("sandbox.round_trip", "sandboxed run_code('x=1') round trip", "s", boxed_s, "interp",
                       floor="floor.round_trip_plain", targets=[Target("floor_ratio", 1.1, "<=1.1x")]))


def _warm_starts(workspace: str, n: int) -> List[float]:
    """Start to first run of interpreters on ``Sandbox(workspace, prestart=1)``,
    each once the warm sandbox behind the previous one is ready."""
    from interp import _sandbox_launcher as process

    times: List[float] = []
    try:
        key = Sandbox(workspace, prestart=1).config_key()
        CodeInterpreter(sandbox=Sandbox(workspace, prestart=1)).close()  # asks for the first warm one
        for _ in range(n):
            give_up_at = time.monotonic() + 60
            while not process._warm._ready.get(key) and time.monotonic() < give_up_at:
                time.sleep(0.01)
            start = time.perf_counter()
            ci = CodeInterpreter(sandbox=Sandbox(workspace, prestart=1))
            try:
                _check(ci.run_code("x=1"), "x=1")
                times.append(time.perf_counter() - start)
            finally:
                ci.close()
    finally:
        process._warm.close()
    return times


def _create_and_run(ci: CodeInterpreter):
    ctx = ci.create_context()
    _check(ci.run_code("x=1", context=ctx), "x=1")
    return ctx
