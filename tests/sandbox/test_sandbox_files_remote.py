"""The sandbox's file refusals through HTTP (issue 23): the planted-link tests
of test_sandbox_files.py (imported, not copied) with ``box`` replaced by a
RemoteCodeInterpreter talking to a server whose interpreter is sandboxed.
Every refusal arrives as the same PermissionError (errno 13), and the host
is untouched."""

from __future__ import annotations

import threading

import pytest

import test_sandbox_files
from conftest import no_leftovers
from interp import CodeInterpreter, RemoteCodeInterpreter
from interp.sandbox import Sandbox
from interp.server import make_server

REUSED = ["test_a_planted_link_is_never_followed", "test_absolute_paths_and_dotdot_are_refused",
          "test_inside_the_workspace_everything_works"]
FIXTURES = ["outside", "planted"]  # theirs; ``box`` is the one below
globals().update({name: getattr(test_sandbox_files, name) for name in REUSED + FIXTURES})


class RemoteBox:
    """What the reused tests use of a sandboxed interpreter, remotely."""

    def __init__(self, client: RemoteCodeInterpreter, local: CodeInterpreter) -> None:
        self.fs = client.fs
        self.run_code = client.run_code
        self.sandbox = local.sandbox


@pytest.fixture
def box(tmp_path):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    interpreter = CodeInterpreter(sandbox=Sandbox(workspace))
    server = make_server(interpreter, "127.0.0.1", 0, log=False)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    client = RemoteCodeInterpreter("http://127.0.0.1:%d" % server.port, io_timeout=30)
    try:
        yield RemoteBox(client, interpreter)
    finally:
        client.close()
        server.shutdown()
        thread.join(10)
        server.server_close()
        interpreter.close()
        no_leftovers()


def test_a_refused_upload_through_a_link_sends_no_body(box, outside):
    box.run_code("import os\nos.symlink(%r, 'out')" % str(outside))
    with pytest.raises(PermissionError, match="link"):
        box.fs.upload_file(b"x" * (16 << 20), "out/new")
    assert sorted(p.name for p in outside.iterdir()) == ["secret", "sub", "victim"]


@pytest.mark.limit(300)
def test_200_mib_up_and_down_sandboxed_grow_neither_side_by_64_mib(tmp_path):
    from files_memory import BOUND, measure
    growth = measure(tmp_path, sandboxed=True)
    assert growth["client"] < BOUND and growth["server"] < BOUND, growth


def test_mcp_resources_and_write_file_of_a_sandbox_stay_in_its_workspace(tmp_path, outside):
    from test_mcp import MCPClient
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    client = MCPClient("--sandbox", "--workspace", str(workspace))
    try:
        client.initialize("2025-11-25")
        run = client.tool("run_code", {"code": "import os\nos.symlink(%r, 'out')\nos.symlink('/etc', 'etc')\n"
                                               "open('mine.txt', 'w').write('mine')" % str(outside)})
        assert not run["isError"], run
        listed = client.call("resources/list", {})["result"]["resources"]
        assert [item["name"] for item in listed] == ["mine.txt"]
        for path in ["out/secret", "etc/passwd", "../outside/secret"]:
            reply = client.call("resources/read", {"uri": "file://%s/%s" % (workspace, path)})
            assert "error" in reply and "host secret" not in str(reply)
        refused = client.tool("write_file", {"path": "out/new", "content": "pwned"})
        assert refused["isError"] and "PermissionError" in refused["content"][0]["text"]
        written = client.tool("write_file", {"path": "data/in.txt", "content": "hi"})
        assert written["structuredContent"]["uri"] == "file://%s/data/in.txt" % workspace
        assert client.tool("run_code", {"code": "print(open('data/in.txt').read())"})["structuredContent"][
            "stdout"] == "hi\n"
        assert sorted(p.name for p in outside.iterdir()) == ["secret", "sub", "victim"]
    finally:
        assert client.close() == 0


def test_mcp_resources_of_a_temporary_workspace_are_what_the_sandbox_shows():
    """The temporary workspace is a tmpfs only the sandbox has: resources and write_file reach it
    through the zygote's descriptor, not through its empty host directory."""
    from test_mcp import MCPClient
    client = MCPClient("--sandbox")
    try:
        client.initialize("2025-11-25")
        run = client.tool("run_code", {"code": "open('made.txt', 'w').write('by the code')"})
        assert not run["isError"], run
        listed = client.call("resources/list", {})["result"]["resources"]
        assert [item["name"] for item in listed] == ["made.txt"]
        read = client.call("resources/read", {"uri": listed[0]["uri"]})["result"]["contents"]
        assert read[0]["text"] == "by the code"
        assert not client.tool("write_file", {"path": "in.txt", "content": "hi"})["isError"]
        assert client.tool("run_code", {"code": "print(open('in.txt').read())"})["structuredContent"][
            "stdout"] == "hi\n"
    finally:
        assert client.close() == 0
