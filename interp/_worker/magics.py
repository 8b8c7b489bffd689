"""Shell escapes and magics for notebook-style cells.

:mod:`.dialect` rewrites ``!cmd``, ``%magic`` and ``%%magic`` into calls on
one :class:`Shell`, the builtin ``__interp_shell__`` of the worker. Each call
finds the namespace of the code that made it (the cell, or a function in
it) from its caller's frame, as IPython does, to expand ``{expr}`` and
``$name`` and to run timed statements.

Shell commands run as children of the worker, in its process group, with
fds 0, 1 and 2 inherited: their output lands in the capture pipes like any
other output, and an interrupt reaches them too.
"""

from __future__ import annotations

import builtins
import importlib
import io
import os
import shlex
import string
import subprocess
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

from .callers import Caller, UsageError, run_source
from .proctree import kill_tree
from .stdio import flush_everything
from .timing import TimeitResult, run_timed, run_timeit

#: How long a command that got the interrupt may take to end before it is killed.
STOP_GRACE = 0.25


class SList(List[str]):
    """The lines ``x = !cmd`` captured: a list, with IPython's shortcuts."""

    @property
    def l(self) -> List[str]:  # noqa: E743 - IPython's name
        """The lines as a plain list."""
        return list(self)

    @property
    def n(self) -> str:
        """The lines joined by newlines."""
        return "\n".join(self)

    @property
    def s(self) -> str:
        """The lines joined by spaces."""
        return " ".join(self)


def expand(command: str, caller: Caller) -> str:
    """``command`` with ``{expr}`` replaced by the value of the Python
    expression and ``$name`` (or ``$name.attr``) by that variable, as IPython
    does. ``{{``, ``}}`` and ``$$`` stand for themselves. A ``$name`` that is
    no Python variable, or one inside single quotes, is left for the shell;
    if any ``{expr}`` cannot be evaluated, the command is used as written."""
    try:
        pieces = list(string.Formatter().parse(command))
    except ValueError:
        return command
    out: List[str] = []
    quoted = False
    try:
        for literal, field, spec, conversion in pieces:
            text, quoted = _expand_dollars(literal, caller, quoted)
            out.append(text)
            if field is None:
                continue
            value = caller.eval(field + (":" + spec if spec else ""))  # a colon slices, as in IPython
            if conversion == "r":
                value = repr(value)
            elif conversion == "a":
                value = ascii(value)
            out.append(str(value))
    except Exception:
        return command
    return "".join(out)


def _expand_dollars(text: str, caller: Caller, quoted: bool) -> Tuple[str, bool]:
    out: List[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "'":
            quoted = not quoted
        elif char == "$" and not quoted:
            if text.startswith("$$", index):
                out.append("$")
                index += 2
                continue
            name = _dotted_name(text, index + 1)
            if name:
                try:
                    value = caller.lookup(name.split(".")[0])
                    for attribute in name.split(".")[1:]:
                        value = getattr(value, attribute)
                except (KeyError, AttributeError):
                    pass
                else:
                    out.append(str(value))
                    index += 1 + len(name)
                    continue
        out.append(char)
        index += 1
    return "".join(out), quoted


def _dotted_name(text: str, start: int) -> str:
    end = start
    while end < len(text) and (text[end].isalnum() or text[end] in "_."):
        end += 1
    name = text[start:end].rstrip(".")
    return name if name[:1].isalpha() or name[:1] == "_" else ""


def call(argv: List[str]) -> int:
    """Run ``argv`` with the worker's fds 0, 1 and 2; return its exit status
    (negative: the signal that ended it). An interrupt (KeyboardInterrupt,
    which the command got too, being in the worker's process group) stops
    it: killed if it has not ended within STOP_GRACE seconds."""
    flush_everything()
    process = subprocess.Popen(argv)
    try:
        return process.wait()
    except BaseException:
        stop(process)
        raise


def stop(process: subprocess.Popen[Any]) -> None:
    """End ``process`` (an interrupted command): a short wait for it to end
    by itself, else SIGKILL for what it started (while it is there to reap
    them: a shell that ignores SIGINT) and then for it; reaped either way."""
    try:
        process.wait(STOP_GRACE)
        return
    except BaseException:  # still running (or another interrupt came)
        pass
    kill_tree(process.pid)
    try:
        process.wait(STOP_GRACE)
    except BaseException:
        pass
    process.kill()
    process.wait()


# -- %%capture ---------------------------------------------------------------------

class RichOutput:
    """One display() captured by %%capture; displaying it shows it again."""

    def __init__(self, data: Dict[str, Any]) -> None:
        self.data = data
        self.metadata: Dict[str, Any] = {}

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Dict[str, Any]:
        return self.data


class CapturedIO:
    """What ``%%capture var`` stores: ``stdout``, ``stderr`` (text) and
    ``outputs`` (the rich outputs); ``show()`` (or calling it) replays them."""

    def __init__(self, stdout: str, stderr: str, outputs: List[RichOutput]) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.outputs = outputs

    def __repr__(self) -> str:
        return "<CapturedIO: %d characters of stdout, %d of stderr, %d outputs>" % (
            len(self.stdout), len(self.stderr), len(self.outputs))

    def show(self) -> None:
        sys.stdout.write(self.stdout)
        sys.stderr.write(self.stderr)
        for output in self.outputs:
            builtins.display(output)  # type: ignore[attr-defined]

    __call__ = show


# -- the shell ---------------------------------------------------------------------

LineMagic = Callable[["Shell", str, Caller], Any]
CellMagic = Callable[["Shell", str, str, Caller], Any]


class Shell:
    """The target of rewritten notebook lines (see :mod:`.dialect`), named
    like IPython's shell methods: ``system``, ``getoutput``,
    ``run_line_magic``, ``run_cell_magic``."""

    def __init__(self) -> None:
        #: While %%capture runs: the bundles display() sends (the worker's emit adds them here).
        self.captured: Optional[List[Dict[str, Any]]] = None
        self._previous_dir: Optional[str] = None

    # The four entry points take the caller's frame first thing (depth 1).

    def system(self, command: str) -> None:
        """``!cmd``: run ``cmd`` with /bin/sh; its status goes to ``_exit_code``."""
        caller = Caller.of(sys._getframe(1))
        status = call(["/bin/sh", "-c", expand(command, caller)])
        caller.globals["_exit_code"] = status
        importlib.invalidate_caches()  # it may have installed something (!pip install)

    def getoutput(self, command: str) -> SList:
        """``x = !cmd``: the lines ``cmd`` writes (stdout and stderr)."""
        caller = Caller.of(sys._getframe(1))
        flush_everything()
        process = subprocess.Popen(["/bin/sh", "-c", expand(command, caller)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            output, _ = process.communicate()
        except BaseException:
            stop(process)
            if process.stdout is not None:
                process.stdout.close()
            raise
        caller.globals["_exit_code"] = process.returncode
        return SList(output.decode("utf-8", "replace").splitlines())

    def run_line_magic(self, name: str, line: str) -> Any:
        """``%name line``."""
        caller = Caller.of(sys._getframe(1))
        magic = LINE_MAGICS.get(name)
        if magic is None:
            extra = (" (But cell magic `%%%%%s` exists, did you mean that instead?)" % name
                     if name in CELL_MAGICS else "")
            raise UsageError("Line magic function `%%%s` not found%s." % (name, extra))
        if name not in NO_EXPAND:
            line = expand(line, caller)
        return magic(self, line, caller)

    def run_cell_magic(self, name: str, line: str, cell: str) -> Any:
        """``%%name line`` followed by the ``cell`` body."""
        caller = Caller.of(sys._getframe(1))
        magic = CELL_MAGICS.get(name)
        if magic is None:
            extra = (" (But line magic `%%%s` exists, did you mean that instead?)" % name
                     if name in LINE_MAGICS else "")
            raise UsageError("Cell magic `%%%%%s` not found%s." % (name, extra))
        if not cell.strip():
            raise UsageError("%%%%%s is a cell magic, but the cell body is empty." % name)
        if name not in NO_EXPAND:
            line = expand(line, caller)
        return magic(self, line, cell, caller)

    def take(self, bundle: Dict[str, Any]) -> bool:
        """Keep a displayed bundle if %%capture is capturing; True if it did."""
        if self.captured is None:
            return False
        self.captured.append(bundle)
        return True

    # -- line magics ---------------------------------------------------------------

    def cd(self, line: str, caller: Caller) -> None:
        """``%cd [-q] [dir]``: change the working directory (default: home;
        ``-``: the previous one) and print it."""
        words = shlex.split(line)
        quiet = "-q" in words
        words = [word for word in words if word != "-q"]
        if len(words) > 1:
            raise UsageError("%%cd takes one directory, not %d arguments" % len(words))
        target = words[0] if words else "~"
        if target == "-":
            if self._previous_dir is None:
                raise UsageError("%cd -: there is no previous directory")
            target = self._previous_dir
        here = os.getcwd()
        try:
            os.chdir(os.path.expanduser(target))
        except OSError as exc:
            print("[Errno %s] %s: %r" % (exc.errno, exc.strerror, target))
            return
        self._previous_dir = here
        if not quiet:
            print(os.getcwd())

    def pwd(self, line: str, caller: Caller) -> str:
        """``%pwd``: the working directory."""
        return os.getcwd()

    def env(self, line: str, caller: Caller) -> Any:
        """``%env``: the environment (values of names with key/token/secret
        hidden); ``%env NAME``: one value; ``%env NAME=value`` or ``%env NAME
        value``: set it."""
        line = line.strip()
        if not line:
            return {key: "<hidden>" if any(word in key.lower() for word in ("key", "token", "secret")) else value
                    for key, value in os.environ.items()}
        separator = "=" if "=" in line else " "
        if separator not in line:
            if line not in os.environ:
                raise UsageError("Environment does not have key: %s" % line)
            return os.environ[line]
        key, value = (part.strip() for part in line.split(separator, 1))
        if not key or any(char.isspace() for char in key):
            raise UsageError("refusing to set env var with whitespace: '%s'" % value)
        os.environ[key] = value
        print("env: %s=%s" % (key, value))
        return None

    def who(self, line: str, caller: Caller) -> None:
        """``%who [type ...]``: the names of the variables (of those types)."""
        types = line.split()
        names = sorted(name for name, value in caller.globals.items() if not name.startswith("_")
                       and (not types or type(value).__name__ in types))
        if not names:
            print("No variables match your requested type." if types else "Interactive namespace is empty.")
            return
        rows = [names[start:start + 9] for start in range(0, len(names), 9)]
        print("\n".join("".join(name + "\t " for name in row) for row in rows))

    def reset(self, line: str, caller: Caller) -> None:
        """``%reset -f``: delete every variable (``%reset`` alone asks first)."""
        words = line.split()
        if any(word not in ("-f", "-s") for word in words):
            raise UsageError("%%reset: only -f (and -s) are supported, not %r" % line)
        if "-f" not in words:
            try:
                answer = input("Once deleted, variables cannot be recovered. Proceed (y/[n])? ")
            except EOFError:
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing done.")
                return
        namespace = caller.globals
        for name in list(namespace):
            if not (name.startswith("__") and name.endswith("__")):
                del namespace[name]

    def pip(self, line: str, caller: Caller) -> None:
        """``%pip ...``: pip of the worker's own Python; what it installs is
        importable right away."""
        call([sys.executable, "-m", "pip", *shlex.split(line)])
        refresh_imports()

    def matplotlib(self, line: str, caller: Caller) -> None:
        """``%matplotlib inline`` (or any backend): accepted; figures are captured anyway."""

    def time(self, line: str, caller: Caller) -> Any:
        """``%time statement``: run it once and print the CPU and wall time."""
        return run_timed(line, caller, caller.lineno)

    def timeit(self, line: str, caller: Caller) -> Optional[TimeitResult]:
        """``%timeit [-n N] [-r R] [-p P] [-q] [-o] statement``."""
        return run_timeit(line, None, caller)

    # -- cell magics ---------------------------------------------------------------

    def time_cell(self, line: str, cell: str, caller: Caller) -> Any:
        return run_timed(cell, caller, caller.lineno + 1)

    def timeit_cell(self, line: str, cell: str, caller: Caller) -> Optional[TimeitResult]:
        return run_timeit(line, cell, caller)

    def bash(self, line: str, cell: str, caller: Caller) -> None:
        """``%%bash``: run the body with bash (``%%sh``: with /bin/sh). A
        failing script raises CalledProcessError, as in IPython, unless
        ``--no-raise-error`` is given."""
        self._script("bash", line, cell)

    def sh(self, line: str, cell: str, caller: Caller) -> None:
        self._script("/bin/sh", line, cell)

    def _script(self, shell: str, line: str, cell: str) -> None:
        words = shlex.split(line)
        unknown = [word for word in words if word != "--no-raise-error"]
        if unknown:
            raise UsageError("unsupported option(s) for the script magic: %s" % " ".join(unknown))
        status = call([shell, "-c", cell])
        if status and "--no-raise-error" not in words:
            raise subprocess.CalledProcessError(status, cell)

    def writefile(self, line: str, cell: str, caller: Caller) -> None:
        """``%%writefile [-a] FILE``: write (or append) the body to FILE."""
        words = shlex.split(line)
        append = bool({"-a", "--append"} & set(words))
        names = [word for word in words if word not in ("-a", "--append")]
        if len(names) != 1:
            raise UsageError("usage: %%writefile [-a] filename")
        filename = os.path.expanduser(names[0])
        if os.path.exists(filename):
            print(("Appending to %s" if append else "Overwriting %s") % filename)
        else:
            print("Writing %s" % filename)
        with open(filename, "a" if append else "w", encoding="utf-8") as handle:
            handle.write(cell)

    def capture(self, line: str, cell: str, caller: Caller) -> None:
        """``%%capture [--no-stdout] [--no-stderr] [--no-display] [var]``: run
        the body keeping its Python-level output and display() results in
        ``var`` (a CapturedIO) instead of showing them."""
        words = shlex.split(line)
        flags = {word for word in words if word.startswith("--")}
        unknown = flags - {"--no-stdout", "--no-stderr", "--no-display"}
        names = [word for word in words if not word.startswith("--")]
        if unknown or len(names) > 1:
            raise UsageError("usage: %%capture [--no-stdout] [--no-stderr] [--no-display] [var]")
        saved = sys.stdout, sys.stderr, self.captured
        stdout, stderr = io.StringIO(), io.StringIO()
        if "--no-stdout" not in flags:
            sys.stdout = stdout
        if "--no-stderr" not in flags:
            sys.stderr = stderr
        if "--no-display" not in flags:
            self.captured = []
        outputs = self.captured
        try:
            run_source(cell, caller, caller.lineno + 1, want_value=False)
        finally:
            sys.stdout, sys.stderr, self.captured = saved
            if names:
                caller.globals[names[0]] = CapturedIO(stdout.getvalue(), stderr.getvalue(),
                                                      [RichOutput(data) for data in outputs or ()])


LINE_MAGICS: Dict[str, LineMagic] = {
    "cd": Shell.cd, "pwd": Shell.pwd, "env": Shell.env, "who": Shell.who, "reset": Shell.reset,
    "pip": Shell.pip, "matplotlib": Shell.matplotlib, "time": Shell.time, "timeit": Shell.timeit,
}
CELL_MAGICS: Dict[str, CellMagic] = {
    "time": Shell.time_cell, "timeit": Shell.timeit_cell, "bash": Shell.bash, "sh": Shell.sh,
    "writefile": Shell.writefile, "capture": Shell.capture,
}
#: Magics whose arguments are Python code: no {expr} / $name expansion.
NO_EXPAND = {"time", "timeit"}


def refresh_imports() -> None:
    """Make packages installed since the last import findable: forget
    cached directory listings and the path entries that did not exist (a
    user site directory pip has just made is added to sys.path)."""
    import site

    for entry, finder in list(sys.path_importer_cache.items()):
        if finder is None:
            del sys.path_importer_cache[entry]
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    if user_site and os.path.isdir(user_site) and user_site not in sys.path:
        site.addsitedir(user_site)
    importlib.invalidate_caches()


