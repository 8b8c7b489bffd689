"""The contexts of one interpreter: their registry, shared by both APIs.

:class:`Engine` owns the contexts of one interpreter (sync or async) and
checks the interpreter's options; :class:`~interp.context.Context` owns one
worker process, and :mod:`interp.commands` checks each call's arguments.
None of them waits on a pipe: the drivers in ``api.py`` and ``aio.py`` do that.
"""

from __future__ import annotations

import atexit
import os
import threading
import uuid
import weakref
from collections.abc import Mapping
from typing import Dict, List, Optional, Union

from .commands import check_environment, check_seconds, check_size, current_directory
from .context import Context
from .errors import ContextNotFoundError, InterpError
from ._sandbox_launcher import SandboxLauncher
from .process import Launcher, check_cwd, default_launcher
from .sandbox import Sandbox, sandbox_option
from .types import InterpreterContext

#: Characters of each stream an ExecutionResult keeps (callbacks see all).
DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024
DEFAULT_GRACE_PERIOD = 2.0
#: The least memory_limit accepted: a worker maps up to about 160 MB of address
#: space before it runs anything (its threads' malloc arenas reserve 64 MiB each,
#: used or not), and interp/_worker/worker.py's apply_options demands 64 MiB more.
MIN_MEMORY_LIMIT = 256 << 20
DEFAULT_CONTEXT_ID = "default"
#: What a cell may be written in: "notebook" (Python, plus IPython's syntax where
#: the cell is not valid Python: see interp/_worker/dialect.py) or "python".
DIALECTS = ("notebook", "python")
DEFAULT_DIALECT = "notebook"
#: A completion that takes longer than this (a property that blocks) gives up.
COMPLETION_TIMEOUT = 5.0

ContextRef = Union[InterpreterContext, str, None]


_live_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for engine in list(_live_engines):
        if engine.owner_pid == os.getpid():
            engine.close()


def _forget_inherited() -> None:
    """After os.fork() in the application: the child must neither kill the
    parent's workers nor keep their channels open (which would keep them
    alive after the parent dies). Its interpreters become closed."""
    for engine in list(_live_engines):
        if engine.owner_pid != os.getpid():
            engine.abandon()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited)


class Engine:
    """The contexts of one interpreter, shared by the sync and async APIs."""

    def __init__(self, cwd: Optional[str] = None, *,
                 env: Optional[Mapping[str, str]] = None,
                 max_output: Optional[int] = DEFAULT_MAX_OUTPUT,
                 memory_limit: Optional[int] = None,
                 grace_period: float = DEFAULT_GRACE_PERIOD,
                 launcher: Optional[Launcher] = None, sandbox: Union[Sandbox, bool, None] = None,
                 dialect: str = DEFAULT_DIALECT) -> None:
        if dialect not in DIALECTS:
            raise ValueError("dialect must be one of %s, not %r" % (", ".join(map(repr, DIALECTS)), dialect))
        self.dialect = dialect
        self.sandbox = sandbox_option(sandbox)
        if self.sandbox is not None and (launcher is not None or env is not None):
            raise ValueError("a sandboxed interpreter takes no %s: %s" % (
                ("launcher", "it starts its own") if launcher is not None
                else ("env", "give the environment as Sandbox(env=...)")))
        self.cwd = self.check_cwd(cwd) if cwd is not None else None
        self.env: Optional[Dict[str, str]] = check_environment("env", env)  # None: inherit
        self.max_output = check_size("max_output", max_output)
        self.memory_limit = check_size("memory_limit", memory_limit)
        if self.memory_limit is not None and self.memory_limit < MIN_MEMORY_LIMIT:
            raise ValueError("memory_limit=%d is too low to start a worker: a worker maps up to about 100 MB "
                             "of address space before it runs anything and needs 64 MiB more to run code; "
                             "give at least %d (256 MiB), or None for no limit"
                             % (self.memory_limit, MIN_MEMORY_LIMIT))
        grace = check_seconds("grace_period", grace_period, DEFAULT_GRACE_PERIOD)
        if grace is None and grace_period:
            raise ValueError("grace_period must be finite: a run that ignores its interrupt "
                             "must eventually be killed")
        self.grace_period = grace if grace is not None else 0.0
        if self.sandbox is not None:
            launcher = self._own_launcher = SandboxLauncher.for_sandbox(self.sandbox)
            self.cwd = self.cwd or self.sandbox.workspace
        self.launcher = launcher or default_launcher()
        prestart = getattr(self.launcher, "prestart", None)
        if prestart is not None:
            try:
                prestart()
            except BaseException:
                if self._own_launcher is not None:
                    self._own_launcher.close()
                raise
        self._lock = threading.Lock()
        self._contexts: Dict[str, Context] = {}
        self._default: Optional[Context] = None
        self._closed = False
        self.owner_pid = os.getpid()
        _live_engines.add(self)

    _own_launcher: Optional[SandboxLauncher] = None  # the sandbox's, closed with the engine

    def check_cwd(self, cwd: str) -> str:
        """``cwd`` made absolute; InvalidCwdError if it is no directory (or the sandbox does not show it).
        A sandbox's cwd is only checked by name here, and for real by the
        worker inside: the host never follows the workspace's symlinks."""
        if self.sandbox is not None:
            return self.sandbox.check_cwd(os.path.abspath(os.fspath(cwd)))
        return check_cwd(cwd)

    def describe(self) -> str:
        """A short text for the interpreters' reprs."""
        return "cwd=%r contexts=%d%s" % (self.cwd, len(self._contexts), " closed" if self._closed else "")

    def _check_open(self) -> None:
        if self._closed:
            if self.owner_pid != os.getpid():
                raise InterpError("this interpreter belongs to the process that created it, not "
                                  "to this fork of it; create a new one here")
            raise InterpError("this interpreter is closed; create a new one")

    def abandon(self) -> None:
        """Forget every context without touching its worker (see _forget_inherited)."""
        self._closed = True
        self._lock = threading.Lock()  # it may have been held by another thread at fork time
        contexts = list(self._contexts.values()) + ([self._default] if self._default else [])
        self._contexts.clear()
        for context in contexts:
            context.abandon()

    def create(self, cwd: Optional[str]) -> Context:
        path = self.check_cwd(cwd if cwd is not None else (self.cwd or current_directory()))
        context = Context(str(uuid.uuid4()), path, self)
        with self._lock:
            self._check_open()
            self._contexts[context.id] = context
        try:
            with context._state:
                context._spawn()
        except BaseException:
            with self._lock:
                self._contexts.pop(context.id, None)
            raise
        return context

    def resolve(self, ref: ContextRef) -> Context:
        """The context for a run: None (or the id ``"default"``) is the default
        one, started on first use."""
        with self._lock:
            self._check_open()
            return self._lookup(ref)

    def workspace_fd(self) -> int:
        """A descriptor of the sandbox's workspace as its code sees it (see
        SandboxLauncher.workspace_fd); InterpError once closed."""
        with self._lock:
            self._check_open()
            launcher = self._own_launcher
        if launcher is None:
            raise InterpError("this interpreter has no sandbox")
        return launcher.workspace_fd()

    def _lookup(self, ref: ContextRef) -> Context:
        if ref is None:
            key = DEFAULT_CONTEXT_ID
        elif isinstance(ref, InterpreterContext):
            key = ref.id
        elif isinstance(ref, str):
            key = ref
        else:
            raise TypeError("context must be an InterpreterContext or its id, not %s"
                            % type(ref).__name__)
        if key == DEFAULT_CONTEXT_ID:
            if self._default is None:
                self._default = Context(DEFAULT_CONTEXT_ID, self.cwd or current_directory(), self)
            return self._default
        context = self._contexts.get(key)
        if context is None:
            raise ContextNotFoundError("no context with id %r (deleted, or never created)" % key)
        return context

    def list(self) -> List[InterpreterContext]:
        with self._lock:
            self._check_open()
            contexts = list(self._contexts.values())
        return [context.snapshot() for context in contexts]

    def delete(self, ref: ContextRef) -> None:
        if ref is None:
            raise TypeError("delete_context needs a context (or its id)")
        with self._lock:
            self._check_open()
            context = self._lookup(ref)
            if context is self._default:
                self._default = None  # the next run on the default context starts a new one
            else:
                del self._contexts[context.id]
        context.remove("deleted")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            contexts = list(self._contexts.values())
            if self._default is not None:
                contexts.append(self._default)
            self._contexts.clear()
        for context in contexts:
            context.remove("closed")
        if self._own_launcher is not None:
            self._own_launcher.close()
