"""``--sandbox [--workspace DIR] [--network]`` on the command line, the MCP
server and the HTTP server."""

from __future__ import annotations

import os
import subprocess
import sys

from test_http import Server, run
from test_mcp import ROOT, MCPClient

CHECK = ("import os\nprint(os.getcwd())\nprint(os.path.exists(%r))\nprint(os.getuid() == 0 or 'HOME' in os.environ)"
         % os.path.expanduser("~/.bashrc"))


def _interp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "interp", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_command_line_sandbox_with_workspace_and_network(tmp_path):
    done = _interp("--sandbox", "--workspace", str(tmp_path), "-c",
                   "import os, socket\nprint(os.getcwd())\nopen('out.txt', 'w').write('x')\n"
                   "print(os.path.exists('/sys/class/net/lo') or len(socket.if_nameindex()))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == str(tmp_path)
    assert (tmp_path / "out.txt").read_text() == "x"
    isolated = _interp("--sandbox", "-c", "import socket\nprint([n for _, n in socket.if_nameindex()])")
    shared = _interp("--sandbox", "--network", "-c", "import socket\nprint([n for _, n in socket.if_nameindex()])")
    assert isolated.stdout == "['lo']\n", isolated.stderr
    assert shared.stdout.strip() == str([n for _, n in socket_names()])


def socket_names():
    import socket

    return socket.if_nameindex()


def test_command_line_options_need_sandbox(tmp_path):
    for args in (["--workspace", str(tmp_path)], ["--network"]):
        done = _interp(*args, "-c", "1")
        assert done.returncode == 2 and "go with --sandbox" in done.stderr
    done = _interp("--sandbox", "--workspace", str(tmp_path / "missing"), "-c", "1")
    assert done.returncode == 2 and "--workspace" in done.stderr
    # the code's own arguments are not interp's
    done = _interp("--sandbox", "-c", "import sys; print(sys.argv[1:])", "--network")
    assert done.stdout == "['--network']\n"


def test_mcp_sandbox(tmp_path):
    client = MCPClient("--sandbox", "--workspace", str(tmp_path))
    try:
        client.initialize()
        result = client.tool("run_code", {"code": CHECK})
        text = "".join(part.get("text", "") for part in result["content"])
        assert str(tmp_path) in text and "False" in text, result
    finally:
        assert client.close() == 0


def test_http_server_sandbox(tmp_path):
    (tmp_path / "ws").mkdir()
    server = Server(tmp_path, "--sandbox", "--workspace", str(tmp_path / "ws"))
    try:
        events = run(server, code=CHECK)
        text = "".join(event.get("text", "") for event in events if isinstance(event, dict))
        assert str(tmp_path / "ws") in text and "False" in text, events
    finally:
        assert server.stop() == 0
