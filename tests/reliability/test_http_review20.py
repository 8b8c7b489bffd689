"""What an independent hostile review of the evented server (issue 20) found,
each as a regression test against a real ``python -m interp serve``."""

from __future__ import annotations

import json
import socket
import ssl
import time

import pytest
from remote_helpers import ThreadServer, make_certificate
from test_http import Server
from test_http_hostile import Responses, closed_by_server, connect, exchange, raw_request, status_of

from interp import _jsonlimits

JSON_PAIR = ("Content-Type", "application/json")


def vm_rss(pid: int) -> int:
    with open("/proc/%d/status" % pid) as status:
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1]) * 1024


@pytest.mark.limit(60)
def test_failed_tls_handshakes_give_their_slot_back(tmp_path):
    """A client that distrusts the certificate, one that never says hello
    and one that sends garbage each leave; the server, with two slots, serves
    https afterwards (each kept its slot for good)."""
    certificate = make_certificate(str(tmp_path))
    server = ThreadServer(str(tmp_path), certificate, max_connections=2, header_timeout=1)
    try:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as sock:
                with pytest.raises(ssl.SSLError):  # the system CAs do not know the test's certificate
                    ssl.create_default_context().wrap_socket(sock, server_hostname="127.0.0.1")
            with socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # plain HTTP to an https port
                sock.recv(100)
            silent = socket.create_connection(("127.0.0.1", server.server.port), timeout=10)
            time.sleep(1.5)  # past the handshake's deadline
            silent.close()
        context = ssl.create_default_context(cafile=certificate[0])
        with socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                sock.sendall(raw_request("GET", "/health"))
                assert sock.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        server.close()


def test_json_depth_is_found_in_linear_time():
    body = ("[" * 33 + '"' + '\\"' * 3_000_000).encode()  # quadratic for the former pattern
    started = time.monotonic()
    with pytest.raises(ValueError, match="deep"):
        _jsonlimits.loads(body, max_depth=32, max_int_digits=30)
    assert time.monotonic() - started < 5
    doc = {"a": '[[[[[\\"[[[', "b": [["]]]]\\\\"]]}  # three deep: brackets in strings do not count
    assert _jsonlimits.loads(json.dumps(doc).encode(), max_depth=3, max_int_digits=30) == doc
    with pytest.raises(ValueError, match="deep"):
        _jsonlimits.loads(json.dumps(doc).encode(), max_depth=2, max_int_digits=30)


@pytest.mark.limit(60)
def test_a_body_of_escaped_quotes_does_not_freeze_the_server(tmp_path):
    server = Server(tmp_path)
    try:
        body = ("[" * 33 + '"' + '\\"' * 2_000_000).encode()
        with connect(server.port) as sock:
            sock.sendall(raw_request("POST", "/execute", body, [JSON_PAIR]))
            started = time.monotonic()
            status, _, error = Responses(sock).next()
            assert status == 400 and "deep" in error["message"]
            assert time.monotonic() - started < 10
    finally:
        assert server.stop() == 0


@pytest.mark.limit(60)
def test_mcp_progress_for_a_client_that_reads_nothing_is_bounded(tmp_path):
    server = Server(tmp_path)
    try:
        before = vm_rss(server.proc.pid)
        code = "while True:\n    print('p' * 200)"
        message = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "run_code", "arguments": {"code": code, "timeout": 4}, "_meta": {"progressToken": 1}}})
        sock = connect(server.port, rcvbuf=4096)
        try:
            sock.sendall(raw_request("POST", "/mcp", message.encode(), [
                JSON_PAIR, ("Accept", "application/json, text/event-stream"), ("MCP-Protocol-Version", "2025-06-18")]))
            time.sleep(3)  # the run prints as fast as it can; the client reads nothing
            grown = vm_rss(server.proc.pid) - before
        finally:
            sock.close()
        assert grown < 64 * 1024 * 1024, "the server grew by %d MiB" % (grown >> 20)
        assert exchange(server.port, raw_request("GET", "/health"))[0] == 200
    finally:
        assert server.stop() == 0


@pytest.mark.limit(60)
def test_an_upload_that_trickles_is_timed_out(tmp_path):
    server = Server(tmp_path, "--io-timeout", "2")
    try:
        with connect(server.port) as sock:
            sock.sendall(b"PUT /files/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n")
            started = time.monotonic()
            try:
                while time.monotonic() - started < 20:
                    sock.sendall(b"x")  # a byte every 0.3 s: never silent for --io-timeout
                    time.sleep(0.3)
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert time.monotonic() - started < 10, "the trickling upload was never timed out"
            assert status_of(closed_by_server(sock)) == 408
    finally:
        assert server.stop() == 0


@pytest.mark.limit(60)
def test_input_waits_only_until_the_runs_deadline(tmp_path):
    server = Server(tmp_path)
    try:
        body = json.dumps({"code": "import time\ntime.sleep(2.5)\ninput()", "timeout": 3, "input": True}).encode()
        started = time.monotonic()
        status, _, events = exchange(server.port, raw_request("POST", "/execute", body, [JSON_PAIR]))
        took = time.monotonic() - started
        assert status == 200 and events[-1]["type"] in ("timeout", "end"), events
        assert took < 5, "the run ended %.1f s after it started (timeout 3 s)" % took
    finally:
        assert server.stop() == 0


def test_request_targets_are_visible_ascii_and_http10_keep_alive_is_said(tmp_path):
    server = Server(tmp_path)
    try:
        for target, status in ((b"foo", 404), (b"*", 404), (b"//", 404), (b"/contexts//execute", 404),
                               (b"http://127.0.0.1/health", 200)):  # odd targets are routed, never a 500
            with connect(server.port) as sock:
                sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert Responses(sock).next()[0] == status, target
        for target in (b"/heal\x01th", b"/heal\x7fth", b"/h\xc3\xa9"):
            with connect(server.port) as sock:
                sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert status_of(closed_by_server(sock)) == 400
        with connect(server.port) as sock:
            sock.sendall(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
            status, response, _ = Responses(sock).next()
            assert status == 200 and response.getheader("Connection") == "keep-alive"
            sock.sendall(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            assert Responses(sock).next()[0] == 200
        with connect(server.port) as sock:  # curl's Expect on a large JSON body gets its 100 Continue
            body = json.dumps({"code": "print(len(%r))" % ("a" * 2_000_000)}).encode()
            sock.sendall(raw_request("POST", "/execute", b"", [JSON_PAIR, ("Expect", "100-continue"),
                                                              ("Content-Length", str(len(body)))]))
            sock.settimeout(5)  # it waits for the go-ahead before it sends the body
            assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.settimeout(30)
            sock.sendall(body)
            status, _, events = Responses(sock).next()
            assert status == 200 and events[0]["text"] == "2000000\n"
    finally:
        assert server.stop() == 0


@pytest.mark.limit(90)
def test_runs_that_must_be_killed_do_not_stall_the_loop(tmp_path):
    """Code that ignores its interrupt and prints on: the last look at its
    channel and the kill, reap and respawn happen off the event loop, so the
    server answers others meanwhile."""
    import threading

    server = Server(tmp_path, "--io-timeout", "60")
    code = ("import signal, sys\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "while True:\n    sys.stdout.write('s' * 100 + '\\n')")
    stop = threading.Event()

    def stubborn(ctx: str) -> None:
        while not stop.is_set():
            exchange(server.port, raw_request("POST", "/contexts/%s/execute" % ctx,
                                              json.dumps({"code": code, "timeout": 0.2}).encode(), [JSON_PAIR]))
    try:
        contexts = [server.request("POST", "/contexts", {})[1]["id"] for _ in range(4)]
        threads = [threading.Thread(target=stubborn, args=(ctx,), daemon=True) for ctx in contexts]
        for thread in threads:
            thread.start()
        worst = 0.0
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            started = time.monotonic()
            assert exchange(server.port, raw_request("GET", "/health"))[0] == 200
            worst = max(worst, time.monotonic() - started)
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert worst < 1.0, "a /health took %.2f s while stubborn runs were killed" % worst
    finally:
        stop.set()
        assert server.stop() == 0
