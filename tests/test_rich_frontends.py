"""Charts and tables (issue 22) through every front end: the HTTP server's
result events, the remote client's Result and MCP's structuredContent carry
them by the generic paths; malformed ones are refused where they enter."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

from interp import AsyncCodeInterpreter, CodeInterpreter, RemoteCodeInterpreter, RemoteProtocolError, WorkerDiedError
from interp.protocol import CHART_MIME, TABLE_MIME, ProtocolError, validate_event
from remote_helpers import ROOT, ProcessServer
from test_mcp import MCPClient
from test_remote import STREAM_HEAD, HostileServer, _chunk

CODE = textwrap.dedent("""
    import matplotlib.pyplot as plt, pandas as pd
    plt.bar(['a', 'b'], [3, 4], label='sold')
    plt.title('Sales')
    plt.show()
    pd.DataFrame({'n': [1, 2], 'x': [0.5, float('nan')]})
    """)
BAR = [{"label": "a", "group": "sold", "value": 3}, {"label": "b", "group": "sold", "value": 4}]
ROWS = [{"index": 0, "n": 1, "x": 0.5}, {"index": 1, "n": 2, "x": None}]


def check(chart, table):
    assert chart["type"] == "bar" and chart["title"] == "Sales" and chart["elements"] == BAR
    assert table["data"] == ROWS and table["schema"]["primaryKey"] == ["index"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ProcessServer(str(tmp_path_factory.mktemp("serve") / "serve.log"))
    try:
        yield srv
    finally:
        assert srv.stop() == 0


def test_locally(tmp_path):
    with CodeInterpreter(cwd=str(tmp_path)) as ci:
        figure, frame = ci.run_code(CODE).results
    check(figure.chart, frame.data)
    assert figure.formats() == ["text", "png", "chart"] and frame.formats() == ["text", "html", "data"]


@pytest.mark.limit(90)
def test_http_result_events(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("POST", "/execute", body=json.dumps({"code": CODE}).encode(),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200
        events = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    finally:
        conn.close()
    figure, frame = [event for event in events if event["type"] == "result"]
    check(figure["chart"], frame["data"])  # E2B's result keys: chart, data
    assert figure["png"] and "data" not in figure and "chart" not in frame and frame["html"]


@pytest.mark.limit(90)
def test_remote_client(server):
    with RemoteCodeInterpreter(server.url) as ci:
        figure, frame = ci.run_code(CODE).results
    check(figure.chart, frame.data)
    assert figure.formats() == ["text", "png", "chart"] and frame.formats() == ["text", "html", "data"]


@pytest.mark.limit(90)
def test_mcp_structured_content():
    mcp = MCPClient()
    try:
        mcp.initialize()
        result = mcp.tool("run_code", {"code": CODE})
    finally:
        mcp.close()
    figure, frame = result["structuredContent"]["results"]
    check(figure["data"][CHART_MIME], frame["data"][TABLE_MIME])
    text = "\n".join(item["text"] for item in result["content"] if item["type"] == "text")
    assert "[result] %s" % TABLE_MIME in text  # the model can read its own table
    assert [item["mimeType"] for item in result["content"] if item["type"] == "image"] == ["image/png"]


def test_a_server_that_sends_a_malformed_chart_is_refused():
    event = _chunk(b'{"type": "result", "chart": "not a chart", "is_main_result": true}\n')
    hostile = HostileServer(lambda sock, stop: sock.sendall(STREAM_HEAD + event))
    try:
        ci = RemoteCodeInterpreter(hostile.url, io_timeout=5)
        with pytest.raises(RemoteProtocolError, match="'chart' is not an object"):
            ci.run_code("1")
        ci.close()
    finally:
        hostile.close()


@pytest.mark.parametrize("mime", [CHART_MIME, TABLE_MIME])
def test_a_worker_frame_with_a_malformed_chart_or_table_is_refused(mime):
    validate_event({"t": "result", "data": {mime: {"type": "line"}}, "main": False})
    for value in ("text", [1], None, 3):
        with pytest.raises(ProtocolError, match="must be an object"):
            validate_event({"t": "result", "data": {mime: value}, "main": False})


def test_user_bundles_with_malformed_charts_lose_only_that_format(tmp_path):
    with CodeInterpreter(cwd=str(tmp_path)) as ci:
        result = ci.run_code("display({%r: [1, 2], %r: {'x': float('nan')}, 'text/plain': 'kept'}, raw=True)\n"
                             "display({%r: {'type': 'pie', 'title': None, 'elements': []}}, raw=True)\n'alive'"
                             % (CHART_MIME, TABLE_MIME, CHART_MIME))
    assert result.error is None and result.text == "'alive'"
    assert (result.results[0].text, result.results[0].chart, result.results[0].data) == ("kept", None, None)
    assert result.results[1].chart == {"type": "pie", "title": None, "elements": []}


def test_a_forged_result_frame_with_a_malformed_chart_costs_only_that_context(tmp_path):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reliability"))
    try:
        from test_hardening import FORGE
    finally:
        sys.path.pop(0)
    with CodeInterpreter(cwd=str(tmp_path)) as ci:
        other = ci.create_context()
        ci.run_code("kept = 'other'", context=other)
        ci.run_code(FORGE)
        with pytest.raises(WorkerDiedError, match="must be an object"):
            ci.run_code("forge({'t': 'result', 'data': {%r: 'not a chart'}, 'main': False})" % CHART_MIME)
        assert ci.run_code("print('fresh')").stdout == "fresh\n"
        assert ci.run_code("print(kept)", context=other).stdout == "other\n"


def test_the_parent_never_imports_matplotlib_or_pandas(tmp_path):
    script = ("import sys\nfrom interp import CodeInterpreter\nwith CodeInterpreter() as ci:\n"
              "    figure, frame = ci.run_code(%r).results\n"
              "assert figure.chart['type'] == 'bar' and frame.data['data']\n"
              "print(sorted(m for m in ('matplotlib', 'pandas', 'numpy') if m in sys.modules))" % CODE)
    proc = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[]\n"


def test_the_async_twin(tmp_path):
    async def main():
        async with AsyncCodeInterpreter(cwd=str(tmp_path)) as ci:
            return (await ci.run_code(CODE)).results

    figure, frame = asyncio.run(main())
    check(figure.chart, frame.data)
