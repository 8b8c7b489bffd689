"""``python -m interp mcp``, driven over its pipes the way an MCP host does."""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
from helpers import process_exists as pid_alive
from helpers import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAIT = 30.0


class MCPClient:
    """A minimal MCP host: newline-delimited JSON-RPC over the server's pipes."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "interp", "mcp", *args], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._inbox: queue.Queue = queue.Queue()
        self.seen = []  # every message received, in order
        self._next_id = 100
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._inbox.put(json.loads(line))
        self._inbox.put(None)

    def send(self, message) -> None:
        self.send_raw(json.dumps(message).encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def request(self, method: str, params=None, request_id=None):
        if request_id is None:
            self._next_id += 1
            request_id = self._next_id
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return request_id

    def wait_for(self, predicate, timeout: float = WAIT):
        for message in self.seen:
            if isinstance(message, dict) and predicate(message):
                return message
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "no matching message; got %r" % self.seen
            message = self._inbox.get(timeout=remaining)
            assert message is not None, "the server closed its stdout; got %r" % self.seen
            self.seen.append(message)
            if isinstance(message, dict) and predicate(message):
                return message

    def wait_for_batch(self, timeout: float = WAIT):
        deadline = time.monotonic() + timeout
        while not any(isinstance(m, list) for m in self.seen):
            message = self._inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            assert message is not None
            self.seen.append(message)
        return next(m for m in self.seen if isinstance(m, list))

    def response(self, request_id):
        return self.wait_for(lambda m: m.get("id") == request_id and "method" not in m)

    def call(self, method: str, params=None):
        return self.response(self.request(method, params))

    def tool(self, name: str, arguments=None, **meta):
        params = {"name": name, "arguments": arguments or {}}
        if meta:
            params["_meta"] = meta
        return self.call("tools/call", params)["result"]

    def initialize(self, version: str = "2025-06-18"):
        reply = self.call("initialize", {"protocolVersion": version, "capabilities": {},
                                         "clientInfo": {"name": "pytest", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply

    def close(self) -> int:
        """Close stdin and wait for the server to exit (killing it after 20 s)."""
        try:
            if self.proc.poll() is None:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
                try:
                    return self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    raise
            return self.proc.returncode
        finally:
            self._release()

    def kill(self) -> None:
        """SIGKILL the server if it still runs; close the pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._release()

    def _release(self) -> None:
        self._reader.join(10)  # it ends at EOF, once the server is gone
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


@pytest.fixture
def mcp():
    client = MCPClient()
    try:
        client.initialize()
        yield client
    finally:
        client.close()


def text_of(result) -> str:
    return "\n".join(item["text"] for item in result["content"] if item["type"] == "text")


def test_initialize_negotiates_the_protocol_version():
    client = MCPClient()
    try:
        reply = client.initialize("2025-06-18")["result"]
        assert reply["protocolVersion"] == "2025-06-18"
        assert "tools" in reply["capabilities"]
        assert reply["serverInfo"]["name"] == "interp" and reply["serverInfo"]["version"]
        assert client.call("ping") == {"jsonrpc": "2.0", "id": client._next_id, "result": {}}
        # an older client gets its own revision; an unknown one gets the latest
        assert client.initialize("2024-11-05")["result"]["protocolVersion"] == "2024-11-05"
        assert client.initialize("2025-03-26")["result"]["protocolVersion"] == "2025-03-26"
        assert client.initialize("1999-01-01")["result"]["protocolVersion"] == "2025-11-25"  # latest handshake
    finally:
        assert client.close() == 0


def test_tools_are_listed_with_input_schemas(mcp):
    tools = {tool["name"]: tool for tool in mcp.call("tools/list")["result"]["tools"]}
    assert set(tools) == {"run_code", "create_context", "list_contexts", "delete_context",
                          "restart_context", "interrupt", "write_file"}
    for tool in tools.values():
        assert tool["description"] and tool["inputSchema"]["type"] == "object"
    assert tools["run_code"]["inputSchema"]["required"] == ["code"]
    assert set(tools["run_code"]["inputSchema"]["properties"]) >= {"code", "context_id", "timeout"}


def test_run_code_keeps_state_and_labels_output(mcp):
    assert mcp.tool("run_code", {"code": "x = 20"})["isError"] is False
    result = mcp.tool("run_code", {"code": "import sys\nprint('out')\nprint('err', file=sys.stderr)\nx * 2 + 2"})
    assert result["isError"] is False
    text = text_of(result)
    assert "[stdout]\nout" in text and "[stderr]\nerr" in text and "[result]\n42" in text
    assert result["structuredContent"]["stdout"] == "out\n"

    failed = mcp.tool("run_code", {"code": "def f():\n    raise ValueError('boom')\nprint('before')\nf()"})
    assert failed["isError"] is True
    text = text_of(failed)
    assert "[stdout]\nbefore" in text
    assert "[error]\nTraceback (most recent call last):" in text and "ValueError: boom" in text
    assert mcp.tool("run_code", {"code": "x"})["isError"] is False  # the error kept the state


def test_png_results_become_image_content(mcp):
    png = b"\x89PNG\r\n\x1a\nfake image bytes"
    code = "class Picture:\n    def _repr_png_(self):\n        return %r\nPicture()" % png
    result = mcp.tool("run_code", {"code": code})
    images = [item for item in result["content"] if item["type"] == "image"]
    assert images == [{"type": "image", "data": base64.b64encode(png).decode(), "mimeType": "image/png"}]
    assert result["isError"] is False


def test_context_tools(mcp, tmp_path):
    created = mcp.tool("create_context", {"cwd": str(tmp_path)})
    context = created["structuredContent"]["context"]
    assert context["cwd"] == str(tmp_path) and json.loads(text_of(created))["context"] == context
    ctx = context["id"]
    assert "[stdout]\n%s" % tmp_path in text_of(
        mcp.tool("run_code", {"code": "import os\nvalue = 1\nprint(os.getcwd())", "context_id": ctx}))
    assert mcp.tool("run_code", {"code": "value"})["isError"] is True  # the default context is separate
    listed = mcp.tool("list_contexts")["structuredContent"]["contexts"]
    assert [c["id"] for c in listed] == [ctx]

    assert mcp.tool("restart_context", {"context_id": ctx})["isError"] is False
    assert "NameError" in text_of(mcp.tool("run_code", {"code": "value", "context_id": ctx}))
    assert mcp.tool("interrupt", {"context_id": ctx})["isError"] is False  # idle: no effect

    assert mcp.tool("delete_context", {"context_id": ctx})["isError"] is False
    assert mcp.tool("list_contexts")["structuredContent"]["contexts"] == []
    gone = mcp.tool("run_code", {"code": "1", "context_id": ctx})
    assert gone["isError"] is True and "ContextNotFoundError" in text_of(gone)
    assert mcp.tool("delete_context", {"context_id": ctx})["isError"] is True
    bad = mcp.tool("create_context", {"cwd": str(tmp_path / "missing")})
    assert bad["isError"] is True and "InvalidCwdError" in text_of(bad)


def test_progress_notifications_stream_lines_while_the_code_runs(mcp, tmp_path):
    flag = tmp_path / "go"
    code = ("import os, time\nprint('first', flush=True)\ndeadline = time.time() + 20\n"
            "while not os.path.exists(%r) and time.time() < deadline:\n    time.sleep(0.02)\n"
            "print('second')\n'done'" % str(flag))
    request_id = mcp.request("tools/call", {"name": "run_code", "arguments": {"code": code},
                                            "_meta": {"progressToken": "tok"}})
    first = mcp.wait_for(lambda m: m.get("method") == "notifications/progress")
    assert first["params"] == {"progressToken": "tok", "progress": 1, "message": "first"}
    assert not any(m.get("id") == request_id for m in mcp.seen)  # still running
    flag.touch()
    result = mcp.response(request_id)["result"]
    progress = [m["params"] for m in mcp.seen if m.get("method") == "notifications/progress"]
    assert [p["message"] for p in progress] == ["first", "second"]
    assert [p["progress"] for p in progress] == [1, 2]
    assert "[result]\n'done'" in text_of(result)


def test_cancellation_interrupts_the_run_and_keeps_state(mcp):
    ctx = mcp.tool("create_context")["structuredContent"]["context"]["id"]
    mcp.tool("run_code", {"code": "kept = 'state'", "context_id": ctx})
    running = mcp.request("tools/call", {"name": "run_code", "arguments": {
        "code": "print('spinning', flush=True)\nwhile True:\n    pass", "context_id": ctx},
        "_meta": {"progressToken": 7}})
    mcp.wait_for(lambda m: m.get("method") == "notifications/progress")
    mcp.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
              "params": {"requestId": running, "reason": "user gave up"}})
    # the next run on the same context waits for the cancelled one, so it ends only if that stopped
    after = mcp.tool("run_code", {"code": "print(kept)", "context_id": ctx})
    assert "[stdout]\nstate" in text_of(after)
    assert not any(m.get("id") == running for m in mcp.seen)  # no response for a cancelled request


def test_cancelling_a_queued_run_drops_it(mcp, tmp_path):
    ctx = mcp.tool("create_context")["structuredContent"]["context"]["id"]
    flag, marker = str(tmp_path / "go"), str(tmp_path / "ran")
    busy = mcp.request("tools/call", {"name": "run_code", "arguments": {"context_id": ctx, "code": (
        "import os, time\nprint('busy', flush=True)\ndeadline = time.time() + 20\n"
        "while not os.path.exists(%r) and time.time() < deadline:\n    time.sleep(0.02)" % flag)},
        "_meta": {"progressToken": "busy"}})
    mcp.wait_for(lambda m: m.get("method") == "notifications/progress")
    queued = mcp.request("tools/call", {"name": "run_code", "arguments": {
        "code": "open(%r, 'w').close()" % marker, "context_id": ctx}})
    mcp.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": queued}})
    mcp.call("ping")  # messages are handled in order: the cancellation has been seen
    open(flag, "w").close()
    assert mcp.response(busy)["result"]["isError"] is False
    # a later run waits for every earlier one on the context: the dropped run never ran
    after = mcp.tool("run_code", {"code": "import os\nos.path.exists(%r)" % marker, "context_id": ctx})
    assert "[result]\nFalse" in text_of(after)
    assert not any(m.get("id") == queued for m in mcp.seen)


def test_runs_on_one_context_go_in_arrival_order(mcp):
    ctx = mcp.tool("create_context")["structuredContent"]["context"]["id"]
    codes = ["import time\ntime.sleep(0.2)\norder = []"] + ["order.append(%d)" % i for i in range(1, 8)]
    ids = [mcp.request("tools/call", {"name": "run_code", "arguments": {"code": code, "context_id": ctx}})
           for code in codes]  # sent without waiting for any response
    for request_id in ids:
        assert mcp.response(request_id)["result"]["isError"] is False
    assert "[result]\n[1, 2, 3, 4, 5, 6, 7]" in text_of(mcp.tool("run_code", {"code": "order", "context_id": ctx}))


def test_runs_on_different_contexts_proceed_concurrently(mcp, tmp_path):
    a = mcp.tool("create_context")["structuredContent"]["context"]["id"]
    b = mcp.tool("create_context")["structuredContent"]["context"]["id"]
    # each run waits for the file the other one creates: both end only if they overlap
    wait = ("import os, time\nopen(%r, 'w').close()\ndeadline = time.time() + 20\n"
            "while not os.path.exists(%r) and time.time() < deadline:\n    time.sleep(0.02)\n"
            "print(os.path.exists(%r))")
    fa, fb = str(tmp_path / "a"), str(tmp_path / "b")
    first = mcp.request("tools/call", {"name": "run_code",
                                       "arguments": {"code": wait % (fa, fb, fb), "context_id": a}})
    second = mcp.request("tools/call", {"name": "run_code",
                                        "arguments": {"code": wait % (fb, fa, fa), "context_id": b}})
    assert "[stdout]\nTrue" in text_of(mcp.response(second)["result"])
    assert "[stdout]\nTrue" in text_of(mcp.response(first)["result"])


def test_timeout_is_a_tool_error(mcp):
    result = mcp.tool("run_code", {"code": "import time\nprint('slow', flush=True)\ntime.sleep(30)", "timeout": 0.5})
    assert result["isError"] is True
    text = text_of(result)
    assert "[stdout]\nslow" in text and "[timeout]" in text


def test_bad_input_gets_json_rpc_errors_and_the_server_keeps_serving(mcp):
    mcp.send_raw(b"{not json\n")
    assert mcp.wait_for(lambda m: m.get("error", {}).get("code") == -32700)["id"] is None
    assert mcp.call("no/such/method")["error"]["code"] == -32601
    assert mcp.call("tools/call", {"name": "no_such_tool"})["error"]["code"] == -32602
    assert mcp.call("tools/call", {"name": "run_code", "arguments": {}})["error"]["code"] == -32602
    wrong_type = mcp.call("tools/call", {"name": "run_code", "arguments": {"code": 5}})["error"]
    assert wrong_type["code"] == -32602 and "code" in wrong_type["message"]
    extra = mcp.call("tools/call", {"name": "run_code", "arguments": {"code": "1", "colour": "red"}})
    assert extra["error"]["code"] == -32602
    negative = mcp.call("tools/call", {"name": "run_code", "arguments": {"code": "1", "timeout": -1}})
    assert negative["error"]["code"] == -32602
    assert mcp.call("initialize", {})["error"]["code"] == -32602
    mcp.send({"jsonrpc": "2.0", "id": 9})
    assert mcp.response(9)["error"]["code"] == -32600
    mcp.send_raw(b"[]\n")
    assert mcp.wait_for(lambda m: m.get("error", {}).get("code") == -32600 and m.get("id") is None)
    mcp.send([{"jsonrpc": "2.0", "id": "b1", "method": "ping"}, {"jsonrpc": "2.0", "method": "notifications/x"},
              {"jsonrpc": "2.0", "id": "b2", "method": "nope"}])
    batch = mcp.wait_for_batch()
    assert sorted((r["id"], "result" in r) for r in batch) == [("b1", True), ("b2", False)]
    assert mcp.tool("run_code", {"code": "6 * 7"})["content"][0]["text"] == "[result]\n42"


def test_end_of_input_answers_runs_in_flight_then_sigterm_stops_the_rest():
    """Issue 10, point 15: at end of input the requests already read are
    answered (each run within its own timeout) before the server exits; a
    run still going keeps the server up until SIGTERM, which ends it at once
    and kills every worker."""
    client = MCPClient()
    try:
        client.initialize()
        pid = int(text_of(client.tool("run_code", {"code": "import os\nos.getpid()"})).split("\n")[-1])
        ctx = client.tool("create_context")["structuredContent"]["context"]["id"]
        other = int(text_of(client.tool("run_code", {"code": "import os\nos.getpid()", "context_id": ctx}))
                    .split("\n")[-1])
        slow = client.request("tools/call", {"name": "run_code", "arguments": {"code": "import time\ntime.sleep(60)"}})
        quick = client.request("tools/call", {"name": "run_code", "arguments": {
            "code": "import time\ntime.sleep(0.5)\nprint('answered after EOF')", "context_id": ctx}})
        timed = client.request("tools/call", {"name": "run_code", "arguments": {
            "code": "import time\ntime.sleep(60)", "context_id": ctx, "timeout": 0.5}})
        client.proc.stdin.close()
        assert "[stdout]\nanswered after EOF" in text_of(client.response(quick)["result"])
        assert "[timeout]" in text_of(client.response(timed)["result"])  # bounded by its own timeout
        time.sleep(0.3)
        assert client.proc.poll() is None  # the 60 s run keeps the server up...
        client.proc.send_signal(signal.SIGTERM)  # ...until the client gives up on it
        assert client.proc.wait(20) == 0
        assert not any(m.get("id") == slow for m in client.seen if isinstance(m, dict))
        assert wait_until(lambda: not pid_alive(pid) and not pid_alive(other))
    finally:
        client.kill()


def _readme_try_it_by_hand() -> str:
    """The shell command of the MCP page's "Try it by hand" example."""
    with open(os.path.join(ROOT, "docs", "mcp.md"), encoding="utf-8") as handle:
        readme = handle.read()
    block = readme[readme.index("## Try it by hand"):]
    block = block[block.index("```sh\n") + len("```sh\n"):]
    return block[:block.index("```")]


@pytest.mark.limit(180)
def test_readme_try_it_by_hand_prints_42_every_time():
    """Issue 10, point 15: the README example pipes three messages and closes
    stdin at once; the run_code request read before end of input must be
    answered every time (it was in 2 tries of 10), with no ResourceWarning
    under -X dev."""
    command = _readme_try_it_by_hand()
    assert command.count("python3 -m interp mcp") == 1
    command = command.replace("python3 -m interp mcp", "%s -X dev -m interp mcp" % sys.executable)
    for attempt in range(12):
        proc = subprocess.run(["sh", "-c", command], cwd=ROOT, capture_output=True, timeout=60)
        replies = {m["id"]: m for m in map(json.loads, proc.stdout.splitlines())}
        assert proc.returncode == 0, (attempt, proc.stderr)
        assert replies[2]["result"]["content"][0]["text"] == "[stdout]\n42", (attempt, replies)
        assert b"Warning" not in proc.stderr, (attempt, proc.stderr)
