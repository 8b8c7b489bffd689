"""The interp figures, each measured beside its floor (and the
Jupyter peer when there is one).

Every benchmark is a function ``(results, settings, peer)``; ``peer`` is a
:class:`benchmarks.jupyter_peer.JupyterPeer` or None. They only use the
public API (``CodeInterpreter``, ``AsyncCodeInterpreter``), so they measure
whatever the engine currently does.
"""

from __future__ import annotations

import asyncio
import functools
import os
import resource
import time
from typing import Callable, List

from interp import AsyncCodeInterpreter, CodeInterpreter, InterpTimeoutError, process

from . import floors
from .sandbox_figures import sandbox
from .remote_figures import remote
from .common import (Figure, Results, Settings, Target, chunks, descendants, group_exists, human_count,
                     log, open_fds, process_cost, process_exists, smaps_rollup, thread_count, timed)

US = 1e-6
MS = 1e-3

SLEEP_CODE = "import time\ntime.sleep(60)"
SWALLOW_CODE = ("import time\n"
                "while True:\n"
                "    try:\n"
                "        time.sleep(60)\n"
                "    except KeyboardInterrupt:\n"
                "        pass\n")
PID_CODE = "import os; print(os.getpid())"
TICKER_CODE = "import time\nfor i in range(%d):\n    print(time.perf_counter())\n    time.sleep(0.01)\n"
#: Timeout used by the timeout-recovery figures, and the grace period of the kill case.
RUN_TIMEOUT = 0.05
GRACE_PERIOD = 0.2


def _check(result, what: str) -> None:
    if result.error is not None:
        raise RuntimeError("%s failed in the worker: %s: %s" % (what, result.error.name, result.error.value))


def _peer(results: Results, peer, key: str, label: str, unit: str,
          measure: Callable[[], List[float]]) -> None:
    """Measure one Jupyter figure; a failure is reported, not fatal."""
    if peer is None:
        return
    log("  jupyter: %s" % label)
    try:
        samples = measure()
    except Exception as exc:
        results.errors.append("jupyter %s: %s: %s" % (key, type(exc).__name__, exc))
        return
    results.add(Figure(key, label, unit, samples, "jupyter", short="jupyter"))


# -- 1. round trip ------------------------------------------------------------

def round_trip(results: Results, settings: Settings, peer) -> None:
    """run_code("x=1") on a warm context, sync and async, interleaved with
    the pipe echo and in-process floors."""
    n = settings.count(2000, 300, minimum=10)
    echo_s: List[float] = []
    inproc_s: List[float] = []
    sync_s: List[float] = []
    async_s: List[float] = []
    in_process = floors.in_process_runner()
    loop = asyncio.new_event_loop()
    aci = AsyncCodeInterpreter()

    async def async_block(count: int) -> List[float]:
        samples = []
        clock = time.perf_counter
        for _ in range(count):
            start = clock()
            await aci.run_code("x=1")
            samples.append(clock() - start)
        return samples

    try:
        with floors.EchoChild() as echo, CodeInterpreter() as ci:
            _check(ci.run_code("x=1"), "x=1")
            _check(loop.run_until_complete(aci.run_code("x=1")), "async x=1")
            warm = min(50, n)
            timed(echo.once, warm)
            timed(lambda: ci.run_code("x=1"), warm)
            loop.run_until_complete(async_block(warm))
            for block in chunks(n, 10):
                echo_s += [echo.once() for _ in range(block)]
                inproc_s += [in_process() for _ in range(block)]
                sync_s += timed(lambda: ci.run_code("x=1"), block)
                async_s += loop.run_until_complete(async_block(block))
    finally:
        try:
            loop.run_until_complete(aci.close())
        finally:
            loop.close()
    results.add_floor("floor.pipe_echo", "raw pipe echo round trip (2 processes)", "echo", echo_s)
    results.add_floor("floor.in_process", "in-process InteractiveInterpreter x=1", "in-proc", inproc_s)
    # issue 11: at most 4x what moving a command and running it cost at the least
    results.add_floor("floor.echo_plus_run", "pipe echo + in-process x=1 (the round trip's floor)",
                      "echo+run", [echo + run for echo, run in zip(echo_s, inproc_s)])
    targets = [Target("floor_ratio", 4.0, "<=4x")]
    results.add(Figure("round_trip.sync", "run_code('x=1') round trip", "s", sync_s, "interp",
                       floor="floor.echo_plus_run", peer="jupyter.round_trip", targets=targets))
    results.add(Figure("round_trip.async", "async run_code('x=1') round trip", "s", async_s, "interp",
                       floor="floor.pipe_echo", peer="jupyter.round_trip"))
    _peer(results, peer, "jupyter.round_trip", "jupyter execute('x=1') round trip", "s",
          lambda: peer.round_trip(settings.count(200, 30, minimum=3)))


# -- 2. create + first run ------------------------------------------------------

def create(results: Results, settings: Settings, peer) -> None:
    """create_context() + first run_code("x=1"), one at a time and in a burst."""
    n = settings.count(100, 20, minimum=3)
    fork_s: List[float] = []
    start_s: List[float] = []
    one_s: List[float] = []
    with floors.ForkServer() as fork, CodeInterpreter() as ci:
        for _ in range(min(3, n)):  # warm up whatever the launcher keeps
            fork.once()
            ci.delete_context(_create_and_run(ci)[0])
        for i in range(n):
            fork_s.append(fork.once())
            if i % 2 == 0:
                start_s.append(floors.python_start())
            start = time.perf_counter()
            ctx, _ = _create_and_run(ci)
            one_s.append(time.perf_counter() - start)
            ci.delete_context(ctx)

        size = max(2, round(100 * min(1.0, settings.repeat_scale)))
        burst_s: List[float] = []
        for _ in range(settings.count(3, 1)):
            start = time.perf_counter()
            contexts = [ci.create_context() for _ in range(size)]
            for ctx in contexts:
                _check(ci.run_code("x=1", context=ctx), "x=1")
            burst_s.append(time.perf_counter() - start)
            for ctx in contexts:
                ci.delete_context(ctx)
    results.add_floor("floor.fork", "fork a warmed process until it answers", "fork", fork_s)
    results.add_floor("floor.python_start", "start python (with site) until it answers", "py-start",
                      start_s)
    target = [Target("value", 3 * MS, "<=3ms")]
    results.add(Figure("create.one", "create_context + first run, one at a time", "s", one_s, "interp",
                       floor="floor.fork", peer="jupyter.start", targets=target))
    results.add(Figure("create.burst_each", "create + first run, %d in a burst, per context" % size,
                       "s", [s / size for s in burst_s], "interp", floor="floor.fork",
                       peer="jupyter.start", targets=target))
    results.add(Figure("create.burst_total", "create + first run, %d in a burst, all done" % size,
                       "s", burst_s, "interp"))
    _peer(results, peer, "jupyter.start", "jupyter start kernel + first execute", "s",
          lambda: peer.start_first_run(settings.count(5, 2)))


def _create_and_run(ci: CodeInterpreter):
    ctx = ci.create_context()
    result = ci.run_code("x=1", context=ctx)
    _check(result, "x=1")
    return ctx, result


# -- 3. streaming ---------------------------------------------------------------

def streaming(results: Results, settings: Settings, peer) -> None:
    """N print(i) lines delivered through on_stdout, beside a bare child
    printing the same lines into a pipe."""
    plan = [(100_000, settings.count(10, 3), "100k"), (1_000_000, settings.count(3, 1), "1M")]
    with CodeInterpreter() as ci:
        _check(ci.run_code("x=1"), "x=1")
        for lines, reps, name in plan:
            if lines > 100_000 and settings.quick:
                results.skipped.append("streaming %s lines: skipped in --quick" % name)
                continue
            lines = max(100, int(lines * min(1.0, settings.repeat_scale)))
            shown = human_count(lines)
            code = "for i in range(%d): print(i)" % lines
            floor_s: List[float] = []
            interp_s: List[float] = []
            for _ in range(reps):
                floor_s.append(floors.bare_child_lines(lines))
                count = [0]

                def on_stdout(msg, count=count) -> None:
                    count[0] += 1

                start = time.perf_counter()
                result = ci.run_code(code, on_stdout=on_stdout)
                interp_s.append(time.perf_counter() - start)
                _check(result, "print loop")
                if count[0] != lines:
                    raise RuntimeError("on_stdout got %d lines, expected %d" % (count[0], lines))
            key = "floor.bare_child_%s" % name
            results.add_floor(key, "bare python -I -S child prints %s lines to a pipe" % shown,
                              "bare", floor_s)
            targets = [Target("floor_ratio", 3.0, "<=3x")] if lines <= 100_000 else []  # issue 11
            results.add(Figure("streaming.%s" % name, "%s print(i) lines via on_stdout" % shown, "s",
                               interp_s, "interp", floor=key,
                               peer="jupyter.lines_100k" if name == "100k" else None, targets=targets))
    lines = max(100, int(100_000 * min(1.0, settings.repeat_scale)))
    _peer(results, peer, "jupyter.lines_100k", "jupyter %s print(i) lines via iopub" % human_count(lines),
          "s", lambda: peer.lines(lines, settings.count(3, 1)))


def latency(results: Results, settings: Settings, peer) -> None:
    """Time from print() in the worker to on_stdout in the parent while a run
    prints a line every 10 ms (both sides read CLOCK_MONOTONIC)."""
    lines = settings.count(300, 50, minimum=5)
    samples: List[float] = []

    def on_stdout(msg) -> None:
        samples.append(time.perf_counter() - float(msg.output))

    floor_s = floors.ticker_latency(lines)
    with CodeInterpreter() as ci:
        _check(ci.run_code("x=1"), "x=1")
        _check(ci.run_code(TICKER_CODE % lines, on_stdout=on_stdout), "ticker")
    if len(samples) != lines:
        raise RuntimeError("on_stdout got %d lines, expected %d" % (len(samples), lines))
    results.add_floor("floor.line_latency", "bare child print(flush) -> parent read", "pipe", floor_s)
    results.add(Figure("latency.line", "line latency, a print every 10 ms", "s", samples, "interp",
                       floor="floor.line_latency", peer="jupyter.line_latency",
                       targets=[Target("value", 10 * MS, "<=10ms")]))
    _peer(results, peer, "jupyter.line_latency", "jupyter line latency, a print every 10 ms", "s",
          lambda: peer.latency(settings.count(300, 50, minimum=5)))


# -- 4. timeout recovery ----------------------------------------------------------

def _recovery_times(ci: CodeInterpreter, code: str, n: int, floor, floor_samples: List[float],
                    restarted: bool) -> List[float]:
    """Time from the deadline of ``code`` (which must time out, restarting the
    context or not as ``restarted`` says) to the next run done; measure the
    floor's ``once()`` beside each."""
    _check(ci.run_code("x=1"), "x=1")
    samples = []
    for _ in range(n):
        floor_samples.append(floor.once())
        start = time.perf_counter()
        try:
            ci.run_code(code, timeout=RUN_TIMEOUT)
        except InterpTimeoutError as exc:
            if exc.restarted != restarted:
                raise RuntimeError("%r timed out with restarted=%s, expected %s"
                                   % (code, exc.restarted, restarted)) from None
        else:
            raise RuntimeError("%r returned without InterpTimeoutError" % code)
        _check(ci.run_code("x=1"), "x=1")
        samples.append(time.perf_counter() - start - RUN_TIMEOUT)
    return samples


def timeout(results: Results, settings: Settings, peer) -> None:
    """From the deadline to the next run done: interrupted (time.sleep), and
    killed + respawned (code that swallows KeyboardInterrupt), the latter
    measured after the grace period."""
    sig_s: List[float] = []
    with floors.SigintChild() as sig, CodeInterpreter() as ci:
        int_s = _recovery_times(ci, SLEEP_CODE, settings.count(50, 10), sig, sig_s, restarted=False)
    fork_s: List[float] = []
    with floors.ForkServer() as fork, CodeInterpreter(grace_period=GRACE_PERIOD) as ci:
        kill_s = [t - GRACE_PERIOD for t in
                  _recovery_times(ci, SWALLOW_CODE, settings.count(30, 5), fork, fork_s, restarted=True)]

    results.add_floor("floor.sigint", "SIGINT a sleeping child until it answers", "sigint", sig_s)
    results.add_floor("floor.fork", "fork a warmed process until it answers", "fork", fork_s)
    results.add(Figure("timeout.interrupt", "timeout (sleep) -> next run done, after deadline", "s",
                       int_s, "interp", floor="floor.sigint", peer="jupyter.interrupt",
                       targets=[Target("value", 5 * MS, "<=5ms")]))
    results.add(Figure("timeout.kill", "timeout (swallows ^C) -> kill+respawn+run, after grace",
                       "s", kill_s, "interp", floor="floor.fork", peer="jupyter.restart",
                       targets=[Target("value", 10 * MS, "<=10ms")]))
    _peer(results, peer, "jupyter.interrupt", "jupyter interrupt_kernel -> next execute done", "s",
          lambda: peer.interrupt(settings.count(10, 3), RUN_TIMEOUT))
    _peer(results, peer, "jupyter.restart", "jupyter restart_kernel -> next execute done", "s",
          lambda: peer.restart(settings.count(5, 2)))


# -- 5. memory ---------------------------------------------------------------------

def memory(results: Results, settings: Settings, peer) -> None:
    """RSS and PSS of each idle context with 100 alive; the parent's threads."""
    count = max(2, round(100 * min(1.0, settings.repeat_scale)))
    with CodeInterpreter() as ci:
        first = ci.create_context()
        _check(ci.run_code("x=1", context=first), "x=1")
        threads_one = thread_count()
        contexts = [first] + [ci.create_context() for _ in range(count - 1)]
        pids = [_worker_pid(ci, ctx) for ctx in contexts]
        time.sleep(0.3)
        readings = [smaps_rollup(pid) for pid in pids]
        threads_many = thread_count()
        helpers = [pid for pid in descendants() if pid not in set(pids) and process_exists(pid)]
        helper_pss = sum(_pss_or_zero(pid) for pid in helpers)
    floor_pss, floor_rss = floors.idle_python_pss(count)
    results.add_floor("floor.idle_pss", "idle python process, PSS (%d alive)" % count, "idle-py",
                      floor_pss, unit="MiB")
    results.add_floor("floor.idle_rss", "idle python process, RSS (%d alive)" % count, "idle-py",
                      floor_rss, unit="MiB")
    results.add(Figure("memory.pss", "idle context PSS, %d alive" % count, "MiB",
                       [r["pss"] for r in readings], "interp", floor="floor.idle_pss",
                       peer="jupyter.pss", targets=[Target("value", 4.0, "<=4MiB")]))
    results.add(Figure("memory.rss", "idle context RSS, %d alive" % count, "MiB",
                       [r["rss"] for r in readings], "interp", floor="floor.idle_rss",
                       peer="jupyter.rss"))
    results.add(Figure("memory.helpers_pss", "PSS of %d non-worker helper process(es)" % len(helpers),
                       "MiB", [helper_pss], "interp",
                       note="processes below the parent that are not workers (e.g. a zygote)"))
    results.add(Figure("memory.threads", "parent threads, %d contexts alive" % count, "count",
                       [threads_many], "interp"))
    results.add(Figure("memory.thread_growth", "parent threads added, 1 -> %d contexts" % count,
                       "count", [threads_many - threads_one], "interp",
                       targets=[Target("value", 0, "0 (flat)")]))
    if peer is not None:
        log("  jupyter: PSS per kernel")
        try:
            readings = peer.memory(settings.count(4, 2))
        except Exception as exc:
            results.errors.append("jupyter memory: %s: %s" % (type(exc).__name__, exc))
        else:
            alive = len(readings)
            results.add(Figure("jupyter.pss", "jupyter idle kernel PSS, %d alive" % alive, "MiB",
                               [r["pss"] for r in readings], "jupyter", short="jupyter"))
            results.add(Figure("jupyter.rss", "jupyter idle kernel RSS, %d alive" % alive, "MiB",
                               [r["rss"] for r in readings], "jupyter", short="jupyter"))


def _pss_or_zero(pid: int) -> float:
    try:
        return smaps_rollup(pid)["pss"]
    except OSError:  # it exited meanwhile
        return 0.0


def _worker_pid(ci: CodeInterpreter, ctx) -> int:
    result = ci.run_code(PID_CODE, context=ctx)
    _check(result, "getpid")
    return int(result.stdout)


# -- 6. scale ------------------------------------------------------------------------

def scale(results: Results, settings: Settings, peer) -> None:
    """N contexts (1,000; 200 with --quick) created, each answers one run, all
    deleted: wall times, peak memory, threads, leftover processes and fds."""
    n = settings.count(1000, 200, minimum=2)
    _raise_fd_limit()
    # The shared launcher (a zygote and its pool of pre-forked workers) is
    # stopped before and after, so the leftover counts cover it too.
    launcher = process.default_launcher()
    launcher.close()
    threads_one = thread_count()
    fds_before = set(open_fds())
    procs_before = set(descendants())
    ci = CodeInterpreter()
    try:
        start = time.perf_counter()
        contexts = [ci.create_context() for _ in range(n)]
        pids = [_worker_pid(ci, ctx) for ctx in contexts]
        all_answered = time.perf_counter()
        costs = [process_cost(pid) for pid in pids]  # each worker's start and one run
        zygote = process_cost(launcher.helper_pids()[0])[1] if launcher.helper_pids() else 0.0
        alive = sum(1 for ctx in ci.list_contexts() if ctx.active)
        threads_many = thread_count()
        worker_pss = sum(_pss_or_zero(pid) for pid in pids)
        helper_pss = sum(_pss_or_zero(pid) for pid in set(descendants()) - set(pids))
        parent = smaps_rollup(os.getpid())

        deleting = time.perf_counter()
        for ctx in contexts:
            ci.delete_context(ctx)
        deleted = time.perf_counter()
    finally:
        ci.close()
        launcher.close()
    leftover_procs = sorted({pid for pid in pids if process_exists(pid) or group_exists(pid)}
                            | (set(descendants()) - procs_before))
    leftover_fds = sorted(set(open_fds()) - fds_before)
    if leftover_procs:
        time.sleep(1.0)
        still = [pid for pid in leftover_procs if process_exists(pid)]
        results.notes.append("scale: leftover processes right after delete: %s; %d still there 1 s later"
                             % (leftover_procs[:20], len(still)))
    if leftover_fds:
        results.notes.append("scale: leftover fds after delete: %s" % leftover_fds[:20])

    budget = 3.0 * n / 1000  # issue 11: 3 s for 1,000
    results.add(Figure("scale.create_run", "%d contexts created + one run each (wall)" % n, "s",
                       [all_answered - start], "interp",
                       targets=[Target("value", budget, "<=%gs" % budget)],
                       note="target 3 s per 1,000 contexts, scaled to %d" % n))
    results.add(Figure("scale.worker_faults", "page faults of a worker, started + one run", "count",
                       [faults for faults, _cpu in costs], "interp",
                       note="mostly copies of pages shared with the zygote: a stable measure of start-up work"))
    results.add(Figure("scale.worker_cpu", "CPU of a worker, started + one run", "s",
                       [cpu for _faults, cpu in costs], "interp"))
    results.add(Figure("scale.zygote_cpu", "zygote CPU per context (its start included)", "s",
                       [zygote / n], "interp"))
    results.add(Figure("scale.not_alive", "contexts not alive of %d" % n, "count", [n - alive], "interp",
                       targets=[Target("value", 0, "0")]))
    results.add(Figure("scale.delete", "delete %d contexts (wall)" % n, "s", [deleted - deleting], "interp"))
    results.add(Figure("scale.total", "create, run, delete %d contexts (wall)" % n, "s",
                       [deleted - start], "interp"))
    results.add(Figure("scale.peak_pss", "PSS of %d workers + helpers + parent, all alive" % n,
                       "MiB", [worker_pss + helper_pss + parent["pss"]], "interp"))
    results.add(Figure("scale.parent_rss", "parent RSS with %d contexts" % n, "MiB",
                       [parent["rss"]], "interp"))
    results.add(Figure("scale.thread_growth", "parent threads added, 1 -> %d contexts" % n, "count",
                       [threads_many - threads_one], "interp", targets=[Target("value", 0, "0 (flat)")]))
    results.add(Figure("scale.leftover_procs", "leftover processes after delete", "count",
                       [len(leftover_procs)], "interp", targets=[Target("value", 0, "0")]))
    results.add(Figure("scale.leftover_fds", "leftover fds after delete", "count",
                       [len(leftover_fds)], "interp", targets=[Target("value", 0, "0")]))


def _raise_fd_limit() -> None:
    """Each context holds a few fds in the parent: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


# -- 7. parallel throughput ------------------------------------------------------------

def parallel(results: Results, settings: Settings, peer) -> None:
    """Trivial runs per second across K contexts driven from K threads,
    beside K echo children driven the same way."""
    duration = settings.seconds(2.0, 0.5)
    reps = settings.count(3, 1)
    for k in (2, 8, 32):
        floor_s: List[float] = []
        interp_s: List[float] = []
        with CodeInterpreter() as ci:
            contexts = [ci.create_context() for _ in range(k)]
            for ctx in contexts:
                _check(ci.run_code("x=1", context=ctx), "x=1")
            calls = [functools.partial(ci.run_code, "x=1", context=ctx) for ctx in contexts]
            floors.drive_parallel(calls, min(0.2, duration))  # warm up
            for _ in range(reps):
                floor_s.append(floors.parallel_echo(k, duration))
                interp_s.append(floors.drive_parallel(calls, duration))
        key = "floor.parallel_echo_%d" % k
        results.add_floor(key, "pipe echoes/s, %d children x %d threads" % (k, k), "echo", floor_s,
                          unit="runs/s")
        results.add(Figure("parallel.%d" % k, "runs/s, %d contexts x %d threads" % (k, k), "runs/s",
                           interp_s, "interp", floor=key))


BENCHMARKS = {
    "round_trip": round_trip,
    "create": create,
    "streaming": streaming,
    "latency": latency,
    "timeout": timeout,
    "memory": memory,
    "scale": scale,
    "parallel": parallel,
    "sandbox": sandbox,
    "remote": remote,
}
