"""The public calls' arguments checked, and the commands they become.

Shared by every front end that takes a run (the sync and async drivers, the
HTTP and MCP servers, the remote client, the command line): each checks
arguments here, once, and raises TypeError or ValueError before anything
is sent to a worker.
"""

from __future__ import annotations

import errno
import math
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any, Dict, Optional, Tuple

from .errors import InvalidCwdError

DEFAULT_TIMEOUT = 600.0
#: Timeouts this long (about 31 years) or longer mean no limit.
FOREVER = 1e9


class InputInterrupted(Exception):
    """Raised by an ``on_input`` callback (a front end whose user pressed
    Ctrl-C while it read a line): the code's ``input()`` raises
    KeyboardInterrupt, as python's does, and the run goes on. (Any other
    exception from ``on_input`` but EOFError stops the run and is raised by
    ``run_code``.)"""


def run_command(code: Any, *, envs: Any = None, timeout: Any = None, stdin: Any = None,
                on_input: Any = None, filename: Optional[str] = None,
                callbacks: Optional[Mapping[str, Any]] = None,
                stdin_fd: Optional[int] = None) -> Tuple[Dict[str, Any], Optional[float]]:
    """Validate ``run_code`` arguments; return the ``run`` command and the
    timeout in seconds (None: no limit). Raises TypeError / ValueError.

    ``stdin_fd`` (for the command line, with the sync driver): a file
    descriptor of this process whose bytes become the code's fd 0 and
    ``sys.stdin`` as they come, as python's own stdin would be."""
    if not isinstance(code, str):
        raise TypeError("code must be a str, not %s" % type(code).__name__)
    envs = check_environment("envs", envs)
    if stdin is not None and not isinstance(stdin, str):
        raise TypeError("stdin must be a str, not %s" % type(stdin).__name__)
    if stdin is not None and on_input is not None:
        raise ValueError("give stdin or on_input, not both")
    if stdin_fd is not None and (stdin is not None or on_input is not None):
        raise ValueError("a run with stdin_fd takes neither stdin nor on_input")
    for name, callback in dict(callbacks or {}, input=on_input).items():
        if callback is not None and not callable(callback):
            raise TypeError("on_%s must be callable, not %s" % (name, type(callback).__name__))
    seconds = check_seconds("timeout", timeout, DEFAULT_TIMEOUT)
    command = {"t": "run", "code": code, "envs": envs, "filename": filename, "stdin": stdin,
               "input": on_input is not None}
    if stdin_fd is not None:
        command.update(stdin_stream=True, stdin_fd=stdin_fd)  # the core keeps the fd, sends the rest
    return command, seconds


def check_environment(name: str, env: Any) -> Optional[Dict[str, str]]:
    """Validate a mapping of environment variables; return a plain dict copy."""
    if env is None:
        return None
    if not isinstance(env, Mapping):
        raise TypeError("%s must be a mapping of str to str, not %s" % (name, type(env).__name__))
    for key, value in env.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("%s keys and values must be str; got a %s key and a %s value (key %r)"
                            % (name, type(key).__name__, type(value).__name__, key))
        if not key or "=" in key or "\0" in key or "\0" in value or not _encodable(key + value):
            # the value is not shown: it may be a secret
            raise ValueError("%s: invalid environment variable %r (empty, '=' or NUL in the name, "
                             "or a NUL or unencodable character)" % (name, key))
    return dict(env)


def check_size(name: str, value: Any) -> Optional[int]:
    """None, or a positive int; TypeError / ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int (or None), not %s" % (name, type(value).__name__))
    if value <= 0:
        raise ValueError("%s must be positive, got %d" % (name, value))
    return value


def completion_command(code: Any, cursor: Any) -> Dict[str, Any]:
    """Validate ``complete`` arguments; return the ``complete`` command."""
    if not isinstance(code, str):
        raise TypeError("code must be a str, not %s" % type(code).__name__)
    if cursor is None:
        cursor = len(code)
    if isinstance(cursor, bool) or not isinstance(cursor, int):
        raise TypeError("cursor must be an int, not %s" % type(cursor).__name__)
    if not 0 <= cursor <= len(code):
        raise ValueError("cursor %d is outside the code (0..%d)" % (cursor, len(code)))
    return {"t": "complete", "code": code, "cursor": cursor}


def _encodable(text: str) -> bool:
    try:
        text.encode(sys.getfilesystemencoding(), "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def check_seconds(name: str, value: Any, default: Optional[float]) -> Optional[float]:
    """None -> default; 0, infinity or FOREVER and beyond -> None (no limit);
    reject negatives, NaN and non-numbers."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be a number of seconds, not %s" % (name, type(value).__name__))
    if value < 0 or (isinstance(value, float) and math.isnan(value)):
        raise ValueError("%s must be >= 0 seconds, got %r" % (name, value))
    if not value or value >= FOREVER:
        return None  # 0, infinity and anything longer than FOREVER: no limit
    return float(value)


def current_directory() -> str:
    """os.getcwd(), or InvalidCwdError if the application's directory was removed."""
    try:
        return os.getcwd()
    except FileNotFoundError:
        raise InvalidCwdError(errno.ENOENT, "the current directory was removed; pass cwd= to "
                              "choose where contexts run", ".") from None


def describe_exit(returncode: Optional[int]) -> str:
    """Say how a process ended, from its return code (negative: a signal)."""
    if returncode is None:
        return "with an unknown status"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal %d" % -returncode
        return "killed by %s (status %d)" % (name, returncode)
    return "exited with status %d" % returncode
