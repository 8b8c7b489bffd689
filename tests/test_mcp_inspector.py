"""The MCP server under the MCP Inspector's command-line mode (the npm
package @modelcontextprotocol/inspector, a client many server authors check
against). It is installed with npm into a temporary folder (marked
``network``): without npm or the registry it is skipped, saying why; in CI
(CI=true) it must run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import network_unavailable as _unavailable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def inspector(tmp_path_factory):
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("npm is not installed")
    try:  # offline, npm install would retry for minutes: ask the registry once first
        ping = subprocess.run([npm, "ping", "--fetch-retries=0", "--fetch-timeout=15000"], capture_output=True,
                              text=True, timeout=30)
        reachable = ping.returncode == 0
    except subprocess.TimeoutExpired:
        reachable = False
    if not reachable:
        _unavailable("the npm registry is unreachable (offline?): cannot install %s" % INSPECTOR)
    where = str(tmp_path_factory.mktemp("inspector"))
    install = subprocess.run([npm, "install", "--prefix", where, "--no-audit", "--no-fund", "--silent", INSPECTOR],
                             capture_output=True, text=True, timeout=300)
    if install.returncode != 0:
        _unavailable("could not install %s: %s" % (INSPECTOR, install.stderr.strip()[-500:]))
    return os.path.join(where, "node_modules", ".bin", "mcp-inspector")


def _cli(inspector: str, *args: str, failing: bool = False) -> dict:
    """The Inspector's JSON answer; it exits non-zero for an isError result."""
    proc = subprocess.run([inspector, "--cli", sys.executable, "-m", "interp", "mcp", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=ROOT))
    assert (proc.returncode != 0) == failing, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.limit(400)
def test_the_inspector_lists_the_tools_and_runs_code(inspector):
    tools = _cli(inspector, "--method", "tools/list")["tools"]
    assert {tool["name"] for tool in tools} == {"run_code", "create_context", "list_contexts", "delete_context",
                                                "restart_context", "interrupt", "write_file"}
    assert all(tool.get("title") and tool.get("annotations") for tool in tools)
    result = _cli(inspector, "--method", "tools/call", "--tool-name", "run_code", "--tool-arg", "code=print(6*7)")
    assert result["isError"] is False and result["structuredContent"]["stdout"] == "42\n"
    failed = _cli(inspector, "--method", "tools/call", "--tool-name", "run_code", "--tool-arg", "code=1/0",
                  failing=True)
    assert failed["isError"] is True and failed["structuredContent"]["error"]["name"] == "ZeroDivisionError"
