"""The paths a sandbox shows, and how it compares them: real paths (symlinks
resolved), the paths you named, your home directory, and where a Python
interpreter's installation lies as that interpreter itself sees it (its
prefixes, the virtual environment it belongs to, the directory of its
``pyvenv.cfg``, its import path and site-packages directories). A sandbox
shows all of these read-only (``Sandbox.python_paths``); asking the
interpreter, not the host's own ``sys``, is what makes that hold for a
``python=`` of another installation or a venv inside the workspace.

The interpreter is run once per executable (cached) with ``-I -S``: no
``.pth`` file, ``sitecustomize`` or ``PYTHON*`` variable is involved, and
``site`` is imported for its ``getsitepackages`` only."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import threading
from typing import Dict, Iterable, List, Tuple, Union

from .errors import SandboxError

PathLike = Union[str, "os.PathLike[str]"]

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
    directories = sorted({real_path(path) for path in found if path and os.path.isabs(path)})
    directories = [path for path in directories if os.path.exists(path)]
    with _lock:
        _cache[key] = directories
    return list(directories)


def given_paths(name: str, values: Iterable[PathLike]) -> Tuple[str, ...]:
    """The real paths of ``values`` (a ``read_only=`` or ``writable=``
    option named ``name``); ValueError for one that does not exist."""
    if isinstance(values, (str, bytes)):
        raise TypeError("%s must be a list of paths, not a single string" % name)
    found = []
    for value in values:
        path = os.path.abspath(os.fspath(value))
        if not os.path.exists(path):
            raise ValueError("%s: %s does not exist" % (name, path))
        found.append(real_path(path))
    return tuple(found)


def real_path(path: str) -> str:
    """``path`` with every symlink resolved. Everything the sandbox shows is
    bound, and compared with the rest, at its real path: two spellings of
    one directory (through a symlink) cannot make one writable that the other
    promised read-only."""
    return os.path.realpath(path)


def executable(python: str) -> str:
    """The interpreter to run, named through its directory's real path (the
    sandbox shows that) but by its own name (a venv's ``bin/python`` is a
    link the venv is found by)."""
    path = os.path.abspath(python if os.sep in python else (shutil.which(python) or python))
    return os.path.join(real_path(os.path.dirname(path)), os.path.basename(path))


def importable(path: str, imported: str) -> bool:
    """True if a file made in ``path`` could be imported from the sys.path
    entry ``imported``: ``path`` is it, or lies below it in a directory whose
    name is a package name (``imported/name/...``: ``import name``)."""
    if path == imported:
        return True
    if not inside(path, [imported]):
        return False
    return os.path.relpath(path, imported).split(os.sep)[0].isidentifier()


def homes() -> List[str]:
    """Your home directory as $HOME names it and as the password database
    does (a changed $HOME must not hide the one your shell starts in)."""
    found = [os.path.expanduser("~")]
    try:
        found.append(pwd.getpwuid(os.getuid()).pw_dir)
    except (KeyError, OSError):
        pass
    return sorted({real_path(home) for home in found if home and os.path.isabs(home)})


def inside(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)
