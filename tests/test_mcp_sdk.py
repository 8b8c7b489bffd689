"""Interoperability with the official MCP Python SDK (``mcp``, the test extra
pins it): its own ``Client`` drives real ``python -m interp mcp`` processes
over stdio and a real ``python -m interp serve`` over Streamable HTTP, in
both eras the SDK speaks: ``mode="legacy"`` (the initialize handshake, at
2025-11-25) and ``mode="auto"`` (``server/discover``, then the stateless
2026-07-28 revision)."""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Dict, List, Literal, Optional

import pytest

if sys.version_info < (3, 10):  # pragma: no cover - the SDK needs Python 3.10+
    pytest.skip("the official MCP SDK needs Python >= 3.10", allow_module_level=True)
if importlib.util.find_spec("mcp") is None:
    pytest.skip("the official MCP Python SDK is not installed (pip install 'mcp==2.3.0', as the test extra does)",
                allow_module_level=True)

import anyio
import httpx2
import jsonschema
import mcp_types as types
from pydantic import TypeAdapter

from mcp import Client
from mcp.client import ClaimContext, ClientExtension, ResultClaim
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

ROOT = str(Path(__file__).resolve().parent.parent)
#: The SDK's two ways in: the handshake era, and discovery of the 2026-07-28 revision.
ERAS = {"legacy": "2025-11-25", "auto": "2026-07-28"}
#: A bound on each test's async part (the conftest's SIGALRM limit is the last resort).
BOUND = 60


class Server:
    """How to reach one real interp MCP server: a stdio command the SDK spawns, or a running ``serve``."""

    def __init__(self, kind: str, args: List[str], log: Path) -> None:
        self.kind = kind
        self.args = args
        self.log = log
        self.proc: Optional[subprocess.Popen[str]] = None
        self.url = ""
        if kind == "http":
            self.proc = subprocess.Popen([sys.executable, "-m", "interp", "serve", "--port", "0", "--quiet", *args],
                                         cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, text=True)
            assert self.proc.stderr is not None
            line = self.proc.stderr.readline()
            found = re.search(r"http://[^:]+:(\d+)", line)
            assert found, line
            self.url = "http://127.0.0.1:%s/mcp" % found.group(1)

    @contextlib.asynccontextmanager
    async def client(self, mode: str, *, headers: Optional[Dict[str, str]] = None, read_timeout: float = 30,
                     **options: Any) -> AsyncIterator[Client]:
        """An entered SDK ``Client`` in ``mode``; ``read_timeout`` is the HTTP client's read timeout."""
        if self.kind == "stdio":
            params = StdioServerParameters(command=sys.executable, args=["-m", "interp", "mcp", *self.args],
                                           cwd=ROOT, env={"PYTHONPATH": ROOT})
            with open(self.log, "a") as errlog:
                async with Client(stdio_client(params, errlog=errlog), mode=mode, **options) as client:
                    yield client
        else:
            timeout = httpx2.Timeout(30, read=read_timeout)
            async with httpx2.AsyncClient(headers=headers or {}, timeout=timeout) as http:
                async with Client(streamable_http_client(self.url, http_client=http), mode=mode,
                                  **options) as client:
                    yield client

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
            assert self.proc.stderr is not None
            self.proc.stderr.close()


@pytest.fixture
def start(tmp_path):
    """``start(kind, *args)``: a Server of ``kind`` ("stdio" or "http"), stopped after the test."""
    servers: List[Server] = []

    def make(kind: str, *args: str) -> Server:
        servers.append(Server(kind, list(args), tmp_path / ("server-%d.log" % len(servers))))
        return servers[-1]
    yield make
    for server in servers:
        server.close()


def run(body: Callable[[], Any]) -> Any:
    """Run an async test body under BOUND seconds."""
    async def bounded() -> Any:
        with anyio.fail_after(BOUND):
            return await body()
    return anyio.run(bounded)


def text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


both_transports = pytest.mark.parametrize("kind", ["stdio", "http"])
both_eras = pytest.mark.parametrize("mode", list(ERAS))


@both_transports
@both_eras
def test_sdk_negotiates_its_era_and_lists_valid_tools(start, kind, mode):
    server = start(kind)

    async def body() -> None:
        async with server.client(mode) as client:
            assert client.protocol_version == ERAS[mode]
            assert client.server_info is not None and client.server_info.name == "interp"
            listed = await client.list_tools()
        tools = {tool.name: tool for tool in listed.tools}
        assert set(tools) == {"run_code", "create_context", "list_contexts", "delete_context", "restart_context",
                              "interrupt", "write_file"}
        for tool in tools.values():
            assert tool.title and tool.description and tool.annotations is not None
            jsonschema.Draft202012Validator.check_schema(tool.input_schema)
            if tool.output_schema is not None:
                jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        run_code = tools["run_code"]
        assert run_code.input_schema["required"] == ["code"]
        assert {"code", "context_id", "timeout"} <= set(run_code.input_schema["properties"])
        assert run_code.output_schema is not None and "execution_count" in run_code.output_schema["properties"]
        assert run_code.annotations.read_only_hint is False and run_code.annotations.open_world_hint is True
        assert tools["list_contexts"].annotations.read_only_hint is True
    run(body)


@both_transports
@both_eras
def test_sdk_runs_code_keeps_state_and_uses_contexts(start, kind, mode):
    server = start(kind)

    async def body() -> None:
        async with server.client(mode) as client:
            first = await client.call_tool("run_code", {"code": "x = 6\nprint(x * 7)\nx"})
            assert not first.is_error
            assert text(first) == "[stdout]\n42\n\n[result]\n6"
            structured = first.structured_content
            assert structured is not None
            assert structured["stdout"] == "42\n" and structured["outcome"] == "ok"
            assert structured["results"] == [{"is_main_result": True, "data": {"text/plain": "6"}}]
            count = structured["execution_count"]
            again = await client.call_tool("run_code", {"code": "x += 1\nx"})
            assert again.structured_content["results"][0]["data"]["text/plain"] == "7"
            assert again.structured_content["execution_count"] == count + 1

            made = await client.call_tool("create_context", {})
            context_id = made.structured_content["context"]["id"]
            inside = await client.call_tool("run_code", {"code": "y = 'inside'\ny", "context_id": context_id})
            assert inside.structured_content["results"][0]["data"]["text/plain"] == "'inside'"
            assert inside.structured_content["execution_count"] == 1
            listed = await client.call_tool("list_contexts", {})
            assert context_id in [c["id"] for c in listed.structured_content["contexts"]]

            # the default context has no y: an error result with the traceback, its state kept
            failed = await client.call_tool("run_code", {"code": "y"})
            assert failed.is_error
            assert "Traceback" in text(failed) and "NameError" in text(failed)
            error = failed.structured_content["error"]
            assert error["name"] == "NameError" and "Traceback" in error["traceback"]
            assert failed.structured_content["outcome"] == "error" and failed.structured_content["state_kept"]
            await client.session.validate_tool_result("run_code", failed)  # error results conform too

            deleted = await client.call_tool("delete_context", {"context_id": context_id})
            assert not deleted.is_error
            gone = await client.call_tool("run_code", {"code": "1", "context_id": context_id})
            assert gone.is_error and "ContextNotFoundError" in text(gone)

            bad = await client.call_tool("run_code", {"code": 5})  # from 2025-11-25: a tool error
            assert bad.is_error and "code must be a string" in text(bad)
            with pytest.raises(MCPError):
                await client.call_tool("no_such_tool", {})
    run(body)


@both_transports
@both_eras
def test_sdk_timeout_is_an_error_result_and_the_state_survives(start, kind, mode):
    server = start(kind)

    async def body() -> None:
        async with server.client(mode) as client:
            await client.call_tool("run_code", {"code": "kept = 'yes'"})
            timed = await client.call_tool("run_code", {"code": "import time\ntime.sleep(30)", "timeout": 0.5})
            assert timed.is_error
            assert timed.structured_content["outcome"] == "timeout" and timed.structured_content["state_kept"]
            assert "KeyboardInterrupt" in text(timed)
            await client.session.validate_tool_result("run_code", timed)
            after = await client.call_tool("run_code", {"code": "kept"})
            assert after.structured_content["results"][0]["data"]["text/plain"] == "'yes'"
    run(body)


@both_transports
@both_eras
def test_sdk_gets_a_matplotlib_figure_as_an_image_block(start, kind, mode):
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib is not installed (the test extra installs it)")
    server = start(kind)

    async def body() -> None:
        async with server.client(mode) as client:
            shown = await client.call_tool("run_code", {"code": (
                "import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
                "plt.plot([1, 3, 2])\nplt.show()")})
        assert not shown.is_error, text(shown)
        images = [block for block in shown.content if block.type == "image"]
        assert len(images) == 1 and images[0].mime_type == "image/png"
        assert base64.b64decode(images[0].data).startswith(b"\x89PNG\r\n\x1a\n")
        assert "image/png" in shown.structured_content["results"][0]["data"]
    run(body)


@both_transports
@both_eras
def test_sdk_progress_callback_gets_each_line_before_the_result(start, kind, mode):
    server = start(kind)

    async def body() -> None:
        seen: List[tuple] = []

        async def progress(value: float, total: Optional[float], message: Optional[str]) -> None:
            seen.append((value, message))
        async with server.client(mode) as client:
            result = await client.call_tool("run_code", {"code": (
                "import time\nfor i in range(3):\n    print('step', i, flush=True)\n    time.sleep(0.05)\n'end'")},
                progress_callback=progress)
        assert [message for _, message in seen] == ["step 0", "step 1", "step 2"]
        values = [value for value, _ in seen]
        assert values == sorted(values) and len(set(values)) == 3  # progress increases
        assert result.structured_content["stdout"] == "step 0\nstep 1\nstep 2\n"
    run(body)


@both_transports
@both_eras
def test_sdk_cancelling_a_call_stops_the_run(start, kind, mode, tmp_path):
    """The SDK cancels by cancelling the awaiting task: notifications/cancelled on stdio and
    in the handshake era, closing the response stream at 2026-07-28 over HTTP."""
    server = start(kind)
    marker = tmp_path / "finished"

    async def body() -> None:
        async with server.client(mode) as client:
            started = anyio.Event()

            async def progress(value: float, total: Optional[float], message: Optional[str]) -> None:
                started.set()

            async def long_call() -> None:
                await client.call_tool("run_code", {"code": (
                    "import time\nbefore = 1\nprint('started', flush=True)\ntime.sleep(30)\n"
                    "open(%r, 'w').close()" % str(marker))}, progress_callback=progress)
                raise AssertionError("the cancelled call was answered")
            async with anyio.create_task_group() as group:
                group.start_soon(long_call)
                with anyio.fail_after(20):
                    await started.wait()
                group.cancel_scope.cancel()
            # runs on a context go one at a time: this answers only once the cancelled run stopped
            with anyio.fail_after(20):
                after = await client.call_tool("run_code", {"code": "import os\n(before, os.path.exists(%r))"
                                                            % str(marker)})
            assert after.structured_content["results"][0]["data"]["text/plain"] == "(1, False)"
    run(body)


@both_eras
@pytest.mark.parametrize("with_progress", [False, True])
def test_sdk_long_silent_run_outlasts_the_clients_read_timeout(start, mode, with_progress):
    """Regression: a run silent for longer than the HTTP client's read timeout (the SDK's default
    is 300 s) crashed the SDK's connection with httpx2.ReadTimeout (the response was one JSON
    body at the end, and an SSE response got nothing while the code was quiet). A pending
    response now becomes an SSE stream with a comment after each --mcp-keepalive of silence."""
    server = start("http", "--mcp-keepalive", "0.3")

    async def body() -> None:
        async def progress(value: float, total: Optional[float], message: Optional[str]) -> None:
            pass
        async with server.client(mode, read_timeout=1.5) as client:
            result = await client.call_tool("run_code", {"code": "import time\ntime.sleep(3)\n'done'"},
                                            progress_callback=progress if with_progress else None)
            assert result.structured_content["results"][0]["data"]["text/plain"] == "'done'"
            quick = await client.call_tool("run_code", {"code": "1 + 1"})  # the connection is still fine
            assert quick.structured_content["results"][0]["data"]["text/plain"] == "2"
    run(body)


@both_eras
def test_sdk_cancels_a_run_whose_response_became_a_keepalive_stream(start, mode, tmp_path):
    server = start("http", "--mcp-keepalive", "0.2")
    marker = tmp_path / "finished"

    async def body() -> None:
        async with server.client(mode) as client:
            with anyio.move_on_after(1.5):  # past several keep-alive comments
                await client.call_tool("run_code", {"code": "import time\ntime.sleep(30)\nopen(%r, 'w').close()"
                                                    % str(marker)})
                raise AssertionError("the call was answered")
            with anyio.fail_after(20):
                after = await client.call_tool("run_code", {"code": "import os\nos.path.exists(%r)" % str(marker)})
            assert after.structured_content["results"][0]["data"]["text/plain"] == "False"
    run(body)


@both_eras
def test_sdk_over_http_with_a_token(start, mode):
    """Regression: a request the HTTP server rejects (here 401, no token) had a body that was no
    JSON-RPC message, so the SDK said only "Server returned an error response"; /mcp's HTTP-level
    errors are now JSON-RPC errors and the SDK shows what is wrong."""
    server = start("http", "--token", "s3cret-token")

    async def body() -> None:
        async with server.client(mode, headers={"Authorization": "Bearer s3cret-token"}) as client:
            result = await client.call_tool("run_code", {"code": "6 * 7"})
            assert result.structured_content["results"][0]["data"]["text/plain"] == "42"
        with pytest.raises(BaseException) as refused:  # an MCPError, inside the SDK's exception groups
            async with server.client(mode) as client:
                await client.call_tool("run_code", {"code": "1"})
        errors = [refused.value]
        while hasattr(errors[-1], "exceptions"):  # (Base)ExceptionGroup, also the backport on 3.10
            errors.append(errors[-1].exceptions[0])
        assert isinstance(errors[-1], MCPError), repr(refused.value)
        assert "Authorization: Bearer <token>" in str(errors[-1])
        assert errors[-1].error.data == {"status": 401}
    run(body)


class TaskCreated(types.Result):
    """A 2026-07-28 run_code answered with a task (the io.modelcontextprotocol/tasks extension)."""

    result_type: Literal["task"] = "task"
    task_id: str
    status: str


class Tasks(ClientExtension):
    """The tasks extension, written on the SDK's extension API: a "task" result is polled with tasks/get."""

    identifier = "io.modelcontextprotocol/tasks"

    def __init__(self) -> None:
        self.polled: List[str] = []

    def claims(self) -> List[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=TaskCreated, resolve=self.resolve)]

    async def resolve(self, created: TaskCreated, context: ClaimContext) -> types.CallToolResult:
        self.polled.append(created.status)
        while True:
            request = types.GetTaskRequest(params=types.GetTaskRequestParams(task_id=created.task_id))
            task = await context.session.send_request(request, TypeAdapter(Dict[str, Any]))
            self.polled.append(task["status"])
            if task["status"] != "working":
                return types.CallToolResult.model_validate(task["result"])
            await anyio.sleep(0.1)


@both_transports
def test_sdk_tasks_extension_polls_a_long_run(start, kind):
    server = start(kind, "--task-after", "0.2")
    tasks = Tasks()

    async def body() -> None:
        async with server.client("auto", extensions=[tasks]) as client:
            assert client.protocol_version == "2026-07-28"
            result = await client.call_tool("run_code", {"code": "import time\nprint('tick', flush=True)\n"
                                                                 "time.sleep(1)\n6 * 7"})
        assert result.structured_content["results"][0]["data"]["text/plain"] == "42"
        assert result.structured_content["stdout"] == "tick\n"
        assert tasks.polled[0] == "working" and tasks.polled[-1] == "completed"
    run(body)


@both_eras
def test_sdk_stdio_host_exit_mid_run_leaves_no_process(start, mode):
    server = start("stdio")

    async def body() -> List[int]:
        async with server.client(mode) as client:
            spawned = await client.call_tool("run_code", {"code": (
                "import os, subprocess\nchild = subprocess.Popen(['sleep', '60'])\n[os.getpid(), child.pid]")})
            pids = eval(spawned.structured_content["results"][0]["data"]["text/plain"])
            started = anyio.Event()

            async def progress(value: float, total: Optional[float], message: Optional[str]) -> None:
                started.set()

            async def long_call() -> None:
                await client.call_tool("run_code", {"code": "import time\nprint('x', flush=True)\ntime.sleep(60)"},
                                       progress_callback=progress)
            async with anyio.create_task_group() as group:
                group.start_soon(long_call)
                await started.wait()
                group.cancel_scope.cancel()
        return pids
    pids = run(body)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    assert not [pid for pid in pids if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sdk_pinned_modern_mode_skips_discovery(start):
    """``mode="2026-07-28"`` adopts the revision without server/discover; every request carries its _meta."""
    server = start("stdio")

    async def body() -> None:
        async with server.client("2026-07-28") as client:
            assert client.protocol_version == "2026-07-28"
            result = await client.call_tool("run_code", {"code": "'pinned'"})
            assert result.structured_content["results"][0]["data"]["text/plain"] == "'pinned'"
    run(body)


def test_sdk_is_the_pinned_version():
    from importlib.metadata import version
    assert version("mcp") == "2.3.0", "tests/test_mcp_sdk.py was written against mcp 2.3.0 (pyproject's test extra)"


@both_transports
@both_eras
def test_sdk_files_as_resources_and_write_file(start, kind, mode, tmp_path):
    """Issue 23: the SDK writes a file with write_file, the code reads it and
    writes another, and the SDK lists and reads both as resources (text, and
    a base64 blob)."""
    root = tmp_path / "root"
    root.mkdir()
    server = start(kind, "--cwd", str(root))
    picture = bytes(range(256))

    async def body() -> None:
        async with server.client(mode) as client:
            caps = client.server_capabilities
            assert caps is not None and caps.resources is not None
            written = await client.call_tool("write_file", {"path": "in/data.csv", "content": "x\n1\n2\n"})
            assert not written.is_error and written.structured_content is not None
            assert written.structured_content["size"] == 6
            uri = written.structured_content["uri"]
            assert uri == "file://" + str(root / "in" / "data.csv")
            await client.call_tool("write_file", {"path": "pic.bin", "content": base64.b64encode(picture).decode(),
                                                  "encoding": "base64"})
            run = await client.call_tool("run_code", {"code": "total = sum(int(x) for x in open('in/data.csv')"
                                                              ".read().split()[1:])\nopen('total.txt', 'w')"
                                                              ".write(str(total))"})
            assert not run.is_error, text(run)
            listed = await client.list_resources()
            assert [resource.name for resource in listed.resources] == ["in/data.csv", "pic.bin", "total.txt"]
            by_name = {resource.name: str(resource.uri) for resource in listed.resources}
            assert by_name["in/data.csv"] == uri
            total = await client.read_resource(by_name["total.txt"])
            assert [content.text for content in total.contents] == ["3"]
            blob = await client.read_resource(by_name["pic.bin"])
            assert base64.b64decode(blob.contents[0].blob) == picture
            with pytest.raises(MCPError):
                await client.read_resource("file:///etc/passwd")
    run(body)
