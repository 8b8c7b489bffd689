"""InterpTool in LangGraph's prebuilt ReAct agent, sync then async, with a scripted model."""

from __future__ import annotations

import asyncio
from typing import Any, Dict

from _common import main
from _lcmodel import Scripted, code_call
from langgraph.prebuilt import create_react_agent

from interp import CodeInterpreter
from interp.integrations.langchain import InterpTool

STEPS = ["x = 21\nprint('x is', x)", "x * 2", "undefined_name + 1", "import time\ntime.sleep(60)"]


def scenario(ci: CodeInterpreter) -> Dict[str, Any]:
    tool = InterpTool(ci=ci, timeout=3)
    model = Scripted(replies=[code_call(code, n) for n, code in enumerate(STEPS)] + ["done"], seen=[])
    out = create_react_agent(model, [tool]).invoke({"messages": [("user", "compute")]})
    later = Scripted(replies=[code_call("x += 1\nprint(x)", 9), "done"], seen=[])
    async_out = asyncio.run(create_react_agent(later, [tool]).ainvoke({"messages": [("user", "again")]}))
    return {"seen": model.seen, "final": out["messages"][-1].content, "async_seen": later.seen,
            "async_final": async_out["messages"][-1].content, "name": tool.name,
            "schema": tool.tool_call_schema.model_json_schema()["properties"]}


if __name__ == "__main__":
    main(scenario)
