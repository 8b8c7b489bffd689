"""``python -m interp serve``, with real HTTP requests on a loopback port."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from helpers import process_exists as pid_alive
from helpers import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JSON = {"Content-Type": "application/json"}


class Server:
    """``python -m interp serve --port 0`` in a subprocess; its log goes to a file."""

    def __init__(self, tmp_path, *args: str, env=None, preexec_fn=None) -> None:
        self.log = tmp_path / ("serve-%d.log" % id(self))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "interp", "serve", "--port", "0", "--quiet", *args],
                                         cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                         preexec_fn=preexec_fn)
        self.port = None
        assert wait_until(self._started, 15), "server did not start: %s" % self.log.read_text()

    def _started(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        for line in self.log.read_text().splitlines():
            if "listening on http://127.0.0.1:" in line:
                self.port = int(line.split(":")[-1].split()[0])
                return True
        return False

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=None, headers=None, raw=None):
        """(status, decoded JSON or None, response headers); a body is sent as JSON."""
        conn = self.connect()
        try:
            data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            conn.request(method, path, body=data, headers=dict(JSON, **(headers or {})) if data else headers or {})
            response = conn.getresponse()
            payload = response.read()
            return response.status, json.loads(payload) if payload else None, response
        finally:
            conn.close()

    def stream(self, **body):
        """POST /execute; (connection, response) to read events from one by one."""
        conn = self.connect()
        conn.request("POST", "/execute", body=json.dumps(body).encode(), headers=JSON)
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/x-ndjson"
        assert response.getheader("Transfer-Encoding") == "chunked"
        return conn, response


def read_event(response):
    line = response.readline()
    return json.loads(line) if line else None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("http"))
    try:
        yield srv
    finally:
        assert srv.stop() == 0


def run(server, **body):
    """POST /execute and collect every event."""
    conn, response = server.stream(**body)
    try:
        events = []
        while True:
            event = read_event(response)
            if event is None:
                return events
            events.append(event)
    finally:
        conn.close()


def test_context_endpoints(server, tmp_path):
    status, context, _ = server.request("POST", "/contexts", {"cwd": str(tmp_path)})
    assert status == 201 and context["cwd"] == str(tmp_path) and context["language"] == "python"
    ctx = context["id"]
    status, listed, _ = server.request("GET", "/contexts")
    assert status == 200 and ctx in [c["id"] for c in listed]

    events = run(server, code="import os\nvalue = 41\nprint(os.getcwd())", context_id=ctx)
    assert events == [{"type": "stdout", "text": "%s\n" % tmp_path}, {"type": "end", "execution_count": 1}]
    events = run(server, code="value + 1", context_id=ctx)
    assert events[0] == {"type": "result", "text": "42", "is_main_result": True}

    status, restarted, _ = server.request("POST", "/contexts/%s/restart" % ctx)
    assert status == 200 and restarted["id"] == ctx
    assert run(server, code="value", context_id=ctx)[0]["name"] == "NameError"
    assert server.request("POST", "/contexts/%s/interrupt" % ctx)[0] == 204  # idle: no effect

    assert server.request("DELETE", "/contexts/%s" % ctx)[0] == 204
    status, error, _ = server.request("DELETE", "/contexts/%s" % ctx)
    assert status == 404 and error["error"] == "Not Found" and ctx in error["message"]
    assert server.request("POST", "/execute", {"code": "1", "context_id": ctx})[0] == 404
    assert server.request("POST", "/contexts/%s/restart" % ctx)[0] == 404
    assert server.request("POST", "/contexts", {"cwd": str(tmp_path / "missing")})[0] == 400


def test_execute_streams_events_in_order(server):
    events = run(server, code="import sys\nprint('a')\nprint('b')\nprint('warn', file=sys.stderr)\n"
                              "display('shown')\n6 * 7")
    assert [e for e in events if e["type"] == "stdout"] == [{"type": "stdout", "text": "a\n"},
                                                            {"type": "stdout", "text": "b\n"}]
    assert [e for e in events if e["type"] == "stderr"] == [{"type": "stderr", "text": "warn\n"}]
    results = [e for e in events if e["type"] == "result"]
    assert [(r["text"], r["is_main_result"]) for r in results] == [("'shown'", False), ("42", True)]
    assert events[-1]["type"] == "end" and events[-1]["execution_count"] >= 1

    events = run(server, code="print('before')\ndef f():\n    return 1 / 0\nf()")
    assert [e["type"] for e in events] == ["stdout", "error", "end"]
    error = events[1]
    assert error["name"] == "ZeroDivisionError" and error["value"] == "division by zero"
    assert error["traceback"].startswith("Traceback") and "return 1 / 0" in error["traceback"]


def test_output_arrives_while_the_code_runs(server, tmp_path):
    flag = tmp_path / "go"
    conn, response = server.stream(code=(
        "import os, time\nprint('first', flush=True)\ndeadline = time.time() + 20\n"
        "while not os.path.exists(%r) and time.time() < deadline:\n    time.sleep(0.02)\nprint('second')"
        % str(flag)), envs={"MODE": "x"})
    try:
        assert read_event(response) == {"type": "stdout", "text": "first\n"}  # before the run can end
        flag.touch()
        assert read_event(response) == {"type": "stdout", "text": "second\n"}
        assert read_event(response)["type"] == "end"
        assert read_event(response) is None
    finally:
        conn.close()


def test_client_disconnect_interrupts_the_run(server, tmp_path):
    _status, context, _ = server.request("POST", "/contexts", {})
    ctx = context["id"]
    run(server, code="kept = 'state'", context_id=ctx)
    marker = tmp_path / "interrupted"
    conn, response = server.stream(context_id=ctx, code=(
        "import time\nprint('started', flush=True)\ntry:\n    while True:\n        time.sleep(0.05)\n"
        "except KeyboardInterrupt:\n    open(%r, 'w').write('yes')\n    raise" % str(marker)))
    assert read_event(response) == {"type": "stdout", "text": "started\n"}
    conn.close()  # the code prints nothing more: the server must notice the socket closing
    assert wait_until(marker.exists), "the run was not interrupted"
    assert run(server, code="print(kept)", context_id=ctx)[0] == {"type": "stdout", "text": "state\n"}
    server.request("DELETE", "/contexts/%s" % ctx)


def test_disconnect_while_queued_drops_the_run(server, tmp_path):
    ctx = server.request("POST", "/contexts", {})[1]["id"]
    flag, marker = str(tmp_path / "go"), str(tmp_path / "ran")
    busy_conn, busy = server.stream(context_id=ctx, code=(
        "import os, time\nprint('busy', flush=True)\ndeadline = time.time() + 20\n"
        "while not os.path.exists(%r) and time.time() < deadline:\n    time.sleep(0.02)" % flag))
    try:
        assert read_event(busy) == {"type": "stdout", "text": "busy\n"}
        queued_conn, _ = server.stream(context_id=ctx, code="open(%r, 'w').close()" % marker)
        queued_conn.close()  # gives up while waiting for its turn
        time.sleep(1.0)  # the server notices at once (its watcher polls the socket)
        open(flag, "w").close()
        assert read_event(busy)["type"] == "end"
    finally:
        busy_conn.close()
    # a later run waits for every earlier one on the context: the dropped run never ran
    assert run(server, code="import os\nos.path.exists(%r)" % marker, context_id=ctx)[0]["text"] == "False"
    server.request("DELETE", "/contexts/%s" % ctx)


def test_runs_on_different_contexts_are_parallel(server, tmp_path):
    a = server.request("POST", "/contexts", {})[1]["id"]
    b = server.request("POST", "/contexts", {})[1]["id"]
    wait = ("import os, time\nopen(%r, 'w').close()\ndeadline = time.time() + 20\n"
            "while not os.path.exists(%r) and time.time() < deadline:\n    time.sleep(0.02)\n"
            "print(os.path.exists(%r))")
    fa, fb = str(tmp_path / "a"), str(tmp_path / "b")
    outcome = {}

    def run_a():
        try:
            outcome["a"] = run(server, code=wait % (fa, fb, fb), context_id=a)
        except BaseException as exc:  # reported by the assert below
            outcome["a"] = exc

    thread = threading.Thread(target=run_a, daemon=True)
    thread.start()
    outcome["b"] = run(server, code=wait % (fb, fa, fa), context_id=b)
    thread.join(30)
    assert outcome["b"][0] == {"type": "stdout", "text": "True\n"}, outcome
    assert outcome["a"][0] == {"type": "stdout", "text": "True\n"}, outcome
    for ctx in (a, b):
        server.request("DELETE", "/contexts/%s" % ctx)


def test_timeout_event(server):
    events = run(server, code="import time\nprint('slow', flush=True)\ntime.sleep(30)", timeout=0.5)
    assert events[0] == {"type": "stdout", "text": "slow\n"}
    assert events[-1]["type"] == "timeout" and events[-1]["restarted"] is False
    assert "end" not in [e["type"] for e in events]


def test_bad_requests_get_json_errors(server):
    def status_and_message(method, path, body=None, raw=None):
        status, payload, _ = server.request(method, path, body, raw=raw)
        assert isinstance(payload["message"], str) and payload["error"]
        return status, payload["message"]

    assert status_and_message("POST", "/execute", raw=b"{not json")[0] == 400
    assert status_and_message("POST", "/execute", raw=b"[1, 2]")[0] == 400
    assert status_and_message("POST", "/execute", {})[1] == "the field 'code' is required"
    assert status_and_message("POST", "/execute", {"code": 5})[0] == 400
    assert status_and_message("POST", "/execute", {"code": "1", "colour": "red"})[0] == 400
    assert status_and_message("POST", "/execute", {"code": "1", "timeout": -1})[0] == 400
    assert status_and_message("POST", "/execute", {"code": "1", "envs": {"A": 1}})[0] == 400
    assert status_and_message("POST", "/execute", raw=b"\xff\xfe")[0] == 400
    assert status_and_message("GET", "/no/such/path")[0] == 404
    status, _payload, response = server.request("GET", "/execute")
    assert status == 405 and response.getheader("Allow") == "POST"
    assert server.request("PUT", "/contexts")[0] == 405

    # a body larger than the limit is refused from its Content-Length, unread
    conn = server.connect()
    try:
        conn.putrequest("POST", "/execute")
        conn.putheader("Content-Length", str(64 * 1024 * 1024))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413 and "exceeds" in json.loads(response.read())["message"]
    finally:
        conn.close()
    status, health, _ = server.request("GET", "/health")  # and the server still serves
    assert status == 200 and health["status"] == "ok"


def test_keep_alive_connection_serves_several_requests(server):
    conn = server.connect()
    try:
        for code in ("1 + 1", "2 + 2"):
            conn.request("POST", "/execute", body=json.dumps({"code": code}), headers=JSON)
            response = conn.getresponse()
            lines = response.read().decode().splitlines()
            assert json.loads(lines[-1])["type"] == "end"
        conn.request("GET", "/contexts")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_token_is_required_on_every_request(tmp_path):
    env = dict(os.environ, INTERP_TOKEN="s3cret")
    srv = Server(tmp_path, env=env)
    try:
        assert srv.request("GET", "/contexts")[0] == 401
        status, _payload, response = srv.request("GET", "/no/such/path", headers={"Authorization": "Bearer wrong"})
        assert status == 401 and response.getheader("WWW-Authenticate").startswith("Bearer")
        assert srv.request("POST", "/execute", {"code": "1"}, headers={"Authorization": "s3cret"})[0] == 401
        good = {"Authorization": "Bearer s3cret"}
        assert srv.request("GET", "/contexts", headers=good)[:2] == (200, [])
        conn = srv.connect()
        try:
            conn.request("POST", "/execute", body=json.dumps({"code": "print('ok')"}), headers=dict(JSON, **good))
            assert json.loads(conn.getresponse().read().decode().splitlines()[0])["text"] == "ok\n"
        finally:
            conn.close()
    finally:
        assert srv.stop() == 0


def test_refuses_a_non_loopback_address_without_a_token():
    env = {k: v for k, v in os.environ.items() if k != "INTERP_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "interp", "serve", "--host", "0.0.0.0", "--port", "0"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "refusing" in proc.stderr and "token" in proc.stderr


def test_stopping_the_server_kills_its_workers(tmp_path):
    srv = Server(tmp_path)
    try:
        pid = int(run(srv, code="import os\nos.getpid()")[0]["text"])
        ctx = srv.request("POST", "/contexts", {})[1]["id"]
        other = int(run(srv, code="import os\nos.getpid()", context_id=ctx)[0]["text"])
        assert pid_alive(pid) and pid_alive(other)
    finally:
        assert srv.stop() == 0
    assert wait_until(lambda: not pid_alive(pid) and not pid_alive(other))
