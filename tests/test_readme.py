"""Every Python example in README.md runs as written and prints what its
comments say.

The convention the README follows: a line that prints ends with a comment
holding what it prints (``print(x)   # 4``). Several lines of output are
separated by `` / ``, ``...`` stands for any text, and an explanation may
follow `` -- ``. The expected lines must appear in the example's output in
that order (other output may come between them).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import List

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as _readme:
    EXAMPLES = re.findall(r"```python\n(.*?)```", _readme.read(), re.S)


def expected_lines(example: str) -> List[str]:
    """The output the comments of ``example`` promise, line by line."""
    lines = []
    for line in example.splitlines():
        code, hash_, comment = line.partition("  # ")
        if not hash_ or "print(" not in code:
            continue
        promise = comment.split(" -- ")[0].strip()
        lines.extend(part.strip() for part in promise.split(" / "))
    return lines


def matches(pattern: str, line: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("..."))
    return re.fullmatch(regex, line.strip()) is not None


def missing(expected: List[str], output: List[str]) -> List[str]:
    """The expected lines not found in ``output`` in order."""
    position, absent = 0, []
    for pattern in expected:
        for index in range(position, len(output)):
            if matches(pattern, output[index]):
                position = index + 1
                break
        else:
            absent.append(pattern)
    return absent


def test_readme_has_examples():
    assert len(EXAMPLES) >= 6


def test_the_comment_convention_is_read_as_documented():
    example = 'print(a)   # 4 -- why\nprint(b)  # x / ...y\nx = 1  # not a print\n'
    assert expected_lines(example) == ["4", "x", "...y"]
    assert missing(["4", "x", "...y"], ["4", "noise", "x", "any y"]) == []
    assert missing(["x", "4"], ["4", "x"]) == ["4"]


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_prints_what_its_comments_say(index, tmp_path):
    proc = subprocess.run([sys.executable, "-c", EXAMPLES[index]], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    expected = expected_lines(EXAMPLES[index])
    assert missing(expected, proc.stdout.splitlines()) == [], proc.stdout
