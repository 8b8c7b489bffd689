"""MCP issue 14: both protocol eras, richer tools and results, tasks, over
stdio (a real ``python -m interp mcp``) and Streamable HTTP (a real
``python -m interp serve`` at /mcp, driven with http.client and raw sockets)."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys

import time
import http.client

import pytest
from test_mcp import ROOT, MCPClient, text_of

MODERN = "2026-07-28"
TASKS = "io.modelcontextprotocol/tasks"


def modern_meta(tasks: bool = False, **extra):
    capabilities = {"extensions": {TASKS: {}}} if tasks else {}
    return dict({"io.modelcontextprotocol/protocolVersion": MODERN,
                 "io.modelcontextprotocol/clientCapabilities": capabilities,
                 "io.modelcontextprotocol/clientInfo": {"name": "pytest", "version": "1"}}, **extra)


def check_structured(value, schema):
    """A small JSON Schema check of structuredContent against run_code's outputSchema."""
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds or []
    types = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool, "null": type(None)}
    if kinds:
        assert any(isinstance(value, types[k]) and not (k == "integer" and isinstance(value, bool)) for k in kinds), \
            (value, schema)
    if "enum" in schema:
        assert value in schema["enum"]
    if isinstance(value, dict):
        for name in schema.get("required", ()) if value is not None else ():
            assert name in value, name
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                check_structured(value[name], sub)
    if isinstance(value, list) and "items" in schema:
        for item in value:
            check_structured(item, schema["items"])


class ModernStdio(MCPClient):
    """A 2026-07-28 client: no handshake, every request carries its _meta."""

    def call(self, method, params=None, tasks=False, **meta):
        params = dict(params or {})
        params["_meta"] = modern_meta(tasks, **meta)
        return self.response(self.request(method, params))

    def tool(self, name, arguments=None, tasks=False, **meta):
        return self.call("tools/call", {"name": name, "arguments": arguments or {}}, tasks, **meta)["result"]


@pytest.fixture
def modern():
    client = ModernStdio()
    try:
        yield client
    finally:
        client.close()


# -- the stateless revision over stdio ---------------------------------------------------


def test_modern_discover_tools_and_state_across_calls(modern, tmp_path):
    discovered = modern.call("server/discover")["result"]
    assert discovered["supportedVersions"][0] == MODERN and "2025-11-25" in discovered["supportedVersions"]
    assert discovered["resultType"] == "complete" and TASKS in discovered["capabilities"]["extensions"]
    assert discovered["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "interp"
    assert discovered["ttlMs"] >= 0 and discovered["cacheScope"] in ("public", "private")
    listed = modern.call("tools/list")["result"]
    assert listed["resultType"] == "complete" and listed["ttlMs"] >= 0
    tools = {tool["name"]: tool for tool in listed["tools"]}
    for name, tool in tools.items():
        assert re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", name) and tool["title"]
        assert set(tool["annotations"]) == {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}
        assert "execution" not in tool
    assert tools["list_contexts"]["annotations"]["readOnlyHint"] is True
    assert tools["run_code"]["annotations"]["openWorldHint"] is True  # not sandboxed: the code reaches anything
    for name in ("run_code", "restart_context", "interrupt"):
        assert "context_id" in tools[name]["inputSchema"]["properties"]
    schema = tools["run_code"]["outputSchema"]

    ctx = modern.tool("create_context", {"cwd": str(tmp_path)})["structuredContent"]["context"]["id"]
    assert modern.tool("run_code", {"code": "x = 41", "context_id": ctx})["isError"] is False
    result = modern.tool("run_code", {"code": "x + 1", "context_id": ctx})
    assert result["resultType"] == "complete" and text_of(result) == "[result]\n42"
    check_structured(result["structuredContent"], schema)
    assert result["structuredContent"]["results"] == [{"is_main_result": True, "data": {"text/plain": "42"}}]
    assert modern.tool("run_code", {"code": "x"})["isError"] is True  # the default context is another one


def test_modern_requests_need_their_meta_and_a_known_version(modern):
    bare = modern.response(modern.request("server/discover", {}))["error"]
    assert bare["code"] == -32602
    no_caps = modern.response(modern.request("tools/list", {"_meta": {
        "io.modelcontextprotocol/protocolVersion": MODERN}}))["error"]
    assert no_caps["code"] == -32602 and "clientCapabilities" in no_caps["message"]
    future = modern.response(modern.request("tools/list", {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2099-01-01",
        "io.modelcontextprotocol/clientCapabilities": {}}}))["error"]
    assert future["code"] == -32022 and future["data"]["requested"] == "2099-01-01"
    assert MODERN in future["data"]["supported"]
    assert modern.call("ping")["error"]["code"] == -32601  # removed in 2026-07-28
    # a legacy client on the same process still gets its handshake (the era is chosen per request)
    assert modern.initialize("2025-06-18")["result"]["protocolVersion"] == "2025-06-18"
    assert modern.call("tools/list")["result"]["resultType"] == "complete"


def test_rich_results_images_errors_and_the_output_cap(modern):
    jpeg = b"\xff\xd8\xff\xe0fake jpeg"
    code = ("class Pic:\n    def _repr_jpeg_(self):\n        return %r\n"
            "class Page:\n    def _repr_html_(self):\n        return '<b>hi</b>'\n"
            "display(Page())\nPic()" % jpeg)
    result = modern.tool("run_code", {"code": code})
    images = [item for item in result["content"] if item["type"] == "image"]
    assert images == [{"type": "image", "data": base64.b64encode(jpeg).decode(), "mimeType": "image/jpeg"}]
    assert "[display] text/html\n<b>hi</b>" in text_of(result)
    data = [r["data"] for r in result["structuredContent"]["results"]]
    assert data[0]["text/html"] == "<b>hi</b>" and data[1]["image/jpeg"] == base64.b64encode(jpeg).decode()

    failed = modern.tool("run_code", {"code": "kept = 1\n1/0"})
    assert failed["isError"] is True and failed["structuredContent"]["outcome"] == "error"
    assert failed["structuredContent"]["error"]["name"] == "ZeroDivisionError"
    assert failed["structuredContent"]["state_kept"] is True

    timed = modern.tool("run_code", {"code": "import time\ntime.sleep(30)", "timeout": 0.5})
    assert timed["isError"] is True and timed["structuredContent"]["outcome"] == "timeout"
    assert timed["structuredContent"]["state_kept"] is True and "variables are kept" in text_of(timed)
    assert text_of(modern.tool("run_code", {"code": "kept"})) == "[result]\n1"

    flood = modern.tool("run_code", {"code": "for i in range(5000): print('line', i)", "output_limit": 2000})
    out = flood["structuredContent"]["stdout"]
    assert flood["structuredContent"]["truncated"] is True and len(out) < 2200
    assert out.startswith("line 0\n") and out.endswith("line 4999\n")
    assert re.search(r"\[\.\.\. \d+ characters cut \(output limit 2000\) \.\.\.\]", text_of(flood))

    # 2025-11-25 and later: arguments that do not fit the schema are a tool error the model can read
    bad = modern.tool("run_code", {"code": 5})
    assert bad["isError"] is True and "arguments.code must be a string" in text_of(bad)
    assert modern.call("tools/call", {"name": "nope"})["error"]["code"] == -32602  # unknown tool: protocol error


def test_modern_progress_and_cancellation_over_stdio(modern, tmp_path):
    ctx = modern.tool("create_context")["structuredContent"]["context"]["id"]
    modern.tool("run_code", {"code": "kept = 'state'", "context_id": ctx})
    running = modern.request("tools/call", {"name": "run_code", "arguments": {
        "code": "print('spinning', flush=True)\nwhile True:\n    pass", "context_id": ctx},
        "_meta": modern_meta(progressToken="p")})
    note = modern.wait_for(lambda m: m.get("method") == "notifications/progress")
    assert note["params"]["message"] == "spinning" and note["params"]["progressToken"] == "p"
    modern.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": running}})
    assert "[stdout]\nstate" in text_of(modern.tool("run_code", {"code": "print(kept)", "context_id": ctx}))
    assert not any(m.get("id") == running for m in modern.seen)


def test_modern_tasks_extension_start_poll_cancel(modern, tmp_path):
    # a quick run is answered directly even when the client takes tasks
    quick = modern.tool("run_code", {"code": "1 + 1"}, tasks=True)
    assert quick["resultType"] == "complete" and text_of(quick) == "[result]\n2"
    # without the extension a long run is never a task
    flag = tmp_path / "go"
    slow = ("import os, time\nprint('working', flush=True)\ndeadline = time.time() + 20\n"
            "while not os.path.exists(%r) and time.time() < deadline:\n    time.sleep(0.02)\n'finished'" % str(flag))
    task = modern.tool("run_code", {"code": slow}, tasks=True)
    assert task["resultType"] == "task" and task["status"] == "working" and task["pollIntervalMs"] > 0
    polled = modern.call("tasks/get", {"taskId": task["taskId"]})["result"]
    assert polled["resultType"] == "complete" and polled["status"] == "working"
    assert polled["statusMessage"] == "working"  # the latest output line
    assert modern.call("tasks/update", {"taskId": task["taskId"], "inputResponses": {}})["result"] == {
        "resultType": "complete", "_meta": polled["_meta"]}
    flag.touch()
    deadline = time.monotonic() + 30
    while polled["status"] == "working" and time.monotonic() < deadline:
        time.sleep(0.1)
        polled = modern.call("tasks/get", {"taskId": task["taskId"]})["result"]
    assert polled["status"] == "completed" and "[result]\n'finished'" in text_of(polled["result"])

    # cancel: the run is interrupted and the context lives on
    flag.unlink()
    cancelled = modern.tool("run_code", {"code": slow + "\nmarker = 1"}, tasks=True)
    assert modern.call("tasks/cancel", {"taskId": cancelled["taskId"]})["result"]["resultType"] == "complete"
    assert modern.call("tasks/get", {"taskId": cancelled["taskId"]})["result"]["status"] == "cancelled"
    after = modern.tool("run_code", {"code": "'marker' in globals()"})
    assert text_of(after) == "[result]\nFalse"
    assert modern.call("tasks/get", {"taskId": "nope"})["error"]["code"] == -32602


# -- the handshake era: 2025-11-25 tasks, revisions' shapes -------------------------------


def test_legacy_revisions_get_their_own_tool_and_result_shapes():
    client = MCPClient()
    try:
        expected = {"2024-11-05": (False, False, False), "2025-03-26": (True, False, False),
                    "2025-06-18": (True, True, False), "2025-11-25": (True, True, True)}
        for version, (annotations, structured, tasks) in expected.items():
            reply = client.initialize(version)["result"]
            assert reply["protocolVersion"] == version
            assert ("tasks" in reply["capabilities"]) is tasks
            run = {t["name"]: t for t in client.call("tools/list")["result"]["tools"]}["run_code"]
            assert ("annotations" in run) is annotations and ("outputSchema" in run) is structured
            assert ("title" in run) is structured and ("execution" in run) is tasks
            result = client.tool("run_code", {"code": "6 * 7"})
            assert ("structuredContent" in result) is structured and "resultType" not in result
            bad = client.call("tools/call", {"name": "run_code", "arguments": {"code": 5}})
            assert ("error" in bad) is (version < "2025-11-25")  # a tool error from 2025-11-25 on
    finally:
        client.close()


def test_legacy_2025_11_25_task_augmented_run(tmp_path):
    client = MCPClient()
    try:
        client.initialize("2025-11-25")
        flag = tmp_path / "go"
        code = ("import os, time\nprint('tick', flush=True)\ndeadline = time.time() + 20\n"
                "while not os.path.exists(%r) and time.time() < deadline:\n    time.sleep(0.02)\n'done'" % str(flag))
        created = client.call("tools/call", {"name": "run_code", "arguments": {"code": code},
                                             "task": {"ttl": 60000}, "_meta": {"progressToken": "t"}})["result"]
        task = created["task"]
        assert task["status"] == "working" and task["ttl"] == 60000 and task["createdAt"].endswith("Z")
        client.wait_for(lambda m: m.get("method") == "notifications/progress")  # progress goes on for a task
        assert [t["taskId"] for t in client.call("tasks/list")["result"]["tasks"]] == [task["taskId"]]
        waiting = client.request("tasks/result", {"taskId": task["taskId"]})  # blocks until the task ends
        assert client.call("tasks/get", {"taskId": task["taskId"]})["result"]["status"] == "working"
        flag.touch()
        result = client.response(waiting)["result"]
        assert "[result]\n'done'" in text_of(result)
        assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task["taskId"]}
        assert client.call("tasks/get", {"taskId": task["taskId"]})["result"]["status"] == "completed"
        assert client.call("tasks/cancel", {"taskId": task["taskId"]})["error"]["code"] == -32602  # ended
        other = client.call("tools/call", {"name": "list_contexts", "arguments": {}, "task": {}})
        assert other["error"]["code"] == -32601  # only run_code takes tasks

        flag.unlink()
        second = client.call("tools/call", {"name": "run_code", "arguments": {"code": code},
                                            "task": {}})["result"]["task"]
        cancelled = client.call("tasks/cancel", {"taskId": second["taskId"]})["result"]
        assert cancelled["status"] == "cancelled"
        assert client.call("tasks/result", {"taskId": second["taskId"]})["error"]["code"] == -32602
        assert text_of(client.tool("run_code", {"code": "1"})) == "[result]\n1"  # the context is free again
    finally:
        client.close()


# -- Streamable HTTP -------------------------------------------------------------------------


class HTTPServer:
    """A real ``python -m interp serve`` on a free port."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "interp", "serve", "--port", "0", "--quiet", *args],
                                     cwd=ROOT, stderr=subprocess.PIPE)
        line = self.proc.stderr.readline().decode()
        self.port = int(re.search(r":(\d+)", line.split("http://", 1)[1]).group(1))

    def post(self, message, headers=None, accept="application/json, text/event-stream", raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            base = {"Content-Type": "application/json"}
            if accept is not None:
                base["Accept"] = accept
            base.update(headers or {})
            conn.request("POST", "/mcp", raw if raw is not None else json.dumps(message), base)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()


@pytest.fixture
def http_server():
    server = HTTPServer()
    try:
        yield server
    finally:
        server.close()


def modern_post(server, method, params=None, request_id=1, tasks=False, **meta):
    params = dict(params or {}, _meta=modern_meta(tasks, **meta))
    headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if method == "tools/call":
        headers["Mcp-Name"] = params["name"]
    return server.post({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}, headers)


def sse_messages(body: bytes):
    return [json.loads(line[6:]) for line in body.decode().split("\n") if line.startswith("data: ")]


def test_http_modern_session_of_calls(http_server):
    status, headers, body = modern_post(http_server, "server/discover")
    assert status == 200 and json.loads(body)["result"]["supportedVersions"][0] == MODERN
    assert "Mcp-Session-Id" not in headers  # stateless
    tools = json.loads(modern_post(http_server, "tools/list")[2])["result"]["tools"]
    schema = {t["name"]: t for t in tools}["run_code"]["outputSchema"]
    ctx = json.loads(modern_post(http_server, "tools/call", {"name": "create_context", "arguments": {}})[2])[
        "result"]["structuredContent"]["context"]["id"]
    modern_post(http_server, "tools/call", {"name": "run_code", "arguments": {"code": "n = 1", "context_id": ctx}})
    status, headers, body = modern_post(http_server, "tools/call", {"name": "run_code", "arguments": {
        "code": "import time\nfor i in range(3):\n    print('step', i, flush=True)\n    time.sleep(0.05)\nn + 1",
        "context_id": ctx}}, progressToken="tok")
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    messages = sse_messages(body)
    assert [m["params"]["message"] for m in messages[:-1]] == ["step 0", "step 1", "step 2"]
    final = messages[-1]["result"]  # progress first, then the response that ends the stream
    assert final["resultType"] == "complete" and "[result]\n2" in text_of(final)
    check_structured(final["structuredContent"], schema)

    # the mirrored headers must match the body
    params = {"name": "run_code", "arguments": {"code": "1"}, "_meta": modern_meta()}
    message = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": params}
    for headers in ({"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call"},
                    {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list", "Mcp-Name": "run_code"},
                    {"MCP-Protocol-Version": "2025-06-18", "Mcp-Method": "tools/call", "Mcp-Name": "run_code"},
                    {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "interrupt"}):
        status, _, body = http_server.post(message, headers)
        assert status == 400 and json.loads(body)["error"]["code"] == -32020
    encoded = "=?base64?%s?=" % base64.b64encode(b"run_code").decode()
    status, _, body = http_server.post(message, {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call",
                                                 "Mcp-Name": encoded})
    assert status == 200 and text_of(json.loads(body)["result"]) == "[result]\n1"
    # unknown methods are 404 with -32601; unsupported versions 400 with -32022
    status, _, body = modern_post(http_server, "prompts/list")
    assert status == 404 and json.loads(body)["error"]["code"] == -32601
    status, _, body = http_server.post({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2099-01-01", "io.modelcontextprotocol/clientCapabilities": {}}}},
        {"MCP-Protocol-Version": "2099-01-01", "Mcp-Method": "tools/list"})
    assert status == 400 and json.loads(body)["error"]["code"] == -32022


def test_http_legacy_session_and_tasks(http_server, tmp_path):
    status, headers, body = http_server.post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    session = headers["Mcp-Session-Id"]
    assert status == 200 and json.loads(body)["result"]["protocolVersion"] == "2025-11-25"
    h = {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
    assert http_server.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, h)[0] == 202
    http_server.post({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "run_code", "arguments": {"code": "v = 7"}}}, h)
    flag = tmp_path / "go"
    code = ("import os, time\ndeadline = time.time() + 20\n"
            "while not os.path.exists(%r) and time.time() < deadline:\n    time.sleep(0.02)\nv * 6" % str(flag))
    created = json.loads(http_server.post({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "run_code", "arguments": {"code": code}, "task": {}}}, h)[2])["result"]["task"]
    get = {"jsonrpc": "2.0", "id": 4, "method": "tasks/get", "params": {"taskId": created["taskId"]}}
    assert json.loads(http_server.post(get, h)[2])["result"]["status"] == "working"
    flag.touch()
    result = json.loads(http_server.post({"jsonrpc": "2.0", "id": 5, "method": "tasks/result",
                                          "params": {"taskId": created["taskId"]}}, h)[2])["result"]
    assert text_of(result) == "[result]\n42"
    # another session does not see this session's tasks; an ended session is 404
    assert json.loads(http_server.post({"jsonrpc": "2.0", "id": 6, "method": "tasks/list"}, h)[2])[
        "result"]["tasks"][0]["taskId"] == created["taskId"]
    conn = http.client.HTTPConnection("127.0.0.1", http_server.port, timeout=30)
    try:
        conn.request("DELETE", "/mcp", headers={"Mcp-Session-Id": session})
        response = conn.getresponse()
        response.read()
        assert response.status == 204
        conn.request("GET", "/mcp", headers={"Accept": "text/event-stream"})
        response = conn.getresponse()
        response.read()
        assert response.status == 405  # no standalone stream
    finally:
        conn.close()
    assert http_server.post(get, h)[0] == 404
    # without a session: the revision of the header (2025-03-26 without one), batches allowed
    status, _, body = http_server.post([{"jsonrpc": "2.0", "id": "a", "method": "ping"},
                                        {"jsonrpc": "2.0", "id": "b", "method": "tools/list"}])
    assert status == 200 and sorted(r["id"] for r in json.loads(body)) == ["a", "b"]
    tool = json.loads(body)[1]["result"]["tools"][0] if json.loads(body)[1]["id"] == "b" else \
        json.loads(body)[0]["result"]["tools"][0]
    assert "outputSchema" not in tool and "annotations" in tool  # the 2025-03-26 shape


def test_http_disconnect_cancels_the_run(http_server, tmp_path):
    ctx = json.loads(modern_post(http_server, "tools/call", {"name": "create_context", "arguments": {}})[2])[
        "result"]["structuredContent"]["context"]["id"]
    modern_post(http_server, "tools/call", {"name": "run_code", "arguments": {"code": "kept = 3", "context_id": ctx}})
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "run_code", "arguments": {"code": "print('go', flush=True)\nwhile True:\n    pass",
                                          "context_id": ctx}, "_meta": modern_meta(progressToken=1)}}).encode()
    sock = socket.create_connection(("127.0.0.1", http_server.port), timeout=30)
    try:
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n"
                     b"Mcp-Method: tools/call\r\nMcp-Name: run_code\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        seen = b""
        while b"notifications/progress" not in seen:
            chunk = sock.recv(4096)
            assert chunk
            seen += chunk
    finally:
        sock.close()  # closing the stream cancels the request
    after = json.loads(modern_post(http_server, "tools/call", {"name": "run_code", "arguments": {
        "code": "print(kept)", "context_id": ctx}})[2])["result"]
    assert text_of(after) == "[stdout]\n3"  # interrupted: the loop stopped and the state survived


def test_http_hostile_inputs(http_server):
    ok = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    status, _, body = http_server.post(ok, {"Origin": "http://evil.example"})
    assert status == 403
    status, _, body = http_server.post(ok, accept=None)
    assert status == 406 and json.loads(body)["error"]["code"] == -32600
    status, _, body = http_server.post(ok, accept="text/html")
    assert status == 406
    status, _, body = http_server.post(None, raw="[" * 100000 + "]" * 100000)
    assert status == 400 and json.loads(body)["error"]["code"] == -32700
    status, _, body = http_server.post(None, raw="{not json")
    assert status == 400 and json.loads(body)["error"]["code"] == -32700
    status, _, body = http_server.post(None, raw=b"\xff\xfe")
    assert status == 400
    status, _, body = http_server.post({"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                       {"Mcp-Session-Id": "forged"})
    assert status == 404
    # a huge body: refused from its Content-Length, before it is read
    sock = socket.create_connection(("127.0.0.1", http_server.port), timeout=30)
    try:
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Accept: application/json\r\nContent-Length: 999999999\r\n\r\n{")
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 413")
    finally:
        sock.close()
    # a text/plain body (what a page may send without CORS) is refused
    conn = http.client.HTTPConnection("127.0.0.1", http_server.port, timeout=30)
    try:
        conn.request("POST", "/mcp", json.dumps(ok), {"Content-Type": "text/plain", "Accept": "application/json"})
        response = conn.getresponse()
        response.read()
        assert response.status == 415
    finally:
        conn.close()
    assert http_server.post(ok)[0] == 200  # still serving


def test_http_token_guards_mcp():
    server = HTTPServer("--token", "s3cret")
    try:
        ok = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        assert server.post(ok)[0] == 401
        assert server.post(ok, {"Authorization": "Bearer s3cret"})[0] == 200
    finally:
        server.close()


def test_sandbox_without_network_is_a_closed_world():
    from interp import CodeInterpreter
    from interp.mcp.core import MCPCore
    from interp.sandbox import Sandbox
    if not os.path.exists("/usr/bin/bwrap"):
        pytest.skip("bubblewrap is not installed")
    with CodeInterpreter(sandbox=Sandbox()) as ci:
        tools = {t["name"]: t for t in MCPCore(ci).tools}
    assert tools["run_code"]["annotations"]["openWorldHint"] is False
    with CodeInterpreter(sandbox=Sandbox(network=True)) as ci:
        assert {t["name"]: t for t in MCPCore(ci).tools}["run_code"]["annotations"]["openWorldHint"] is True


def test_cap_keeps_head_and_tail():
    from interp.mcp.tools import cap
    text = "".join("line %d\n" % i for i in range(1000))
    capped, cut = cap(text, 200)
    assert cut and capped.startswith("line 0\n") and capped.endswith("line 999\n") and len(capped) < 300
    assert cap("short", 200) == ("short", False) and cap(text, 0) == (text, False)



