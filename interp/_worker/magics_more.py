"""More of IPython's magics, for what notebooks commonly use: ``%load_ext`` /
``%reload_ext`` (``autoreload`` is interp's own, see :mod:`.autoreload`),
``%autoreload``, ``%aimport``, ``%xmode``, ``%prun`` / ``%%prun``, ``%%file``,
``%config`` (``InlineBackend.figure_format(s)`` honoured, see :mod:`.inline`)
and IPython's shell aliases (``ls``, ``cat``, ``mkdir``, ...), plus automagic:
a cell of one line starting with a magic's name that is not a Python name in
use runs as that magic, as IPython does with automagic on (its default).

:func:`install` adds them to the tables of :mod:`.magics`. Standard library only.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import io
import keyword
import re
import sys
from typing import Any, Dict, List, Mapping, Optional

from . import autoreload, inline
from .callers import Caller, UsageError, run_source
from .magics import CELL_MAGICS, LINE_MAGICS, NO_EXPAND, Shell, call

#: IPython's default aliases on Linux (``%l``: the whole argument line; otherwise it is appended).
ALIASES = {
    "mkdir": "mkdir", "rmdir": "rmdir", "mv": "mv", "rm": "rm", "cp": "cp", "cat": "cat",
    "ls": "ls -F --color", "ll": "ls -F -o --color", "lf": "ls -F -o --color %l | grep ^-",
    "lk": "ls -F -o --color %l | grep ^l", "ldir": "ls -F -o --color %l | grep /$",
    "lx": "ls -F -o --color %l | grep ^-..x",
}
XMODES = ("Plain", "Context", "Verbose", "Minimal")
#: What %xmode last chose (interp's tracebacks keep their one format).
xmode = ["Context"]
#: Extensions %load_ext loaded (by name).
extensions: Dict[str, Any] = {}


def _alias(name: str) -> Any:
    def run_alias(shell: Shell, line: str, caller: Caller) -> None:
        command = ALIASES[name]
        command = command.replace("%l", line) if "%l" in command else (command + " " + line).strip()
        call(["/bin/sh", "-c", command])
    run_alias.__doc__ = "``%%%s``: IPython's alias for ``%s``." % (name, ALIASES[name])
    return run_alias


def load_ext(shell: Shell, line: str, caller: Caller) -> None:
    """``%load_ext name``: ``autoreload`` is interp's own; any other module
    is imported (ModuleNotFoundError if it is missing). A module that is an
    IPython extension needs IPython's shell, which interp does not run: a
    UsageError says so."""
    name = line.strip()
    if not name:
        raise UsageError("Missing module name.")
    if name in extensions:
        print("The %s extension is already loaded. To reload it, use:\n  %%reload_ext %s" % (name, name))
        return
    _load(name, reload=False)


def reload_ext(shell: Shell, line: str, caller: Caller) -> None:
    """``%reload_ext name``: load it again (reloading the module)."""
    name = line.strip()
    if not name:
        raise UsageError("Missing module name.")
    _load(name, reload=name in extensions)


def _load(name: str, reload: bool) -> None:
    if name == "autoreload":
        autoreload.state.loaded = True
        extensions[name] = autoreload
        return
    module = importlib.import_module(name)
    if reload:
        module = importlib.reload(module)
    if not callable(getattr(module, "load_ipython_extension", None)):
        print("The %s module is not an IPython extension." % name)
        return
    raise UsageError("%%load_ext %s: this IPython extension needs IPython's shell, which interp does not run "
                     "(interp loads autoreload, its own)" % name)


def autoreload_magic(shell: Shell, line: str, caller: Caller) -> None:
    """``%autoreload [0|1|2|3|off|explicit|all|complete]`` (no mode: reload what changed, now)."""
    _need_autoreload("autoreload")
    try:
        autoreload.state.set_mode(line.strip())
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def aimport(shell: Shell, line: str, caller: Caller) -> None:
    """``%aimport [-]name, ...``: modules %autoreload 1 reloads (``-``: never)."""
    _need_autoreload("aimport")
    names = [name.strip() for name in line.split(",") if name.strip()]
    report = autoreload.state.aimport(names)
    if report:
        print(report)
    for name in names:
        if not name.startswith("-"):
            top = name.split(".")[0]
            caller.globals[top] = sys.modules[top]


def _need_autoreload(magic: str) -> None:
    if not autoreload.state.loaded:
        raise UsageError("Line magic function `%%%s` not found." % magic)


def xmode_magic(shell: Shell, line: str, caller: Caller) -> None:
    """``%xmode [mode]``: accepted and reported as IPython reports it
    (no mode: the next one); interp's tracebacks keep their format."""
    word = line.strip()
    if not word:
        chosen = XMODES[(XMODES.index(xmode[0]) + 1) % len(XMODES)]
    else:
        chosen = next((mode for mode in XMODES if mode.lower() == word.lower()), "")
        if not chosen:
            print("Error changing user exception modes.\nUnrecognized mode in FormattedTB: <%s>\n"
                  "Valid modes: %s" % (word.capitalize(), list(XMODES)), file=sys.stderr)
            return
    xmode[0] = chosen
    print("Exception reporting mode: %s" % chosen)


#: What %pdb last chose (interp never starts a debugger: it has no terminal).
pdb_on = [False]


def pdb_magic(shell: Shell, line: str, caller: Caller) -> None:
    """``%pdb [on|off|1|0]`` (no argument: toggle): reported as IPython reports
    it; interp does not start a debugger on errors."""
    word = line.strip().lower()
    if word in ("", "toggle"):
        pdb_on[0] = not pdb_on[0]
    elif word in ("on", "1", "true"):
        pdb_on[0] = True
    elif word in ("off", "0", "false"):
        pdb_on[0] = False
    else:
        raise UsageError("%%pdb takes on, off, 1 or 0, not %r" % line.strip())
    print("Automatic pdb calling has been turned %s" % ("ON" if pdb_on[0] else "OFF"))


def _prun(line: str, cell: Optional[str], caller: Caller) -> Any:
    """Run the statement (line) or the body (cell) under cProfile; print
    the statistics (``-s key`` sorts, ``-l n`` limits, ``-q`` prints nothing,
    ``-r`` returns the pstats.Stats, ``-T file`` / ``-D file`` save them)."""
    options: Dict[str, List[str]] = {}
    words = [(match.group(), match.start()) for match in re.finditer(r"\S+", line)]
    index, start = 0, len(line)
    while index < len(words):
        word = words[index][0]
        if word in ("-s", "-l", "-T", "-D") and index + 1 < len(words):
            options.setdefault(word, []).append(words[index + 1][0])
            index += 2
        elif word in ("-q", "-r"):
            options[word] = []
            index += 1
        else:
            start = words[index][1]
            break
    if cell is None:
        source = line[start:]
    elif start < len(line):
        raise UsageError("%%%%prun: unknown option(s): %s" % line[start:])
    else:
        source = cell
    if not source.strip():
        raise UsageError("%prun needs a statement to profile")
    import cProfile  # only when profiling: the worker starts without it
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    try:
        run_source(source, caller, caller.lineno + (1 if cell is not None else 0), want_value=False)
    finally:
        profile.disable()
    buffer = io.StringIO()
    stats = pstats.Stats(profile, stream=buffer).sort_stats(*(options.get("-s") or ["time"]))
    limits: List[Any] = [float(value) if "." in value else (int(value) if value.isdigit() else value)
                         for value in options.get("-l", [])]
    stats.print_stats(*limits)
    text = buffer.getvalue().rstrip()
    if "-q" not in options:
        print(text + "\n")
    for path in options.get("-T", []):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        print("\n*** Profile printout saved to text file %r." % path)
    for path in options.get("-D", []):
        stats.dump_stats(path)
        print("\n*** Profile stats marshalled to file %r." % path)
    return stats if "-r" in options else None


def prun(shell: Shell, line: str, caller: Caller) -> Any:
    return _prun(line, None, caller)


def prun_cell(shell: Shell, line: str, cell: str, caller: Caller) -> Any:
    return _prun(line, cell, caller)


_CONFIG = re.compile(r"^\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*=\s*(.+?)\s*$", re.DOTALL)


def config(shell: Shell, line: str, caller: Caller) -> None:
    """``%config Class.trait = value``: ``InlineBackend.figure_format`` and
    ``InlineBackend.figure_formats`` choose the figure formats (png, retina,
    svg, jpeg, pdf); other settings are accepted and have no effect in interp."""
    match = _CONFIG.match(line)
    if match is None:
        raise UsageError("%%config takes Class.trait = value (interp cannot list IPython's settings): %r" % line)
    cls, trait, text = match.groups()
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = caller.eval(text)
    if cls == "InlineBackend" and trait in ("figure_format", "figure_formats"):
        formats = [value] if isinstance(value, str) else value
        if not isinstance(formats, (list, tuple, set, frozenset)):
            raise UsageError("InlineBackend.%s takes a format or a set of them, not %r" % (trait, value))
        try:
            inline.set_formats(sorted(formats) if isinstance(formats, (set, frozenset)) else formats)
        except ValueError as exc:
            raise UsageError(str(exc)) from None


def install() -> None:
    """Add these magics to the worker's tables."""
    LINE_MAGICS.update({name: _alias(name) for name in ALIASES})
    LINE_MAGICS.update({"load_ext": load_ext, "reload_ext": reload_ext, "autoreload": autoreload_magic,
                        "aimport": aimport, "xmode": xmode_magic, "pdb": pdb_magic, "prun": prun, "config": config})
    CELL_MAGICS.update({"file": Shell.writefile, "prun": prun_cell})
    NO_EXPAND.add("prun")  # its argument is Python


# -- automagic ----------------------------------------------------------------------

_AUTOMAGIC = re.compile(r"([ \t]*)([A-Za-z_]\w*)([ \t]+[^\n]*|[ \t]*)(\r?\n?)$")


def automagic(source: str, namespace: Mapping[str, Any]) -> Optional[str]:
    """The source to run for a one-line cell that starts with a line magic's
    name (``ls -l``, ``pwd``, ``cd ..``) when that name is not in use (not a
    variable, builtin or keyword) and the line is not an assignment; None otherwise."""
    match = _AUTOMAGIC.fullmatch(source)
    if match is None:
        return None
    margin, name, rest, end = match.groups()
    tail = rest.strip()
    if (name not in LINE_MAGICS or name in namespace or hasattr(builtins, name) or keyword.iskeyword(name)
            or (tail[:1] in ("=", ",") and tail[:2] != "==")):
        return None
    return "%s%%%s%s%s" % (margin, name, rest, end)
