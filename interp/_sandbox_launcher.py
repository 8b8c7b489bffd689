"""Sandboxed interpreters' launcher: a zygote inside bubblewrap (see
``interp.sandbox``) and the warm sandboxes of ``Sandbox(prestart=N)``."""

from __future__ import annotations

import atexit
import os
import threading
from typing import Dict, List, Mapping, Optional, Tuple

from ._zygote_client import ZYGOTE_TIMEOUT, ZygoteError, _Zygote
from .process import WorkerProcess, ZygoteLauncher
from .sandbox import Sandbox


class SandboxLauncher(ZygoteLauncher):
    """Forks workers from a zygote that runs inside a bubblewrap sandbox
    (see :mod:`interp.sandbox`): one sandbox, started once, and a fork per
    context. Owned by one interpreter, whose close() ends it.

    Never falls back to running anything unsandboxed: if the sandboxed zygote
    cannot start or stops answering, :meth:`start` raises
    SandboxUnavailableError (it could not start at all) or InterpError.
    Workers get the sandbox's environment unless ``env`` is given, and a cwd
    outside what the sandbox shows is an InvalidCwdError.
    """

    def __init__(self, sandbox: Sandbox, pool_size: int = 1) -> None:
        super().__init__(sandbox.python, pool_size, burst_pool=pool_size)  # idle workers count against its limits
        self.sandbox = sandbox
        sandbox.acquire()
        self._started = False  # a zygote of ours once said hello

    @classmethod
    def for_sandbox(cls, sandbox: Sandbox) -> SandboxLauncher:
        """A launcher for ``sandbox``: with ``prestart=N``, a warm one (its
        sandbox started and sealed, a worker forked) when one of the same
        options is ready, and N more made ready in the background."""
        if sandbox.prestart <= 0:
            return cls(sandbox)
        launcher = _warm.take(sandbox.config_key())
        if launcher is not None and not sandbox.adopt(launcher.sandbox):
            launcher.close()
            launcher = None
        if launcher is not None:
            launcher.sandbox = sandbox
        else:
            launcher = cls(sandbox)
        _warm.fill(sandbox, sandbox.prestart)
        return launcher

    def warm_up(self) -> None:
        """Start the sandbox, wait for its zygote and fork a worker ahead (for prestart)."""
        self._refill(self._get_zygote(), wait=True)

    def _environment(self) -> Mapping[str, str]:
        return self.sandbox.env

    def _make_zygote(self) -> _Zygote:
        return _Zygote(self.python, wrap=lambda argv, fd: self.sandbox.command(argv, seccomp_fd=fd),
                       limits=self.sandbox.rlimits(), seccomp=self.sandbox.seccomp(), seal=self.sandbox.seal())

    def prestart(self) -> None:
        """Start the sandbox now (without waiting for it); SandboxUnavailableError
        at once if bwrap is missing."""
        self.sandbox.find_bwrap()
        super().prestart()

    def start(self, cwd: str, env: Optional[Mapping[str, str]] = None, *,
              memory_limit: Optional[int] = None) -> WorkerProcess:
        """Start a worker inside the sandbox, in ``cwd`` (a path it shows)."""
        from .errors import InterpError

        cwd = self.sandbox.check_cwd(cwd)
        zygote = self._zygote
        try:
            worker = self._start_forked(cwd, env, memory_limit)
        except ZygoteError as exc:
            failed = self._zygote or zygote
            if failed is not None and not failed._greeted and not self._started:
                raise self.sandbox.diagnose(failed.said()) from None
            if failed is not None and not failed.broken:  # it answered, with an error
                raise InterpError("the sandbox could not start a worker: %s" % exc) from None
            raise InterpError("the sandbox stopped working (%s); the next context starts a new "
                              "one" % exc) from None
        self._started = True
        return worker

    def workspace_fd(self) -> int:
        """A descriptor (``O_PATH``) of the workspace as the sandbox shows it
        (the temporary workspace is a tmpfs only the sandbox has), from its
        zygote, starting the sandbox if need be; the caller closes it."""
        from .errors import InterpError

        try:
            return self._get_zygote().open_directory(self.sandbox.workspace)
        except ZygoteError as exc:
            raise InterpError("the sandbox cannot show its workspace: %s" % exc) from None

    def close(self) -> None:
        """Stop the sandbox (everything in it dies) and release its workspace and cgroup."""
        super().close()
        self.sandbox.release()


class _WarmSandboxes:
    """Sandboxes started ahead of need (``Sandbox(prestart=N)``), by options:
    each a SandboxLauncher whose zygote is sealed and has a worker forked.
    Filled by one background thread that lives as long as the process:
    bwrap's --die-with-parent (PR_SET_PDEATHSIG) follows the thread that
    started it. Closed at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: Dict[str, List[SandboxLauncher]] = {}
        self._wanted: Dict[str, Tuple[Sandbox, int]] = {}
        self._filler: Optional[threading.Thread] = None
        self._wake = threading.Event()
        self._building = threading.Lock()  # held while one is being started
        self._owner = os.getpid()

    def take(self, key: str) -> Optional[SandboxLauncher]:
        with self._lock:
            self._check_owner()
            ready = self._ready.get(key) or []
            return ready.pop(0) if ready else None

    def fill(self, template: Sandbox, count: int) -> None:
        """Keep ``count`` sandboxes like ``template`` ready (in the background)."""
        with self._lock:
            self._check_owner()
            self._wanted[template.config_key()] = (template, count)
            if self._filler is None or not self._filler.is_alive():
                self._filler = threading.Thread(target=self._fill, name="interp-prestart", daemon=True)
                self._filler.start()
        self._wake.set()

    def _fill(self) -> None:
        while True:
            with self._lock:
                todo = [(key, template) for key, (template, count) in self._wanted.items()
                        if len(self._ready.get(key, [])) < count]
                if self._owner != os.getpid():
                    return
            if not todo:
                self._wake.wait()
                self._wake.clear()
                continue
            key, template = todo[0]
            with self._building:
                self._build(key, template)

    def _build(self, key: str, template: Sandbox) -> None:
        import copy

        clone = copy.copy(template)
        clone.__dict__.update(_lock=threading.Lock(), _in_use=False, _started=False, _cgroup=None,
                              _temporary=None, _workspace=template._given_workspace, prestart=0)
        launcher: Optional[SandboxLauncher] = None
        try:
            launcher = SandboxLauncher(clone)
            launcher.warm_up()
        except Exception:  # it cannot start: the interpreter that asks starts its own, and says why
            if launcher is not None:
                launcher.close()
            with self._lock:
                self._wanted.pop(key, None)
            return
        with self._lock:
            kept = key in self._wanted
            if kept:
                self._ready.setdefault(key, []).append(launcher)
        if not kept:  # closed meanwhile
            launcher.close()

    def _check_owner(self) -> None:
        if self._owner != os.getpid():  # a fork: the parent's warm sandboxes are not ours
            self._ready, self._wanted, self._filler, self._owner = {}, {}, None, os.getpid()

    def close(self) -> None:
        with self._lock:
            if self._owner != os.getpid():
                return
            ready, self._ready, self._wanted = self._ready, {}, {}
        if self._building.acquire(timeout=ZYGOTE_TIMEOUT * 2):  # one being started is closed by _build
            self._building.release()
        for launchers in ready.values():
            for launcher in launchers:
                launcher.close()


_warm = _WarmSandboxes()
atexit.register(lambda: _warm.close())


def _after_fork_in_child() -> None:
    """A fork's warm sandboxes are the parent's (their launchers forget them,
    see process._after_fork_in_child); its lock may have been held."""
    global _warm
    _warm = _WarmSandboxes()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
