"""A smolagents CodeAgent with a scripted model, running on InterpExecutor."""

from __future__ import annotations

from typing import Any, Dict, List

from _common import main
from smolagents import CodeAgent, tool
from smolagents.models import ChatMessage, MessageRole, Model

from interp import CodeInterpreter
from interp.integrations.smolagents import InterpExecutor

STEPS = [
    "Set x.\n<code>\nx = 21 * rate // 2\nprint('x is', x)\n</code>",
    "Look up, then fail.\n<code>\nprint(lookup('Paris'))\nx = x * 2\n1/0\n</code>",
    "React to the error.\n<code>\ntry:\n    lookup('Atlantis')\nexcept ValueError as e:\n"
    "    print('caught', e)\nimport time\ntime.sleep(60)\n</code>",
    "Answer.\n<code>\ntry:\n    final_answer({'x': x, 'pid_is_int': isinstance(__import__('os').getpid(), int)})\n"
    "except BaseException:\n    pass\nprint('after final_answer')\n</code>",
]


class Scripted(Model):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(model_id="scripted")
        self.steps = list(STEPS)
        self.seen: List[str] = []

    def generate(self, messages: Any, stop_sequences: Any = None, **kwargs: Any) -> ChatMessage:
        last = messages[-1]
        content = last.content if isinstance(last, ChatMessage) else last["content"]
        self.seen.append(content if isinstance(content, str) else " ".join(part.get("text", "") for part in content))
        return ChatMessage(role=MessageRole.ASSISTANT, content=self.steps.pop(0))


def scenario(ci: CodeInterpreter) -> Dict[str, Any]:
    calls: List[str] = []
    population = {"Paris": 2100000}  # host state, unreachable from a sandbox

    @tool
    def lookup(city: str) -> str:
        """Looks a city up.

        Args:
            city: the city's name
        """
        calls.append(city)
        if city not in population:
            raise ValueError("no such city: %s" % city)
        return "%s has %d people" % (city, population[city])

    model = Scripted()
    agent = CodeAgent(tools=[lookup], model=model, executor=InterpExecutor(ci, timeout=3), max_steps=6)
    answer = agent.run("What is x?", additional_args={"rate": 2})
    agent.cleanup()
    return {"answer": answer, "seen": model.seen, "calls": calls, "left": len(model.steps),
            "after_cleanup": ci.run_code("x").text}


if __name__ == "__main__":
    main(scenario)
