"""interp as a LangChain tool: ``InterpTool(ci=..., timeout=...)`` is a
langchain-core ``BaseTool`` named ``python`` taking ``{"code": str}``, for
any LangChain or LangGraph agent (``create_agent``, ``create_react_agent``,
``bind_tools``). Each call runs in the same context, so variables survive
between calls; the model gets text: the output, the last value, and an
error as ``Name: value`` (errors and timeouts are returned, not raised).
Sync (``invoke``) and async (``ainvoke``: never blocks the event loop).
Needs ``pip install 'interp[langchain]'``.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional

from ..api import CodeInterpreter
from ._framework import require
from ._run import arun, model_text, run

require("langchain_core", "langchain", "langchain")
from langchain_core.tools import BaseTool  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

__all__ = ["InterpTool"]


class PythonInput(BaseModel):
    code: str = Field(description="Python source to run; variables persist between calls")


class InterpTool(BaseTool):  # type: ignore[misc]
    """Runs Python in an interp context. ``ci``: a CodeInterpreter or
    RemoteCodeInterpreter (or an async one, for ``ainvoke`` only; default: a
    new CodeInterpreter, closed by :meth:`close`), ``context``: the context
    (default: the interpreter's default one), ``timeout``: seconds per call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "python"
    description: str = (
        "Run Python code in a persistent session and get what it printed, the value of its last "
        "expression, or its error. Variables, imports and functions persist between calls.")
    args_schema: Any = PythonInput
    ci: Any = None
    context: Any = None
    timeout: Optional[float] = 60

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        self._owned = self.ci is None
        if self.ci is None:
            self.ci = CodeInterpreter()

    def _run(self, code: str, **kwargs: Any) -> str:
        if inspect.iscoroutinefunction(getattr(self.ci, "run_code", None)):
            raise TypeError("InterpTool over an async interpreter is async only: use ainvoke()")
        return model_text(run(self.ci, code, context=self.context, timeout=self.timeout))

    async def _arun(self, code: str, **kwargs: Any) -> str:
        return model_text(await arun(self.ci, code, context=self.context, timeout=self.timeout))

    def close(self) -> None:
        """Close the interpreter if this tool made it (one you gave is yours)."""
        if self._owned:
            self.ci.close()
