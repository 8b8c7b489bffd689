"""Soak: sustained load on interp, checking every line and watching for leaks.

    python3 -m benchmarks.soak                 # about a minute
    python3 -m benchmarks.soak --minutes 10    # longer
    python3 -m benchmarks.soak --threads 8 --contexts 4 --lines 20

Worker threads run numbered blocks of lines on shared contexts (each run also
sets a per-run environment variable and checks none leaked from another run)
and verify that every line arrives exactly once, in order, in the right
result. Every few seconds it prints the parent's fds, threads and RSS and the
run rate; at the end it checks that closing left no process or fd behind.
Exit status 1 on any lost, duplicated or misattributed line, or on a leak.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from interp import CodeInterpreter, process


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _children() -> List[int]:
    me = str(os.getpid())
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as handle:
                    if handle.read().rsplit(")", 1)[1].split()[1] == me:
                        found.append(int(name))
            except (OSError, IndexError):
                pass
    return found


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--contexts", type=int, default=4)
    parser.add_argument("--lines", type=int, default=20, help="lines printed by each run")
    args = parser.parse_args(argv)

    fds0, threads0 = _fds(), threading.active_count()
    ci = CodeInterpreter()
    contexts = [ci.create_context() for _ in range(args.contexts)]
    for ctx in contexts:
        ci.run_code("import os", context=ctx)
    deadline = time.monotonic() + args.minutes * 60
    counts = [0] * args.threads
    failures: List[str] = []

    def work(index: int) -> None:
        n = 0
        while time.monotonic() < deadline and not failures:
            ctx = contexts[(index + n) % len(contexts)]
            tag = "w%d-%d" % (index, n)
            got: List[str] = []
            code = ("for i in range(%d):\n    print(%r, i)\nprint('env', os.environ.get('SOAK_TAG'))"
                    % (args.lines, tag))
            result = ci.run_code(code, context=ctx, envs={"SOAK_TAG": tag}, on_stdout=lambda m: got.append(m.output),
                                 timeout=60)
            want = ["%s %d\n" % (tag, i) for i in range(args.lines)] + ["env %s\n" % tag]
            if got != want or result.stdout != "".join(want) or result.error is not None:
                failures.append("%s: got %r..., error %r" % (tag, got[:2], result.error))
            n += 1
            counts[index] = n

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(args.threads)]
    start = time.monotonic()
    for thread in workers:
        thread.start()
    print("%8s %10s %8s %6s %8s %9s" % ("seconds", "runs", "runs/s", "fds", "threads", "rss MiB"))
    last_runs, last_time = 0, start
    while any(thread.is_alive() for thread in workers):
        time.sleep(min(5.0, max(0.5, args.minutes * 6)))
        now, runs = time.monotonic(), sum(counts)
        print("%8.1f %10d %8.0f %6d %8d %9.1f" % (now - start, runs, (runs - last_runs) / (now - last_time),
                                                   _fds(), threading.active_count(), _rss_mib()), flush=True)
        last_runs, last_time = runs, now
    total = sum(counts)
    ci.close()
    process.default_launcher().close()  # the shared zygote and its pool too: nothing may remain
    leftover = _children()
    elapsed = time.monotonic() - start
    print("\n%d runs (%d lines checked) in %.1f s: %.0f runs/s across %d threads x %d contexts"
          % (total, total * (args.lines + 1), elapsed, total / elapsed, args.threads, args.contexts))
    fds1 = _fds()
    print("parent fds %d -> %d after close, threads %d -> %d, leftover processes %s"
          % (fds0, fds1, threads0, threading.active_count(), leftover or "none"))
    problems = failures[:5]
    if fds1 > fds0:
        problems.append("%d fds left open" % (fds1 - fds0))
    if leftover:
        problems.append("leftover processes: %s" % leftover)
    if threading.active_count() > threads0:
        problems.append("threads left running")
    for problem in problems:
        print("FAIL:", problem)
    print("soak: %s" % ("FAILED" if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
