"""What every driver shares: the interpreter a test asks for (plain or
sandboxed), and printing what was seen as the last line of JSON."""

from __future__ import annotations

import json
import sys
import tempfile
from typing import Any, Callable, Dict

from interp import CodeInterpreter, Sandbox
from interp.errors import SandboxUnavailableError


def main(scenario: Callable[[CodeInterpreter], Dict[str, Any]]) -> None:
    """Run ``scenario`` on a CodeInterpreter (sandboxed if argv says
    "sandbox") and print its findings; {"skip": why} without a sandbox."""
    sandboxed = "sandbox" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as workspace:
        try:
            ci = CodeInterpreter(sandbox=Sandbox(workspace)) if sandboxed else CodeInterpreter(workspace)
            with ci:
                ci.run_code("pass")
                seen = scenario(ci)
                seen["sandboxed"] = ci.sandbox is not None
        except SandboxUnavailableError as exc:
            seen = {"skip": "no sandbox here: %s" % exc}
    print(json.dumps(seen, default=str))
