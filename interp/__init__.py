"""interp: stateful, isolated Python execution contexts in worker processes."""

from typing import TYPE_CHECKING, Any

from .api import CodeInterpreter
from .errors import (ConnectionLostError, ContextNotFoundError, ContextRestartedError, InterpError,
                     InterpTimeoutError, InvalidCwdError, RemoteError, RemoteProtocolError, RemoteServerError,
                     RunCancelledError, SandboxError, SandboxUnavailableError, ServerUnreachableError,
                     WorkerDiedError)
from .remote import AsyncRemoteCodeInterpreter, RemoteCodeInterpreter
from .sandbox import Sandbox
from .types import ExecutionError, ExecutionResult, FileInfo, InterpreterContext, OutputMessage, Result

if TYPE_CHECKING:
    from .aio import AsyncCodeInterpreter

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # asyncio takes longer to import than the rest of interp: only for users of the async API
    if name == "AsyncCodeInterpreter":
        from .aio import AsyncCodeInterpreter
        return AsyncCodeInterpreter
    raise AttributeError("module 'interp' has no attribute %r" % name)


__all__ = [
    "AsyncCodeInterpreter",
    "AsyncRemoteCodeInterpreter",
    "CodeInterpreter",
    "ConnectionLostError",
    "ContextNotFoundError",
    "ContextRestartedError",
    "ExecutionError",
    "ExecutionResult",
    "FileInfo",
    "InterpError",
    "InterpTimeoutError",
    "InterpreterContext",
    "InvalidCwdError",
    "OutputMessage",
    "RemoteCodeInterpreter",
    "RemoteError",
    "RemoteProtocolError",
    "RemoteServerError",
    "Result",
    "RunCancelledError",
    "Sandbox",
    "SandboxError",
    "SandboxUnavailableError",
    "ServerUnreachableError",
    "WorkerDiedError",
]
