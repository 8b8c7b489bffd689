"""The examples of docs/charts-and-tables.md run as written and print what
their comments say (the convention of tests/test_readme.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from test_readme import ROOT, expected_lines, missing

pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

with open(os.path.join(ROOT, "docs", "charts-and-tables.md"), encoding="utf-8") as _page:
    EXAMPLES = re.findall(r"```python\n(.*?)```", _page.read(), re.S)


def test_the_page_has_examples():
    assert EXAMPLES and all(expected_lines(example) for example in EXAMPLES)


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_prints_what_its_comments_say(index, tmp_path):
    proc = subprocess.run([sys.executable, "-c", EXAMPLES[index]], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr
    assert missing(expected_lines(EXAMPLES[index]), proc.stdout.splitlines()) == [], proc.stdout
