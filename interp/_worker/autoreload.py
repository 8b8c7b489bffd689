"""``%autoreload`` without IPython: modules whose source changed are
reloaded before the next statement runs.

Modes, as IPython names them: ``0``/``off`` (never), ``1``/``explicit``
(only the modules named by ``%aimport``), ``2``/``all`` and ``3``/``complete``
(every module of the user's own, that is not from the standard library or
site-packages). ``%autoreload`` with no mode reloads the changed modules now.
A reload is ``importlib.reload``: objects made from the old module (instances,
functions already imported by name) keep the old code, unlike IPython's, which
also patches old classes and functions in place. Standard library only.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Dict, List, Optional, Set

_MODES = {"0": 0, "off": 0, "1": 1, "explicit": 1, "2": 2, "all": 2, "3": 3, "complete": 3}


def _library_dirs() -> List[str]:
    import sysconfig  # only once autoreload is on

    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(name)
        if path:
            dirs.add(path)
    return [os.path.join(os.path.realpath(path), "") for path in dirs]


class Autoreload:
    """The state of %autoreload / %aimport in one worker."""

    def __init__(self) -> None:
        self.mode = 0
        self.loaded = False  # %load_ext autoreload ran
        self.explicit: Set[str] = set()  # %aimport'ed names
        self.excluded: Set[str] = set()  # %aimport -name
        self.stamps: Dict[str, float] = {}  # module name -> mtime of its source when last (re)loaded
        self._libraries: Optional[List[str]] = None

    def set_mode(self, word: str) -> None:
        """``%autoreload [mode]``; ValueError for a mode IPython does not have."""
        if not word:
            self.check(force=True)
            return
        if word not in _MODES:
            raise ValueError("unknown %%autoreload mode %r (modes: %s)" % (word, ", ".join(_MODES)))
        self.mode = _MODES[word]
        self._stamp_all()

    def aimport(self, names: List[str]) -> str:
        """``%aimport [-]name, ...``: import and mark for reloading (``-``: never);
        with no names, the report IPython prints."""
        if not names:
            return "Modules to reload:\n%s\n\nModules to skip:\n%s" % (
                " ".join(sorted(self.explicit)), " ".join(sorted(self.excluded)))
        for name in names:
            if name.startswith("-"):
                self.excluded.add(name[1:])
                self.explicit.discard(name[1:])
            else:
                importlib.import_module(name)
                self.explicit.add(name)
                self.excluded.discard(name)
                self._stamp(name)
        return ""

    def check(self, force: bool = False) -> None:
        """Reload what changed (called before each statement; ``force``: whatever the mode)."""
        if not force and self.mode == 0:
            return
        if force or self.mode >= 2:
            names = [name for name in list(sys.modules) if name not in self.excluded and self._is_users(name)]
        else:
            names = [name for name in self.explicit if name in sys.modules]
        for name in names:
            mtime = self._mtime(name)
            if mtime is None:
                continue
            known = self.stamps.setdefault(name, mtime)
            if mtime > known:
                self.stamps[name] = mtime
                try:
                    importlib.reload(sys.modules[name])
                except Exception as exc:  # reported as IPython reports it; the cell still runs
                    print("[autoreload of %s failed: %s: %s]" % (name, type(exc).__name__, exc), file=sys.stderr)

    def _is_users(self, name: str) -> bool:
        path = getattr(sys.modules.get(name), "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py"):
            return False
        if self._libraries is None:
            self._libraries = _library_dirs()
        real = os.path.realpath(path)
        return not any(real.startswith(directory) for directory in self._libraries)

    def _mtime(self, name: str) -> Optional[float]:
        path = getattr(sys.modules.get(name), "__file__", None)
        try:
            return os.stat(path).st_mtime if isinstance(path, str) else None
        except OSError:
            return None

    def _stamp(self, name: str) -> None:
        mtime = self._mtime(name)
        if mtime is not None:
            self.stamps[name] = mtime

    def _stamp_all(self) -> None:
        for name in list(sys.modules):
            if name not in self.stamps and self._is_users(name):
                self._stamp(name)


#: The worker's one state.
state = Autoreload()
