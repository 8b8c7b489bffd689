"""Every example in README.md and docs/*.md runs as written and prints what
its comments say, as an unprivileged user (uid 65534 when the tests run as
root, which would hide examples that write where users cannot).

The convention the pages follow: a line that prints ends with a comment
holding what it prints (``print(x)   # 4``). Several lines of output are
separated by `` / ``, ``...`` stands for any text, and an explanation may
follow `` -- `` (a comment that starts with ``-- `` is only an explanation).
The expected lines must appear in the example's output in that order
(other output may come between them).

- ```` ```python ```` blocks run with ``python -c``; a line "prints" when it
  calls ``print(``.
- ```` ```sh ```` blocks run with ``bash -e`` in an empty directory, with
  ``python3`` on ``PATH`` and interp importable; every commented command
  prints its comment.
- ```` ```shell ```` blocks are shown, not run: installs (README.md's, which
  .ci/run runs word for word), servers (their pages' routes are tested by
  tests/test_http.py and tests/test_remote.py) and benchmark runs.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from typing import Callable, Dict, Iterator, List, Tuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
#: Pages other work adds (the lead links them at merge); a link to them may dangle until then.
PENDING_PAGES = {"docs/sandbox.md"}
NOBODY = 65534


def _blocks(language: str) -> List[Tuple[str, str]]:
    """(page, code) of every ```language block of the pages."""
    found = []
    for page in PAGES:
        with open(page, encoding="utf-8") as handle:
            text = handle.read()
        name = os.path.relpath(page, ROOT)
        found += [(name, code) for code in re.findall(r"^```%s\n(.*?)^```" % language, text, re.S | re.M)]
    return found


#: An example whose first line is ``# needs: interp[EXTRA]`` uses an agent framework: it runs in that
#: framework's virtual environment, in tests/integrations/test_docs.py.
NEEDS_FRAMEWORK = "# needs: interp["
PYTHON = [(page, code) for page, code in _blocks("python") if not code.startswith(NEEDS_FRAMEWORK)]
SH = _blocks("sh")
SHELL = _blocks("shell")


def expected_lines(example: str, shell: bool = False) -> List[str]:
    """The output the comments of ``example`` promise, line by line."""
    lines = []
    for line in example.splitlines():
        code, hash_, comment = line.partition("  # ")
        if not hash_ or comment.startswith("-- ") or (not shell and "print(" not in code):
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


Runner = Callable[[List[str]], subprocess.CompletedProcess]
#: Packages some examples use that interp does not need: their examples skip (fail in CI) where the
#: example's user cannot import them.
OPTIONAL_PACKAGES = ("matplotlib", "pandas")


def _readable_by_user(prefix: List[str], path: str) -> bool:
    return subprocess.run(prefix + ["test", "-r", path, "-a", "-x", path], timeout=30).returncode == 0


@pytest.fixture(scope="module")
def playground() -> Iterator[Dict[str, str]]:
    """A directory the examples' user owns: a copy of interp, a bin/ with python3."""
    base = tempfile.mkdtemp(prefix="interp-readme-")
    os.chmod(base, 0o755)
    try:
        shutil.copytree(os.path.join(ROOT, "interp"), os.path.join(base, "lib", "interp"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        python = sys.executable
        prefix: List[str] = []
        if os.geteuid() == 0:
            prefix = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
            for python in (sys.executable, os.path.realpath(sys.executable), "/usr/bin/python3"):
                # our venv or our Python may live where that user cannot read (under /root, say)
                probe = prefix + ["env", "-i", python, "-c", "pass"]  # env: setpriv itself may still reach it
                if subprocess.run(probe, capture_output=True, timeout=30).returncode == 0:
                    break
        # Another Python of the same version (the machine's, when ours is unreadable) gets the packages of
        # ours (matplotlib, pandas... the examples use) where that user can read them: CI's venv is readable.
        site_dirs = [path for path in sysconfig.get_paths().values() if path.endswith("site-packages")]
        extra = [path for path in dict.fromkeys(site_dirs)
                 if python != sys.executable and _readable_by_user(prefix, path)]
        os.makedirs(os.path.join(base, "bin"))
        shim = os.path.join(base, "bin", "python3")
        with open(shim, "w") as handle:  # not a link: sys.executable must be a path a sandbox shows
            handle.write('#!/bin/sh\nexec "%s" "$@"\n' % python)
        os.chmod(shim, 0o755)
        yield {"base": base, "python": python, "prefix": " ".join(prefix), "path": os.pathsep.join(extra)}
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def run_as_user(playground) -> Iterator[Runner]:
    """Run a command in a fresh directory, as uid 65534 when we are root."""
    work = tempfile.mkdtemp(prefix="work-", dir=playground["base"])
    if os.geteuid() == 0:
        os.chown(work, NOBODY, NOBODY)
    environment = {"PATH": "%s/bin:/usr/local/bin:/usr/bin:/bin" % playground["base"], "HOME": work,
                   "PYTHONPATH": os.pathsep.join(filter(None, [os.path.join(playground["base"], "lib"),
                                                               playground["path"]])), "LANG": "C.UTF-8",
                   "PYTHONDONTWRITEBYTECODE": "1"}

    def run(command: List[str]) -> subprocess.CompletedProcess:
        prefix = playground["prefix"].split()
        return subprocess.run(prefix + ["env", "-i"] + ["%s=%s" % item for item in environment.items()] + command,
                              cwd=work, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=150)
    yield run


def test_pages_have_examples():
    assert len(PYTHON) >= 15 and len(SH) >= 3
    assert any(page.startswith("docs") for page, _ in PYTHON)


def test_the_comment_convention_is_read_as_documented():
    example = 'print(a)   # 4 -- why\nprint(b)  # x / ...y\nx = 1  # not a print\nprint(c)  # -- only why\n'
    assert expected_lines(example) == ["4", "x", "...y"]
    assert expected_lines('echo hi  # hi -- why\nls  # -- explained\n', shell=True) == ["hi"]
    assert missing(["4", "x", "...y"], ["4", "noise", "x", "any y"]) == []
    assert missing(["x", "4"], ["4", "x"]) == ["4"]


@pytest.mark.limit(170)
@pytest.mark.parametrize("index", range(len(PYTHON)), ids=["%s-%d" % (p, i) for i, (p, _) in enumerate(PYTHON)])
def test_python_example_prints_what_its_comments_say(index, run_as_user):
    for package in OPTIONAL_PACKAGES:
        if "import %s" % package in PYTHON[index][1]:
            if run_as_user(["python3", "-c", "import " + package]).returncode != 0:
                if os.environ.get("CI"):
                    pytest.fail("%s is not importable by the examples' user (uid %d)" % (package, NOBODY))
                pytest.skip("%s is not importable by the examples' user (uid %d): its Python or site-packages "
                            "is unreadable for that user" % (package, NOBODY))
    proc = run_as_user(["python3", "-c", PYTHON[index][1]])
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert missing(expected_lines(PYTHON[index][1]), proc.stdout.splitlines()) == [], proc.stdout


@pytest.mark.limit(170)
@pytest.mark.parametrize("index", range(len(SH)), ids=["%s-%d" % (p, i) for i, (p, _) in enumerate(SH)])
def test_shell_example_prints_what_its_comments_say(index, run_as_user):
    proc = run_as_user(["bash", "-e", "-o", "pipefail", "-c", SH[index][1]])
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert missing(expected_lines(SH[index][1], shell=True), proc.stdout.splitlines()) == [], proc.stdout


def test_examples_run_as_an_unprivileged_user(run_as_user):
    if os.geteuid() != 0:
        pytest.skip("the tests already run unprivileged")
    assert run_as_user(["python3", "-c", "import os; print(os.getuid())"]).stdout == "%d\n" % NOBODY


def test_shown_only_blocks_are_installs_and_servers():
    """```shell blocks are not run: only installs (README.md's, which CI runs word for word), servers and
    benchmark runs (tests/test_benchmarks.py runs them small)."""
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as handle:
        ci = handle.read()
    for page, block in SHELL:
        commands = [line.partition("  # ")[0].strip() for line in block.splitlines()]
        commands = [command for command in commands if command and not command.startswith("#")]
        if page == "README.md":
            for command in commands:
                assert command in ci, "%s: CI does not run %r" % (page, command)
        else:  # a server, an install (of a framework an integration page needs, say), a benchmark
            assert any(" serve" in command or "pip install" in command or "npm install" in command
                       or "-m benchmarks" in command for command in commands), (page, block)


def test_links_between_pages_resolve():
    for page in PAGES:
        with open(page, encoding="utf-8") as handle:
            text = handle.read()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path = os.path.normpath(os.path.join(os.path.dirname(page), target))
            if os.path.relpath(path, ROOT) in PENDING_PAGES:
                continue
            assert os.path.exists(path), "%s links to %s, which does not exist" % (os.path.relpath(page, ROOT),
                                                                                   target)
