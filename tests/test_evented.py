"""The evented server (issue 20): one event loop holds every connection,
stream, upload and /mcp tool call; the server's threads are the loop's and
its few helpers, made once, whatever the clients do."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from helpers import wait_until
from test_http import Server

JSON = "Content-Type: application/json\r\n"


def threads_of(server: Server) -> int:
    with open("/proc/%d/status" % server.proc.pid) as status:
        return int(next(line for line in status if line.startswith("Threads:")).split()[1])


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return sock


def post(path: str, body: dict, extra: str = "") -> bytes:
    data = json.dumps(body).encode()
    return ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%sContent-Length: %d\r\n\r\n"
            % (path, JSON, extra, len(data))).encode() + data


def read_until(sock: socket.socket, marker: bytes, limit: float = 30) -> bytes:
    data = b""
    deadline = time.monotonic() + limit
    while marker not in data:
        assert time.monotonic() < deadline, "no %r in %r" % (marker, data[-300:])
        chunk = sock.recv(65536)
        assert chunk, "closed early: %r" % data[-300:]
        data += chunk
    return data


@pytest.mark.limit(120)
def test_connections_streams_uploads_and_mcp_calls_add_no_thread(tmp_path):
    server = Server(tmp_path, "--cwd", str(tmp_path))
    socks = []
    try:
        status, _created, _ = server.request("POST", "/contexts", {})
        assert status == 201
        assert server.request("GET", "/health")[0] == 200
        baseline = threads_of(server)
        idle = [connect(server) for _ in range(300)]
        socks += idle
        slow_code = "import time\nprint('going', flush=True)\ntime.sleep(3)\nprint('done')"
        streams = []
        for _ in range(10):  # each on a context of its own, all running at once
            ctx = server.request("POST", "/contexts", {})[1]["id"]
            sock = connect(server)
            sock.sendall(post("/contexts/%s/execute" % ctx, {"code": slow_code}))
            streams.append(sock)
        socks += streams
        calls = []
        for i in range(10):  # /mcp tool calls with progress: SSE streams on the loop
            ctx = server.request("POST", "/contexts", {})[1]["id"]
            sock = connect(server)
            sock.sendall(post("/mcp", {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
                "name": "run_code", "arguments": {"code": slow_code, "context_id": ctx},
                "_meta": {"progressToken": i}}}, "Accept: application/json, text/event-stream\r\n"
                "MCP-Protocol-Version: 2025-06-18\r\n"))
            calls.append(sock)
        socks += calls
        uploads = []
        for i in range(5):  # uploads that send half their body and wait
            sock = connect(server)
            sock.sendall(b"PUT /files/up%d HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2000000\r\n\r\n" % i
                         + b"x" * 1000000)
            uploads.append(sock)
        socks += uploads
        for sock in streams + calls:
            read_until(sock, b"going")
        during = threads_of(server)
        assert server.request("GET", "/health")[0] == 200  # and others are served meanwhile
        for sock in streams:
            assert b'"end"' in read_until(sock, b'"end"')
        for sock in calls:
            assert b'"result"' in read_until(sock, b'"result"')
        for i, sock in enumerate(uploads):
            sock.sendall(b"y" * 1000000)
            assert b"201 Created" in read_until(sock, b"\r\n\r\n")
            assert os.path.getsize(tmp_path / ("up%d" % i)) == 2000000
        assert during == baseline, "threads went from %d to %d" % (baseline, during)
    finally:
        for sock in socks:
            sock.close()
        assert server.stop() == 0
    assert "Traceback" not in server.log.read_text()


@pytest.mark.limit(60)
def test_request_bodies_read_at_once_are_bounded_over_all_connections(tmp_path):
    """Idle connections are cheap, bodies are not: past the server's budget
    of body bytes it holds (counted as they arrive, until the request is
    answered), a request gets 503 (and may retry)."""
    from remote_helpers import ThreadServer

    server = ThreadServer(str(tmp_path))
    server.server.body_budget = 1000
    socks = []
    try:
        head = (b"POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 600\r\n\r\n")
        first = socket.create_connection(("127.0.0.1", server.server.port), timeout=30)
        socks.append(first)
        first.sendall(head + b" " * 590)  # and the rest never comes
        time.sleep(0.3)
        second = socket.create_connection(("127.0.0.1", server.server.port), timeout=30)
        socks.append(second)
        second.sendall(head + b" " * 500)  # a head alone holds nothing: bytes count as they arrive
        answer = read_until(second, b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer
        first.close()
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", server.server.port), timeout=30) as third:
            body = b'{"code": "print(7)"}'
            third.sendall(head.replace(b"600", b"%d" % len(body)) + body)
            assert b'"text": "7\\n"' in read_until(third, b'"end"')
    finally:
        for sock in socks:
            sock.close()
        server.close()


def vm_hwm(pid: int) -> int:
    with open("/proc/%d/status" % pid) as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) * 1024


@pytest.mark.limit(120)
def test_streamed_output_is_not_kept_in_the_server(tmp_path):
    """Every line of an /execute run has gone to its client: the server keeps
    at most interp.server.runs.KEPT_OUTPUT of it, not the engine's 16 MiB per
    stream, so four runs printing 20 MB each barely move its peak memory."""
    server = Server(tmp_path)
    socks = []
    try:
        assert server.request("GET", "/health")[0] == 200
        before = vm_hwm(server.proc.pid)
        code = "for i in range(20000):\n    print('z' * 999)"
        for _ in range(4):
            ctx = server.request("POST", "/contexts", {})[1]["id"]
            sock = connect(server)
            sock.sendall(post("/contexts/%s/execute" % ctx, {"code": code}))
            socks.append(sock)
        for sock in socks:
            data = read_until(sock, b'"end"', limit=90)
            assert data.count(b"z" * 999) == 20000
        grown = vm_hwm(server.proc.pid) - before
        assert grown < 40 * 1024 * 1024, "the server's peak memory grew by %d MiB" % (grown >> 20)
    finally:
        for sock in socks:
            sock.close()
        assert server.stop() == 0


def rss_of(pid: int) -> int:
    with open("/proc/%d/status" % pid) as status:
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1]) * 1024


@pytest.mark.limit(60)
def test_an_idle_connection_costs_kilobytes_not_a_buffer(tmp_path):
    """500 keep-alive connections that have each had an answer: the server's
    memory grows by a few KiB each (no receive buffer per connection; with one
    of 64 KiB each this grew by 32 MiB)."""
    server = Server(tmp_path)
    socks = []
    try:
        assert server.request("GET", "/health")[0] == 200
        for _ in range(20):  # warm: the first connections make the loop's own structures
            with connect(server) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                read_until(sock, b"\r\n\r\n")
        before = rss_of(server.proc.pid)
        for _ in range(500):
            sock = connect(server)
            socks.append(sock)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for sock in socks:
            read_until(sock, b"\r\n\r\n")
        grown = rss_of(server.proc.pid) - before
        assert grown < 12 * 1024 * 1024, "500 idle connections took %d KiB each" % (grown // 500 >> 10)
    finally:
        for sock in socks:
            sock.close()
        assert server.stop() == 0


@pytest.mark.limit(60)
def test_a_run_whose_client_left_before_it_began_is_dropped_not_started(tmp_path):
    """The server writes a run's command to its worker before it answers the
    HTTP head; a request whose client has already gone (here: its connection
    is lost before the handler runs) must not reach the worker at all."""
    import asyncio

    from remote_helpers import ThreadServer

    from interp import _http11 as http11
    from interp.server.connection import Connection
    from interp.server.routes import RequestHandler

    server = ThreadServer(str(tmp_path))
    try:
        marker = tmp_path / "marker"
        count = server.interpreter.run_code("x = 1").execution_count  # the default context is running
        body = json.dumps({"code": "open(%r, 'w').close()\nx = 2" % str(marker)}).encode()
        request = post("/execute", {"code": ""}).split(b"\r\n\r\n")[0]
        request = request.replace(b"Content-Length: 12", b"Content-Length: %d" % len(body)) + b"\r\n\r\n" + body

        async def handle_for_a_gone_client() -> bool:
            conn = Connection(server.server, lambda c: None, lambda c: None)
            conn.lost = True  # connection_lost came before the handler ran
            conn.reader.feed(request)
            head = conn.reader.head()
            assert isinstance(head, http11.Head)
            conn.task = asyncio.current_task()
            return await RequestHandler(conn, head).handle()

        assert wait_until(lambda: server.server._loop is not None)  # serve_forever started in its thread
        loop = server.server._loop
        assert loop is not None
        keep = asyncio.run_coroutine_threadsafe(handle_for_a_gone_client(), loop).result(30)
        assert keep is False
        time.sleep(0.3)
        assert not marker.exists(), "the run of a client that had left was started"
        after = server.interpreter.run_code("print(x)")
        assert (after.stdout, after.execution_count) == ("1\n", count + 1), "the worker got the command"
    finally:
        server.close()
