"""Hostile clients of the MCP server and hostile use of the command line
(issue 10, points 14-16): no input line, however deep, long or malformed,
and no client behaviour (bursts, batches of thousands, not reading its
stdout, closing it) stops the MCP server from answering; the command line
behaves like ``python`` for files, arguments, exits and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import process_exists, wait_until
from interp import mcp
from test_mcp import MCPClient, text_of

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PING = b'{"jsonrpc":"2.0","id":"after","method":"ping"}\n'


@pytest.fixture
def client():
    client = MCPClient()
    try:
        client.initialize()
        yield client
    finally:
        client.close()


def parse_errors(client: MCPClient):
    return [m for m in client.seen if isinstance(m, dict) and m.get("error", {}).get("code") == -32700]


def still_serving(client: MCPClient) -> None:
    """The server answers a ping and runs code."""
    client.send_raw(PING)
    assert client.response("after")["result"] == {}
    client.seen = [m for m in client.seen if not (isinstance(m, dict) and m.get("id") == "after")]
    assert text_of(client.tool("run_code", {"code": "6 * 7"})) == "[result]\n42"


# -- point 14: lines that used to kill the server ---------------------------------------------


@pytest.mark.parametrize("line", [
    b"[" * 100000,
    b'{"a":' * 100000,
    b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":' + b"[" * 100000 + b"]" * 100000 + b"}}",
], ids=["open-arrays", "open-objects", "deep-params"])
def test_deeply_nested_json_is_a_parse_error_and_the_server_keeps_serving(client, line):
    client.send_raw(line + b"\n")
    error = client.wait_for(lambda m: m.get("error", {}).get("code") == -32700)
    assert error["id"] is None and "deep" in error["error"]["message"]
    still_serving(client)


def test_nesting_within_the_limit_is_accepted(client):
    depth = 200
    client.send_raw(b'{"jsonrpc":"2.0","id":"deep","method":"ping","params":{"x":'
                    + b"[" * depth + b"]" * depth + b"}}\n")
    assert client.response("deep")["result"] == {}


@pytest.mark.limit(120)
def test_an_over_long_line_is_skipped_with_an_error(client):
    """A line over MAX_MESSAGE bytes gets -32700 naming the limit; the rest
    of that line is discarded (it is not parsed as messages), the next line
    is served."""
    filler = b'{"jsonrpc":"2.0","id":"inside","method":"ping"}' * (mcp.MAX_MESSAGE // 40)
    assert len(filler) > mcp.MAX_MESSAGE
    client.send_raw(filler + b"\n" + PING)
    error = client.wait_for(lambda m: m.get("error", {}).get("code") == -32700)
    assert str(mcp.MAX_MESSAGE) in error["error"]["message"]
    assert client.response("after")["result"] == {}
    assert not any(isinstance(m, dict) and m.get("id") == "inside" for m in client.seen)


@pytest.mark.parametrize("line", [
    b"\xff\xfe\x00{}",
    b'{"jsonrpc":"2.0","id":"bad","method":"ping","params":{"x":"\xc3\x28"}}',
    b'{"jsonrpc":"2.0","id":"nan","method":"tools/call","params":{"name":"run_code",'
    b'"arguments":{"code":"1","timeout":NaN}}}',
    b'{"jsonrpc":"2.0","id":"inf","method":"ping","params":{"x":-Infinity}}',
    b'{"jsonrpc":"2.0","id":"big","method":"ping","params":{"x":' + b"9" * 5000 + b"}}",
    b"\x00" * 1000,
    b'"just a string"',
], ids=["binary", "invalid-utf8", "nan", "infinity", "huge-int", "nul-bytes", "string"])
def test_malformed_lines_get_an_error_and_the_server_keeps_serving(client, line):
    client.send_raw(line + b"\n")
    error = client.wait_for(lambda m: "error" in m)
    assert error["id"] is None and error["error"]["code"] in (-32700, -32600)
    still_serving(client)


def test_lone_surrogates_in_code_are_answered(client):
    """A \\ud800 escape is valid JSON but cannot be UTF-8: the run is answered
    (an error or a result), never a dead server."""
    client.send_raw(b'{"jsonrpc":"2.0","id":"s","method":"tools/call","params":{"name":"run_code",'
                    b'"arguments":{"code":"x = \'\\ud800\'\\nlen(x)"}}}\n')
    assert "result" in client.response("s") or "error" in client.response("s")
    still_serving(client)


# -- bursts and batches ------------------------------------------------------------------------


@pytest.mark.limit(120)
def test_thousands_of_requests_written_at_once_are_all_answered(client):
    burst = b"".join(b'{"jsonrpc":"2.0","id":%d,"method":"ping"}\n' % i for i in range(5000))
    client.send_raw(burst)
    client.wait_for(lambda m: m.get("id") == 4999, timeout=60)
    assert {m["id"] for m in client.seen if isinstance(m, dict) and isinstance(m.get("id"), int)
            and "result" in m} >= set(range(5000))


@pytest.mark.limit(120)
def test_a_batch_of_thousands_gets_one_reply_with_every_answer(client):
    batch = [{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in range(5000)]
    batch += [{"jsonrpc": "2.0", "id": "run%d" % i, "method": "tools/call",
               "params": {"name": "run_code", "arguments": {"code": "%d" % i}}} for i in range(20)]
    client.send(batch)
    replies = client.wait_for_batch(timeout=60)
    assert len(replies) == 5020 and {r["id"] for r in replies} == {r["id"] for r in batch}
    runs = {r["id"]: text_of(r["result"]) for r in replies if str(r["id"]).startswith("run")}
    assert runs == {"run%d" % i: "[result]\n%d" % i for i in range(20)}
    still_serving(client)


def test_an_over_long_batch_gets_one_error(client):
    client.send([{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in range(mcp.MAX_BATCH + 1)])
    error = client.wait_for(lambda m: "error" in m)
    assert error["id"] is None and error["error"]["code"] == -32600 and str(mcp.MAX_BATCH) in error["error"]["message"]
    still_serving(client)
    assert not any(isinstance(m, list) for m in client.seen)


@pytest.mark.limit(120)
def test_the_largest_line_of_tiny_objects_keeps_memory_bounded(client):
    """A line at the size limit made of 5 million empty objects parses to
    about 0.5 GB; it must not be multiplied by a reply per element."""
    count = mcp.MAX_MESSAGE // 3 - 1
    client.send_raw(b"[" + b"{}," * (count - 1) + b"{}]\n")
    error = client.wait_for(lambda m: "error" in m, timeout=60)
    assert error["error"]["code"] == -32600
    still_serving(client)
    with open("/proc/%d/status" % client.proc.pid) as handle:
        peak = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmHWM:"))
    assert peak < 1024 ** 3


@pytest.mark.limit(120)
def test_tool_calls_beyond_the_in_flight_limit_get_server_busy_at_once(client, tmp_path):
    """Each queued run holds a thread: beyond MAX_IN_FLIGHT the server says
    it is busy instead of starting threads without bound; cancellations
    and pings are still read; once the runs end, calls are accepted again."""
    flag = str(tmp_path / "go")
    wait = ("import os, time\ndeadline = time.time() + 60\n"
            "while not os.path.exists(%r) and time.time() < deadline:\n    time.sleep(0.02)" % flag)
    extra = 20
    ids = [client.request("tools/call", {"name": "run_code", "arguments": {"code": wait if i == 0 else "1"}})
           for i in range(mcp.MAX_IN_FLIGHT + extra)]
    busy = [client.response(request_id) for request_id in ids[-extra:]]
    assert all(reply["error"]["code"] == -32000 and "busy" in reply["error"]["message"] for reply in busy)
    client.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": ids[1]}})
    assert client.call("ping")["result"] == {}
    open(flag, "w").close()
    for request_id in ids[2:mcp.MAX_IN_FLIGHT]:
        assert client.response(request_id)["result"]["isError"] is False
    assert not any(isinstance(m, dict) and m.get("id") == ids[1] for m in client.seen)  # cancelled
    still_serving(client)


# -- clients that do not read, or go away ------------------------------------------------------


def stop(proc: subprocess.Popen) -> None:
    """Kill ``proc`` if it still runs; close its pipes."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def start_server(**popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "interp", "mcp"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, **popen)


def send_all(proc: subprocess.Popen, *messages) -> None:
    proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in messages))
    proc.stdin.flush()


def run_code_request(request_id, code, **arguments):
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": "run_code", "arguments": dict(arguments, code=code), "_meta": {"progressToken": 1}}}


@pytest.mark.limit(120)
def test_a_client_that_stops_reading_does_not_hold_up_runs(tmp_path):
    """Runs whose progress notifications nobody reads used to block in their
    callback once the pipe filled, past their timeout, with their context.
    Now they end (the backlog is bounded: progress is dropped beyond it),
    and SIGTERM still ends the server at once."""
    done, late = str(tmp_path / "done"), str(tmp_path / "late")
    proc = start_server()
    try:
        flood = "for i in range(300000):\n    print('line %%d %%s' %% (i, 'x' * 100))\nopen(%r, 'w').close()"
        send_all(proc, run_code_request("flood", flood % done),
                 {"jsonrpc": "2.0", "id": "ctx", "method": "tools/call", "params": {"name": "create_context"}},
                 run_code_request("timed", "import time\nprint('x')\ntime.sleep(60)\nopen(%r, 'w').close()"
                                  % late, timeout=1))
        assert wait_until(lambda: os.path.exists(done), timeout=60)  # nobody read a byte of stdout
        time.sleep(1.5)  # the timed run's deadline passes meanwhile
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert not os.path.exists(late)
    finally:
        stop(proc)


@pytest.mark.limit(120)
def test_a_slow_reader_gets_every_response(tmp_path):
    """A client that reads late still gets each response once it reads, and
    the backlog the server keeps meanwhile stays bounded."""
    proc = start_server(stderr=subprocess.DEVNULL)
    try:
        flood = "for i in range(300000):\n    print('line %d %s' % (i, 'x' * 100))\n'end'"
        send_all(proc, run_code_request("flood", flood), run_code_request("second", "6 * 7"))
        time.sleep(3)  # the runs go on without a reader
        rss = _rss_bytes(proc.pid)
        proc.stdin.close()
        replies = {}
        for line in proc.stdout:
            message = json.loads(line)
            if "id" in message:
                replies[message["id"]] = message
        assert proc.wait(20) == 0
        assert "[result]\n'end'" in text_of(replies["flood"]["result"])
        assert text_of(replies["second"]["result"]).endswith("[result]\n42")
        assert rss < 400 * 1024 * 1024
    finally:
        stop(proc)


def _rss_bytes(pid: int) -> int:
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_a_client_that_closes_stdout_gets_a_clean_exit(tmp_path):
    """Writes fail with EPIPE: the server keeps reading, runs what it was
    asked, and exits 0 at end of input with nothing on stderr."""
    marker = str(tmp_path / "ran")
    proc = subprocess.Popen([sys.executable, "-m", "interp", "mcp"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdout.close()
        requests = [{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in range(100)]
        requests.append({"jsonrpc": "2.0", "id": "run", "method": "tools/call", "params": {
            "name": "run_code", "arguments": {"code": "print('x' * 100000)\nopen(%r, 'w').close()" % marker}}})
        _, stderr = proc.communicate(b"".join(json.dumps(r).encode() + b"\n" for r in requests), timeout=60)
        assert proc.returncode == 0 and stderr == b""
        assert os.path.exists(marker)
    finally:
        stop(proc)


def test_a_last_line_without_newline_is_answered():
    proc = subprocess.run([sys.executable, "-m", "interp", "mcp"], cwd=ROOT, capture_output=True, timeout=60,
                          input=b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_code",'
                                b'"arguments":{"code":"print(6 * 7)"}}}')
    assert proc.returncode == 0
    assert text_of(json.loads(proc.stdout)["result"]) == "[stdout]\n42"


# -- point 16: the command line ----------------------------------------------------------------


def cli(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "interp", *args], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def finish(proc: subprocess.Popen, data: bytes = b""):
    try:
        return proc.communicate(data, timeout=60)
    finally:
        stop(proc)


def test_cli_output_into_a_closed_pipe_stops_quietly():
    """``... | head -1``: BrokenPipeError from writing our stdout used to end
    in an interp traceback; now the run stops and the exit is quiet."""
    proc = subprocess.run("%s -m interp -c 'for i in range(10 ** 7): print(i)' | head -1" % sys.executable,
                          shell=True, cwd=ROOT, capture_output=True, timeout=60)
    assert proc.stdout == b"0\n" and proc.stderr == b""


def test_cli_non_utf8_arguments_and_file_names_pass_through(tmp_path):
    script = os.path.join(os.fsencode(str(tmp_path)), b"\xff.py")
    with open(script, "w") as handle:
        handle.write("import sys\nprint(ascii(sys.argv), ascii(__file__))\n")
    out, err = finish(cli(script, b"\xfe"))
    assert err == b""
    assert out.decode() == "%s %s\n" % (ascii([os.fsdecode(script), "\udcfe"]), ascii(os.fsdecode(script)))


def test_cli_honours_a_coding_cookie(tmp_path):
    script = tmp_path / "latin.py"
    script.write_bytes(b"# -*- coding: latin-1 -*-\nprint(ascii('\xe9'))\n")
    out, err = finish(cli(str(script)))
    assert (out, err) == (b"'\\xe9'\n", b"")


def test_cli_a_storm_of_ctrl_c_ends_cleanly():
    proc = cli("-c", "import os, time\nprint(os.getpid(), flush=True)\nwhile True:\n    try:\n"
                     "        time.sleep(30)\n    except KeyboardInterrupt:\n        pass")
    worker = int(proc.stdout.readline())
    for _ in range(20):
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGINT)
        time.sleep(0.01)
    _, err = finish(proc)
    # (a press may land outside the try: the code's own traceback then ends the run)
    assert proc.returncode == 130 and err.endswith(b"KeyboardInterrupt\n") and b"interp" not in err
    assert wait_until(lambda: not process_exists(worker))


def test_cli_ctrl_c_while_interp_starts_exits_130():
    """A Ctrl-C once interp runs (its zygote is starting) but maybe before
    the code does: exit 130 with no traceback of interp's own."""
    proc = cli("-c", "import time\ntime.sleep(30)")
    def has_children() -> bool:
        with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as handle:
            return handle.read().strip() != ""

    assert wait_until(has_children, timeout=30)
    proc.send_signal(signal.SIGINT)
    _, err = finish(proc)
    assert proc.returncode == 130
    assert b"interp" not in err and err.endswith(b"KeyboardInterrupt\n")


def test_cli_ctrl_c_while_input_waits_exits_130():
    """(A press that comes before input() waits interrupts the code instead:
    then the code's own KeyboardInterrupt traceback is printed.)"""
    proc = cli("-c", "print('ready', flush=True)\ninput('? ')")
    assert proc.stdout.readline() == b"ready\n"
    time.sleep(0.3)  # waiting in input() for our stdin
    proc.send_signal(signal.SIGINT)
    # stdin stays open until the process ends: an EOF right behind the press could reach the code's
    # input() before the interrupt does (its forwarding is asynchronous), and end it with EOFError
    try:
        proc.wait(timeout=60)
    finally:
        _, err = finish(proc)
    assert proc.returncode == 130 and b"interp" not in err and err.endswith(b"KeyboardInterrupt\n")
