"""The one place that builds the virtual environments the integration tests
run their frameworks in. A venv is keyed by its requirements and the Python
that builds it, lives under ~/.cache/interp-tests (or $INTERP_TEST_VENVS) and
is reused across runs once its install succeeded; offline the tests skip with
the reason, in CI (CI=true) a failed install fails them."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from typing import Sequence

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("INTERP_TEST_VENVS") or os.path.join(os.path.expanduser("~"), ".cache", "interp-tests")


def venv_python(name: str, requirements: Sequence[str], timeout: float = 900) -> str:
    """The python of a cached venv holding `requirements` (built on first use)."""
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
            why = "could not install %s: %s" % (" ".join(requirements), install.stderr.strip()[-1500:])
            if os.environ.get("CI"):
                pytest.fail(why)
            pytest.skip(why + " (offline?)")
        with open(done, "w") as f:
            f.write("\n".join(requirements) + "\n")
        for old in os.listdir(CACHE):  # venvs of older requirements for the same name and Python
            if old.startswith(prefix) and old != os.path.basename(where):
                shutil.rmtree(os.path.join(CACHE, old), ignore_errors=True)
    return python
