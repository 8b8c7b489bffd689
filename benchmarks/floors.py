"""The floors: what the same work costs with nothing but pipes, processes
and the interpreter itself. Each is measured in the same run as the interp
figure it sits beside (and interleaved with it where that is cheap), so the
ratio between them survives a noisy machine.

Helpers are plain classes with ``once()`` returning seconds, and ``close()``
(they are context managers) that reaps every process they started.
"""

from __future__ import annotations

import code
import os
import signal
import subprocess
import threading
import time
from typing import List, Tuple

from .common import PYTHON, read_exactly, smaps_rollup, stop_process

# A child that echoes whatever it reads, as fast as the pipes go.
ECHO_CHILD = """\
import os
while True:
    data = os.read(0, 65536)
    if not data:
        break
    os.write(1, data)
"""

# A warmed, single-threaded zygote: on each request byte it forks, and the
# fork answers on the pipe and exits; the zygote reaps it and waits again.
# It imports what a worker typically has loaded so the fork copies as much.
FORK_SERVER = """\
import os, sys
import code, codeop, io, json, linecache, signal, threading, traceback, types
while True:
    if not os.read(0, 1):
        break
    pid = os.fork()
    if pid == 0:
        os.write(1, b"k")
        os._exit(0)
    os.waitpid(pid, 0)
"""

# A child that sleeps on request and answers when SIGINT interrupts it.
SIGINT_CHILD = """\
import os, time
while True:
    if not os.read(0, 1):
        break
    try:
        os.write(1, b"s")
        time.sleep(60)
    except KeyboardInterrupt:
        os.write(1, b"i")
"""

# A bare child printing a timestamp every 10 ms, flushed, for line latency.
TICKER_CHILD = """\
import sys, time
for i in range(int(sys.argv[1])):
    print(time.perf_counter(), flush=True)
    time.sleep(0.01)
"""

ROUND_TRIP_MESSAGE = b'{"t":"run","code":"x=1"}'


class _Child:
    """A helper child on a pair of pipes (stdin / stdout)."""

    args: List[str] = []

    def __init__(self) -> None:
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.w = self.proc.stdin.fileno()
        self.r = self.proc.stdout.fileno()

    def close(self) -> None:
        stop_process(self.proc)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class EchoChild(_Child):
    """Floor of the round trip: a small message to a Python child and back."""

    args = [PYTHON, "-I", "-S", "-c", ECHO_CHILD]

    def once(self) -> float:
        start = time.perf_counter()
        os.write(self.w, ROUND_TRIP_MESSAGE)
        read_exactly(self.r, len(ROUND_TRIP_MESSAGE))
        return time.perf_counter() - start


class ForkServer(_Child):
    """Floor of starting a context: fork a warmed process until it answers."""

    args = [PYTHON, "-c", FORK_SERVER]

    def once(self) -> float:
        start = time.perf_counter()
        os.write(self.w, b"f")
        read_exactly(self.r, 1)
        return time.perf_counter() - start


class SigintChild(_Child):
    """Floor of interrupt recovery: SIGINT a sleeping child until it answers."""

    args = [PYTHON, "-I", "-S", "-c", SIGINT_CHILD]

    def once(self) -> float:
        os.write(self.w, b"g")
        read_exactly(self.r, 1)  # "s": about to sleep
        time.sleep(0.002)  # let it get into the sleep
        start = time.perf_counter()
        os.kill(self.proc.pid, signal.SIGINT)
        read_exactly(self.r, 1)  # "i"
        return time.perf_counter() - start


def in_process_runner():
    """Floor: ``code.InteractiveInterpreter`` in this process; returns a
    callable timing one ``runcode(compile("x=1"))``."""
    interpreter = code.InteractiveInterpreter({})

    def once() -> float:
        start = time.perf_counter()
        interpreter.runcode(compile("x=1", "<bench>", "exec"))
        return time.perf_counter() - start
    return once


def python_start() -> float:
    """Start ``python`` (with site, as workers run) until it answers on a pipe."""
    start = time.perf_counter()
    proc = subprocess.Popen([PYTHON, "-c", "print(1)"], stdout=subprocess.PIPE)
    try:
        proc.stdout.read(1)
        elapsed = time.perf_counter() - start
        proc.stdout.read()  # let it finish writing before its pipe closes
        return elapsed
    finally:
        stop_process(proc)


def bare_child_lines(lines: int) -> float:
    """``python -I -S`` printing ``lines`` lines block-buffered into a pipe that
    this process reads to the end (process start included)."""
    start = time.perf_counter()
    proc = subprocess.Popen([PYTHON, "-I", "-S", "-c", "for i in range(%d): print(i)" % lines],
                            stdout=subprocess.PIPE)
    fd = proc.stdout.fileno()
    while os.read(fd, 1 << 20):
        pass
    proc.wait()
    elapsed = time.perf_counter() - start
    proc.stdout.close()
    return elapsed


def ticker_latency(lines: int) -> List[float]:
    """A bare child prints a timestamp (flushed) every 10 ms; each sample is
    the time from its print to this process having read the line."""
    proc = subprocess.Popen([PYTHON, "-I", "-S", "-c", TICKER_CHILD, str(lines)],
                            stdout=subprocess.PIPE)
    samples: List[float] = []
    try:
        fd = proc.stdout.fileno()
        pending = b""
        while True:
            data = os.read(fd, 65536)
            now = time.perf_counter()
            if not data:
                break
            pending += data
            *complete, pending = pending.split(b"\n")
            samples.extend(now - float(line) for line in complete if line)
    finally:
        stop_process(proc)
    return samples


def idle_python_pss(count: int) -> Tuple[List[float], List[float]]:
    """PSS and RSS (MiB) of each of ``count`` idle ``python`` processes (with
    site, as workers run) alive at the same time."""
    procs: List[subprocess.Popen] = []
    try:
        for _ in range(count):
            procs.append(subprocess.Popen(
                [PYTHON, "-c", "import sys; print('r', flush=True); sys.stdin.read()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        for proc in procs:
            proc.stdout.readline()
        time.sleep(0.2)
        readings = [smaps_rollup(proc.pid) for proc in procs]
        return [r["pss"] for r in readings], [r["rss"] for r in readings]
    finally:
        for proc in procs:
            stop_process(proc)


def parallel_echo(threads: int, duration: float) -> float:
    """Round trips per second through ``threads`` echo children, each driven
    by its own thread for ``duration`` seconds."""
    children = []
    try:
        for _ in range(threads):
            children.append(EchoChild())
        return drive_parallel([child.once for child in children], duration)
    finally:
        for child in children:
            child.close()


def drive_parallel(calls, duration: float) -> float:
    """Call each of ``calls`` in a loop on its own thread for ``duration``
    seconds (after a common start); return completed calls per second."""
    barrier = threading.Barrier(len(calls) + 1)
    counts = [0] * len(calls)
    stop_at = [0.0]
    failures: List[BaseException] = []

    def loop(index: int) -> None:
        call = calls[index]
        try:
            barrier.wait()
            n = 0
            while time.perf_counter() < stop_at[0]:
                call()
                n += 1
            counts[index] = n
        except BaseException as exc:  # reported by the caller
            failures.append(exc)

    workers = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(len(calls))]
    for worker in workers:
        worker.start()
    start = time.perf_counter()
    stop_at[0] = start + duration
    barrier.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise failures[0]
    return sum(counts) / elapsed

