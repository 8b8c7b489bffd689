"""What the MCP and HTTP front ends share: how they show contexts, how
their command lines report a mistake."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, NoReturn

from .types import InterpreterContext


def context_json(context: InterpreterContext) -> Dict[str, Any]:
    """An InterpreterContext as a JSON object."""
    return {"id": context.id, "cwd": context.cwd, "language": context.language,
            "active": context.active}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose every mistake is one line on stderr (exit 2):
    ``PROG: what is wrong (see --help)``, without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, "%s: %s (see --help)\n" % (self.prog.replace("python -m ", "", 1), message))


def fail(prog: str, message: str) -> int:
    """Print a command line's one-line complaint; return the exit status 2."""
    print("%s: %s" % (prog, message), file=sys.stderr)
    return 2
