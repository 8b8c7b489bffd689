"""The exceptions interp raises. Every one of them is an :class:`InterpError`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .types import ExecutionResult


class InterpError(Exception):
    """Base class of every error raised by interp itself.

    Errors raised by the user's code are not exceptions in the caller: they
    come back as ``ExecutionResult.error``.
    """


class ContextNotFoundError(InterpError):
    """No context has that id (it was never created, or it was deleted)."""


class InvalidCwdError(InterpError, OSError):
    """A context's working directory does not exist or is not a directory.

    Also an :class:`OSError` whose ``errno`` is ``ENOENT`` or ``ENOTDIR``.
    """


class InterpTimeoutError(InterpError, TimeoutError):
    """A run did not finish before its timeout.

    ``result`` holds what the run produced until then (its callbacks have
    already seen that output). ``restarted`` is False when the run stopped
    on the interrupt (the context kept its state) and True when it had to be
    killed and the context now runs on a fresh worker with empty state.
    """

    def __init__(self, message: str, result: ExecutionResult, restarted: bool):
        super().__init__(message)
        self.result = result
        self.restarted = restarted


class ContextRestartedError(InterpError):
    """``restart_context`` was called while this run was in progress.

    ``result`` holds what the run produced until then.
    """

    def __init__(self, message: str, result: ExecutionResult):
        super().__init__(message)
        self.result = result


class RunCancelledError(InterpError):
    """The ``cancel`` event given to ``run_code`` was set.

    A run that had started was stopped like a timed-out one (interrupted,
    killed after the grace period if it would not stop); ``result`` holds
    what it produced. A run still waiting for its turn never started and
    ``result`` is None.
    """

    def __init__(self, message: str, result: Optional[ExecutionResult] = None):
        super().__init__(message)
        self.result = result


class WorkerDiedError(InterpError):
    """A context's worker process died (``os._exit``, a crash, a kill).

    The context's state is lost; its next run starts a fresh worker.
    ``result`` holds what the run produced before the death (when the
    worker was found dead before the run started: what it wrote since its
    last run), ``returncode`` is the worker's exit status (negative: the
    signal that killed it).
    """

    def __init__(self, message: str, result: Optional[ExecutionResult], returncode: Optional[int]):
        super().__init__(message)
        self.result = result
        self.returncode = returncode


class SandboxUnavailableError(InterpError):
    """A sandboxed interpreter could not start its sandbox: bubblewrap
    (``bwrap``) is missing, or the kernel or its security policy forbids the
    user namespaces it needs. The message says what is missing and how to fix
    it. interp never runs the code unsandboxed instead."""
