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


class SandboxError(InterpError, ValueError):
    """A sandbox layout interp refuses because it cannot be made safe (a
    writable path the host imports code from, or one inside a read-only path).
    The message says which path and why."""


class RemoteError(InterpError):
    """A remote interpreter (``RemoteCodeInterpreter``) could not get an
    answer from its server. The subclasses say what went wrong."""


class ServerUnreachableError(RemoteError):
    """No connection to the server could be made (refused, unknown host,
    timed out). Nothing was sent: the request did not run."""


class ConnectionLostError(RemoteError):
    """The connection broke, stalled past the client's ``io_timeout``, or
    ended early, after the request was sent.

    ``may_be_running`` is True when the request may have reached the
    server, so a run may still be going on there (a server stops a run whose
    client disconnects, as on a timeout, unless a proxy in between keeps its
    side open) or may have finished; False when it surely did not run.
    ``result`` holds what a run streamed before the loss (None otherwise).
    """

    def __init__(self, message: str, may_be_running: bool = True,
                 result: Optional[ExecutionResult] = None):
        super().__init__(message)
        self.may_be_running = may_be_running
        self.result = result


class RemoteProtocolError(ConnectionLostError):
    """The server's answer is not interp's HTTP API (garbage, a response
    head, body or event over the client's bounds, JSON nested too deep): the
    client dropped the connection. ``may_be_running`` and ``result`` as for
    ConnectionLostError."""


class RemoteServerError(RemoteError):
    """The server (or a proxy in front of it) answered with an error that
    no other InterpError stands for: ``status`` is the HTTP status (401: the
    token is missing or wrong; 403: refused Host or Origin; 503: the server is
    full, see ``--max-contexts``, or out of resources; 502/504: a proxy could
    not reach a server) and the message is the server's."""

    def __init__(self, status: int, message: str):
        super().__init__("HTTP %d: %s" % (status, message))
        self.status = status
        self.message = message
