"""Host tools (interp.integrations.hosttools) against hostile code, and the
adapters' import rules. No framework needed: these run in any environment."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from interp import AsyncCodeInterpreter, CodeInterpreter
from interp.integrations._run import arun, model_text, run
from interp.integrations.hosttools import MARK, MAX_REPLY, MAX_REQUEST, HostTools

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ADAPTERS = {  # module -> (a framework module it needs, the extra that installs it)
    "smolagents": ("smolagents", "smolagents"),
    "langchain": ("langchain_core", "langchain"),
    "langgraph": ("langgraph_codeact", "langgraph"),
    "llama_index": ("llama_index", "llama-index"),
    "autogen": ("autogen_core", "autogen"),
    "openai_agents": ("agents", "openai-agents"),
}


class Custom(Exception):
    pass


@pytest.fixture(scope="module")
def ci():
    with CodeInterpreter() as interpreter:
        yield interpreter


@pytest.fixture
def calls():
    return []


@pytest.fixture
def tools(calls):
    def add(a, b):
        calls.append(("add", a, b))
        return a + b

    def fail(kind):
        calls.append(("fail", kind))
        raise {"value": ValueError("bad value"), "custom": Custom("custom failure")}[kind]

    def opaque():
        return object()

    def odd():
        raise UnicodeDecodeError("utf-8", b"x", 0, 1, "bad byte")

    def huge():
        return "x" * (MAX_REPLY + 10)

    def slow(seconds):
        time.sleep(seconds)
        return "slept"

    async def fetch(key):
        await asyncio.sleep(0)
        return "value-of-" + key

    return HostTools({"add": add, "fail": fail, "opaque": opaque, "odd": odd, "huge": huge, "slow": slow,
                      "fetch": fetch})


def text(ci, code, tools, **options):
    return model_text(run(ci, code, tools=tools, timeout=30, **options))


def forged(request):
    """Code that sends a tool call of its own making, past the stubs."""
    return "print(input(%r + %s))" % (MARK, request)


def test_tools_run_on_the_host_with_json_values(ci, tools, calls):
    assert text(ci, "print(add(2, 3), add([1], b=[2]))", tools) == "5 [1, 2]\n"
    assert calls == [("add", 2, 3), ("add", [1], [2])]
    assert text(ci, "import asyncio\nprint(await fetch('k'))", tools) == "value-of-k\n"  # async: awaitable stub


def test_a_tools_exception_is_raised_in_the_code(ci, tools):
    assert text(ci, "try:\n    fail('value')\nexcept ValueError as e:\n    print('caught', e)", tools) \
        == "caught bad value\n"
    assert text(ci, "fail('custom')", tools) == "HostToolError: Custom: custom failure\n"
    assert text(ci, "odd()", tools).startswith("HostToolError: UnicodeDecodeError: 'utf-8' codec")


def test_only_json_crosses_and_nothing_else_is_callable(ci, tools, calls):
    assert text(ci, "add(object(), 1)", tools).startswith("TypeError: add() takes JSON values only")
    assert text(ci, "opaque()", tools).startswith("TypeError: the tool returned object, which is not a JSON value")
    assert text(ci, "huge()", tools) == "ValueError: the tool returned more than %d characters of JSON\n" % MAX_REPLY
    # forged calls: a name that is not a tool, junk, bad shapes, too deep, too big
    assert '"NameError", "no host tool named \'open\'"' in text(
        ci, forged(repr(json.dumps({"tool": "open", "args": ["/etc/passwd"], "kwargs": {}}))), tools)
    assert '"NameError", "no host tool named \'__init__\'"' in text(
        ci, forged(repr(json.dumps({"tool": "__init__", "args": [], "kwargs": {}}))), tools)
    assert "is not valid JSON" in text(ci, forged("'{nope'"), tools)
    assert "must be a JSON object" in text(ci, forged("'[1]'"), tools)
    assert "args must be a list" in text(ci, forged(repr('{"tool": "add", "args": {}, "kwargs": {}}')), tools)
    assert "more than 64 deep" in text(ci, forged("'[' * 100000"), tools)
    assert "a tool call of more than %d characters" % MAX_REQUEST in text(ci, forged("' ' * %d" % MAX_REQUEST),
                                                                           tools)
    assert "NaN is not JSON" in text(ci, forged(repr('{"tool": "add", "args": [NaN, 1], "kwargs": {}}')), tools)
    assert calls == []  # none of it reached a tool
    assert text(ci, "print(add(1, 1))", tools) == "2\n"  # and the context is fine


def test_input_of_the_code_itself_and_calls_from_threads_get_no_answer(ci, tools):
    assert text(ci, "input('name? ')", tools) == "EOFError: EOF when reading a line\n"
    code = ("import threading\nout = []\n"
            "def go():\n    try:\n        add(1, 2)\n    except Exception as e:\n        out.append(str(e))\n"
            "t = threading.Thread(target=go)\nt.start()\nt.join()\nprint(out)")
    assert "add() is a host tool: it answers only in runs its agent makes, on the cell's main thread" \
        in text(ci, code, tools)
    assert "add() is a host tool" in ci.run_code("add(1, 2)").error.value  # a run the adapter did not make


def test_stubs_come_back_after_being_deleted_or_replaced(ci, tools):
    text(ci, "del add\nfetch = None", tools)
    assert text(ci, "print(add(1, 2))", tools) == "3\n"


def test_a_slow_tool_still_ends_in_a_timeout_the_model_sees(ci, tools):
    started = time.monotonic()
    result = run(ci, "slow(2)\nimport time\ntime.sleep(60)", tools=tools, timeout=1)
    assert result.error.name == "TimeoutError"
    assert time.monotonic() - started < 30
    assert text(ci, "print('alive')", tools) == "alive\n"


def test_a_final_tool_ends_the_run(ci):
    seen = []
    final = HostTools({"final_answer": seen.append}, final=["final_answer"])
    result = run(ci, "final_answer({'a': 1})\nprint('not reached')", tools=final)
    assert result.error.name == "FinalAnswerException" and result.stdout == ""
    assert seen == [{"a": 1}]


def test_tool_names_are_checked():
    with pytest.raises(ValueError, match="identifier"):
        HostTools({"not a name": print})
    with pytest.raises(ValueError, match="identifier"):
        HostTools({"class": print})
    with pytest.raises(ValueError, match="identifier"):
        HostTools({"_interp_host_tools": print})  # the stubs' own helper
    with pytest.raises(TypeError, match="not callable"):
        HostTools({"x": 3})


def test_async_runs_answer_on_the_loop(tools):
    async def go():
        async with AsyncCodeInterpreter() as aci:
            result = await arun(aci, "print(add(1, 2), await fetch('a'))", tools=tools, timeout=30)
            stopped = await arun(aci, "import time\ntime.sleep(60)", timeout=1)
            return model_text(result), model_text(stopped)
    done, stopped = asyncio.run(go())
    assert done == "3 value-of-a\n"
    assert stopped == "TimeoutError: the code ran longer than 1 s: it was interrupted; the variables are kept\n"


def test_a_dead_worker_is_an_error_the_model_sees(ci, tools):
    assert text(ci, "import os\nos._exit(3)", tools).startswith("WorkerDiedError: ")
    assert text(ci, "print('fresh')", tools) == "fresh\n"


def test_importing_interp_and_its_integrations_imports_no_framework():
    code = ("import sys, interp, interp.integrations, interp.integrations.hosttools\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in %r))" % sorted(
                {framework.split(".")[0] for framework, _ in ADAPTERS.values()} | {"pydantic", "openai"}))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[]\n"


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_an_adapter_without_its_framework_names_the_extra(adapter):
    framework, extra = ADAPTERS[adapter]
    code = ("import sys\nsys.modules[%r] = None  # as if not installed\n"
            "try:\n    import interp.integrations.%s\nexcept ImportError as e:\n    print(e)\n" % (framework, adapter))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("interp.integrations.%s needs %s: pip install 'interp[%s]'"
                                  % (adapter, framework.split(".")[0], extra)), proc.stdout


def test_host_tools_through_a_remote_interpreter(tmp_path, tools, calls):
    from interp import RemoteCodeInterpreter
    from remote_helpers import ThreadServer
    server = ThreadServer(str(tmp_path))
    try:
        with RemoteCodeInterpreter(server.url) as remote:
            assert text(remote, "print(add(2, 3))\nfail('value')", tools) == "5\nValueError: bad value\n"
            assert model_text(run(remote, "import time\ntime.sleep(60)", tools=tools, timeout=1)).startswith(
                "TimeoutError: the code ran longer than 1 s")
    finally:
        server.close()
    assert calls == [("add", 2, 3), ("fail", "value")]
