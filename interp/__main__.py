"""Command line: ``python -m interp -c CODE`` or ``python -m interp FILE``.

Runs the code in a fresh context, streams its output to this process's
stdout and stderr as it is produced, prints the traceback of an uncaught
exception to stderr and exits 1 on error (124 on timeout, 130 on Ctrl-C).

Without code, on a terminal, it starts the interactive shell
(:mod:`interp.shell`). ``python -m interp mcp`` runs the MCP server
(:mod:`interp.mcp`), ``python -m interp serve`` the HTTP server
(:mod:`interp.server`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from . import CodeInterpreter, InterpError, InterpTimeoutError, OutputMessage, __version__
from .engine import run_command

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 124
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m interp",
        description="Run Python code in an interp worker process, streaming its output. "
                    "With no code on a terminal: an interactive shell.",
        epilog="Servers: 'python -m interp mcp --help' (MCP over stdio), "
               "'python -m interp serve --help' (HTTP).")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-c", dest="code", metavar="CODE", help="the code to run")
    source.add_argument("file", nargs="?", metavar="FILE",
                        help="a file to run ('-' or nothing with piped input: standard input)")
    parser.add_argument("--timeout", type=float, default=0, metavar="SECONDS",
                        help="interrupt the run after this many seconds (default: no limit)")
    parser.add_argument("--cwd", metavar="DIR", help="working directory of the context")
    parser.add_argument("--version", action="version", version="interp " + __version__)
    return parser


def _write(stream):
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
    args = parser.parse_args(argv)
    if args.code is not None:
        code, filename = args.code, "<string>"
    elif args.file not in (None, "-"):
        try:
            with open(args.file, encoding="utf-8") as handle:
                code = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            parser.error("cannot read %s: %s" % (args.file, exc))
        filename = os.path.abspath(args.file)
    elif args.file == "-" or not sys.stdin.isatty():
        code, filename = sys.stdin.read(), "<stdin>"
    else:
        return _shell(parser, args)
    try:
        with CodeInterpreter(cwd=args.cwd) as interpreter:
            callbacks = {"stdout": _write(sys.stdout), "stderr": _write(sys.stderr)}
            command, seconds = run_command(code, timeout=args.timeout, filename=filename)
            result = interpreter._submit(None, command, seconds, callbacks)
    except InterpTimeoutError as exc:
        print("interp: %s" % exc, file=sys.stderr)
        return EXIT_TIMEOUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (InterpError, ValueError) as exc:
        print("interp: %s" % exc, file=sys.stderr)
        return EXIT_ERROR
    if result.error is None:
        return 0
    if result.error.name == "SystemExit":  # like python: sys.exit(3) exits 3, quietly
        try:
            return int(result.error.value) & 0xFF
        except ValueError:
            print(result.error.value, file=sys.stderr)
            return EXIT_ERROR
    sys.stderr.write(result.error.traceback)
    return EXIT_ERROR


def _shell(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """The interactive shell, for no code on a terminal."""
    from .shell import main as shell_main

    if not args.timeout >= 0:
        parser.error("--timeout must be >= 0 seconds")
    try:
        return shell_main(timeout=args.timeout, cwd=args.cwd)
    except InterpError as exc:
        print("interp: %s" % exc, file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
