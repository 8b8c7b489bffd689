"""interp as the code executor of agent frameworks: one thin module per
framework, each importing its framework only when it is itself imported.

- ``interp.integrations.smolagents.InterpExecutor``: a smolagents executor
- ``interp.integrations.langchain.InterpTool``: a LangChain tool named ``python``
- ``interp.integrations.langgraph.make_eval_fn``: langgraph-codeact's ``eval_fn``
- ``interp.integrations.llama_index.make_code_execute_fn``: LlamaIndex CodeActAgent's ``code_execute_fn``
- ``interp.integrations.autogen.InterpCodeExecutor``: an AutoGen ``CodeExecutor``
- ``interp.integrations.openai_agents.code_interpreter_tool``: an OpenAI Agents SDK ``FunctionTool``

Tools the agent gives the code run on the host (the agent's process), the
code in the worker: see :mod:`interp.integrations.hosttools`.
"""

from .hosttools import HostTools

__all__ = ["HostTools"]
