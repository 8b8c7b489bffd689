"""Every Python example in docs/integrations.md runs as written and prints
what its comments say (tests/test_readme.py's convention). An example whose
first line is ``# needs: interp[<extra>]`` runs in that framework's venv."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from frameworks import framework_python
from test_readme import expected_lines, missing

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "docs", "integrations.md"), encoding="utf-8") as _doc:
    EXAMPLES = re.findall(r"```python\n(.*?)```", _doc.read(), re.S)
VENV_OF_EXTRA = {"smolagents": "smolagents", "langchain": "langchain", "langgraph": "codeact",
                 "llama-index": "llama_index", "autogen": "autogen", "openai-agents": "openai_agents"}


def test_every_framework_has_an_example():
    needs = [re.match(r"# needs: interp\[(.+)\]\n", example) for example in EXAMPLES]
    assert sorted(found.group(1) for found in needs if found) == sorted(VENV_OF_EXTRA)


@pytest.mark.limit(600)
@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_prints_what_its_comments_say(index, tmp_path):
    example = EXAMPLES[index]
    needs = re.match(r"# needs: interp\[(.+)\]\n", example)
    python = framework_python(VENV_OF_EXTRA[needs.group(1)]) if needs else sys.executable
    script = tmp_path / "example.py"  # a file: smolagents' @tool reads its function's source
    script.write_text(example)
    proc = subprocess.run([python, str(script)], cwd=str(tmp_path), capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert missing(expected_lines(example), proc.stdout.splitlines()) == [], proc.stdout
