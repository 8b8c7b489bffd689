"""What the command lines share (``python -m interp``, ``mcp``, ``serve``):
a parser whose every mistake is one line on stderr (exit status 2, never a
traceback), and the ``--timeout`` option with the library's default."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import NoReturn, Union

from .commands import DEFAULT_TIMEOUT


def program() -> str:
    """How the user ran us: the ``interp`` console script, or ``python -m interp``."""
    return "interp" if os.path.basename(sys.argv[0]) == "interp" else "python -m interp"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports a mistake in one line, naming ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, "%s: %s (see '%s --help')\n" % (self.prog, message, self.prog))


def seconds(text: str) -> float:
    """An argparse type: a number of seconds >= 0 (0: no limit)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of seconds, not %r" % text) from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError("expected a number of seconds >= 0 (0: no limit), not %r" % text)
    return value


def add_timeout(parser: Union[argparse.ArgumentParser, argparse._ArgumentGroup], what: str = "a run") -> None:
    """``--timeout SECONDS``: the library's default (commands.DEFAULT_TIMEOUT), 0 for no limit."""
    parser.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="interrupt %s after this many seconds (default %g; 0: no limit)"
                             % (what, DEFAULT_TIMEOUT))


def fail(prog: str, message: str) -> int:
    """Print a command line's one-line complaint about something other than
    its arguments (a file, a port in use); return the exit status 2."""
    print("%s: %s" % (prog, message), file=sys.stderr)
    return 2
