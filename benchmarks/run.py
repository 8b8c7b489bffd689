"""interp benchmarks, printed beside floors measured in the same run.

Run from the repository root: ``python3 -m benchmarks`` (``--quick`` for a
short run, ``--json FILE`` to save the figures). Absolute times drift on a
shared machine; compare the ratios, which come from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import code
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from interp import AsyncCodeInterpreter, CodeInterpreter  # noqa: E402

ECHO_CHILD = (
    "import os, sys\n"
    "r, w = sys.stdin.fileno(), sys.stdout.fileno()\n"
    "while True:\n"
    "    data = os.read(r, 65536)\n"
    "    if not data:\n"
    "        break\n"
    "    os.write(w, data)\n"
)


def timed(fn: Callable[[], object], repeat: int) -> List[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def summary(samples: List[float]) -> Dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"median": statistics.median(ordered), "p10": pick(0.1), "p90": pick(0.9), "n": len(ordered)}


def bench_pipe_echo(repeat: int) -> List[float]:
    """Floor: one small message to a child Python process and back over pipes."""
    child = subprocess.Popen([sys.executable, "-I", "-S", "-c", ECHO_CHILD],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    w, r = child.stdin.fileno(), child.stdout.fileno()
    message = b'{"t":"run","code":"x=1"}'

    def once() -> None:
        os.write(w, message)
        os.read(r, 65536)

    try:
        timed(once, 50)
        return timed(once, repeat)
    finally:
        child.stdin.close()
        child.wait()


def bench_in_process(repeat: int) -> List[float]:
    """Floor: code.InteractiveInterpreter in this process running the same code."""
    interpreter = code.InteractiveInterpreter({})
    return timed(lambda: interpreter.runcode(compile("x=1", "<bench>", "exec")), repeat)


def bench_round_trip(repeat: int) -> List[float]:
    with CodeInterpreter() as ci:
        ci.run_code("x=1")
        timed(lambda: ci.run_code("x=1"), 50)
        return timed(lambda: ci.run_code("x=1"), repeat)


def bench_async_round_trip(repeat: int) -> List[float]:
    async def main() -> List[float]:
        async with AsyncCodeInterpreter() as ci:
            samples = []
            for i in range(repeat + 50):
                start = time.perf_counter()
                await ci.run_code("x=1")
                samples.append(time.perf_counter() - start)
            return samples[50:]
    return asyncio.run(main())


def bench_create_first_run(repeat: int) -> List[float]:
    with CodeInterpreter() as ci:
        def once() -> None:
            ctx = ci.create_context()
            ci.run_code("x=1", context=ctx)
        samples = timed(once, repeat)
    return samples


def bench_spawn_floor(repeat: int) -> List[float]:
    """Floor: start `python` (with site, as workers do) until it answers on a pipe."""
    def once() -> None:
        proc = subprocess.Popen([sys.executable, "-c", "print(1)"], stdout=subprocess.PIPE)
        proc.stdout.read()
        proc.wait()
    return timed(once, repeat)


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    n_rt = 300 if args.quick else 2000
    n_create = 20 if args.quick else 100
    rows = [
        ("pipe echo round trip (floor)", bench_pipe_echo(n_rt)),
        ("in-process InteractiveInterpreter x=1 (floor)", bench_in_process(n_rt)),
        ("interp run_code('x=1') round trip", bench_round_trip(n_rt)),
        ("interp async run_code('x=1') round trip", bench_async_round_trip(n_rt)),
        ("python start until it answers (floor)", bench_spawn_floor(n_create)),
        ("interp create_context + first run", bench_create_first_run(n_create)),
    ]
    figures = {name: summary(samples) for name, samples in rows}
    echo = figures["pipe echo round trip (floor)"]["median"]
    spawn = figures["python start until it answers (floor)"]["median"]
    print("%-48s %10s %10s %10s  %s" % ("benchmark", "median", "p10", "p90", "ratio"))
    for name, stats in figures.items():
        ratio = ""
        if name.startswith(("interp run_code", "interp async")):
            ratio = "%.1fx pipe echo" % (stats["median"] / echo)
        elif name.startswith("interp create"):
            ratio = "%.2fx python start" % (stats["median"] / spawn)
        print("%-48s %8.1fus %8.1fus %8.1fus  %s" % (
            name, stats["median"] * 1e6, stats["p10"] * 1e6, stats["p90"] * 1e6, ratio))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
