"""smolagents 1.26: a CodeAgent's loop on InterpExecutor, with a scripted model."""

from __future__ import annotations

import pytest

from frameworks import framework_python, run_driver


@pytest.fixture(scope="module")
def python():
    return framework_python("smolagents")


def check(seen, sandboxed):
    assert seen["sandboxed"] is sandboxed
    assert seen["left"] == 0  # every scripted step ran, the last one ended the run
    assert seen["answer"] == {"x": 42, "pid_is_int": True}  # final_answer(...) ended the run with its value
    assert seen["after_cleanup"] == "42"  # state across steps; cleanup() did not close the interpreter given
    observation, failed, timed_out = seen["seen"][1:]
    assert "x is 21" in observation  # additional_args reached the code (x = 21 * rate // 2), its output the model
    assert "Paris has 2100000 people" in failed  # a host tool's result, printed by the code
    assert "ZeroDivisionError: division by zero" in failed  # an error the model reacts to
    assert "caught no such city: Atlantis" in timed_out  # a host tool's exception, raised in the code
    assert "TimeoutError: the code ran longer than 3 s" in timed_out
    assert seen["calls"] == ["Paris", "Atlantis"]  # the tools ran on the host


@pytest.mark.limit(600)
def test_code_agent_runs_on_interp(python):
    check(run_driver(python, "smolagents_agent"), False)


@pytest.mark.limit(600)
def test_code_agent_runs_in_a_sandbox_with_tools_on_the_host(python):
    check(run_driver(python, "smolagents_agent", "sandbox"), True)
