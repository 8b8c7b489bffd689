"""interp as the code executor of LlamaIndex's ``CodeActAgent``::

    agent = CodeActAgent(code_execute_fn=make_code_execute_fn(ci, tools=tools), tools=tools, llm=llm)

``make_code_execute_fn`` gives the async ``code_execute_fn(code) -> dict``
the agent calls. The code runs in an interp context (state kept between
steps); the tools (plain or async functions, or ``FunctionTool``s) run here,
on the host, called from the code through :mod:`interp.integrations.hosttools`.
It never blocks the event loop: an async interpreter is awaited, a sync one
runs in a thread. Needs ``pip install 'interp[llama-index]'``.
"""

from typing import Any, Awaitable, Callable, Dict, Iterable, Optional

from ._framework import require
from ._run import arun
from .hosttools import HostTools, tool_name

require("llama_index.core", "llama_index", "llama-index")

__all__ = ["make_code_execute_fn"]

CodeExecuteFn = Callable[[str], Awaitable[Dict[str, Any]]]


def make_code_execute_fn(ci: Any, tools: Iterable[Any] = (), *, timeout: Optional[float] = 60,
                         context: Any = None) -> CodeExecuteFn:
    """The ``code_execute_fn`` for ``CodeActAgent``: runs the code on ``ci``
    (any interp interpreter, sync or async; it stays yours to close) in
    ``context``, with ``tools`` callable by name, each step stopped after
    ``timeout`` seconds. The dict has ``stdout``, ``stderr``, ``result`` (the
    last expression's text, or None) and ``error`` (``"Name: value"`` or None);
    a timeout is an error like any other."""
    host = HostTools({tool_name(tool): _function(tool) for tool in tools})

    async def code_execute_fn(code: str) -> Dict[str, Any]:
        """Run Python code in a persistent session: its stdout, stderr, last value and error."""
        result = await arun(ci, code, tools=host, context=context, timeout=timeout)
        error = result.error
        return {"stdout": result.stdout, "stderr": result.stderr, "result": result.text,
                "error": None if error is None else "%s: %s" % (error.name, error.value)}

    return code_execute_fn


def _function(tool: Any) -> Callable[..., Any]:
    """What to call for a tool: a FunctionTool's own function, or the tool."""
    function: Callable[..., Any] = getattr(tool, "real_fn", None) or tool
    return function
