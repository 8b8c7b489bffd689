"""LlamaIndex's CodeActAgent with make_code_execute_fn and a scripted LLM."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any, Dict, List

from _common import main
from llama_index.core.agent.workflow import CodeActAgent
from llama_index.core.base.llms.types import (ChatMessage, ChatResponse, CompletionResponse, LLMMetadata)
from llama_index.core.llms import CustomLLM
from llama_index.core.tools import FunctionTool

from interp import AsyncCodeInterpreter, CodeInterpreter
from interp.integrations.llama_index import make_code_execute_fn


def execute(code: str) -> str:
    return "Let me run this.\n<execute>\n%s\n</execute>" % code


STEPS = [
    execute("total = add(20, 1)\nprint('total is', total)"),
    execute("total * 2"),
    execute("add('a', None)"),
    execute("import time\ntime.sleep(60)"),
    execute("print(total, await fetch('k'))"),
    "The answer is 42.",
]


class Scripted(CustomLLM):
    replies: List[str]
    seen: List[str]

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True, model_name="scripted")

    def chat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        self.seen.append(messages[-1].content or "")
        return ChatResponse(message=ChatMessage(role="assistant", content=self.replies.pop(0)))

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise NotImplementedError

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError


def scenario(ci: CodeInterpreter) -> Dict[str, Any]:
    threads: List[str] = []

    def add(a: int, b: int) -> int:
        """Adds two integers."""
        threads.append("loop" if threading.current_thread() is threading.main_thread() else "thread")
        if not isinstance(a, int) or not isinstance(b, int):
            raise TypeError("add takes integers")
        return a + b

    async def fetch(key: str) -> str:
        """Fetches a value (async)."""
        await asyncio.sleep(0)
        return "value-of-" + key

    tools = [FunctionTool.from_defaults(add), fetch]
    llm = Scripted(replies=list(STEPS), seen=[])
    ticks = 0

    async def go() -> Any:
        nonlocal ticks
        runner: Any = ci
        if "async" in sys.argv[1:]:  # an AsyncCodeInterpreter in the same sandbox (or none)
            runner = AsyncCodeInterpreter(sandbox=ci.sandbox) if ci.sandbox else AsyncCodeInterpreter()
        try:
            agent = CodeActAgent(code_execute_fn=make_code_execute_fn(runner, tools=tools, timeout=3),
                                 tools=list(tools), llm=llm, streaming=False)
            handler = agent.run(user_msg="compute", max_iterations=20)
            while not handler.done():  # the loop keeps turning while code runs
                ticks += 1
                await asyncio.sleep(0.05)
            return await handler
        finally:
            if runner is not ci:
                await runner.close()

    response = asyncio.run(go())
    return {"seen": llm.seen, "final": str(response), "threads": threads, "ticks": ticks}


if __name__ == "__main__":
    main(scenario)
