"""Where a Python interpreter's installation lies, as that interpreter itself
sees it: its prefixes, the virtual environment it belongs to (the directory
of its ``pyvenv.cfg``), its import path and site-packages directories. A
sandbox shows all of them read-only (``Sandbox.python_paths``); asking the
interpreter, not the host's own ``sys``, is what makes that hold for a
``python=`` of another installation or a venv inside the workspace.

The interpreter is run once per executable (cached) with ``-I -S``: no
``.pth`` file, ``sitecustomize`` or ``PYTHON*`` variable is involved, and
``site`` is imported for its ``getsitepackages`` only."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from typing import Dict, List, Tuple

from .errors import SandboxError

#: How long the interpreter may take to answer.
PROBE_TIMEOUT = 30.0

_PROBE = """\
import json, os, site, sys
exe = sys.executable
venv = None
for home in (os.path.dirname(exe), os.path.dirname(os.path.dirname(exe))):
    if os.path.isfile(os.path.join(home, "pyvenv.cfg")):
        venv = home
        break
prefixes = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix] + ([venv] if venv else [])
print(json.dumps([os.path.dirname(exe), *prefixes, *sys.path, *site.getsitepackages(prefixes)]))
"""

_cache: Dict[Tuple[str, int, int], List[str]] = {}
_lock = threading.Lock()


def python_directories(python: str) -> List[str]:
    """The real paths of the existing directories (and zip files) that make up ``python``'s
    installation (see the module's docstring); SandboxError if it cannot be
    run or does not answer as Python."""
    try:
        info = os.stat(python)
    except OSError as exc:
        raise SandboxError("the sandbox's python %s cannot be used: %s" % (python, exc.strerror)) from None
    key = (python, info.st_ino, info.st_mtime_ns)
    with _lock:
        if key in _cache:
            return list(_cache[key])
    done = None
    try:
        done = subprocess.run([python, "-I", "-S", "-c", _PROBE], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=PROBE_TIMEOUT, cwd="/", env={"PATH": os.defpath}, check=False)
        found = json.loads(done.stdout.decode("utf-8", "replace"))
        if done.returncode != 0 or not isinstance(found, list) or not all(isinstance(p, str) for p in found):
            raise ValueError("exit status %d" % done.returncode)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        detail = done.stderr.decode("utf-8", "replace").strip()[-500:] if done is not None else ""
        raise SandboxError("the sandbox's python %s did not say where its installation lies (%s)%s"
                           % (python, exc, ": " + detail if detail else "")) from None
    directories = sorted({os.path.realpath(path) for path in found if path and os.path.isabs(path)})
    directories = [path for path in directories if os.path.exists(path)]
    with _lock:
        _cache[key] = directories
    return list(directories)
