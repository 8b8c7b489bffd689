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

import ast
import builtins
import gc
import importlib
import io
import itertools
import linecache
import math
import os
import shlex
import string
import subprocess
import sys
import time
from types import FrameType
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

from .proctree import kill_tree
from .stdio import flush_everything

#: How long a command that got the interrupt may take to end before it is killed.
STOP_GRACE = 0.25


class UsageError(Exception):
    """A magic that does not exist or was called wrongly (IPython's name and
    messages). Reported without a traceback, as IPython does."""

    _interp_no_traceback = True


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


# -- timing ----------------------------------------------------------------------

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
    return "%.*g %s" % (precision, seconds * 1000 ** order, ("s", "ms", "\xb5s", "ns")[order])


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
