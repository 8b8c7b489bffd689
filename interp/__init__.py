"""interp: stateful, isolated Python execution contexts in worker processes."""

from .aio import AsyncCodeInterpreter
from .api import CodeInterpreter
from .errors import (ContextNotFoundError, ContextRestartedError, InterpError, InterpTimeoutError,
                     InvalidCwdError, RunCancelledError, WorkerDiedError)
from .types import ExecutionError, ExecutionResult, InterpreterContext, OutputMessage, Result

__version__ = "0.1.0"

__all__ = [
    "AsyncCodeInterpreter",
    "CodeInterpreter",
    "ContextNotFoundError",
    "ContextRestartedError",
    "ExecutionError",
    "ExecutionResult",
    "InterpError",
    "InterpTimeoutError",
    "InterpreterContext",
    "InvalidCwdError",
    "OutputMessage",
    "Result",
    "RunCancelledError",
    "WorkerDiedError",
]
