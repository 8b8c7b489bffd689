"""The wire rules of the HTTP front end (issue 21): HTTP/1.0 clients get a
close-delimited stream, both remote twins skip interim (1xx) responses and
keep a bounded number of results whatever a server sends."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest
from remote_helpers import ThreadServer

from interp import AsyncRemoteCodeInterpreter, RemoteCodeInterpreter
from interp.errors import RemoteProtocolError

MAX_RESULTS = 10_000  # interp's remote core: results kept per run


@pytest.fixture
def server(tmp_path):
    srv = ThreadServer(str(tmp_path))
    yield srv
    srv.close()


def _http10(port: int, path: str, body: dict, extra: str = "") -> bytes:
    """One HTTP/1.0 request; everything the server sends until it closes."""
    data = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("POST %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n%s"
                      "Content-Length: %d\r\n\r\n" % (path, extra, len(data))).encode() + data)
        received = b""
        while True:
            piece = sock.recv(65536)
            if not piece:
                return received
            received += piece


@pytest.mark.parametrize("extra", ["", "Connection: keep-alive\r\n"])
def test_an_http10_client_gets_a_close_delimited_stream(server, extra):
    port = server.server.port
    answer = _http10(port, "/execute", {"code": "for i in range(3):\n    print(i)\n'done'"}, extra)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    headers = head.decode().lower()
    assert "transfer-encoding" not in headers and "connection: close" in headers
    events = [json.loads(line) for line in body.decode().splitlines()]  # no chunk-size lines among them
    assert [e["text"] for e in events if e["type"] == "stdout"] == ["0\n", "1\n", "2\n"]
    assert events[-2]["type"] == "result" and events[-2]["text"] == "'done'" and events[-1]["type"] == "end"


def test_an_http10_client_of_mcp_gets_an_sse_stream_without_chunking(server):
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "pytest", "version": "1"}, "progressToken": 1}
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
        "name": "run_code", "arguments": {"code": "print('a')\nprint('b')"}, "_meta": meta}}
    answer = _http10(server.server.port, "/mcp", call, "Accept: application/json, text/event-stream\r\n"
                     "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: run_code\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    headers = head.decode().lower()
    assert "text/event-stream" in headers and "transfer-encoding" not in headers and "connection: close" in headers
    events = [json.loads(line[len("data: "):]) for line in body.decode().splitlines() if line.startswith("data: ")]
    assert events[0]["method"] == "notifications/progress"  # the stream's events, nothing else between them
    assert events[-1]["id"] == 5 and events[-1]["result"]["structuredContent"]["stdout"] == "a\nb\n"
    assert all(line.startswith(("data: ", "event: ", "id: ", ":")) or not line for line in body.decode().splitlines())


class InterimServer:
    """Answers each request on a kept-alive connection with ``interim`` 1xx
    responses, then a run's stream printing the request's number."""

    def __init__(self, interim: int, results: int = 0) -> None:
        self.interim, self.results = interim, results
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.url = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.count = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            with sock:
                sock.settimeout(10)
                try:
                    while self._answer(sock):
                        pass
                except OSError:
                    pass

    def _answer(self, sock: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            piece = sock.recv(65536)
            if not piece:
                return False
            data += piece
        head, _, body = data.partition(b"\r\n\r\n")
        lower = head.lower()
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0]) if b"content-length" in lower else 0
        while len(body) < length:
            body += sock.recv(65536)
        self.count += 1
        events = [{"type": "stdout", "text": "answer %d\n" % self.count}]
        events += [{"type": "result", "text": str(i), "is_main_result": False} for i in range(self.results)]
        events.append({"type": "end", "execution_count": self.count})
        payload = "".join(json.dumps(e) + "\n" for e in events).encode()
        interim = b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n" * self.interim
        sock.sendall(interim + b"HTTP/1.1 102 Processing\r\n\r\n" * min(1, self.interim)
                     + b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n"
                     % len(payload) + payload)
        return True

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.listener.close()


def test_both_twins_skip_interim_responses():
    fake = InterimServer(interim=2)
    try:
        with RemoteCodeInterpreter(fake.url, io_timeout=5) as ci:
            assert ci.run_code("1").stdout == "answer 1\n"
            assert ci.run_code("2", context="other").stdout == "answer 2\n"  # not the first run's leftovers

        async def main():
            async with AsyncRemoteCodeInterpreter(fake.url, io_timeout=5) as aci:
                assert (await aci.run_code("1")).stdout == "answer 3\n"
                assert (await aci.run_code("2", context="other")).stdout == "answer 4\n"
        asyncio.run(main())
    finally:
        fake.close()


def test_endless_interim_responses_are_a_protocol_error():
    fake = InterimServer(interim=100)
    try:
        with RemoteCodeInterpreter(fake.url, io_timeout=5) as ci:
            with pytest.raises(RemoteProtocolError, match="interim"):
                ci.run_code("1")
    finally:
        fake.close()


def test_the_results_a_remote_run_keeps_are_bounded_in_count():
    fake = InterimServer(interim=0, results=MAX_RESULTS + 5000)
    try:
        seen = []
        with RemoteCodeInterpreter(fake.url, io_timeout=30, max_output=None) as ci:
            result = ci.run_code("x", on_result=seen.append)
        assert len(seen) == MAX_RESULTS + 5000  # every one reached the callback
        assert len(result.results) == MAX_RESULTS + 1 and result.truncated
        assert result.results[MAX_RESULTS - 1].text == str(MAX_RESULTS - 1)
        assert "were not kept" in result.results[-1].text
    finally:
        fake.close()
