"""The one run every adapter makes: the host tools' stubs, then the code,
with a timeout or a dead worker turned into an error the model can read.
Sync and async interpreters (local or remote) alike."""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any, Callable, Optional

from ..errors import InterpTimeoutError, WorkerDiedError
from ..types import ExecutionError, ExecutionResult
from .hosttools import HostTools

_GONE = "the context was restarted: its variables are gone"


def run(ci: Any, code: str, *, tools: Optional[HostTools] = None, context: Any = None,
        timeout: Optional[float] = None, cancel: Optional[threading.Event] = None) -> ExecutionResult:
    """Run ``code`` on the interpreter ``ci`` (a CodeInterpreter or
    RemoteCodeInterpreter) with ``tools`` callable from it."""
    options: dict[str, Any] = {"context": context, "timeout": timeout}
    if cancel is not None:
        options["cancel"] = cancel
    try:
        if tools:
            setup = ci.run_code(tools.setup_code, on_input=tools.answer, **options)
            if setup.error is not None:
                return _failed_setup(setup)
            options["on_input"] = tools.answer
        return ci.run_code(code, **options)  # type: ignore[no-any-return]
    except (InterpTimeoutError, WorkerDiedError) as exc:
        return stopped(exc, timeout)


async def arun(ci: Any, code: str, *, tools: Optional[HostTools] = None, context: Any = None,
               timeout: Optional[float] = None, cancel: Optional[threading.Event] = None) -> ExecutionResult:
    """:func:`run` from an event loop: awaited on an AsyncCodeInterpreter
    (or AsyncRemoteCodeInterpreter), in a thread for a sync one, so the loop
    never blocks (async tools then run on this loop all the same)."""
    if not inspect.iscoroutinefunction(getattr(ci, "run_code", None)):
        loop = asyncio.get_running_loop()
        threaded = None if tools is None else _OnLoop(tools, loop)
        return await loop.run_in_executor(None, lambda: run(ci, code, tools=threaded, context=context,
                                                             timeout=timeout, cancel=cancel))
    options: dict[str, Any] = {"context": context, "timeout": timeout}
    try:
        if tools:
            setup = await ci.run_code(tools.setup_code, on_input=tools.aanswer, **options)
            if setup.error is not None:
                return _failed_setup(setup)
            options["on_input"] = tools.aanswer
        return await ci.run_code(code, **options)  # type: ignore[no-any-return]
    except (InterpTimeoutError, WorkerDiedError) as exc:
        return stopped(exc, timeout)


class _OnLoop(HostTools):
    """Host tools answered from a thread while ``loop`` runs: async tools are
    run on that loop (where their resources live)."""

    def __init__(self, tools: HostTools, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(tools.tools, final=tools.final, coroutines=tools.coroutines)
        self.tools = {name: self._bind(function, loop) for name, function in self.tools.items()}

    @staticmethod
    def _bind(function: Callable[..., Any], loop: asyncio.AbstractEventLoop) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            value = function(*args, **kwargs)
            if inspect.isawaitable(value):
                async def wait() -> Any:
                    return await value
                return asyncio.run_coroutine_threadsafe(wait(), loop).result()
            return value
        return call


def stopped(exc: BaseException, timeout: Optional[float]) -> ExecutionResult:
    """The result of a run that timed out or whose worker died, with what it
    printed before, and an error that says whether the variables survived."""
    partial = getattr(exc, "result", None) or ExecutionResult()
    if isinstance(exc, InterpTimeoutError):
        state = _GONE if exc.restarted else "it was interrupted; the variables are kept"
        error = ExecutionError("TimeoutError", "the code ran longer than %s s: %s" % (_seconds(timeout), state), "")
    else:
        error = ExecutionError("WorkerDiedError", "%s; the context starts afresh on the next run" % exc, "")
    return ExecutionResult(stdout=partial.stdout, stderr=partial.stderr, error=error, results=partial.results,
                           execution_count=partial.execution_count, truncated=partial.truncated)


def state_lost(result: ExecutionResult) -> bool:
    """Whether ``result`` (from :func:`run`) says the context lost its variables."""
    error = result.error
    return error is not None and (error.name == "WorkerDiedError"
                                  or (error.name == "TimeoutError" and error.value.endswith(_GONE)))


def _seconds(timeout: Optional[float]) -> str:
    return "600" if timeout is None else "%g" % timeout


def _failed_setup(setup: ExecutionResult) -> ExecutionResult:
    error = setup.error
    assert error is not None
    return ExecutionResult(error=ExecutionError(error.name, "the host tools could not be defined: %s" % error.value,
                                                error.traceback))


def model_text(result: ExecutionResult, *, traceback: bool = False) -> str:
    """What a model reads of a run: its output, its last value, and its
    error as ``Name: value`` (with the traceback if asked)."""
    parts = [result.stdout, result.stderr]
    if result.text is not None:
        parts.append(result.text + "\n")
    if result.error is not None:
        if traceback and result.error.traceback:
            parts.append(result.error.traceback.rstrip("\n") + "\n")
        else:
            parts.append("%s: %s\n" % (result.error.name, result.error.value))
    text = "".join(parts)
    return text if text.strip() else "(no output)"
