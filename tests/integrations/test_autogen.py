"""autogen-core / autogen-agentchat 0.7: CodeExecutorAgent on InterpCodeExecutor, with a scripted model client."""

from __future__ import annotations

import re

import pytest

from frameworks import framework_python, run_driver


@pytest.fixture(scope="module")
def python():
    return framework_python("autogen")


def failed(code, output):
    return "The script ran, then exited with an error (POSIX exit code: %d)\nIts output was:\n%s" % (code, output)


@pytest.mark.limit(600)
@pytest.mark.parametrize("how", [("plain", "sync"), ("plain", "async"), ("sandbox", "sync")])
def test_code_executor_agent_runs_on_interp(python, how):
    seen = run_driver(python, "autogen_agent", *how)
    assert seen["sandboxed"] is (how[0] == "sandbox")
    _, first, _, mixed, _, error, _, timeout, _, shell, _, _, after = seen["seen"]
    assert first == "x is 21\n"  # the model reflects on the output
    # state across calls; python and bash share the working directory; the shell's status is the exit code;
    # the block after the failed one was skipped
    assert re.fullmatch(re.escape(failed(3, "42 ")) + r"(\S+)\nshell in \1\n", mixed), mixed
    assert error.startswith(failed(1, "Traceback (most recent call last):\n"))
    assert error.endswith("ValueError: bad value\n")
    assert timeout == failed(124, "TimeoutError: the code ran longer than 3 s: it was interrupted; "
                                  "the variables are kept\n")
    assert shell == "fine\n"
    assert seen["cancelled"] == "CancelledError"  # the token interrupted a 60 s sleep ...
    assert seen["cancel_took"] < 30
    assert after == "21\n"  # ... and the context lived on
    assert seen["restarted"] == "False\n"  # restart(): a fresh context
