"""The examples of docs/output-and-input.md print what their comments say
(the convention and checks of tests/test_readme.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from test_readme import ROOT, expected_lines, missing

with open(os.path.join(ROOT, "docs", "output-and-input.md"), encoding="utf-8") as _page:
    EXAMPLES = re.findall(r"```python\n(.*?)```", _page.read(), re.S)


def test_the_page_has_examples():
    assert len(EXAMPLES) == 3


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_prints_what_its_comments_say(index, tmp_path):
    proc = subprocess.run([sys.executable, "-c", EXAMPLES[index]], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr
    expected = expected_lines(EXAMPLES[index])
    assert expected and missing(expected, proc.stdout.splitlines()) == [], proc.stdout


def test_the_shell_examples_print_what_they_say():
    env = {**os.environ, "PYTHONPATH": ROOT}
    assert subprocess.run("printf 'abc\\ndef' | %s -m interp -c \"import sys; print(repr(sys.stdin.read(2)))\""
                          % sys.executable, shell=True, capture_output=True, text=True, timeout=60,
                          env=env).stdout == "'ab'\n"
    out = subprocess.run("seq 3 | %s -m interp -c \"import subprocess; subprocess.run(['wc', '-l'])\""
                         % sys.executable, shell=True, capture_output=True, text=True, timeout=60, env=env).stdout
    assert out.strip() == "3"
