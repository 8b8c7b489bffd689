"""Compiling and running cells in a namespace, and recording their errors
the way Python prints them, without the engine's own frames."""

from __future__ import annotations

import ast
import code
import collections
import linecache
import os
import sys
import traceback
from types import CodeType, TracebackType
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

from . import protocol
from .dialect import split_lines, transform
from .signals import SignalGate

#: Characters of cell source kept for tracebacks (older cells are forgotten).
LINECACHE_BUDGET = 32 * 1024 * 1024
# ast.PyCF_ALLOW_TOP_LEVEL_AWAIT; CO_COROUTINE marks code that must be awaited.
TOP_LEVEL_AWAIT: int = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0x2000)
CO_COROUTINE = 0x80

#: Frames from these files are the engine's, not the user's.
_ENGINE_DIR = os.path.normcase(os.path.dirname(os.path.abspath(__file__))) + os.sep
_PROTOCOL_FILE = os.path.normcase(os.path.abspath(protocol.__file__ or ""))


def clip(text: str, limit: int = protocol.MAX_ERROR_CHARS) -> str:
    """``text``, or its head and tail if it is longer than ``limit``."""
    if len(text) <= limit:
        return text
    return text[: limit // 2] + "\n... [%d characters clipped] ...\n" % (len(text) - limit) + text[-limit // 2:]


def describe(value: object) -> str:
    """str(value), even for an exception whose __str__ raises."""
    try:
        return str(value)
    except BaseException:
        return "<unprintable %s object>" % type(value).__name__


def error_report(exc: BaseException, text: Optional[str] = None) -> Dict[str, str]:
    """The ``error`` of a ``done`` frame for ``exc`` (``text``: its traceback)."""
    value = describe(exc.code) if isinstance(exc, SystemExit) else describe(exc)
    if text is None:
        text = "%s: %s\n" % (type(exc).__name__, value)
    return {"name": clip(type(exc).__name__, 1000), "value": clip(value), "traceback": clip(text)}


def _is_engine_frame(filename: str, leading: bool) -> bool:
    path = os.path.normcase(os.path.abspath(filename))
    if path.startswith(_ENGINE_DIR) or path == _PROTOCOL_FILE:
        return True
    # asyncio machinery between the engine and a top-level-await cell
    return leading and os.sep + "asyncio" + os.sep in path


def _hide_engine_frames(report: Optional[traceback.TracebackException], seen: Set[int]) -> None:
    """Drop the engine's frames (and the asyncio frames that lead to a
    top-level-await cell) from a traceback report and its chain."""
    if report is None or id(report) in seen:
        return
    seen.add(id(report))
    frames = list(report.stack)
    start = 0
    while start < len(frames) and _is_engine_frame(frames[start].filename, True):
        start += 1
    report.stack = traceback.StackSummary.from_list(
        [frame for frame in frames[start:] if not _is_engine_frame(frame.filename, False)])
    _hide_engine_frames(report.__cause__, seen)
    _hide_engine_frames(report.__context__, seen)
    for sub in getattr(report, "exceptions", None) or ():
        _hide_engine_frames(sub, seen)


def _suppressed_by_semicolon(source: str, node: ast.stmt) -> bool:
    """True if the expression statement ``node`` is followed by ``;`` (as in a notebook)."""
    lines = split_lines(source)
    if node.end_lineno is None or node.end_col_offset is None or node.end_lineno > len(lines):
        return False
    rest = lines[node.end_lineno - 1].encode("utf-8")[node.end_col_offset:]
    return rest.lstrip().startswith(b";")


class Interpreter(code.InteractiveInterpreter):
    """Runs whole cells and records errors instead of printing them.

    A cell is parsed once; when its last statement is an expression it is
    compiled in ``single`` mode, so its value goes to ``sys.displayhook``
    (as in the REPL) and becomes the run's main result. Cells may use
    top-level ``await``; they then run on a per-worker event loop.
    """

    def __init__(self, namespace: Dict[str, Any]) -> None:
        super().__init__(namespace)
        self.namespace = namespace
        self.count = 0
        self.error: Optional[Dict[str, str]] = None
        self.in_user_code = False
        self.interrupt_pending = False
        self.signals = SignalGate(lambda: self.in_user_code)
        self._loop: Any = None  # an asyncio event loop, made on first use
        self._cached: Deque[Tuple[str, int]] = collections.deque()  # cells kept in linecache
        self._cached_size = 0
        self.before_unit: Callable[[], None] = lambda: None  # the worker's check of sys.displayhook

    def execute(self, source: str, filename: Optional[str] = None,
                notebook: bool = True) -> Optional[Dict[str, str]]:
        """Run ``source``; return None or an error dict for the ``done`` frame.
        With ``notebook``, source that is not valid Python may use notebook
        syntax (see :mod:`.dialect`); valid Python always runs as it is."""
        self.count += 1
        self.error = None
        filename = filename or "<cell-%d>" % self.count
        self._remember_source(filename, source)
        try:
            units = self._compile_cell(source, filename, notebook)
        except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
            if not isinstance(exc, SyntaxError):  # e.g. NUL bytes on older Pythons
                exc = SyntaxError(describe(exc))
            self._record(exc, None)
            return self.error
        for unit in units:
            self.before_unit()
            if not self.runcode(unit):
                break
        return self.error

    def _remember_source(self, filename: str, source: str) -> None:
        """Keep the cell's source so tracebacks can quote it, now and in later
        runs; forget the oldest cells beyond LINECACHE_BUDGET characters."""
        # As linecache reads a file: lines split where the compiler splits them, each ending in "\n"
        # (traceback's carets count on that ending).
        lines = [line.rstrip("\r\n") + "\n" for line in split_lines(source)]
        linecache.cache[filename] = (len(source), None, lines, filename)
        self._cached.append((filename, len(source)))
        self._cached_size += len(source)
        while self._cached_size > LINECACHE_BUDGET and len(self._cached) > 1:
            old, size = self._cached.popleft()
            self._cached_size -= size
            linecache.cache.pop(old, None)

    def _compile_cell(self, source: str, filename: str, notebook: bool) -> List[CodeType]:
        """Compile a cell: as Python, else (with ``notebook``) as the Python
        its notebook syntax becomes, whose lines are the cell's (so
        tracebacks quote the user's own lines)."""
        try:
            return self._compile(source, filename)
        except SyntaxError:
            rewritten = transform(source) if notebook else None
            if rewritten is None:
                raise
        try:
            return self._compile(rewritten, filename)
        except SyntaxError as exc:  # quote the user's line, not what it became
            lines, number = split_lines(source), exc.lineno or 0
            if 0 < number <= len(lines) and exc.text != lines[number - 1]:
                exc.text = lines[number - 1]
                exc.offset = exc.end_offset = None  # columns of another text
            raise exc from None

    def _compile(self, source: str, filename: str) -> List[CodeType]:
        flags = TOP_LEVEL_AWAIT
        tree = compile(source, filename, "exec", ast.PyCF_ONLY_AST | flags, dont_inherit=True)
        last = tree.body[-1] if tree.body else None
        if not isinstance(last, ast.Expr) or _suppressed_by_semicolon(source, last):
            return [compile(tree, filename, "exec", flags, dont_inherit=True)]
        units = []
        if len(tree.body) > 1:
            head = ast.Module(body=tree.body[:-1], type_ignores=[])
            units.append(compile(head, filename, "exec", flags, dont_inherit=True))
        units.append(compile(ast.Interactive(body=[last]), filename, "single", flags, dont_inherit=True))
        return units

    def runcode(self, compiled: CodeType) -> bool:  # type: ignore[override]
        """Run one code object; False if it raised (the error is recorded)."""
        try:
            self.enter_user_code()
            if compiled.co_flags & CO_COROUTINE:
                self._await(eval(compiled, self.namespace))
            else:
                exec(compiled, self.namespace)
            self.in_user_code = False
            return True
        except SystemExit as exc:
            self.in_user_code = False
            status = exc.code
            if not (status is None or (isinstance(status, int) and status == 0)):
                self._record(exc, exc.__traceback__)
            return False
        except BaseException as exc:
            self.in_user_code = False
            self._record(exc, exc.__traceback__)
            return False

    def enter_user_code(self) -> None:
        """User code runs (again) from here: deliver what was held while it
        did not, a SIGINT (as KeyboardInterrupt) first, then other signals."""
        self.in_user_code = True
        if self.interrupt_pending:
            self.interrupt_pending = False
            raise KeyboardInterrupt
        self.signals.release()

    def _await(self, coroutine: Any) -> None:
        import asyncio

        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        task = self._loop.create_task(coroutine)
        try:
            self._loop.run_until_complete(task)
        except BaseException:
            if not task.done():  # interrupted while awaiting: unwind the cell's task
                task.cancel()
                try:
                    self._loop.run_until_complete(task)
                except BaseException:
                    pass
            raise

    def _record(self, exc: BaseException, tb: Optional[TracebackType]) -> None:
        sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
        if getattr(type(exc), "_interp_no_traceback", False) is True:  # a magic's UsageError, as IPython shows it
            self.error = error_report(exc)
            return
        try:
            report = traceback.TracebackException(type(exc), exc, tb)
            _hide_engine_frames(report, set())
            text: Optional[str] = "".join(report.format())
        except BaseException:
            text = None
        self.error = error_report(exc, text)
