"""``%time`` and ``%timeit``: the statement runs as lines of the caller's
cell (tracebacks quote the cell), timed as IPython times it and reported in
IPython's format."""

from __future__ import annotations

import ast
import gc
import itertools
import linecache
import math
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from .callers import Caller, UsageError, run_source


_micro: List[str] = []


def micro_sign() -> str:
    """The sign IPython's timing magics print for micro: the Greek mu
    (U+03BC) from IPython 8.25 on, the micro sign (U+00B5) before. Follows
    the IPython installed in the worker's Python, else the newest (looked up
    once)."""
    if not _micro:
        try:
            from importlib.metadata import PackageNotFoundError, version
        except ImportError:  # pragma: no cover - importlib.metadata is in every Python >= 3.8
            _micro.append("\u03bc")
        else:
            try:
                release = tuple(int(part) for part in version("ipython").split(".")[:2])
            except (PackageNotFoundError, ValueError, OSError):
                release = (9, 0)
            _micro.append("\xb5" if release < (8, 25) else "\u03bc")
    return _micro[0]


def format_time(seconds: float, precision: int = 3) -> str:
    """A duration as IPython's timing magics show it: ``1.23 ms``, ``456 ns``, ``1min 5s``."""
    if seconds >= 60.0:
        parts = []
        left = seconds
        for suffix, length in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
            count = int(left // length)
            if count:
                parts.append("%d%s" % (count, suffix))
                left -= count * length
            if left < 1:
                break
        return " ".join(parts)
    order = 3 if seconds <= 0.0 else min(-(math.floor(math.log10(seconds)) // 3), 3)
    return "%.*g %s" % (precision, seconds * 1000 ** order, ("s", "ms", micro_sign() + "s", "ns")[order])


class TimeitResult:
    """What ``%timeit -o`` returns: per-loop times of each run, like IPython's."""

    def __init__(self, loops: int, repeat: int, timings: List[float], precision: int = 3) -> None:
        self.loops = loops
        self.repeat = repeat
        self.all_runs = timings  # seconds for ``loops`` loops, one per run
        self.timings = [run / loops for run in timings]
        self.best = min(self.timings)
        self.worst = max(self.timings)
        self.average = math.fsum(self.timings) / len(self.timings)
        self.stdev = math.sqrt(math.fsum((t - self.average) ** 2 for t in self.timings) / len(self.timings))
        self._precision = precision

    def __str__(self) -> str:
        return "%s \xb1 %s per loop (mean \xb1 std. dev. of %d run%s, %s loop%s each)" % (
            format_time(self.average, self._precision), format_time(self.stdev, self._precision),
            self.repeat, "" if self.repeat == 1 else "s", f"{self.loops:,}",
            "" if self.loops == 1 else "s")

    def __repr__(self) -> str:
        return "<TimeitResult : %s>" % self


def run_timed(source: str, caller: Caller, first_line: int) -> Any:
    """``%time``: run ``source`` once; print CPU and wall time; return a final expression's value."""
    import resource

    start_cpu, start_wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    value = run_source(source, caller, first_line, want_value=True)
    wall = time.perf_counter() - start_wall
    end_cpu = resource.getrusage(resource.RUSAGE_SELF)
    user, system = end_cpu.ru_utime - start_cpu.ru_utime, end_cpu.ru_stime - start_cpu.ru_stime
    print("CPU times: user %s, sys: %s, total: %s" % (format_time(user), format_time(system),
                                                      format_time(user + system)))
    print("Wall time: %s" % format_time(wall))
    return value


def run_timeit(line: str, cell: Optional[str], caller: Caller) -> Optional[TimeitResult]:
    """``%timeit`` / ``%%timeit``: options, then the statement (the line; for
    the cell magic the line is setup code and the body is timed)."""
    options, statement = _timeit_options(line)
    setup, setup_line, statement_line = "pass", caller.lineno, caller.lineno
    if cell is not None:
        setup, statement, statement_line = statement or "pass", cell, caller.lineno + 1
    if not statement.strip():
        raise UsageError("%timeit needs a statement to time")
    namespace = caller.globals if caller.locals is caller.globals else dict(caller.globals, **caller.locals)
    timer = _loop_timer(setup, setup_line, statement, statement_line, caller.filename, namespace)
    loops = options.get("n", 0)
    if not loops:  # as IPython: the first power of ten that takes 0.2 s
        for power in range(10):
            loops = 10 ** power
            if timer(loops) >= 0.2:
                break
    repeat = options.get("r", 7)
    result = TimeitResult(loops, repeat, [timer(loops) for _ in range(repeat)], options.get("p", 3))
    if not options.get("q"):
        if result.worst > 4 * result.best and result.best > 0 and result.worst > 1e-6:
            print("The slowest run took %0.2f times longer than the fastest. This could mean that an "
                  "intermediate result is being cached." % (result.worst / result.best))
        print(result)
    return result if options.get("o") else None


def _loop_timer(setup: str, setup_line: int, statement: str, statement_line: int, filename: str,
                namespace: Dict[str, Any]) -> Callable[[int], float]:
    """A function of ``loops`` that runs ``setup`` once, then ``statement``
    ``loops`` times with the garbage collector off (as timeit does), and returns
    the seconds the loop took. Both are compiled as lines of the caller's cell
    (``filename``, from their first lines on), so a traceback quotes the cell."""
    def parse(source: str, first_line: int) -> List[ast.stmt]:
        tree = compile("\n" * (first_line - 1) + source, filename, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        _shift_columns(tree, first_line, linecache.getline(filename, first_line), source)
        assert isinstance(tree, ast.Module)
        compile(tree, filename, "exec", dont_inherit=True)  # ``return``, ``break`` and the like: errors here
        return list(tree.body)

    template = ast.parse("def inner(_loops, _clock):\n    _start = _clock()\n    for _ in _loops:\n"
                         "        pass\n    return _clock() - _start\n")
    ast.increment_lineno(template, statement_line - 1)
    function = template.body[0]
    assert isinstance(function, ast.FunctionDef)
    loop = function.body[1]
    assert isinstance(loop, ast.For)
    loop.body = parse(statement, statement_line) or loop.body
    function.body[:0] = parse(setup, setup_line)
    scope: Dict[str, Any] = {}
    exec(compile(template, filename, "exec", dont_inherit=True), namespace, scope)
    inner = scope["inner"]

    def timer(loops: int) -> float:
        collecting = gc.isenabled()
        gc.disable()
        try:
            return float(inner(itertools.repeat(None, loops), time.perf_counter))
        finally:
            if collecting:
                gc.enable()

    return timer


def _shift_columns(tree: ast.AST, lineno: int, line: str, source: str) -> None:
    """Columns on line ``lineno`` of code parsed from ``source`` are counted
    from where its first line sits in the cell's ``line`` (a magic's own line),
    so a traceback's carets mark the statement, not the start of the line."""
    head = source.split("\n", 1)[0]
    column = line.find(head) if head.strip() else -1
    if column <= 0:
        return
    shift = len(line[:column].encode("utf-8"))
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) == lineno:
            node.col_offset += shift  # type: ignore[attr-defined]
        if getattr(node, "end_lineno", None) == lineno and getattr(node, "end_col_offset", None) is not None:
            node.end_col_offset += shift  # type: ignore[attr-defined]


def _timeit_options(line: str) -> Tuple[Dict[str, int], str]:
    options: Dict[str, int] = {}
    rest = line.strip()
    while rest.startswith("-"):
        flag, _, tail = rest.partition(" ")
        letter = flag[1:2]
        if letter in ("n", "r", "p"):
            value = flag[2:] or tail.split(" ", 1)[0]
            if not flag[2:]:
                tail = tail.partition(" ")[2]
            if not value.isdigit() or int(value) < (0 if letter == "p" else 1):
                raise UsageError("%%timeit -%s takes a positive number, not %r" % (letter, value))
            options[letter] = int(value)
        elif flag in ("-o", "-q", "-t", "-c"):
            options[flag[1]] = 1
        else:
            raise UsageError("%%timeit: unknown option %s" % flag)
        rest = tail.strip()
    return options, rest
