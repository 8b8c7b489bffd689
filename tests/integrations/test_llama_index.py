"""llama-index-core 0.14: CodeActAgent's loop on make_code_execute_fn, with a scripted LLM."""

from __future__ import annotations

import pytest

from frameworks import framework_python, run_driver


@pytest.fixture(scope="module")
def python():
    return framework_python("llama_index")


def reply(stdout="", result=None, error=None):
    return "Result of executing the code given:\n\n%r" % {"stdout": stdout, "stderr": "", "result": result,
                                                          "error": error}


@pytest.mark.limit(600)
@pytest.mark.parametrize("how", [("plain", "sync"), ("plain", "async"), ("sandbox", "sync")])
def test_code_act_agent_runs_on_interp(python, how):
    seen = run_driver(python, "llama_index_agent", *how)
    assert seen["sandboxed"] is (how[0] == "sandbox")
    assert seen["seen"] == [
        "compute",
        reply(stdout="total is 21\n"),  # a FunctionTool ran on the host; output reaches the model
        reply(result="42"),  # state across steps, the last value
        reply(error="TypeError: add takes integers"),  # the tool's exception, raised in the code
        reply(error="TimeoutError: the code ran longer than 3 s: it was interrupted; the variables are kept"),
        reply(stdout="21 value-of-k\n"),  # an async tool is awaited in the code, and runs on the host's loop
    ]
    assert seen["final"] == "The answer is 42."
    assert seen["threads"] == ["thread", "thread"]  # sync tools never run on the event loop's thread
    assert seen["ticks"] > 20  # the event loop kept turning through the 3 s timeout
