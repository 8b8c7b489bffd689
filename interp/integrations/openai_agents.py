"""interp as a tool of the OpenAI Agents SDK::

    agent = Agent(name="analyst", tools=[code_interpreter_tool(ci, timeout=30)])

``code_interpreter_tool`` gives a ``FunctionTool`` named ``run_python``
taking ``{"code": str}``: the code runs in an interp context (state kept
between calls) and the model gets text (output, last value, and an error
with its traceback). Errors, timeouts and bad arguments reach the model as
text; the run never fails because of the code. ``tools`` (plain or async
functions) run on the host, callable from the code through
:mod:`interp.integrations.hosttools`. Needs ``pip install 'interp[openai-agents]'``.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Optional

from ..errors import InterpError
from ._framework import require
from ._run import arun, model_text
from .hosttools import HostTools, tool_name

require("agents", "openai_agents", "openai-agents")
from agents import FunctionTool  # noqa: E402

__all__ = ["code_interpreter_tool"]

DESCRIPTION = ("Run Python code in a persistent session and get what it printed, the value of its last "
               "expression, or its error. Variables, imports and functions persist between calls.")
SCHEMA = {"type": "object", "additionalProperties": False, "required": ["code"],
          "properties": {"code": {"type": "string", "description": "Python source to run"}}}


def code_interpreter_tool(ci: Any, *, timeout: Optional[float] = 60, context: Any = None,
                          tools: Iterable[Any] = (), name: str = "run_python") -> Any:
    """A ``FunctionTool`` that runs code on ``ci`` (any interp interpreter,
    sync or async; it stays yours to close) in ``context``, each call stopped
    after ``timeout`` seconds, with ``tools`` callable from the code."""
    host = HostTools({tool_name(tool): tool for tool in tools})

    async def invoke(tool_context: Any, arguments: str) -> str:
        try:
            code = json.loads(arguments)["code"]
            if not isinstance(code, str):
                raise TypeError("code must be a string")
        except (ValueError, KeyError, TypeError) as exc:
            return "Error: %s takes {\"code\": string} (%s: %s)" % (name, type(exc).__name__, exc)
        try:
            result = await arun(ci, code, tools=host, context=context, timeout=timeout)
        except InterpError as exc:
            return "Error: the code could not run: %s: %s" % (type(exc).__name__, exc)
        return model_text(result, traceback=True)

    return FunctionTool(name=name, description=DESCRIPTION, params_json_schema=SCHEMA, on_invoke_tool=invoke,
                        strict_json_schema=True)
