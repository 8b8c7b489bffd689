"""The interpreter's files over MCP (issue 23): resources (resources/list,
resources/read) and the write_file tool, over stdio in both eras, against
real ``python -m interp mcp`` processes. The official SDK's client does the
same over stdio and HTTP in tests/test_mcp_sdk.py
(test_sdk_files_as_resources_and_write_file)."""

from __future__ import annotations

import base64
import os
from urllib.parse import quote

import pytest

from interp.mcp import resources
from test_mcp import MCPClient, text_of
from test_mcp_eras import modern_meta

ERAS = ["legacy", "modern"]


class Host:
    """Calls in one era: ``initialize`` first (legacy) or ``_meta`` in each request (modern)."""

    def __init__(self, client: MCPClient, era: str) -> None:
        self.client = client
        self.era = era
        if era == "legacy":
            reply = client.initialize("2025-11-25")
            assert reply["result"]["capabilities"]["resources"] == {"subscribe": False, "listChanged": False}

    def call(self, method, params=None):
        params = dict(params or {})
        if self.era == "modern":
            params["_meta"] = modern_meta()
        return self.client.call(method, params)

    def tool(self, name, arguments):
        return self.call("tools/call", {"name": name, "arguments": arguments})["result"]


@pytest.fixture(params=ERAS)
def host(request, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    client = MCPClient("--cwd", str(root))
    try:
        yield Host(client, request.param), root
    finally:
        assert client.close() == 0


def uri(root, path):
    return "file://" + quote(os.path.join(str(root), path))


def test_write_file_then_the_code_and_the_resources_see_it(host):
    host, root = host
    written = host.tool("write_file", {"path": "data/in.csv", "content": "a,b\n1,2\n"})
    assert not written["isError"]
    assert written["structuredContent"] == {"path": "data/in.csv", "uri": uri(root, "data/in.csv"), "size": 8}
    picture = bytes(range(256))
    host.tool("write_file", {"path": "pic.bin", "content": base64.b64encode(picture).decode(), "encoding": "base64"})
    run = host.tool("run_code", {"code": "import csv\nrows = list(csv.reader(open('data/in.csv')))\n"
                                         "open('out.txt', 'w').write('rows: %d' % len(rows))"})
    assert not run["isError"], text_of(run)
    listed = host.call("resources/list")["result"]["resources"]
    assert [item["name"] for item in listed] == ["data/in.csv", "out.txt", "pic.bin"]
    by_name = {item["name"]: item for item in listed}
    assert by_name["data/in.csv"]["uri"] == uri(root, "data/in.csv")
    assert by_name["data/in.csv"]["mimeType"] == "text/csv" and by_name["data/in.csv"]["size"] == 8
    text = host.call("resources/read", {"uri": uri(root, "out.txt")})["result"]["contents"]
    assert text == [{"uri": uri(root, "out.txt"), "text": "rows: 2", "mimeType": "text/plain"}]
    blob = host.call("resources/read", {"uri": uri(root, "pic.bin")})["result"]["contents"][0]
    assert base64.b64decode(blob["blob"]) == picture and "text" not in blob
    assert blob["mimeType"] == "application/octet-stream"
    templates = host.call("resources/templates/list")["result"]
    assert templates["resourceTemplates"] == []
    if host.era == "modern":
        assert templates["ttlMs"] == 0 and templates["cacheScope"] == "private"


def test_links_are_never_followed_and_reads_stay_below_the_root(host, tmp_path):
    host, root = host
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host secret")
    host.tool("run_code", {"code": "import os\nos.symlink(%r, 'out')\nos.symlink(%r, 'secretlink')\n"
                                   "os.symlink('/etc', 'etc')\nos.makedirs('real')\nopen('real/f', 'w').write('f')\n"
                                   "os.symlink('real', 'alias')" % (str(outside), str(outside / "secret"))})
    listed = [item["name"] for item in host.call("resources/list")["result"]["resources"]]
    assert listed == ["real/f"]
    for target in [uri(root, "out/secret"), uri(root, "secretlink"), uri(root, "etc/passwd"),
                   uri(root, "alias/f"), uri(root, "../outside/secret"), "file:///etc/passwd",
                   "file://" + quote(str(outside / "secret")), "http://example.com/x", uri(root, "real")]:
        reply = host.call("resources/read", {"uri": target})
        assert "error" in reply, (target, reply)
        assert "host secret" not in str(reply) and "root:" not in str(reply)
    missing = host.call("resources/read", {"uri": uri(root, "nothing")})["error"]
    assert missing["code"] == resources.RESOURCE_NOT_FOUND
    assert host.call("resources/read", {})["error"]["code"] == -32602


def test_write_file_errors_are_tool_errors(host):
    host, root = host
    host.tool("write_file", {"path": "file", "content": "x"})
    for arguments, words in [({"path": "file/inside", "content": "x"}, "NotADirectoryError"),
                             ({"path": ".", "content": "x"}, "Error"),
                             ({"path": "b", "content": "***", "encoding": "base64"}, "not valid base64"),
                             ({"path": "b", "content": "x", "encoding": "latin-1"}, "encoding")]:
        result = host.tool("write_file", arguments)
        assert result["isError"] and words in text_of(result), (arguments, result)
    assert sorted(os.listdir(root)) == ["file"]


def test_listing_and_reading_are_bounded(host):
    host, root = host
    host.tool("run_code", {"code": "import os\nfor i in range(%d):\n    open('f%%05d' %% i, 'w').close()\n"
                                   "open('big', 'wb').write(b'x' * %d)" % (resources.MAX_RESOURCES + 5,
                                                                             resources.MAX_READ + 1)})
    listed = host.call("resources/list")["result"]["resources"]
    assert len(listed) == resources.MAX_RESOURCES
    reply = host.call("resources/read", {"uri": uri(root, "big")})
    assert reply["error"]["code"] == -32602 and "at most %d" % resources.MAX_READ in reply["error"]["message"]


def test_names_that_are_not_utf8_are_left_out_and_a_huge_folder_is_cut(host):
    host, root = host
    os.mkdir(root / "many")
    for i in range(resources.MAX_VISITED + 10):
        os.close(os.open(root / "many" / ("%06d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
    os.close(os.open(os.fsencode(root) + b"/bad\xff", os.O_CREAT | os.O_WRONLY, 0o644))
    (root / "good").write_text("g")
    listed = [item["name"] for item in host.call("resources/list")["result"]["resources"]]
    assert "good" in listed and len(listed) == resources.MAX_RESOURCES
    assert all("bad" not in name for name in listed)
