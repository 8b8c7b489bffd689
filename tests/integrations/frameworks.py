"""Where the integration tests' frameworks come from, and how a test drives
one. Each framework lives in its own virtual environment, keyed by its
requirements and the Python that builds it, under ~/.cache/interp-tests (or
$INTERP_TEST_VENVS), built on first use and reused while the key holds;
offline the tests skip with the reason, in CI (CI=true) a failed install fails
them. A test runs a driver script from drivers/ under that venv's python (with
interp on its path); the driver drives the framework's real agent loop with a
scripted model and prints what the model saw as one JSON line."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from typing import Any, Dict, Sequence

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.environ.get("INTERP_TEST_VENVS") or os.path.join(os.path.expanduser("~"), ".cache", "interp-tests")

#: What each framework's venv holds (the releases issue 24 names).
REQUIREMENTS = {
    "smolagents": ["smolagents==1.26.*"],
    "langchain": ["langchain-core>=1,<2", "langgraph>=1,<2"],
    "codeact": ["langgraph-codeact==0.1.*"],
    "llama_index": ["llama-index-core==0.14.*"],
    "autogen": ["autogen-core==0.7.*", "autogen-agentchat==0.7.*", "autogen-ext==0.7.*"],
    "openai_agents": ["openai-agents==0.24.*"],
}


_FAILED: Dict[str, str] = {}  # name -> why its install failed in this session (not tried again)


def venv_python(name: str, requirements: Sequence[str], timeout: float = 900) -> str:
    """The python of a cached venv holding `requirements` (built on first use)."""
    if name in _FAILED:
        _give_up(_FAILED[name])
    key = hashlib.sha256(("\n".join([sys.version, *requirements])).encode()).hexdigest()[:12]
    prefix = "%s-py%d.%d-" % (name, *sys.version_info[:2])
    where = os.path.join(CACHE, prefix + key)
    python = os.path.join(where, "bin", "python")
    done = os.path.join(where, ".interp-installed")
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".%s.lock" % name), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two pytest runs at once build it once
        if os.path.exists(done):
            return python
        shutil.rmtree(where, ignore_errors=True)
        venv.EnvBuilder(with_pip=True).create(where)
        install = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                  *requirements], capture_output=True, text=True, timeout=timeout)
        if install.returncode != 0:
            shutil.rmtree(where, ignore_errors=True)
            _FAILED[name] = "could not install %s: %s" % (" ".join(requirements), install.stderr.strip()[-1500:])
            _give_up(_FAILED[name])
        with open(done, "w") as f:
            f.write("\n".join(requirements) + "\n")
        for old in os.listdir(CACHE):  # venvs of older requirements for the same name and Python
            if old.startswith(prefix) and old != os.path.basename(where):
                shutil.rmtree(os.path.join(CACHE, old), ignore_errors=True)
    return python


def _give_up(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why + " (offline?)")


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
