"""A scripted LangChain chat model: it answers with the next scripted
message and records the text of the last message it was given."""

from __future__ import annotations

from typing import Any, List

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult


def code_call(code: str, n: int) -> AIMessage:
    """An AI message calling the tool ``python`` with ``code``."""
    return AIMessage(content="", tool_calls=[{"name": "python", "args": {"code": code}, "id": "call_%d" % n}])


class Scripted(BaseChatModel):
    replies: List[Any]
    seen: List[str] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Scripted:
        return self

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        self.seen.append(str(messages[-1].content))
        reply = self.replies.pop(0)
        return ChatResult(generations=[ChatGeneration(message=reply if isinstance(reply, AIMessage)
                                                      else AIMessage(content=reply))])
