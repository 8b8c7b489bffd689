"""Shared pieces of the benchmark suite: settings, figures, statistics and
the few /proc readings (PSS, threads, fds, processes) the figures need.

Stdlib only; Linux for the /proc readings.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

PYTHON = sys.executable
MiB = 1024.0 * 1024.0


@dataclass
class Settings:
    """How much to measure. ``count(full, quick)`` scales repetition counts."""

    quick: bool = False
    repeat_scale: float = 1.0
    peer: bool = True

    def count(self, full: int, quick: Optional[int] = None, minimum: int = 1) -> int:
        base = quick if (self.quick and quick is not None) else full
        return max(minimum, round(base * self.repeat_scale))

    def seconds(self, full: float, quick: Optional[float] = None) -> float:
        """A measuring duration (throughput windows), scaled like counts."""
        base = quick if (self.quick and quick is not None) else full
        return max(0.05, base * min(1.0, self.repeat_scale))


@dataclass
class Target:
    """``limit`` on the median (kind "value") or on median / floor median
    (kind "floor_ratio"); ``text`` is what the table shows."""

    kind: str
    limit: float
    text: str


@dataclass
class Figure:
    key: str
    label: str
    unit: str  # "s", "MiB", "count", "runs/s"
    samples: List[float]
    group: str  # "interp", "floor" or "jupyter"
    floor: Optional[str] = None  # key of the floor figure for the ratio column
    peer: Optional[str] = None  # key of the Jupyter figure for the ratio column
    targets: List[Target] = field(default_factory=list)
    note: str = ""
    short: str = ""  # how ratio columns name this figure when it is the reference

    @property
    def stats(self) -> Dict[str, float]:
        return summary(self.samples)


class Results:
    """Every figure of one run, plus lines for what was skipped or failed."""

    def __init__(self) -> None:
        self.figures: Dict[str, Figure] = {}
        self.skipped: List[str] = []
        self.errors: List[str] = []
        self.notes: List[str] = []

    def add(self, figure: Figure) -> Figure:
        if not figure.samples:
            raise ValueError("figure %s has no samples" % figure.key)
        self.figures[figure.key] = figure
        return figure

    def add_floor(self, key: str, label: str, short: str, samples: List[float],
                  unit: str = "s") -> Figure:
        """Add a floor figure, or add samples to it if another benchmark of
        this run already measured the same floor."""
        if key in self.figures:
            self.figures[key].samples.extend(samples)
            return self.figures[key]
        return self.add(Figure(key, label, unit, list(samples), "floor", short=short))

    def median(self, key: Optional[str]) -> Optional[float]:
        figure = self.figures.get(key) if key else None
        return figure.stats["median"] if figure else None

    def ratio(self, figure: Figure, other_key: Optional[str]) -> Optional[float]:
        other = self.median(other_key)
        if other is None or other == 0:
            return None
        return figure.stats["median"] / other

    def verdict(self, figure: Figure) -> Optional[bool]:
        """True (PASS) / False (MISS) against every target; None without targets
        or when a ratio target's floor was not measured."""
        if not figure.targets:
            return None
        median = figure.stats["median"]
        for target in figure.targets:
            if target.kind == "value":
                value: Optional[float] = median
            else:
                value = self.ratio(figure, figure.floor)
            if value is None:
                return None
            if value > target.limit:
                return False
        return True


def summary(samples: Sequence[float]) -> Dict[str, float]:
    """median, p10, p90 (inclusive deciles), min, max and n."""
    ordered = sorted(samples)
    if len(ordered) >= 2:
        deciles = statistics.quantiles(ordered, n=10, method="inclusive")
        p10, p90 = deciles[0], deciles[8]
    else:
        p10 = p90 = ordered[0]
    return {"median": statistics.median(ordered), "p10": p10, "p90": p90,
            "min": ordered[0], "max": ordered[-1], "n": len(ordered)}


def timed(fn: Callable[[], object], repeat: int) -> List[float]:
    samples = []
    clock = time.perf_counter
    for _ in range(repeat):
        start = clock()
        fn()
        samples.append(clock() - start)
    return samples


def chunks(total: int, parts: int) -> List[int]:
    """Split ``total`` repetitions into ``parts`` near-equal blocks (for
    interleaving a figure with its floor, so both see the same noise)."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# -- /proc readings ---------------------------------------------------------

def smaps_rollup(pid: int) -> Dict[str, float]:
    """``{"rss": MiB, "pss": MiB}`` of a live process, from /proc/PID/smaps_rollup."""
    values = {}
    with open("/proc/%d/smaps_rollup" % pid) as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss"):
                values[name.lower()] = int(rest.split()[0]) * 1024 / MiB
    return values


def thread_count(pid: Optional[int] = None) -> int:
    """Native threads of a process (default: this one), from /proc/PID/status."""
    with open("/proc/%s/status" % (pid or "self")) as handle:
        for line in handle:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise RuntimeError("no Threads: line in /proc/%s/status" % pid)


def open_fds() -> List[int]:
    return sorted(int(name) for name in os.listdir("/proc/self/fd"))


def process_cost(pid: int) -> Tuple[int, float]:
    """The minor page faults (``/proc/PID/stat`` field 10) and CPU seconds
    (``/proc/PID/schedstat``, in ns: finer than utime/stime's ticks) of a
    process so far; (0, 0.0) if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open("/proc/%d/schedstat" % pid) as handle:
            cpu_ns = int(handle.read().split()[0])
    except (OSError, IndexError, ValueError):
        return 0, 0.0
    return int(fields[7]), cpu_ns / 1e9


def process_exists(pid: int) -> bool:
    """True while ``pid`` is a process (a zombie counts: nobody reaped it)."""
    return os.path.exists("/proc/%d" % pid)


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parents() -> Dict[int, int]:
    """pid -> parent pid of every process (zombies included)."""
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as handle:
                stat = handle.read()
        except OSError:
            continue
        parents[int(name)] = int(stat[stat.rfind(")") + 2:].split()[1])
    return parents


def descendants(pid: Optional[int] = None) -> List[int]:
    """Every process below ``pid`` (default: this one) in the process tree."""
    root = pid or os.getpid()
    children: Dict[int, List[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return sorted(found)


def human_count(n: int) -> str:
    """100000 -> "100k", 1000000 -> "1M"."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= size and n % size == 0:
            return "%d%s" % (n // size, suffix)
    return str(n)


def read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError("pipe closed after %d of %d bytes" % (len(data), size))
        data += chunk
    return data


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Close a helper child's pipes, give it ``timeout`` to exit, then kill it; reap it."""
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
