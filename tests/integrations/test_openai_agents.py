"""openai-agents 0.24: Runner's loop with code_interpreter_tool and a scripted Model."""

from __future__ import annotations

import pytest

from frameworks import framework_python, run_driver


@pytest.fixture(scope="module")
def python():
    return framework_python("openai_agents")


@pytest.mark.limit(600)
@pytest.mark.parametrize("where", ["plain", "sandbox"])
def test_runner_uses_run_python(python, where):
    seen = run_driver(python, "openai_agents_agent", where)
    assert seen["sandboxed"] is (where == "sandbox")
    assert seen["name"] == "run_python" and seen["schema"]["required"] == ["code"]
    _, printed, value, failed, bad_arguments, timeout, later = seen["seen"]
    assert printed == "x is 21\n"
    assert value == "42\n"  # state across calls, the last value
    assert failed.startswith("value-of-k\nTraceback (most recent call last):\n")  # an async host tool, awaited
    assert failed.endswith("ZeroDivisionError: division by zero\n")  # the error, as text
    assert bad_arguments.startswith('Error: run_python takes {"code": string} (JSONDecodeError')
    assert timeout == "TimeoutError: the code ran longer than 3 s: it was interrupted; the variables are kept\n"
    assert later == "21\n"
    assert seen["final"] == "done"  # nothing failed the run
    assert seen["asked"] == ["k"]
