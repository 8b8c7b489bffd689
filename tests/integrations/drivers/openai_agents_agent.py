"""The OpenAI Agents SDK's Runner with code_interpreter_tool and a scripted Model."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, List

from _common import main
from agents import Agent, Runner, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from interp import CodeInterpreter
from interp.integrations.openai_agents import code_interpreter_tool

STEPS = [
    json.dumps({"code": "x = 21\nprint('x is', x)"}),
    json.dumps({"code": "x * 2"}),
    json.dumps({"code": "print(await lookup('k'))\n1/0"}),
    "{not json",
    json.dumps({"code": "import time\ntime.sleep(60)"}),
    json.dumps({"code": "x"}),
]


class Scripted(Model):  # type: ignore[misc]
    def __init__(self) -> None:
        self.steps = list(STEPS)
        self.seen: List[str] = []

    async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> ModelResponse:
        last = input[-1] if isinstance(input, list) else {"output": input}
        self.seen.append(str(last.get("output", last.get("content"))))
        if self.steps:
            n = len(self.seen)
            item: Any = ResponseFunctionToolCall(type="function_call", name="run_python", call_id="call_%d" % n,
                                                 arguments=self.steps.pop(0))
        else:
            item = ResponseOutputMessage(id="msg", type="message", role="assistant", status="completed",
                                         content=[ResponseOutputText(type="output_text", text="done",
                                                                     annotations=[])])
        return ModelResponse(output=[item], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def scenario(ci: CodeInterpreter) -> Dict[str, Any]:
    asked: List[str] = []

    async def lookup(key: str) -> str:
        asked.append(key)
        return "value-of-" + key

    set_tracing_disabled(True)  # no network
    model = Scripted()
    tool = code_interpreter_tool(ci, timeout=3, tools=[lookup])
    agent = Agent(name="analyst", instructions="Use run_python.", model=model, tools=[tool])
    result = asyncio.run(Runner.run(agent, "compute", max_turns=20))
    return {"seen": model.seen, "final": result.final_output, "asked": asked, "name": tool.name,
            "schema": tool.params_json_schema}


if __name__ == "__main__":
    main(scenario)
