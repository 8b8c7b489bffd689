"""Notebook-style source, line for line as Python.

A cell that is not valid Python may be written the way IPython reads it:
with a common leading indentation, ``!cmd`` shell escapes, ``%magic``
lines, ``x = !cmd`` / ``x = %magic`` assignments, and a ``%%magic`` cell.
:func:`transform` rewrites those into calls on the worker's shell object
(``__interp_shell__``, a builtin, see :mod:`.magics`), keeping every other
line as it is and every line where it was, so tracebacks point at the
user's own lines. It is only ever applied to source that does not compile:
valid Python runs unchanged.

The parent's interactive shell uses it too (to know when a block is complete),
so this module imports nothing but the standard library.
"""

from __future__ import annotations

import io
import re
from typing import List, Optional, Tuple

#: The builtin name the rewritten lines call (see magics.Shell).
SHELL_NAME = "__interp_shell__"

_INDENT = re.compile(r"[ \t]*")
_MAGIC = re.compile(r"%([A-Za-z_][\w]*)(.*)$", re.DOTALL)
_CELL_MAGIC = re.compile(r"%%([A-Za-z_][\w]*)(.*)$", re.DOTALL)
# ``a = !cmd``, ``a, b.c = %magic args``: names and dotted names on the left
_ASSIGN = re.compile(r"([A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)*)[ \t]*=[ \t]*([!%])(.*)$", re.DOTALL)


def split_lines(source: str) -> List[str]:
    """``source`` as physical lines with their endings (``\\n``, ``\\r\\n`` or
    ``\\r``, as Python counts lines; not the other breaks str.splitlines knows)."""
    return io.StringIO(source, newline="").readlines()


def _body_and_end(line: str) -> Tuple[str, str]:
    body = line.rstrip("\r\n")
    return body, line[len(body):]


class _Scanner:
    """Tracks, line by line, whether the next line starts a new logical line
    (not inside brackets, a string or a backslash continuation). Good enough
    for source that does not compile: it only has to find line starts."""

    def __init__(self) -> None:
        self.depth = 0
        self.string: Optional[str] = None  # the closing quote of an open string
        self.continued = False

    @property
    def at_line_start(self) -> bool:
        return self.depth == 0 and self.string is None and not self.continued

    @property
    def in_string(self) -> bool:
        return self.string is not None

    def feed(self, line: str) -> None:
        text, _ = _body_and_end(line)
        self.continued = False
        index, end = 0, len(text)
        while index < end:
            char = text[index]
            if self.string is not None:
                if char == "\\":
                    if index == end - 1:  # an escaped newline: the string goes on
                        return
                    index += 2
                elif text.startswith(self.string, index):
                    index += len(self.string)
                    self.string = None
                else:
                    index += 1
                continue
            if char == "#":
                break
            if char in "([{":
                self.depth += 1
            elif char in ")]}":
                self.depth = max(0, self.depth - 1)
            elif char in "'\"":
                quote = char * 3 if text.startswith(char * 3, index) else char
                self.string = quote
                index += len(quote)
                continue
            elif char == "\\" and index == end - 1:
                self.continued = True
            index += 1
        if self.string is not None and len(self.string) == 1:
            self.string = None  # an unterminated one-line string: a syntax error anyway


def _call(method: str, *args: str) -> str:
    return "%s.%s(%s)" % (SHELL_NAME, method, ", ".join(repr(arg) for arg in args))


def _rewrite(text: str) -> Optional[str]:
    """The Python expression or statement for one notebook line (its
    indentation removed), or None if it is not notebook syntax."""
    if text.startswith("!!"):
        return _call("getoutput", text[2:].strip())
    if text.startswith("!"):
        return _call("system", text[1:].strip())
    if text.startswith("%"):
        match = _MAGIC.match(text)
        if match is None:
            match = _CELL_MAGIC.match(text)  # %%name away from the top: IPython says it is no line magic
            if match is None:
                return None
            return _call("run_line_magic", "%" + match.group(1), match.group(2).strip())
        return _call("run_line_magic", match.group(1), match.group(2).strip())
    match = _ASSIGN.match(text)
    if match is None:
        return None
    target, escape, rest = match.groups()
    if escape == "!":
        value = _call("getoutput", rest.strip())
    else:
        magic = _MAGIC.match("%" + rest)
        if magic is None:
            return None
        value = _call("run_line_magic", magic.group(1), magic.group(2).strip())
    return "%s = %s" % (target, value)


def _cell_magic(lines: List[str], first: int) -> str:
    """The one-line call for a ``%%magic`` cell whose magic line is ``lines[first]``."""
    head, end = _body_and_end(lines[first])
    indent = _INDENT.match(head).group(0)  # type: ignore[union-attr]
    match = _CELL_MAGIC.match(head[len(indent):])
    if match is not None:
        name, args = match.group(1), match.group(2).strip()
    else:  # ``%%``, ``%% time``, ``%%1abc``: as IPython, the name is what follows ``%%`` up to a space
        name, _, args = head[len(indent) + 2:].rstrip().partition(" ")
        args = args.strip()
    body = "".join(line[len(indent):] if indent and line.startswith(indent) else line
                   for line in lines[first + 1:])
    if body and not body.endswith(("\n", "\r")):
        body += "\n"
    call = _call("run_cell_magic", name, args, body)
    return "".join(lines[:first]) + call + (end or "\n")


def transform(source: str) -> Optional[str]:
    """The Python source for notebook-style ``source``, with the same line
    numbers; None if nothing in it is notebook syntax.

    - A common leading indentation (that of the first non-blank line) is
      removed from every line that has it, as IPython does (lines inside a
      multi-line string are left alone).
    - A cell whose first non-blank line is ``%%name args`` becomes one call
      ``run_cell_magic(name, args, body)``.
    - At the start of a logical line: ``!cmd`` -> ``system(cmd)``, ``!!cmd``
      -> ``getoutput(cmd)``, ``%name args`` -> ``run_line_magic(name, args)``,
      ``x = !cmd`` and ``x = %name args`` -> assignments of those calls. A
      line ending in ``\\`` continues on the next (joined with a space).

    Only meant for source that does not compile: each of those lines is a
    syntax error as Python.
    """
    lines = split_lines(source)
    first = next((number for number, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return None
    if lines[first].lstrip().startswith("%%"):
        return _cell_magic(lines, first)
    scanner = _Scanner()
    out: List[str] = []
    changed = False
    indent = _INDENT.match(lines[first]).group(0)  # type: ignore[union-attr]
    number = 0
    while number < len(lines):
        line = lines[number]
        inside = scanner.in_string
        if indent and not inside and line.startswith(indent):
            line = line[len(indent):]
            changed = True
        if scanner.at_line_start:
            text, end = _body_and_end(line)
            margin = _INDENT.match(text).group(0)  # type: ignore[union-attr]
            joined, taken = text[len(margin):], 1
            while joined.endswith("\\") and number + taken < len(lines):  # continued on the next line
                following = _body_and_end(lines[number + taken])[0]
                joined = joined[:-1].rstrip() + " " + following.strip()
                taken += 1
            rewritten = _rewrite(joined) if joined[:1] in "!%" or "=" in joined else None
            if rewritten is not None:
                out.append(margin + rewritten + end)
                for extra in range(1, taken):  # keep the line count: the continuation lines become blank
                    out.append(_body_and_end(lines[number + extra])[1] or "")
                changed = True
                number += taken
                continue
        scanner.feed(line)
        out.append(line)
        number += 1
    return "".join(out) if changed else None
