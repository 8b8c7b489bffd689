"""Every Python example in docs/sandbox.md runs as written and prints what its
comments say (the convention of tests/test_readme.py, whose functions are used)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from test_readme import ROOT, expected_lines, missing

with open(os.path.join(ROOT, "docs", "sandbox.md"), encoding="utf-8") as _page:
    EXAMPLES = re.findall(r"```python\n(.*?)```", _page.read(), re.S)


def test_the_page_has_examples():
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_sandbox_page_example_prints_what_its_comments_say(index, tmp_path):
    proc = subprocess.run([sys.executable, "-c", EXAMPLES[index]], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert missing(expected_lines(EXAMPLES[index]), proc.stdout.splitlines()) == [], proc.stdout
