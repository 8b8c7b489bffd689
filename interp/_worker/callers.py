"""What magics share: the caller a magic finds from its frame, the error a
wrongly called magic raises, and running source as lines of the caller's cell."""

from __future__ import annotations

import ast
import builtins
from types import FrameType
from typing import Any, Dict, Mapping, NamedTuple, Optional


class UsageError(Exception):
    """A magic that does not exist or was called wrongly (IPython's name and
    messages). Reported without a traceback, as IPython does."""

    _interp_no_traceback = True


class Caller(NamedTuple):
    """Where a magic was called from: the namespaces and the line of the call."""

    globals: Dict[str, Any]
    locals: Mapping[str, Any]
    filename: str
    lineno: int

    @classmethod
    def of(cls, frame: FrameType) -> Caller:
        return cls(frame.f_globals, frame.f_locals, frame.f_code.co_filename, frame.f_lineno)

    def lookup(self, name: str) -> Any:
        """The value of ``name`` as the caller sees it; KeyError if it has none."""
        if name in self.locals:
            return self.locals[name]
        if name in self.globals:
            return self.globals[name]
        return vars(builtins)[name]

    def eval(self, expression: str) -> Any:
        return eval(expression, self.globals, self.locals)


def run_source(source: str, caller: Caller, first_line: int, want_value: bool) -> Any:
    """Run ``source`` (a magic's statement or cell body, which starts on
    line ``first_line`` of the caller's cell) in the caller's namespace, so
    tracebacks point at the cell's own lines. With ``want_value``, a final
    expression's value is returned."""
    tree = compile("\n" * (first_line - 1) + source, caller.filename, "exec", ast.PyCF_ONLY_AST,
                   dont_inherit=True)
    assert isinstance(tree, ast.Module)
    last: Optional[ast.Expression] = None
    if want_value and tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body[-1].value)
        del tree.body[-1]
    exec(compile(tree, caller.filename, "exec", dont_inherit=True), caller.globals, caller.locals)
    if last is None:
        return None
    return eval(compile(last, caller.filename, "eval", dont_inherit=True), caller.globals, caller.locals)
