"""Every Python example in README.md runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as _readme:
    EXAMPLES = re.findall(r"```python\n(.*?)```", _readme.read(), re.S)


def test_readme_has_examples():
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_runs(index, tmp_path):
    proc = subprocess.run([sys.executable, "-c", EXAMPLES[index]], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
