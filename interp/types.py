"""The public value types: immutable, comparable by value, with readable reprs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class OutputMessage:
    """One line of output, including its trailing newline.

    A final partial line (no newline yet) is delivered without one, either
    when the run ends or when it has waited a short while for its newline.
    """

    output: str


@dataclass(frozen=True)
class ExecutionError:
    """An exception that escaped the user's code.

    ``name`` is the exception class name (``"ZeroDivisionError"``), ``value``
    is ``str(exception)`` (``"division by zero"``) and ``traceback`` the
    formatted traceback, as Python itself would print it, without interp's
    own frames.
    """

    name: str
    value: str
    traceback: str


@dataclass(frozen=True)
class ExecutionResult:
    """What one ``run_code`` call produced.

    ``stdout`` and ``stderr`` are exactly the concatenation of the lines
    the ``on_stdout`` / ``on_stderr`` callbacks received; ``error`` is set
    when the code raised.
    """

    stdout: str = ""
    stderr: str = ""
    error: Optional[ExecutionError] = None


@dataclass(frozen=True)
class InterpreterContext:
    """A snapshot of one execution context.

    ``id`` identifies it in every call, ``cwd`` is the absolute directory its
    worker started in, ``language`` is always ``"python"``, and ``active``
    says whether its worker process was alive when the snapshot was taken.
    """

    id: str
    cwd: str
    language: str = "python"
    active: bool = True
