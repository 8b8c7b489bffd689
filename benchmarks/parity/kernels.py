"""The Jupyter side of the parity harness: one virtual environment per
IPython major version, built on first use (``--system-site-packages``, so the
kernel sees the same numpy, pandas, matplotlib and sympy as interp's worker;
only IPython, ipykernel and nbclient are installed into it with pip)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict

CACHE = os.environ.get("INTERP_PARITY_VENVS", os.path.expanduser("~/.cache/interp-parity"))
#: The IPython versions compared against, by label.
IPYTHONS: Dict[str, str] = {"ipython8": "ipython>=8,<9", "ipython9": "ipython>=9,<10"}
PIP_TIMEOUT = 900


def python_of(label: str) -> str:
    return os.path.join(CACHE, label, "bin", "python")


def ensure(label: str) -> str:
    """The python of the venv for ``label``, built (once) if missing."""
    python = python_of(label)
    marker = os.path.join(CACHE, label, ".complete")
    if os.path.exists(marker):
        return python
    os.makedirs(CACHE, exist_ok=True)
    print("building the %s kernel venv in %s ..." % (label, os.path.dirname(os.path.dirname(python))),
          file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", os.path.join(CACHE, label)],
                   check=True, timeout=120)
    subprocess.run([python, "-m", "pip", "install", "-q", IPYTHONS[label], "ipykernel", "nbclient", "nbformat"],
                   check=True, timeout=PIP_TIMEOUT)
    open(marker, "w").close()
    return python


def version_of(label: str) -> str:
    out = subprocess.run([python_of(label), "-c", "import IPython; print(IPython.__version__)"],
                         capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


if __name__ == "__main__":
    for name in sys.argv[1:] or list(IPYTHONS):
        print(name, ensure(name), version_of(name))
