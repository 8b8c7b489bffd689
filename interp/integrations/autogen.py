"""interp as an AutoGen code executor: ``InterpCodeExecutor`` is an
autogen-core ``CodeExecutor`` for ``CodeExecutorAgent`` (or any agent that
takes one)::

    agent = CodeExecutorAgent("coder", InterpCodeExecutor(ci, timeout=30), model_client=client)

Python blocks run in one interp context (state kept between blocks and
calls); ``sh``/``bash`` blocks run from that context, so in the same working
directory and sandbox. The blocks of one call run in order and stop at the
first failure (the rest are skipped); a shell's exit status is the result's
``exit_code`` (1 for a Python error, 124 for a timeout). Cancelling the
token interrupts the running code and raises ``asyncio.CancelledError``.
Needs ``pip install 'interp[autogen]'``.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any, List, Optional

from ..api import CodeInterpreter
from ..errors import RunCancelledError
from ._framework import require
from ._run import arun, model_text

require("autogen_core", "autogen", "autogen")
from autogen_core import CancellationToken  # noqa: E402
from autogen_core.code_executor import CodeBlock, CodeExecutor, CodeResult  # noqa: E402

__all__ = ["InterpCodeExecutor"]

PYTHON = ("python", "py", "python3", "")
SHELLS = {"sh": "/bin/sh", "bash": "bash", "shell": "/bin/sh"}
TIMEOUT_EXIT = 124  # as timeout(1) says it


class InterpCodeExecutor(CodeExecutor):  # type: ignore[misc]
    """Runs code blocks in an interp context. ``ci``: a CodeInterpreter,
    RemoteCodeInterpreter or their async twins (default: a new
    CodeInterpreter, closed by :meth:`stop`; one you give is never closed
    here), ``context``: the context (default: its default one),
    ``timeout``: seconds per block."""

    def __init__(self, ci: Optional[Any] = None, *, timeout: Optional[float] = 60, context: Any = None) -> None:
        self._owned = ci is None
        self.ci = CodeInterpreter() if ci is None else ci
        self.timeout = timeout
        self.context = context

    async def execute_code_blocks(self, code_blocks: List[CodeBlock],
                                  cancellation_token: CancellationToken) -> CodeResult:
        """Run the blocks in order until one fails; their output, and the exit code of the last one run."""
        output: List[str] = []
        for block in code_blocks:
            language = block.language.lower()
            if language in PYTHON:
                code = block.code
            elif language in SHELLS:  # the shell inherits the worker's output pipes, cwd and sandbox
                code = "__import__('subprocess').call([%r, '-c', %r])" % (SHELLS[language], block.code)
            else:
                output.append("unsupported language %r: use python, sh or bash\n" % block.language)
                return CodeResult(exit_code=1, output="".join(output))
            result = await self._run(code, cancellation_token)
            if result.error is not None:
                output.append(model_text(result, traceback=True))
                return CodeResult(exit_code=TIMEOUT_EXIT if result.error.name == "TimeoutError" else 1,
                                  output="".join(output))
            if language in PYTHON:
                output.append(model_text(result) if result.stdout or result.stderr or result.text else "")
                continue
            output.append(result.stdout + result.stderr)
            status = _status(result.text)
            if status != 0:
                return CodeResult(exit_code=status, output="".join(output))
        return CodeResult(exit_code=0, output="".join(output))

    async def _run(self, code: str, token: CancellationToken) -> Any:
        cancel = threading.Event()
        token.add_callback(cancel.set)
        if token.is_cancelled():
            raise asyncio.CancelledError("the cancellation token was cancelled")
        if inspect.iscoroutinefunction(getattr(self.ci, "run_code", None)):  # async: cancel the run's task
            task = asyncio.ensure_future(arun(self.ci, code, context=self.context, timeout=self.timeout))
            token.link_future(task)
            return await task
        try:
            return await arun(self.ci, code, context=self.context, timeout=self.timeout, cancel=cancel)
        except RunCancelledError:
            raise asyncio.CancelledError("the cancellation token was cancelled") from None

    async def start(self) -> None:
        """Nothing to do: contexts start on first use."""

    async def stop(self) -> None:
        """Close the interpreter if this executor made it."""
        if self._owned:
            closed = self.ci.close()
            if inspect.isawaitable(closed):
                await closed

    async def restart(self) -> None:
        """Restart the context: a fresh worker, no variables."""
        restarted = self.ci.restart_context(self.context)
        if inspect.isawaitable(restarted):
            await restarted


def _status(text: Optional[str]) -> int:
    """A shell block's exit status, from the value the worker reported."""
    try:
        status = int(text or "")
    except ValueError:
        return 1
    return status if status >= 0 else 128 - status  # killed by a signal: 128 + its number, as shells say
