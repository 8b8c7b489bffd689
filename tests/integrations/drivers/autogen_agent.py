"""AutoGen's CodeExecutorAgent (with a scripted model client) on InterpCodeExecutor."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from typing import Any, Dict, List

from _common import main
from autogen_agentchat.agents import CodeExecutorAgent
from autogen_core import CancellationToken
from autogen_ext.models.replay import ReplayChatCompletionClient

from interp import AsyncCodeInterpreter, CodeInterpreter, Sandbox
from interp.integrations.autogen import InterpCodeExecutor


def blocks(*pairs: str) -> str:
    return "Here:\n" + "".join("```%s\n%s\n```\n" % (pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2))


class Scripted(ReplayChatCompletionClient):  # type: ignore[misc]
    """Replays its script and records what it was last told."""

    seen: List[str]

    async def create(self, messages: Any, **kwargs: Any) -> Any:
        self.seen.append(str(messages[-1].content))
        return await super().create(messages, **kwargs)


TASKS = [
    blocks("python", "x = 21\nprint('x is', x)"),
    blocks("python", "import os\nprint(x * 2, os.getcwd())", "bash", "echo shell in $PWD; exit 3",
           "python", "print('skipped')"),
    blocks("python", "raise ValueError('bad value')"),
    blocks("python", "import time\ntime.sleep(60)"),
    blocks("sh", "echo fine"),
]


async def go(ci: Any) -> Dict[str, Any]:
    replies: List[str] = []
    for task in TASKS:
        replies += [task, "reflected"]
    replies += [blocks("python", "import time\ntime.sleep(60)"), blocks("python", "print(x)"), "reflected"]
    model = Scripted(replies)
    model.seen = []
    executor = InterpCodeExecutor(ci, timeout=3)
    agent = CodeExecutorAgent("coder", executor, model_client=model, approval_func=lambda request: _approve(),
                              supported_languages=["python", "sh", "bash"])
    for _ in TASKS:
        await agent.run(task="go")
    token = CancellationToken()
    asyncio.get_running_loop().call_later(1, token.cancel)
    started = time.monotonic()
    try:
        await agent.run(task="go", cancellation_token=token)
        cancelled = "not cancelled"
    except asyncio.CancelledError:
        cancelled = "CancelledError"
    cancel_took = time.monotonic() - started
    after = await agent.run(task="go")  # the context survived the cancellation
    await executor.restart()
    restarted = await executor.execute_code_blocks([_block("python", "print('x' in globals())")],
                                                   CancellationToken())
    return {"seen": model.seen, "cancelled": cancelled, "cancel_took": cancel_took,
            "after": model.seen[-1], "after_messages": len(after.messages), "restarted": restarted.output}


def _approve() -> Any:
    from autogen_agentchat.agents import ApprovalResponse
    return ApprovalResponse(approved=True, reason="tests")


def _block(language: str, code: str) -> Any:
    from autogen_core.code_executor import CodeBlock
    return CodeBlock(code=code, language=language)


def scenario(ci: CodeInterpreter) -> Dict[str, Any]:
    if "async" not in sys.argv[1:]:
        return asyncio.run(go(ci))

    async def with_async(workspace: str) -> Dict[str, Any]:
        aci = AsyncCodeInterpreter(sandbox=Sandbox(workspace)) if ci.sandbox else AsyncCodeInterpreter(workspace)
        try:
            return await go(aci)
        finally:
            await aci.close()

    with tempfile.TemporaryDirectory() as workspace:
        return asyncio.run(with_async(workspace))


if __name__ == "__main__":
    main(scenario)
