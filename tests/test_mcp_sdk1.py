"""The MCP server against the official Python SDK's previous major version
(1.x), which many hosts still embed. It is installed into its own virtual
environment (it cannot live beside 2.x), so this needs the package index
(marked ``network``): offline it is skipped, saying why; in CI (CI=true) a
failed install fails the test.
tests/data/mcp_sdk1_host.py is a small host built on that SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv

import pytest

from helpers import network_unavailable

pytestmark = pytest.mark.network
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = os.path.join(ROOT, "tests", "data", "mcp_sdk1_host.py")
SDK1 = "mcp>=1.20,<2"


@pytest.fixture(scope="module")
def sdk1_python(tmp_path_factory):
    where = tmp_path_factory.mktemp("mcp-sdk1")
    venv.EnvBuilder(with_pip=True).create(str(where))
    python = os.path.join(str(where), "bin", "python")
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              "--retries", "1", "--timeout", "20", SDK1],  # offline: fail in seconds, not minutes
                             capture_output=True, text=True, timeout=300)
    if install.returncode != 0:
        network_unavailable("could not install %s (offline?): %s" % (SDK1, install.stderr.strip()[-300:]))
    return python


@pytest.mark.limit(400)
def test_a_host_on_the_1x_sdk_runs_code_with_state_errors_and_structured_content(sdk1_python):
    proc = subprocess.run([sdk1_python, HOST, ROOT, sys.executable], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["version"] == "2025-11-25"
    assert seen["tools"] == ["create_context", "delete_context", "interrupt", "list_contexts",
                             "restart_context", "run_code", "write_file"]
    assert seen["first"] == ["[stdout]\n42"]
    assert seen["first_structured"]["stdout"] == "42\n" and seen["first_structured"]["state_kept"] is True
    assert seen["second"] == ["[result]\n7"]
    assert seen["failed"] is True
