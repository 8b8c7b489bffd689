"""``python -m interp serve``'s command line (issues 19 and 21): every mistake
is one clear line and exit status 2, an empty token is refused, ``--timeout``
is the timeout of runs that give none, over HTTP and /mcp alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_http import Server, read_event

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JSON = {"Content-Type": "application/json"}


def _serve(*args: str, env=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "INTERP_TOKEN"} if env is None else env
    return subprocess.run([sys.executable, "-m", "interp", "serve", "--port", "0", *args], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, words", [
    (["--port", "99999"], "--port must be from 0 to 65535"),
    (["--port", "-1"], "--port must be from 0 to 65535"),
    (["--port", "http"], "invalid int value"),
    (["--timeout", "-1"], "--timeout: expected a number of seconds >= 0"),
    (["--timeout", "nan"], "--timeout: expected a number of seconds >= 0"),
    (["--header-timeout", "0"], "--header-timeout must be"),
    (["--io-timeout", "inf"], "--io-timeout must be"),
    (["--idle-timeout", "-5"], "--idle-timeout must be"),
    (["--mcp-keepalive", "0"], "--mcp-keepalive must be"),
    (["--max-body", "-1"], "--max-body must be >= 0"),
    (["--max-upload", "-1"], "--max-upload must be >= 0"),
    (["--max-connections", "0"], "--max-connections must be >= 1"),
    (["--max-contexts", "-3"], "--max-contexts must be >= 1"),
    (["--output-limit", "-1"], "--output-limit"),
    (["--no-such-option"], "unrecognized arguments"),
    (["--token", ""], "--token is empty"),
    (["--token", "  \t"], "--token is empty"),
    (["--host", "0.0.0.0"], "refusing"),
])
def test_every_mistake_is_one_line(args, words):
    proc = _serve(*args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("python -m interp serve: "), proc.stderr
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr


def test_timeout_accepts_what_the_library_accepts(tmp_path):
    for value in ("0", "inf", "2.5"):
        srv = Server(tmp_path, "--timeout", value)
        assert srv.stop() == 0


def test_an_empty_token_variable_is_refused_too():
    proc = _serve(env=dict(os.environ, INTERP_TOKEN=""))
    assert proc.returncode == 2 and "$INTERP_TOKEN is empty" in proc.stderr and proc.stderr.count("\n") == 1


def test_an_empty_token_is_refused_by_make_server(tmp_path):
    from interp import CodeInterpreter
    from interp.server import make_server
    with CodeInterpreter(cwd=str(tmp_path)) as ci:
        for token in ("", " "):
            with pytest.raises(ValueError, match="empty or blank"):
                make_server(ci, "127.0.0.1", 0, token=token, log=False)


def test_help_groups_the_options():
    proc = subprocess.run([sys.executable, "-m", "interp", "serve", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    text = proc.stdout
    groups = [text.index(name) for name in ("\nHTTP:", "\ncontexts and runs (HTTP and MCP):", "\nMCP at /mcp:",
                                            "\nsandbox (bubblewrap")]
    assert groups == sorted(groups)
    assert text.index("  --max-connections") < groups[1] < text.index("  --timeout SECONDS") < groups[2]
    assert groups[2] < text.index("  --output-limit") < groups[3]
    assert "default 600; 0: no limit" in " ".join(text.split())


def test_timeout_is_the_default_of_http_and_mcp_runs(tmp_path):
    srv = Server(tmp_path, "--timeout", "0.5")
    try:
        conn = srv.connect()
        conn.request("POST", "/execute", body=json.dumps({"code": "import time\ntime.sleep(5)"}), headers=JSON)
        events = conn.getresponse().read().decode().splitlines()
        assert json.loads(events[-1])["type"] == "timeout"  # after the KeyboardInterrupt's error event
        conn.close()
        conn = srv.connect()  # a run that names its own timeout keeps it
        conn.request("POST", "/execute", body=json.dumps({"code": "import time\ntime.sleep(1)\nprint('ok')",
                                                          "timeout": 10}), headers=JSON)
        assert read_event(conn.getresponse()) == {"type": "stdout", "text": "ok\n"}
        conn.close()
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "run_code", "arguments": {"code": "import time\ntime.sleep(5)"}}}
        conn = srv.connect()
        conn.request("POST", "/mcp", body=json.dumps(call), headers=dict(
            JSON, Accept="application/json, text/event-stream", **{"MCP-Protocol-Version": "2025-11-25"}))
        response = conn.getresponse()
        body = response.read().decode()
        conn.close()
        assert response.status == 200 and json.loads(body)["result"]["structuredContent"]["outcome"] == "timeout"
    finally:
        assert srv.stop() == 0
