"""Command line: ``python -m interp -c CODE`` or ``python -m interp FILE``.

Runs the code in a fresh context, streams its output to this process's
stdout and stderr as it is produced, prints the traceback of an uncaught
exception to stderr and exits 1 on error (124 on timeout, 130 on Ctrl-C).
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
        description="Run Python code in an interp worker process, streaming its output.")
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


def main(argv: Optional[List[str]] = None) -> int:
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
        parser.print_usage(sys.stderr)
        print("give -c CODE, a FILE, or pipe code to standard input", file=sys.stderr)
        return EXIT_USAGE
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
    if result.error is not None:
        sys.stderr.write(result.error.traceback)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
