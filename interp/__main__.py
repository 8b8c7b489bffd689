"""Command line: ``python -m interp [OPTIONS] (-c CODE | FILE | -) [ARG ...]``.

Runs the code in a fresh context the way ``python`` would run it:
``sys.argv`` is ``[FILE, ARG, ...]`` (``['-c', ARG, ...]`` for ``-c``),
a file runs with ``__file__`` set and its directory first on ``sys.path``,
output streams to this process's stdout and stderr as it is produced, and
``input()`` reads this process's stdin. interp's own options come before
``-c CODE`` or ``FILE``; everything after those goes to the code.

Exit status, as with ``python``: 0, or 1 with the traceback on stderr for
an uncaught exception; ``sys.exit(N)`` exits N and ``sys.exit("text")``
prints the text and exits 1; a worker that ends itself (``os._exit(N)``)
exits N. Ctrl-C raises KeyboardInterrupt in the code (which may catch it);
an uncaught one exits 130, and a third Ctrl-C stops code that keeps
ignoring them (exit 130). A timeout exits 124.

Without code, on a terminal, it starts the interactive shell
(:mod:`interp.shell`). ``python -m interp mcp`` runs the MCP server
(:mod:`interp.mcp`), ``python -m interp serve`` the HTTP server
(:mod:`interp.server`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tokenize
from typing import Callable, List, Optional, TextIO, Tuple

from . import (CodeInterpreter, ExecutionError, InterpError, InterpTimeoutError, OutputMessage, WorkerDiedError,
               __version__)
from ._options import Parser, add_timeout
from ._options import program as program_name
from .commands import run_command
from .engine import DEFAULT_GRACE_PERIOD
from .sandbox import add_arguments as sandbox_arguments
from .sandbox import from_arguments as sandbox_from
from .shell import CtrlC

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 124
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell shows python's

#: interp's options that take the next argument as their value.
VALUE_OPTIONS = ("--timeout", "--cwd", "--workspace")

# Sets what python sets for a script: sys.argv, sys.path[0], __file__ (run
# in the context before the code, leaving no other name behind).
_PREPARE = """\
def _interp_prepare(argv, directory):
    import sys
    sys.argv = argv
    if directory is not None:
        sys.path[:1] = [directory] if sys.path[:1] == [""] else [directory] + sys.path[:1]
_interp_prepare(%r, %r)
del _interp_prepare
"""
# The status python would exit with for the SystemExit a run just raised:
# its code if that is an int, else None (the code is printed, status 1).
_EXIT_CODE = "(lambda code: int(code) if isinstance(code, int) else None)(__import__('sys').last_value.code)"


def _parser() -> argparse.ArgumentParser:
    program = program_name()
    parser = Parser(
        prog=program,
        usage="%(prog)s [--timeout SECONDS] [--cwd DIR] [--sandbox ...] [-c CODE | FILE | -] [ARG ...]\n"
              "       %(prog)s mcp [--help] [OPTIONS]      MCP server over stdio\n"
              "       %(prog)s serve [--help] [OPTIONS]    HTTP server (and MCP at /mcp)",
        description="Run Python code in an interp worker process, streaming its output, as python "
                    "would run it. With no code on a terminal: an interactive shell. Installed with "
                    "pip, the command is also 'interp'.",
        epilog="interp's options come before -c CODE or FILE: what follows those is passed to the "
               "code as sys.argv[1:], as with python. "
               "Servers: '%s mcp --help' (MCP over stdio), '%s serve --help' (HTTP)." % (program, program),
        allow_abbrev=False)
    parser.add_argument("-c", dest="code", metavar="CODE", help="the code to run")
    parser.add_argument("file", nargs="?", metavar="FILE",
                        help="a file to run ('-' or nothing with piped input: standard input)")
    parser.add_argument("args", nargs="*", metavar="ARG", help="arguments for the code (sys.argv[1:])")
    add_timeout(parser, "each run (in the shell: each input)")
    parser.add_argument("--cwd", metavar="DIR", help="working directory of the context")
    parser.add_argument("--version", action="version", version="interp " + __version__)
    sandbox_arguments(parser)
    return parser


def split_arguments(argv: List[str]) -> Tuple[List[str], List[str]]:
    """Split a command line as python does: interp's options up to and
    including ``-c CODE`` or ``FILE`` (or ``-``, or ``-- FILE``), then the
    arguments for the code, which may look like options."""
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg in ("-c", "--"):
            return argv[:index + 2], argv[index + 2:]
        if arg.startswith("-c") or arg == "-" or not arg.startswith("-"):  # -cCODE, stdin, FILE
            return argv[:index + 1], argv[index + 1:]
        index += 2 if arg in VALUE_OPTIONS else 1
    return argv, []


def _write(stream: TextIO) -> Callable[[OutputMessage], None]:
    def emit(message: OutputMessage) -> None:
        stream.write(message.output)
        stream.flush()
    return emit


SUBCOMMANDS = ("mcp", "serve")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``python -m interp``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:  # a file of that name: run it as ./mcp
        if argv[0] == "mcp":
            from .mcp import main as subcommand
        else:
            from .server import main as subcommand
        return subcommand(argv[1:])
    parser = _parser()
    options, arguments = split_arguments(argv)
    args = parser.parse_args(options)
    directory = None
    if args.code is not None:
        code, filename, script_argv = args.code, "<string>", ["-c"]
    elif args.file not in (None, "-"):
        try:
            with tokenize.open(args.file) as handle:  # UTF-8 unless a coding cookie says otherwise
                code = handle.read()
        except (OSError, UnicodeDecodeError, SyntaxError) as exc:
            parser.error("cannot read %s: %s" % (args.file, exc))
        filename, script_argv = os.path.abspath(args.file), [args.file]
        directory = os.path.dirname(os.path.realpath(args.file))
    elif args.file == "-" or not sys.stdin.isatty():
        code, filename, script_argv = sys.stdin.read(), "<stdin>", ["-" if args.file else ""]
    else:
        return _shell(parser, args)
    args.sandbox = sandbox_from(parser, args)
    prepare = _PREPARE % (script_argv + arguments, directory)
    if args.code is None and args.file not in (None, "-"):
        prepare += "__file__ = %r\n" % filename
    # Piped or redirected stdin that the code did not come from is the code's
    # own fd 0, as with python; a terminal's lines are served to input().
    args.stream_stdin = filename != "<stdin>" and not _is_terminal(0)
    return _run(code, filename, prepare, args)


def _is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _run(code: str, filename: str, prepare: str, args: argparse.Namespace) -> int:
    """Run ``code`` in a fresh context; return the exit status python would
    give. SIGINT is ignored from the moment it returns: the process is
    leaving, and a Ctrl-C must not cut the clean-up short."""
    interpreter: Optional[CodeInterpreter] = None
    try:
        interpreter = CodeInterpreter(cwd=args.cwd, sandbox=args.sandbox)
        return _run_in(interpreter, code, filename, prepare, args.timeout, args.stream_stdin)
    except InterpTimeoutError as exc:  # (the process exits: whether the state was kept does not matter)
        how = ("killed: it ignored the interrupt for %g s" % DEFAULT_GRACE_PERIOD) if exc.restarted \
            else "interrupted"
        print("interp: timed out after %g s (%s)" % (args.timeout, how), file=sys.stderr)
        return EXIT_TIMEOUT
    except KeyboardInterrupt:  # before the code started, or a forced stop
        print("KeyboardInterrupt", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # our stdout or stderr was closed (| head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)  # no "Exception ignored" from the final flush either
        return EXIT_ERROR
    except WorkerDiedError as exc:  # killed by a signal: report it, exit as a shell shows a signal
        print("interp: %s" % exc, file=sys.stderr)
        return EXIT_ERROR if exc.returncode is None or exc.returncode >= 0 else 128 - exc.returncode
    except (InterpError, ValueError) as exc:
        print("interp: %s" % exc, file=sys.stderr)
        return EXIT_ERROR
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if interpreter is not None:
            interpreter.close()


def _run_in(interpreter: CodeInterpreter, code: str, filename: str, prepare: str, timeout: float,
            stream_stdin: bool) -> int:
    ctrl_c = CtrlC(interpreter)

    def read_input(prompt: str) -> str:
        return _read_line(prompt, ctrl_c)

    on_input = None if stream_stdin else read_input
    callbacks = {"stdout": _write(sys.stdout), "stderr": _write(sys.stderr), "input": on_input}
    command, seconds = run_command(code, timeout=timeout, filename=filename, on_input=on_input,
                                   callbacks=callbacks, stdin_fd=0 if stream_stdin else None)
    prepared = interpreter.run_code(prepare)  # also starts the worker before Ctrl-C is forwarded
    if prepared.error is not None:  # only if interp itself is broken
        raise InterpError("could not set up sys.argv: %s" % prepared.error.value)
    try:
        with ctrl_c:
            result = interpreter._submit(None, command, seconds, callbacks)
    except WorkerDiedError as exc:  # os._exit(N) exits N, quietly, as python would
        if exc.returncode is None or exc.returncode < 0:
            raise
        return exc.returncode
    if result.error is None:
        return 0
    if result.error.name == "SystemExit":
        return _exit_status(interpreter, result.error)
    sys.stderr.write(result.error.traceback)
    return EXIT_INTERRUPTED if result.error.name == "KeyboardInterrupt" else EXIT_ERROR


def _exit_status(interpreter: CodeInterpreter, error: ExecutionError) -> int:
    """The status for a SystemExit: its code if that is an int (python
    prints nothing); else its text goes to stderr and the status is 1."""
    try:
        probe = interpreter.run_code(_EXIT_CODE, timeout=10)
        status = int(probe.text) if probe.error is None and probe.text is not None else None
    except (InterpError, ValueError):
        status = None
    if status is not None:
        return status & 0xFF
    print(error.value, file=sys.stderr)
    return EXIT_ERROR


def _read_line(prompt: str, ctrl_c: CtrlC) -> str:
    """input() in the code: ``prompt`` to stdout, a line from stdin (EOF:
    EOFError). Ctrl-C while it waits raises KeyboardInterrupt in the code's
    input(), as with python."""
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = ctrl_c.read(sys.stdin.readline)
    if not line:
        raise EOFError
    return line[:-1] if line.endswith("\n") else line


def _shell(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """The interactive shell, for no code on a terminal."""
    from .shell import main as shell_main

    sandbox = sandbox_from(parser, args)
    try:
        if sandbox is not None:
            from .shell import Shell, history_file

            with CodeInterpreter(cwd=args.cwd, sandbox=sandbox) as interpreter:
                return Shell(interpreter, timeout=args.timeout, history=history_file()).interact()
        return shell_main(timeout=args.timeout, cwd=args.cwd)
    except InterpError as exc:
        print("interp: %s" % exc, file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
