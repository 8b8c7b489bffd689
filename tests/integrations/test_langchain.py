"""langchain-core 1.x and langgraph 1.x: InterpTool in the prebuilt ReAct
agent; langgraph-codeact 0.1 (with the langgraph 0.3 it supports):
make_eval_fn in create_codeact. Scripted models, no network."""

from __future__ import annotations

import pytest

from frameworks import framework_python, run_driver


@pytest.fixture(scope="module")
def langchain_python():
    return framework_python("langchain")


@pytest.fixture(scope="module")
def codeact_python():
    return framework_python("codeact")


@pytest.mark.limit(600)
@pytest.mark.parametrize("where", ["plain", "sandbox"])
def test_interp_tool_in_a_react_agent_sync_and_async(langchain_python, where):
    seen = run_driver(langchain_python, "langchain_agent", where)
    assert seen["sandboxed"] is (where == "sandbox")
    assert seen["name"] == "python" and list(seen["schema"]) == ["code"]
    assert seen["seen"] == [
        "compute",
        "x is 21\n",  # printed output reaches the model
        "42\n",  # the last value, and state across calls
        "NameError: name 'undefined_name' is not defined\n",  # errors returned as Name: value
        "TimeoutError: the code ran longer than 3 s: it was interrupted; the variables are kept\n",
    ]
    assert seen["final"] == "done"
    assert seen["async_seen"] == ["again", "22\n"]  # ainvoke, same context: x survived the timeout
    assert seen["async_final"] == "done"


@pytest.mark.limit(600)
@pytest.mark.parametrize("where", ["plain", "sandbox"])
def test_codeact_eval_fn_with_host_tools_and_state(codeact_python, where):
    seen = run_driver(codeact_python, "codeact_agent", where)
    assert seen["sandboxed"] is (where == "sandbox")
    assert seen["seen"] == [
        "go",
        "(not sent into the context: lock: a lock is neither JSON nor picklable)\n"
        "(not sent into the context: host_only: AttributeError: Can't get attribute 'HostOnly' on <module "
        "'__main__'>)\nrate 3\n",  # a value of the graph's context is visible to the code, the others said why
        "[1, 2] [1, 2] 5\n",  # in-place changes (of a set, which never leaves the worker) and a host tool
        "TypeError: amount must be an int\n",  # the tool's exception, raised in the code
        "ZeroDivisionError: division by zero\n",
        "TimeoutError: the code ran longer than 3 s: it was interrupted; the variables are kept\n",
        "[1, 2] [1, 2]\n",
    ]
    assert seen["ledger"] == [5]  # the tool ran on the host, with its closure
    # new_vars: JSON values only (the set stays inside); the graph keeps what it had
    assert sorted(seen["context"]) == ["host_only", "items", "lock", "rate"]
    assert seen["context"]["items"] == [1, 2] and seen["context"]["rate"] == 3
    assert seen["final"] == "All done."
