"""Host tools (interp.integrations.hosttools) from sandboxed code: the tool
runs on the host with what only the host can reach, the code inside gets its
JSON result or its error; also run as uid 65534 by .ci/sandbox-unprivileged."""

from __future__ import annotations

from interp.integrations._run import model_text, run
from interp.integrations.hosttools import HostTools


def test_a_sandboxed_cell_calls_a_host_tool(box, tmp_path):
    secret = tmp_path / "host-only.txt"  # outside the workspace: the sandbox cannot see it
    secret.write_text("from the host")

    def read_secret(suffix):
        if not isinstance(suffix, str):
            raise TypeError("suffix must be a str")
        return secret.read_text() + suffix

    tools = HostTools({"read_secret": read_secret})
    code = ("import os\nprint(os.path.exists(%r))\nprint(read_secret('!'))\nread_secret(1)" % str(secret))
    result = run(box, code, tools=tools, timeout=60)
    assert model_text(result) == "False\nfrom the host!\nTypeError: suffix must be a str\n"
