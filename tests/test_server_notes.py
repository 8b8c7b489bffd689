"""docs/server-notes.md's Python examples run and print what their comments
say (tests/test_readme.py's convention and functions)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from test_readme import ROOT, expected_lines, missing

with open(os.path.join(ROOT, "docs", "server-notes.md"), encoding="utf-8") as _notes:
    EXAMPLES = re.findall(r"```python\n(.*?)```", _notes.read(), re.S)


def test_the_notes_have_examples():
    assert EXAMPLES


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_notes_example_prints_what_its_comments_say(index, tmp_path):
    proc = subprocess.run([sys.executable, "-c", EXAMPLES[index]], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert missing(expected_lines(EXAMPLES[index]), proc.stdout.splitlines()) == [], proc.stdout
