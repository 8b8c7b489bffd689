"""Hostile clients against ``python -m interp serve`` (issue 10, points 10-13):
browsers and DNS rebinding, slow and idle clients, bursts, and malformed
requests, over raw sockets against a real server process."""

from __future__ import annotations

import http.client
import json
import os
import random
import resource
import shutil
import socket
import struct
import threading
import time

import pytest

from helpers import wait_until
from test_http import JSON, Server, read_event

MARK = "import pathlib; pathlib.Path(%r).write_text('ran')"


# -- raw HTTP --------------------------------------------------------------------

def connect(port: int, rcvbuf: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    return sock


def raw_request(method: str, path: str, body: bytes = b"", headers=None, host="127.0.0.1") -> bytes:
    """An HTTP/1.1 request as bytes; ``headers`` (a list of pairs) come after Host."""
    lines = ["%s %s HTTP/1.1" % (method, path)]
    if host is not None:
        lines.append("Host: %s" % host)
    pairs = list(headers or [])
    if body and not any(name.lower() == "content-length" for name, _ in pairs):
        pairs.append(("Content-Length", str(len(body))))
    head = "\r\n".join(lines + ["%s: %s" % pair for pair in pairs]) + "\r\n\r\n"
    return head.encode("latin-1") + body


class _KeepOpen:
    """A file that http.client.HTTPResponse cannot close."""

    def __init__(self, file) -> None:
        self._file = file

    def __getattr__(self, name):
        return getattr(self._file, name)

    def close(self) -> None:
        pass


class Responses:
    """Reads HTTP responses one after the other from a raw socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = _KeepOpen(sock.makefile("rb"))

    def makefile(self, *args, **kwargs):  # for http.client.HTTPResponse
        return self.file

    def next(self):
        """(status, response, decoded JSON body or None); the body of an
        NDJSON stream comes back as a list of events."""
        response = http.client.HTTPResponse(self)  # type: ignore[arg-type]
        response.begin()
        data = response.read()
        if response.getheader("Content-Type") == "application/x-ndjson":
            return response.status, response, [json.loads(line) for line in data.splitlines()]
        return response.status, response, json.loads(data) if data else None


def exchange(port: int, data: bytes):
    """Send ``data`` on a fresh connection and read one response."""
    with connect(port) as sock:
        sock.sendall(data)
        return Responses(sock).next()


def closed_by_server(sock: socket.socket, within: float = 20) -> bytes:
    """Everything the server sends until it closes ``sock`` (fails if it does not)."""
    sock.settimeout(within)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def status_of(data: bytes) -> int:
    return int(data.split(b" ", 2)[1])


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a client that crashed."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def server_threads(server: Server) -> int:
    with open("/proc/%d/status" % server.proc.pid) as status:
        return int(next(line for line in status if line.startswith("Threads:")).split()[1])


def server_cpu_seconds(server: Server) -> float:
    with open("/proc/%d/stat" % server.proc.pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_limit(n: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return apply


def execute(server: Server, **body):
    """POST /execute on a raw connection: (status, events or error body)."""
    data = json.dumps(body).encode()
    status, _, payload = exchange(server.port, raw_request("POST", "/execute", data, [JSON_PAIR]))
    return status, payload


JSON_PAIR = ("Content-Type", "application/json")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("hostile"), "--header-timeout", "1", "--io-timeout", "1",
                 "--max-connections", "16")
    try:
        yield srv
    finally:
        assert srv.stop() == 0
        assert "Traceback" not in srv.log.read_text(), srv.log.read_text()


def assert_serves(server: Server) -> None:
    status, _, health = exchange(server.port, raw_request("GET", "/health"))
    assert status == 200 and health["status"] == "ok"


# -- 10. browsers ------------------------------------------------------------------

def test_a_cross_origin_page_gets_403_and_runs_nothing(server, tmp_path):
    marker = tmp_path / "ran"
    body = json.dumps({"code": MARK % str(marker)}).encode()
    # what fetch(url, {method: "POST", mode: "no-cors", body}) sends from https://evil.example
    for origin, content_type in (("https://evil.example", "text/plain;charset=UTF-8"),
                                 ("https://evil.example", "application/json"),
                                 ("null", "text/plain"),
                                 ("http://127.0.0.1:%d.evil.example" % server.port, "application/json"),
                                 ("http://localhost:%d" % server.port, "application/json")):  # not this Host
        status, _, error = exchange(server.port, raw_request(
            "POST", "/execute", body, [("Origin", origin), ("Content-Type", content_type)]))
        assert status == 403 and "Origin" in error["message"], (origin, error)
    time.sleep(0.3)
    assert not marker.exists()
    # the server's own origin (and no Origin at all, as curl sends) may run code
    own = "http://127.0.0.1:%d" % server.port
    status, _, events = exchange(server.port, raw_request(
        "POST", "/execute", b'{"code": "print(1)"}', [("Origin", own), JSON_PAIR], host="127.0.0.1:%d" % server.port))
    assert status == 200 and events[0] == {"type": "stdout", "text": "1\n"}


def test_bodies_must_be_json_else_415(server, tmp_path):
    marker = tmp_path / "ran"
    body = json.dumps({"code": MARK % str(marker)}).encode()
    for headers in ([("Content-Type", "text/plain")], [("Content-Type", "application/x-www-form-urlencoded")],
                    [("Content-Type", "multipart/form-data; boundary=x")], []):
        status, response, error = exchange(server.port, raw_request("POST", "/execute", body, headers))
        assert status == 415 and "application/json" in error["message"], headers
        assert response.getheader("Connection") == "close"  # the body was not read
    # a request without a body needs no Content-Type, but may not name another
    assert exchange(server.port, raw_request("POST", "/contexts/default/interrupt"))[0] == 204
    assert exchange(server.port, raw_request("POST", "/contexts/default/interrupt", headers=[
        ("Content-Type", "text/plain"), ("Content-Length", "0")]))[0] == 415
    time.sleep(0.3)
    assert not marker.exists()
    status, _, events = exchange(server.port, raw_request(
        "POST", "/execute", b'{"code": "2"}', [("Content-Type", "application/json; charset=utf-8")]))
    assert status == 200 and events[0]["text"] == "2"


def test_dns_rebinding_a_foreign_host_gets_403(server, tmp_path):
    marker = tmp_path / "ran"
    body = json.dumps({"code": MARK % str(marker)}).encode()
    for host in ("evil.example:%d" % server.port, "evil.example", "10.0.0.1", "127.0.0.1.evil.example",
                 "[::1", "a b", "localhost:80:80", "user@127.0.0.1"):
        status, _, error = exchange(server.port, raw_request("POST", "/execute", body, [JSON_PAIR], host=host))
        assert status == 403 and "Host" in error["message"], host
    status, _, error = exchange(server.port, raw_request("GET", "/contexts", host=None))
    assert status == 400 and "Host" in error["message"]
    status, _, error = exchange(server.port, raw_request("GET", "/contexts", headers=[("Host", "evil.example")]))
    assert status == 400  # two Host headers
    time.sleep(0.3)
    assert not marker.exists()
    for host in ("localhost", "LOCALHOST:%d" % server.port, "127.0.0.1:%d" % server.port, "127.0.0.2", "[::1]:1"):
        assert exchange(server.port, raw_request("GET", "/health", host=host))[0] == 200, host


def test_allow_host_needs_a_token_and_admits_only_those_names(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "INTERP_TOKEN"}
    import subprocess
    import sys
    from test_http import ROOT

    proc = subprocess.run([sys.executable, "-m", "interp", "serve", "--port", "0", "--allow-host", "box"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "token" in proc.stderr

    srv = Server(tmp_path, "--token", "t0k", "--allow-host", "Box.Example", env=env)
    try:
        auth = [("Authorization", "Bearer t0k")]
        assert exchange(srv.port, raw_request("GET", "/contexts", headers=auth, host="box.example:8765"))[0] == 200
        assert exchange(srv.port, raw_request("GET", "/contexts", headers=auth, host="other.example"))[0] == 403
        assert exchange(srv.port, raw_request("GET", "/contexts", host="box.example"))[0] == 401
        assert exchange(srv.port, raw_request("GET", "/contexts", headers=auth, host="localhost"))[0] == 200
    finally:
        assert srv.stop() == 0


# -- 11. slow and idle clients -----------------------------------------------------------

@pytest.mark.limit(90)
def test_idle_and_half_sent_connections_are_bounded_and_timed_out(tmp_path):
    srv = Server(tmp_path, "--header-timeout", "0.5", "--max-connections", "4")
    idle, half = [], []
    try:
        idle += [connect(srv.port) for _ in range(20)]
        half += [connect(srv.port) for _ in range(40)]
        for sock in half:
            sock.sendall(b"POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        time.sleep(0.5)
        assert server_threads(srv) <= 4 + 8  # a thread per served connection at most, not one per client
        # an honest client is served once the ones ahead of it in the backlog time out
        assert exchange(srv.port, raw_request("GET", "/health"))[0] == 200
        for sock in idle:
            assert closed_by_server(sock) == b""  # an idle connection is just closed
        for sock in half:
            assert status_of(closed_by_server(sock)) == 408  # a half-sent request is told why
        assert server_threads(srv) <= 4 + 8
    finally:
        for sock in idle + half:
            sock.close()
        assert srv.stop() == 0
    assert "Traceback" not in srv.log.read_text()


@pytest.mark.limit(90)
def test_slow_heads_cannot_keep_honest_requests_waiting_while_the_server_is_full(tmp_path):
    """With every slot taken, a head gets BUSY_HEADER_TIMEOUT (1 s), not
    --header-timeout (30 s): 40 half-sent heads on 4 slots delay an honest
    request by about 10 s, not 300 s (the client below gives up after 30 s)."""
    srv = Server(tmp_path, "--header-timeout", "30", "--max-connections", "4")
    half = []
    try:
        for _ in range(40):
            sock = connect(srv.port)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            half.append(sock)
        assert exchange(srv.port, raw_request("GET", "/health"))[0] == 200
        # the first ones were told why (the last few, once the server is no
        # longer full, may take the whole --header-timeout)
        assert status_of(closed_by_server(half[0], within=5)) == 408
    finally:
        for sock in half:
            sock.close()
        assert srv.stop() == 0


def test_headers_trickled_byte_by_byte_still_hit_the_deadline(server):
    request = raw_request("GET", "/health", headers=[("X-Pad", "a" * 200)])
    with connect(server.port) as sock:
        started = time.monotonic()
        sent = 0
        try:
            while sent < len(request) and time.monotonic() - started < 15:
                sock.send(request[sent:sent + 1])  # a byte every 50 ms: each read succeeds
                sent += 1
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < len(request), "the server waited for the whole trickled request"
        assert status_of(closed_by_server(sock)) == 408


def test_a_body_shorter_than_its_content_length(server, tmp_path):
    marker = tmp_path / "ran"
    body = json.dumps({"code": MARK % str(marker)}).encode()
    request = raw_request("POST", "/execute", body, [JSON_PAIR, ("Content-Length", str(len(body) + 10))])
    with connect(server.port) as sock:  # the client waits: the body deadline ends it
        sock.sendall(request)
        status, _, error = Responses(sock).next()
        assert status == 408 and "body" in error["message"]
    with connect(server.port) as sock:  # the client half-closes: the body ended early
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        status, _, error = Responses(sock).next()
        assert status == 400 and "ended early" in error["message"]
    time.sleep(0.3)
    assert not marker.exists()


@pytest.mark.limit(90)
def test_a_client_that_stops_reading_cannot_hold_its_run_or_context(server, tmp_path):
    ctx = server.request("POST", "/contexts", {})[1]["id"]
    marker = tmp_path / "stopped"
    code = ("import sys\ntry:\n    while True:\n        sys.stdout.write('x' * 9999 + '\\n')\n"
            "except KeyboardInterrupt:\n    open(%r, 'w').close()\n    raise" % str(marker))
    sock = connect(server.port, rcvbuf=4096)
    try:  # no timeout: only the client's failure to read can stop this run
        sock.sendall(raw_request("POST", "/execute", json.dumps({"code": code, "context_id": ctx, "timeout": 0})
                                 .encode(), [JSON_PAIR]))
        assert wait_until(marker.exists, 40), "the run went on although its client read nothing"
        # the context is free again, with its state
        status, events = execute(server, code="print('next')", context_id=ctx)
        assert status == 200 and events[0] == {"type": "stdout", "text": "next\n"}
    finally:
        sock.close()
    server.request("DELETE", "/contexts/%s" % ctx)


@pytest.mark.limit(90)
def test_a_runs_deadline_holds_when_its_client_reads_nothing(tmp_path):
    """The timeout fires on time while the stream cannot be written, long
    before the server would give up on the client (--io-timeout 60)."""
    srv = Server(tmp_path, "--io-timeout", "60")
    sock = connect(srv.port, rcvbuf=4096)
    try:
        ctx = srv.request("POST", "/contexts", {})[1]["id"]
        code = "import sys, time\nsys.stdout.write(('y' * 999 + '\\n') * 3000)\ntime.sleep(60)"
        sock.sendall(raw_request("POST", "/execute", json.dumps({"code": code, "context_id": ctx, "timeout": 2})
                                 .encode(), [JSON_PAIR]))
        time.sleep(0.5)
        # waits for the first run to time out (the client gives up after 30 s)
        status, events = execute(srv, code="print('after')", context_id=ctx)
        assert status == 200 and events[0] == {"type": "stdout", "text": "after\n"}
    finally:
        sock.close()
        assert srv.stop() == 0


def test_an_event_larger_than_the_stream_buffer_reaches_a_reading_client(server):
    """STREAM_BUFFER bounds how far a client may fall behind, not the size of
    one event: a 12 MB result and the events after it all arrive."""
    code = "display({'text/plain': 'r' * 12_000_000}, raw=True)\nprint('after')"
    with connect(server.port, rcvbuf=4096) as sock:  # a small window: the event waits in the server
        sock.sendall(raw_request("POST", "/execute", json.dumps({"code": code}).encode(), [JSON_PAIR]))
        status, _, events = Responses(sock).next()
    assert status == 200 and [e["type"] for e in events] == ["result", "stdout", "end"]
    assert len(events[0]["text"]) == 12_000_000 and events[1]["text"] == "after\n"


def test_pipelined_requests_from_a_client_that_reads_nothing(server):
    """Each 404 echoes a 60 KB path: the answers outgrow every socket buffer,
    so the server's writes block, and it gives up after --io-timeout."""
    sock = connect(server.port, rcvbuf=4096)
    sent = 0
    try:
        sock.setblocking(False)
        request = raw_request("GET", "/" + "p" * 60000)
        for _ in range(400):  # 24 MB of answers, until the server stops taking requests in
            try:
                sock.sendall(request)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
            sent += 1
        assert_serves(server)  # others are served meanwhile
        time.sleep(3)
        sock.setblocking(True)
        sock.settimeout(30)
        data = b""
        try:
            while True:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        assert data.count(b"HTTP/1.1 404") < sent, "the server kept writing to a client that did not read"
    finally:
        sock.close()
    assert_serves(server)


def test_a_request_pipelined_after_execute_is_answered_after_the_stream(server):
    with connect(server.port) as sock:
        sock.sendall(raw_request("POST", "/execute", b'{"code": "import time\\ntime.sleep(0.5)\\nprint(5)"}',
                                 [JSON_PAIR]) + raw_request("GET", "/health"))
        responses = Responses(sock)
        status, _, events = responses.next()
        assert status == 200 and [e["type"] for e in events] == ["stdout", "end"]
        status, _, health = responses.next()
        assert status == 200 and health["status"] == "ok"


def test_a_client_that_pipelines_then_leaves_still_cancels_its_run(server, tmp_path):
    ctx = server.request("POST", "/contexts", {})[1]["id"]
    marker = tmp_path / "interrupted"
    code = ("import time\nprint('started', flush=True)\ntry:\n    time.sleep(60)\n"
            "except KeyboardInterrupt:\n    open(%r, 'w').close()\n    raise" % str(marker))
    sock = connect(server.port)
    try:
        sock.sendall(raw_request("POST", "/execute", json.dumps({"code": code, "context_id": ctx}).encode(),
                                 [JSON_PAIR]))
        received = b""
        while b"started" not in received:
            received += sock.recv(4096)
        sock.sendall(raw_request("GET", "/health"))  # waits in the socket while the run goes on
        time.sleep(0.3)
    finally:
        sock.close()  # the code prints nothing more: only the socket tells
    assert wait_until(marker.exists, 20), "the run went on after its client left"
    server.request("DELETE", "/contexts/%s" % ctx)


@pytest.mark.limit(90)
def test_the_accept_loop_does_not_spin_at_the_fd_limit(tmp_path):
    srv = Server(tmp_path, "--max-connections", "1000", "--header-timeout", "30", preexec_fn=fd_limit(64))
    socks = []
    try:
        for _ in range(120):  # more than the server has file descriptors for
            sock = connect(srv.port)
            sock.sendall(b"GET /health HTTP/1.1\r\n")
            socks.append(sock)
        assert wait_until(lambda: "out of resources" in srv.log.read_text(), 10)
        before = server_cpu_seconds(srv)
        time.sleep(2)
        assert server_cpu_seconds(srv) - before < 0.5, "the accept loop spins"
        for sock in socks:
            sock.close()
        socks = []
        status, _, _health = exchange(srv.port, raw_request("GET", "/health"))
        assert status == 200
        assert srv.log.read_text().count("out of resources") == 1  # said once, not in a loop
    finally:
        for sock in socks:
            sock.close()
        assert srv.stop() == 0


# -- 12. bursts -----------------------------------------------------------------------------

@pytest.mark.limit(120)
def test_200_concurrent_executes_all_succeed(server):
    contexts = [server.request("POST", "/contexts", {})[1]["id"] for _ in range(4)]
    outcomes = [None] * 200
    start = threading.Event()

    def client(i: int) -> None:
        start.wait(10)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=90)
            try:
                conn.request("POST", "/execute", body=json.dumps({"code": "print(%d)" % i,
                                                                  "context_id": contexts[i % 4]}), headers=JSON)
                response = conn.getresponse()
                outcomes[i] = (response.status, [read_event(response) for _ in range(2)])
            finally:
                conn.close()
        except Exception as exc:  # reported below
            outcomes[i] = exc

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(200)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(100)
    expected = [(200, [{"type": "stdout", "text": "%d\n" % i}, {"type": "end", "execution_count": 0}])
                for i in range(200)]
    for outcome in outcomes:  # execution counts depend on the order: compare the rest
        if isinstance(outcome, tuple):
            outcome[1][1]["execution_count"] = 0
    failed = [(i, outcome) for i, outcome in enumerate(outcomes) if outcome != expected[i]]
    assert not failed, "%d of 200 failed, e.g. %r" % (len(failed), failed[:3])
    for ctx in contexts:
        server.request("DELETE", "/contexts/%s" % ctx)


# -- 13. every error a JSON response --------------------------------------------------------

def test_context_id_default_names_the_default_context(server):
    assert execute(server, code="shared_value = 'via omitted id'")[0] == 200
    status, events = execute(server, code="print(shared_value)", context_id="default")
    assert status == 200 and events[0] == {"type": "stdout", "text": "via omitted id\n"}
    assert exchange(server.port, raw_request("POST", "/contexts/default/restart"))[0] == 200
    status, events = execute(server, code="shared_value", context_id="default")
    assert events[0]["name"] == "NameError"


HOSTILE_BODIES = {
    "deep-array-field": (b'{"code": "1", "x": ' + b"[" * 100000 + b"]" * 100000 + b"}", "deep"),
    "deep-unclosed": (b"[" * 100000, "deep"),
    "deep-envs": (b'{"code": "1", "envs": ' + b'{"a": ' * 5000 + b'"1"' + b"}" * 5000 + b"}", "deep"),
    "timeout-400-digits": (b'{"code": "1", "timeout": 1' + b"0" * 400 + b"}", "digits"),
    "timeout-1e400": (b'{"code": "1", "timeout": 1e400}', "range"),
    "timeout-nan": (b'{"code": "1", "timeout": NaN}', "NaN"),
    "timeout-infinity": (b'{"code": "1", "timeout": -Infinity}', "Infinity"),
    "timeout-1e20": (b'{"code": "1", "timeout": 1e20}', "timeout"),
    "timeout-bool": (b'{"code": "1", "timeout": true}', "number"),
    "context-id-number": (b'{"code": "1", "context_id": 7}', "string"),
    "envs-list-value": (b'{"code": "1", "envs": {"A": ["x"]}}', "str"),
    "envs-bad-name": (b'{"code": "1", "envs": {"A=B": "x"}}', "invalid"),
    "two-documents": (b'{"code": "1"} {"code": "2"}', "JSON"),
}


@pytest.mark.parametrize("body, words", list(HOSTILE_BODIES.values()), ids=list(HOSTILE_BODIES))
def test_hostile_bodies_get_json_400s(server, body, words):
    status, response, error = exchange(server.port, raw_request("POST", "/execute", body, [JSON_PAIR]))
    assert status == 400 and response.getheader("Content-Type") == "application/json", (status, error)
    if words:
        assert words in error["message"], error
    assert_serves(server)


def test_deep_json_in_a_string_is_fine(server):
    code = "len(%r)" % ("[" * 1000 + "{" * 1000)
    status, events = execute(server, code=code)
    assert status == 200 and events[0]["text"] == "2000"


def test_restart_with_a_deleted_cwd_is_a_json_error(server, tmp_path):
    workspace = tmp_path / "gone"
    workspace.mkdir()
    ctx = server.request("POST", "/contexts", {"cwd": str(workspace)})[1]["id"]
    shutil.rmtree(workspace)
    status, response, error = exchange(server.port, raw_request("POST", "/contexts/%s/restart" % ctx))
    assert status == 400 and "cwd" in error["message"], error
    assert response.getheader("Connection") != "close"
    assert server.request("DELETE", "/contexts/%s" % ctx)[0] == 204


@pytest.mark.limit(90)
def test_creating_contexts_at_the_fd_limit_is_a_json_503_and_recovers(tmp_path):
    srv = Server(tmp_path, preexec_fn=fd_limit(64))
    made = []
    try:
        for _ in range(60):
            status, payload, _response = srv.request("POST", "/contexts", {})
            if status != 201:
                break
            made.append(payload["id"])
        assert status == 503 and "Too many open files" in payload["message"], (status, payload)
        status, payload = execute(srv, code="1", context_id=made[0])  # the contexts made still work
        assert status == 200 and payload[0]["text"] == "1"
        for ctx in made[:3]:
            assert srv.request("DELETE", "/contexts/%s" % ctx)[0] == 204
        assert srv.request("POST", "/contexts", {})[0] == 201
    finally:
        assert srv.stop() == 0
    assert "Traceback" not in srv.log.read_text()


def test_a_non_ascii_token_matches_as_utf8(tmp_path):
    env = dict(os.environ, INTERP_TOKEN="tökén-秘密")
    srv = Server(tmp_path, env=env)
    try:
        good = "Bearer tökén-秘密".encode().decode("latin-1")  # the bytes a client sends
        assert exchange(srv.port, raw_request("GET", "/contexts", headers=[("Authorization", good)]))[0] == 200
        latin = "Bearer t\xf6k\xe9n-??"
        assert exchange(srv.port, raw_request("GET", "/contexts", headers=[("Authorization", latin)]))[0] == 401
        conn = srv.connect()  # and through http.client, with the header given as UTF-8 bytes
        try:
            conn.request("GET", "/contexts", headers={"Authorization": "Bearer tökén-秘密".encode()})
            assert conn.getresponse().status == 200
        finally:
            conn.close()
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("length", ["1_7", "+17", "0x11", " 17 17", "17, 17", "-0", "1\xb2", "9" * 40],
                         ids=["underscore", "plus", "hex", "two", "list", "minus", "superscript", "40-digits"])
def test_content_length_must_be_plain_digits(server, tmp_path, length):
    marker = tmp_path / "ran"
    body = json.dumps({"code": MARK % str(marker)}).encode()
    status, response, error = exchange(server.port, raw_request(
        "POST", "/execute", body, [JSON_PAIR, ("Content-Length", length)]))
    assert status in (400, 413) and response.getheader("Connection") == "close", error
    assert not marker.exists()


def test_two_content_lengths_are_refused(server):
    body = b'{"code": "1"}'
    status, _, error = exchange(server.port, raw_request(
        "POST", "/execute", body, [JSON_PAIR, ("Content-Length", "13"), ("Content-Length", "13")]))
    assert status == 400 and "Content-Length" in error["message"]


def test_clients_that_go_away_leave_no_traceback(server, tmp_path):
    log_before = server.log.read_text()
    for data in (b"GET /hea", b"POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"co", b""):
        sock = connect(server.port)
        if data:
            sock.sendall(data)
        time.sleep(0.1)
        reset(sock)
    # and in the middle of a stream
    sock = connect(server.port)
    sock.sendall(raw_request("POST", "/execute", b'{"code": "print(1, flush=True)\\nimport time\\ntime.sleep(30)"}',
                             [JSON_PAIR]))
    received = b""
    while b'"stdout"' not in received:
        received += sock.recv(4096)
    reset(sock)
    assert_serves(server)
    time.sleep(0.5)
    assert "Traceback" not in server.log.read_text()[len(log_before):]


def test_oversized_heads_get_json_errors(server):
    for request, expected in (
            (raw_request("GET", "/health", headers=[("X-Big", "a" * 70000)]), 431),  # one long line
            (raw_request("GET", "/health", headers=[("X-%d" % i, "a" * 4000) for i in range(30)]), 431),  # many
            (raw_request("GET", "/health", headers=[("X-%d" % i, "a") for i in range(150)]), 431),  # too many
            (raw_request("GET", "/" + "a" * 70000), 414)):
        with connect(server.port) as sock:
            try:
                sock.sendall(request)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and closed before reading it all
            status, _response, error = Responses(sock).next()
            assert status == expected and error["message"], (expected, error)
    assert_serves(server)


def test_pipelined_garbage_after_a_good_request(server):
    with connect(server.port) as sock:
        sock.sendall(raw_request("GET", "/health") + b"\x00\xff\xfe garbage \x01\r\n\r\n")
        responses = Responses(sock)
        assert responses.next()[0] == 200
        status, response, _error = responses.next()
        assert status == 400 and response.getheader("Content-Type") == "application/json"
        assert closed_by_server(sock) == b""


@pytest.mark.parametrize("line", [b"a b c d", b"GET /health", b"GET /health HTTP/9.9", b"GET /health FTP/1.1",
                                  b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"],
                         ids=["four-words", "http-0.9", "http-9.9", "ftp", "tls-hello"])
def test_garbage_request_lines_get_json_with_a_status_line(server, line):
    with connect(server.port) as sock:
        sock.sendall(line + b"\r\nHost: 127.0.0.1\r\n\r\n")
        status, _response, error = Responses(sock).next()
        assert 400 <= status < 600 and error["message"]


def test_an_unsupported_method_is_json(server):
    for method in ("OPTIONS", "TRACE", "BREW"):  # OPTIONS: no CORS preflight succeeds
        status, _response, error = exchange(server.port, raw_request(method, "/execute"))
        assert status == 501 and error["message"], (method, status)
    with connect(server.port) as sock:  # the answer to HEAD has no body
        sock.sendall(raw_request("HEAD", "/health"))
        data = closed_by_server(sock)
        assert status_of(data) == 501 and data.endswith(b"\r\n\r\n")


def test_an_internal_error_is_a_json_500_logged_once(tmp_path, capfd):
    """A bug in a handler (injected into the front end, not the engine) still
    gets a JSON answer, one log entry, and the server goes on serving."""
    from interp import CodeInterpreter
    from interp import server as http_server

    with CodeInterpreter(cwd=str(tmp_path)) as interpreter:
        srv = http_server.make_server(interpreter, port=0, log=False)
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        original = http_server.RequestHandler._list_contexts
        try:
            def broken(self, body):
                raise RuntimeError("injected fault")
            http_server.RequestHandler._list_contexts = broken
            status, _response, error = exchange(srv.port, raw_request("GET", "/contexts"))
            assert status == 500 and "injected fault" in error["message"]
            http_server.RequestHandler._list_contexts = original
            assert exchange(srv.port, raw_request("GET", "/contexts"))[0] == 200
        finally:
            http_server.RequestHandler._list_contexts = original
            srv.shutdown()
            srv.server_close()
            thread.join(10)
    err = capfd.readouterr().err
    assert err.count("RuntimeError: injected fault") == 1 and err.count("Traceback") == 1, err


@pytest.mark.limit(120)
def test_mutated_requests_always_get_a_json_answer_or_a_close(server):
    """Byte flips, cuts and insertions into valid requests (sent with a
    half-close, so the server never waits for more): each answer is a status
    line, headers and a JSON body; no traceback; the server keeps serving."""
    rng = random.Random(10)
    seeds = [raw_request("POST", "/execute", b'{"code": "1 + 1", "timeout": 5}', [JSON_PAIR]),
             raw_request("GET", "/health"),
             raw_request("DELETE", "/contexts/nope"),
             raw_request("POST", "/contexts/default/interrupt", b"{}", [JSON_PAIR])]
    log_before = server.log.read_text()
    answered = 0
    for _ in range(300):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data) + 1)
            kind = rng.randrange(4)
            if kind == 0 and at < len(data):
                data[at] = rng.randrange(256)
            elif kind == 1:
                del data[at:at + rng.randint(1, 8)]
            elif kind == 2:
                data[at:at] = rng.choice([b"\r\n", b":", b" ", b"\x00", b"9" * 30, b"[" * 50, b"%", b"\xff"])
            else:
                data = data[:at]
        with connect(server.port) as sock:
            sock.sendall(bytes(data))
            sock.shutdown(socket.SHUT_WR)
            responses = Responses(sock)
            while True:
                response = http.client.HTTPResponse(responses)  # type: ignore[arg-type]
                try:
                    response.begin()
                except (http.client.RemoteDisconnected, ConnectionResetError):
                    break  # closed without a word: only when no request had begun
                answered += 1
                assert 200 <= response.status < 600, bytes(data)
                if response.getheader("Content-Type") == "application/x-ndjson":
                    break  # a run: the half-close counts as leaving, so it was cancelled
                payload = response.read()
                if response.status >= 400:
                    error = json.loads(payload)
                    assert error["error"] and error["message"], (bytes(data), error)
    assert answered > 200
    for context in server.request("GET", "/contexts")[1]:
        server.request("DELETE", "/contexts/%s" % context["id"])
    assert_serves(server)
    assert "Traceback" not in server.log.read_text()[len(log_before):]
