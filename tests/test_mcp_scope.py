"""Issue 21, front-end items 1-6: MCP requests belong to their client, every
request's POST (and batch) ends, output limits and task results are bounded,
and the HTTP routes and /mcp share one context table. Real servers
(``python -m interp mcp`` and ``python -m interp serve``) driven over pipes,
http.client and raw sockets."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time

import pytest
from helpers import wait_until
from test_mcp import MCPClient, text_of
from test_mcp_eras import MODERN, HTTPServer, modern_meta, modern_post, sse_messages

#: Code that runs until it is interrupted (or 30 s), saying when it started in the file ``%s``.
SLOW = ("import time, pathlib\npathlib.Path(%r).write_text('running')\nslept = 0\n"
        "while slept < 30:\n    time.sleep(0.05)\n    slept += 0.05\n")


def slow(path) -> str:
    return SLOW % str(path)


def request(server, method, path, body=None, headers=None):
    """One plain HTTP request to ``server``: (status, parsed JSON or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        base = {"Content-Type": "application/json"} if body is not None else {}
        base.update(headers or {})
        conn.request(method, path, None if body is None else json.dumps(body), base)
        response = conn.getresponse()
        data = response.read()
        kind = response.getheader("Content-Type") or ""
        return response.status, json.loads(data) if kind.startswith("application/json") and data else data
    finally:
        conn.close()


def mcp_tool(server, name, arguments=None, request_id=1):
    """A 2026-07-28 tools/call over HTTP; its result."""
    status, _, body = modern_post(server, "tools/call", {"name": name, "arguments": arguments or {}},
                                  request_id=request_id)
    assert status == 200, body
    return json.loads(body)["result"]


def in_thread(function, *args, **kwargs):
    """Start ``function`` in a thread; returns a function giving its value (or raising its error)."""
    box = {}

    def target():
        try:
            box["value"] = function(*args, **kwargs)
        except BaseException as exc:  # handed to the test's thread
            box["error"] = exc
    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def result(timeout=40.0):
        thread.join(timeout)
        assert not thread.is_alive(), "the request did not end within %g s" % timeout
        if "error" in box:
            raise box["error"]
        return box["value"]
    return result


@pytest.fixture
def server():
    srv = HTTPServer()
    try:
        yield srv
    finally:
        srv.close()


def legacy_session(server, version="2025-06-18"):
    status, headers, _ = server.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    assert status == 200
    h = {"Mcp-Session-Id": headers["Mcp-Session-Id"], "MCP-Protocol-Version": version}
    assert server.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, h)[0] == 202
    return h


# -- 1. request ids are scoped to their client (2026-07-28 over HTTP) ----------------------


@pytest.mark.limit(90)
def test_stateless_request_ids_and_cancellation_belong_to_their_post(server, tmp_path):
    ctx = mcp_tool(server, "create_context")["structuredContent"]["context"]["id"]
    flag, started = tmp_path / "go", tmp_path / "started"
    code = ("import os, time, pathlib\npathlib.Path(%r).write_text('x')\ndeadline = time.time() + 20\n"
            "while not os.path.exists(%r) and time.time() < deadline:\n    time.sleep(0.02)\n'A done'"
            % (str(started), str(flag)))
    client_a = in_thread(mcp_tool, server, "run_code", {"code": code, "context_id": ctx}, request_id=1)
    assert wait_until(started.exists, 20)
    # client B uses the same id while A's is in flight: served, not "already in use"
    assert text_of(mcp_tool(server, "run_code", {"code": "1 + 1"}, request_id=1)) == "[result]\n2"
    # client C cancels "request 1": a request of its own POST only, so A's run goes on
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1,
                                                                                "_meta": modern_meta()}}
    assert server.post(cancel, {"MCP-Protocol-Version": MODERN, "Mcp-Method": "notifications/cancelled"})[0] == 202
    time.sleep(0.3)
    flag.touch()
    assert text_of(client_a()) == "[result]\n'A done'"


# -- 2. a cancelled call's POST ends (handshake era over HTTP) -----------------------------


@pytest.mark.limit(120)
@pytest.mark.parametrize("keepalive", ["10", "0.2"])  # JSON still awaited / already an SSE stream
def test_a_cancelled_call_gets_no_response_and_its_post_ends(tmp_path, keepalive):
    srv = HTTPServer("--mcp-keepalive", keepalive)
    try:
        h = legacy_session(srv)
        ctx = json.loads(srv.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "create_context", "arguments": {}}}, h)[2])["result"]["structuredContent"]["context"]["id"]
        srv.post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "run_code", "arguments": {"code": "kept = 5", "context_id": ctx}}}, h)
        for number, accept in enumerate(["application/json, text/event-stream", "application/json"]):
            started = tmp_path / ("started%d" % number)
            call = {"jsonrpc": "2.0", "id": 10 + number, "method": "tools/call", "params": {
                "name": "run_code", "arguments": {"code": slow(started), "context_id": ctx}}}
            pending = in_thread(srv.post, call, h, accept=accept)
            assert wait_until(started.exists, 20)
            time.sleep(0.5)  # with keepalive 0.2, the response is an SSE stream by now
            cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 10 + number}}
            assert srv.post(cancel, h)[0] == 202
            status, headers, body = pending(20)
            if accept == "application/json":
                assert status == 204 and body == b""
            else:  # the stream ends without a response
                assert status == 200 and headers["Content-Type"] == "text/event-stream"
                assert all("id" not in message for message in sse_messages(body)), body
        after = json.loads(srv.post({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "run_code", "arguments": {"code": "print(kept)", "context_id": ctx}}}, h)[2])["result"]
        assert text_of(after) == "[stdout]\n5"  # the run was interrupted; the state survived
    finally:
        srv.close()


# -- 3. a cancelled batch member never loses the others' answers -------------------------


@pytest.mark.limit(90)
def test_stdio_batch_answers_its_other_members_when_one_is_cancelled(tmp_path):
    client = MCPClient()
    try:
        client.initialize("2025-03-26")
        started = tmp_path / "started"
        client.send([{"jsonrpc": "2.0", "id": "slow", "method": "tools/call", "params": {
                         "name": "run_code", "arguments": {"code": slow(started)}}},
                     {"jsonrpc": "2.0", "id": "list", "method": "tools/list"},
                     {"jsonrpc": "2.0", "id": "quick", "method": "tools/call", "params": {
                         "name": "run_code", "arguments": {"code": "6 * 7", "context_id": "nope"}}}])
        assert wait_until(started.exists, 20)
        client.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "slow"}})
        batch = client.wait_for_batch(20)
        assert sorted(reply["id"] for reply in batch) == ["list", "quick"]
        # a batch that cancels its own member: the rest is answered
        client.send([{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
                         "name": "run_code", "arguments": {"code": slow(tmp_path / "s2")}}},
                     {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}},
                     {"jsonrpc": "2.0", "id": 8, "method": "ping"}])
        deadline = time.monotonic() + 20
        while sum(isinstance(m, list) for m in client.seen) < 2:
            assert time.monotonic() < deadline, client.seen
            client.seen.append(client._inbox.get(timeout=20))
        assert [m for m in client.seen if isinstance(m, list)][1] == [{"jsonrpc": "2.0", "id": 8, "result": {}}]
    finally:
        client.close()


@pytest.mark.limit(90)
def test_http_batch_answers_its_other_members_when_one_is_cancelled(server, tmp_path):
    h = legacy_session(server, "2025-03-26")
    started = tmp_path / "started"
    batch = [{"jsonrpc": "2.0", "id": "slow", "method": "tools/call", "params": {
                 "name": "run_code", "arguments": {"code": slow(started)}}},
             {"jsonrpc": "2.0", "id": "list", "method": "tools/list"}]
    pending = in_thread(server.post, batch, h)
    assert wait_until(started.exists, 20)
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "slow"}}
    assert server.post(cancel, h)[0] == 202
    status, _, body = pending(20)
    assert status == 200 and [reply["id"] for reply in json.loads(body)] == ["list"]
    # without a session, a batch is its own scope: it may cancel its own members
    status, _, body = server.post([{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                                       "name": "run_code", "arguments": {"code": slow(tmp_path / "s2")}}},
                                   {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
                                   {"jsonrpc": "2.0", "id": 2, "method": "ping"}])
    assert status == 200 and json.loads(body) == [{"jsonrpc": "2.0", "id": 2, "result": {}}]


# -- 4. output limits cannot be lifted by a call; task results are bounded ------------------


BIG = "print('x' * 50000)"


def stdout_of(result):
    return result["structuredContent"]["stdout"]


@pytest.mark.limit(90)
def test_a_call_cannot_lift_the_operators_output_limit_over_stdio():
    client = MCPClient("--output-limit", "1000")
    try:
        client.initialize("2025-11-25")

        def run(**arguments):
            return client.response(client.request("tools/call", {"name": "run_code", "arguments": arguments}))[
                "result"]
        for limit in (0, 5000, 1_000_000):
            result = run(code=BIG, output_limit=limit)
            assert len(stdout_of(result)) < 1200 and result["structuredContent"]["truncated"], limit
        assert len(stdout_of(run(code=BIG, output_limit=200))) < 300  # lowering it is fine
        # a 2025-11-25 task keeps the capped output
        reply = client.response(client.request("tools/call", {"name": "run_code", "arguments": {
            "code": BIG, "output_limit": 0}, "task": {}}))
        task = reply["result"]["task"]["taskId"]
        result = client.response(client.request("tasks/result", {"taskId": task}))["result"]
        assert len(stdout_of(result)) < 1200 and result["structuredContent"]["truncated"]
    finally:
        client.close()


@pytest.mark.limit(90)
def test_a_call_cannot_lift_the_operators_output_limit_over_http():
    srv = HTTPServer("--output-limit", "1000")
    try:
        for limit in (0, 5000, 1_000_000):
            result = mcp_tool(srv, "run_code", {"code": BIG, "output_limit": limit})
            assert len(stdout_of(result)) < 1200 and result["structuredContent"]["truncated"], limit
        assert len(stdout_of(mcp_tool(srv, "run_code", {"code": BIG, "output_limit": 200}))) < 300
    finally:
        srv.close()


def test_output_limit_rules():
    from interp.mcp.tools import effective_output_limit
    assert effective_output_limit(None, 1000) == 1000 and effective_output_limit(0, 1000) == 1000
    assert effective_output_limit(5000, 1000) == 1000 and effective_output_limit(10, 1000) == 10
    assert effective_output_limit(0, 0) == 0 and effective_output_limit(5000, 0) == 5000  # the operator allows all


def test_task_results_have_a_byte_budget():
    from interp.mcp.tasks import TaskTable
    table = TaskTable(max_bytes=10_000)
    small, big, third = table.create("", None), table.create("", None), table.create("", None)
    table.finish(small, {"content": [{"type": "text", "text": "x" * 6000}]}, None)
    assert small.status == "completed" and 6000 < table.bytes_kept < 6200
    table.finish(big, {"content": [{"type": "text", "text": "y" * 6000}]}, None)
    assert big.status == "failed" and big.result is None and "does not fit" in big.error["message"]
    assert table.bytes_kept < 6200  # the big result was not kept
    table.drop(small)
    assert table.bytes_kept == 0
    table.finish(third, {"content": [{"type": "text", "text": "z" * 6000}]}, None)
    assert third.status == "completed" and third.result is not None


@pytest.mark.limit(60)
def test_a_task_over_the_budget_fails_saying_so(ci):
    """Real runs through the core: with no operator limit, the budget still bounds what tasks keep."""
    from interp.mcp.core import MCPCore, Session
    from interp.mcp.tasks import TaskTable
    core = MCPCore(ci, output_limit=0)
    core.tasks = TaskTable(max_bytes=30_000)
    session = Session("s", "2025-11-25")
    session.initialized = True
    replies = []
    done = threading.Event()

    def reply(message):
        replies.append(message)
        done.set()

    def call(method, params):
        done.clear()
        core.handle({"jsonrpc": "2.0", "id": len(replies), "method": method, "params": params}, session, reply,
                    lambda note: None)
        assert done.wait(30)
        return replies[-1]
    task = call("tools/call", {"name": "run_code", "arguments": {"code": "print('x' * 100000)"},
                               "task": {}})["result"]["task"]["taskId"]
    answer = call("tasks/result", {"taskId": task})
    assert "does not fit" in answer["error"]["message"]
    small = call("tools/call", {"name": "run_code", "arguments": {"code": "print('ok')"}, "task": {}})
    answer = call("tasks/result", {"taskId": small["result"]["task"]["taskId"]})
    assert text_of(answer["result"]) == "[stdout]\nok"
    core.wait_idle()


# -- 5 and 6. one context table for the HTTP routes and /mcp ------------------------------


def metric(server, name):
    _, text = request(server, "GET", "/metrics")
    return float(re.search(r"^%s (\S+)$" % name, text.decode(), re.M).group(1))


@pytest.mark.limit(90)
def test_max_contexts_and_metrics_count_contexts_of_both_front_ends():
    srv = HTTPServer("--max-contexts", "2")
    try:
        mcp_tool(srv, "create_context")
        assert request(srv, "POST", "/contexts", {})[0] == 201
        assert metric(srv, "interp_contexts") == 2
        refused = mcp_tool(srv, "create_context")
        assert refused["isError"] and "maximum of 2" in text_of(refused)
        status, body = request(srv, "POST", "/contexts", {})
        assert status == 503, body
        assert metric(srv, "interp_contexts") == 2 and metric(srv, "interp_contexts_created_total") == 2
    finally:
        srv.close()


@pytest.mark.limit(90)
def test_idle_timeout_expires_contexts_made_through_mcp():
    srv = HTTPServer("--idle-timeout", "1")
    try:
        ctx = mcp_tool(srv, "create_context")["structuredContent"]["context"]["id"]
        assert metric(srv, "interp_contexts_created_total") == 1  # in the table (listing it would race the expiry)
        assert wait_until(lambda: request(srv, "GET", "/contexts")[1] == [], 15)
        assert mcp_tool(srv, "list_contexts")["structuredContent"]["contexts"] == []
        result = mcp_tool(srv, "run_code", {"code": "1", "context_id": ctx})
        assert result["isError"] and "without use (--idle-timeout)" in text_of(result)
        assert metric(srv, "interp_contexts_expired_total") == 1
    finally:
        srv.close()


@pytest.mark.limit(90)
def test_a_context_deleted_through_one_front_end_is_gone_for_the_other():
    srv = HTTPServer("--max-contexts", "1")
    try:
        assert request(srv, "PUT", "/contexts/mine", {})[0] == 201
        assert request(srv, "POST", "/contexts/mine/execute", {"code": "x = 41"})[0] == 200
        # ids see every context, whichever front end made it
        assert text_of(mcp_tool(srv, "run_code", {"code": "x + 1", "context_id": "mine"})) == "[result]\n42"
        assert [c["id"] for c in mcp_tool(srv, "list_contexts")["structuredContent"]["contexts"]] == ["mine"]
        assert not mcp_tool(srv, "delete_context", {"context_id": "mine"})["isError"]
        # no phantom: the slot, the id and the 404 are the HTTP client's
        status, body = request(srv, "POST", "/contexts/mine/execute", {"code": "1"})
        assert status == 404 and "'mine'" in body["message"] and "ctx" not in body["message"], body
        assert request(srv, "GET", "/contexts")[1] == []
        assert request(srv, "PUT", "/contexts/mine", {})[0] == 201
        assert request(srv, "DELETE", "/contexts/mine")[0] == 204
        # and the other way round
        ctx = mcp_tool(srv, "create_context")["structuredContent"]["context"]["id"]
        assert request(srv, "DELETE", "/contexts/%s" % ctx)[0] == 204
        result = mcp_tool(srv, "run_code", {"code": "1", "context_id": ctx})
        assert result["isError"] and "ContextNotFoundError" in text_of(result)
        assert request(srv, "POST", "/contexts", {})[0] == 201  # the slot is free
    finally:
        srv.close()


def test_a_context_deleted_behind_the_tables_back_leaves_no_phantom(ci):
    from interp import ContextNotFoundError
    from interp.server.table import ContextTable
    table = ContextTable(ci, max_contexts=1)
    table.create("mine", None)
    with table.use("mine") as entry:
        engine_id = entry.engine_id
    ci.delete_context(engine_id)  # the interpreter's owner deletes it directly
    with pytest.raises(ContextNotFoundError):
        table.restart("mine")
    assert table.list() == [] and len(table) == 0
    assert table.create("mine", None).id == "mine"  # the id and the slot are free again
