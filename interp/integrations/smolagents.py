"""interp as the code executor of a smolagents ``CodeAgent``::

    agent = CodeAgent(tools=[...], model=model, executor=InterpExecutor(ci, timeout=30))

The agent's code runs in an interp context (state kept across steps); its
tools, ``final_answer`` included, run in this process and are called from
the code through :mod:`interp.integrations.hosttools`, so they work in a
sandbox too and keep their closures. Needs ``pip install 'interp[smolagents]'``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ..api import CodeInterpreter
from ._framework import require
from ._run import run
from .hosttools import HostTools

_smolagents = require("smolagents", "smolagents", "smolagents")
from smolagents.local_python_executor import CodeOutput  # noqa: E402
from smolagents.monitoring import AgentLogger, LogLevel  # noqa: E402
from smolagents.remote_executors import RemotePythonExecutor  # noqa: E402
from smolagents.utils import AgentError  # noqa: E402

__all__ = ["InterpExecutor"]

_NOTHING = object()


class InterpExecutor(RemotePythonExecutor):  # type: ignore[misc]
    """A smolagents ``RemotePythonExecutor`` over an interp context.

    ``ci`` is the interpreter to run in (default: a new ``CodeInterpreter()``,
    closed by ``cleanup()``; one you give is never closed here), ``context``
    the context (default: its default one), ``timeout`` the seconds a step's
    code may run before it is stopped and the model told so.
    ``additional_imports`` are pip-installed into the context first (as
    smolagents' remote executors do; a sandbox needs network for that).
    """

    def __init__(self, ci: Optional[Any] = None, *, timeout: Optional[float] = 60, context: Any = None,
                 additional_imports: Optional[list[str]] = None, logger: Optional[Any] = None) -> None:
        self.ci = CodeInterpreter() if ci is None else ci
        self._owned = ci is None
        self.timeout = timeout
        self.context = context
        self.host_tools = HostTools({})
        self._final: Any = _NOTHING
        super().__init__(list(additional_imports or []), logger or AgentLogger(level=LogLevel.ERROR))
        if self.additional_imports:
            self.installed_packages = self.install_packages(self.additional_imports)

    def send_tools(self, tools: Dict[str, Any]) -> None:
        """Make the agent's tools callable from the code; they run here."""
        functions = {name: tool for name, tool in tools.items() if name != "final_answer"}
        if "final_answer" in tools:
            functions["final_answer"] = self._final_answer(tools["final_answer"])
        self.host_tools = HostTools(functions, final=["final_answer"])

    def _final_answer(self, tool: Any) -> Any:
        def final_answer(*args: Any, **kwargs: Any) -> None:
            if self._final is _NOTHING:  # the first call ends the run; code that swallows it changes nothing
                self._final = tool(*args, **kwargs)
        return final_answer

    def run_code_raise_errors(self, code: str) -> Any:
        """Run one step's code: its output, or the final answer, or AgentError."""
        self._final = _NOTHING
        result = run(self.ci, code, tools=self.host_tools, context=self.context, timeout=self.timeout)
        logs = result.stdout + result.stderr
        if self._final is not _NOTHING:
            return CodeOutput(output=self._final, logs=logs, is_final_answer=True)
        if result.error is not None:
            error = result.error
            raise AgentError("%s\nExecuting code yielded an error:\n%s: %s\n%s"
                             % (logs, error.name, error.value, error.traceback), self.logger)
        main = next((r for r in result.results if r.is_main_result), None)
        output = None if main is None else (main.json if main.json is not None else main.text)
        return CodeOutput(output=output, logs=logs, is_final_answer=False)

    def cleanup(self) -> None:
        """Close the interpreter if this executor made it."""
        if self._owned:
            self.ci.close()
