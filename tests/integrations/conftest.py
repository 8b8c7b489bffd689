"""The integration tests drive each framework's real agent loop with a
scripted model, in the framework's own cached venv (see _venvs.py): a driver
script in drivers/ runs there (with interp on its path) and prints what the
model saw as one JSON line, which the test checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _reqs import REQUIREMENTS  # noqa: E402
from _venvs import ROOT, venv_python  # noqa: E402


def framework_python(name: str) -> str:
    """The python of the venv holding framework ``name`` (see _reqs.py)."""
    return venv_python(name, REQUIREMENTS[name])


def run_driver(python: str, driver: str, *args: str, timeout: float = 240) -> Dict[str, Any]:
    """Run drivers/<driver>.py under ``python``; what it printed last, as JSON.
    A driver that found no working sandbox says {"skip": why}: skipped, or failed in CI."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([python, os.path.join(HERE, "drivers", driver + ".py"), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-6000:]
    seen: Dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if "skip" in seen:
        if os.environ.get("CI"):
            pytest.fail(seen["skip"])
        pytest.skip(seen["skip"])
    return seen
