"""Fixtures for the sandbox tests. They need bubblewrap able to create its
namespaces; where it cannot run at all, every test here is skipped with the
reason (CI installs bubblewrap, so CI never skips)."""

from __future__ import annotations

import os
import subprocess
from typing import Iterator, Optional

import pytest

from helpers import worker_processes_of
from interp import CodeInterpreter
from interp.errors import SandboxUnavailableError
from interp.sandbox import Sandbox


def _why_no_sandbox() -> Optional[str]:
    try:
        bwrap = Sandbox().find_bwrap()
    except SandboxUnavailableError as exc:
        return str(exc)
    probe = subprocess.run([bwrap, "--unshare-all", "--unshare-user", "--ro-bind", "/", "/", "true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    if probe.returncode != 0:
        return "bwrap cannot create namespaces here: %s" % probe.stderr.decode(errors="replace").strip()
    return None


_REASON = _why_no_sandbox()


def pytest_collection_modifyitems(config, items):
    if _REASON is None:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here) and item.name != "test_ci_never_skips_the_sandbox":
            item.add_marker(pytest.mark.skip(reason=_REASON))


def sandbox_unavailable_reason() -> Optional[str]:
    """Why bubblewrap cannot run here (None: it can)."""
    return _REASON


def no_leftovers() -> None:
    """Nothing the sandbox started is left below this process (the default
    zygote and its pool excepted)."""
    assert worker_processes_of(os.getpid()) == []


@pytest.fixture
def box(tmp_path) -> Iterator[CodeInterpreter]:
    """A sandboxed interpreter with its workspace in a fresh directory."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    interpreter = CodeInterpreter(sandbox=Sandbox(workspace))
    try:
        yield interpreter
    finally:
        interpreter.close()
        no_leftovers()
