"""The server's contexts: ids chosen by clients or the server, limits,
idle expiry and pending ``input()`` requests. One table serves the HTTP
routes and ``/mcp`` alike (and the stdio MCP server has one of its own)."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

from ..api import CodeInterpreter
from ..engine import DEFAULT_CONTEXT_ID
from ..errors import ContextNotFoundError, InterpError
from ..types import InterpreterContext
from . import metrics as _metrics
from .checks import HTTPError

#: Ids of contexts deleted for being idle that are remembered (for a clear 404).
EXPIRED_MEMORY = 100_000


class ContextTableError(HTTPError, InterpError):
    """The table refuses: an id in use (409), the ``max_contexts`` limit
    (503), deleting the default context (400). An InterpError, and an
    HTTPError whose status the HTTP routes answer with."""


class _InputSlot:
    """One ``input()`` of a run waiting for its answer over HTTP."""

    def __init__(self) -> None:
        self.answered = threading.Event()
        self.value: Optional[str] = None  # None: EOF
        self.notify: Optional[Callable[[], object]] = None  # called once answered (a waiting task's wake-up)


class _Entry:
    """A context as the server knows it: the engine's id behind the client's
    id, when it was last used, how many requests use it now, and the
    ``input()`` calls of its run that wait for an answer."""

    def __init__(self, engine_id: str) -> None:
        self.engine_id = engine_id
        self.last_used = time.monotonic()
        self.users = 0
        self.inputs: Dict[int, _InputSlot] = {}
        self.next_input = 1


class ContextTable:
    """The contexts of one server, by the id clients use (chosen by the client
    with ``PUT /contexts/{id}``, or the engine's for ``POST /contexts``).

    Bounds their number (``max_contexts``: a 503 beyond) and deletes those
    unused for ``idle_timeout`` seconds (a later request for one gets a 404
    that says so). The default context is always there and never expires.
    """

    def __init__(self, interpreter: CodeInterpreter, metrics: Optional[_metrics.ServerMetrics] = None, *,
                 max_contexts: Optional[int] = None, idle_timeout: Optional[float] = None) -> None:
        self._interpreter = interpreter
        self._metrics = metrics if metrics is not None else _metrics.ServerMetrics()
        self.max_contexts = max_contexts
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._entries: Dict[str, _Entry] = {}  # client id -> entry, oldest first
        self._creating: Set[str] = set()
        self._expired: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._default = _Entry(DEFAULT_CONTEXT_ID)
        self._anonymous = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def create(self, context_id: Optional[str], cwd: Optional[str]) -> InterpreterContext:
        """Start a context (with the client's id, or the engine's when None)."""
        with self._lock:
            if context_id is not None and (context_id in self._entries or context_id in self._creating
                                           or context_id == DEFAULT_CONTEXT_ID):
                raise ContextTableError(409, "a context with id %r already exists" % context_id)
            if self.max_contexts is not None and len(self._entries) + len(self._creating) >= self.max_contexts:
                raise ContextTableError(503, "this server holds its maximum of %d contexts (--max-contexts); "
                                        "delete one or use another server" % self.max_contexts,
                                        headers={"Retry-After": "1"})
            key = context_id if context_id is not None else "\0%d" % next(self._anonymous)
            self._creating.add(key)
        try:
            context = self._interpreter.create_context(cwd=cwd)
        finally:
            with self._lock:
                self._creating.discard(key)
        public = context_id if context_id is not None else context.id
        with self._lock:
            self._entries[public] = _Entry(context.id)
            self._expired.pop(public, None)
        self._metrics.context_created()
        return dataclasses.replace(context, id=public)

    def _find(self, context_id: str) -> _Entry:
        """The entry for ``context_id`` (with ``_lock`` held), else ContextNotFoundError (a 404)."""
        if context_id == DEFAULT_CONTEXT_ID:
            return self._default
        entry = self._entries.get(context_id)
        if entry is not None:
            return entry
        if context_id in self._expired and self.idle_timeout is not None:
            raise ContextNotFoundError("context %r was deleted after %g s without use (--idle-timeout)"
                                       % (context_id, self.idle_timeout))
        raise ContextNotFoundError("no context with id %r on this server (deleted, never created, or it "
                                   "lived on a server that went away)" % context_id[:200])

    @contextlib.contextmanager
    def use(self, context_id: str) -> Iterator[_Entry]:
        """Hold the context as in use (so it does not expire) for a request."""
        with self._lock:
            entry = self._find(context_id)
            entry.users += 1
        try:
            yield entry
        except ContextNotFoundError:
            self._drop_if_gone(context_id, entry)
            raise
        finally:
            with self._lock:
                entry.users -= 1
                entry.last_used = time.monotonic()

    def _drop_if_gone(self, context_id: str, entry: _Entry) -> None:
        """Forget an entry whose engine context was deleted behind the table's
        back (by the interpreter's owner), so that its id and its slot are free."""
        if entry is self._default or any(c.id == entry.engine_id for c in self._interpreter.list_contexts()):
            return
        with self._lock:
            if self._entries.get(context_id) is entry:
                del self._entries[context_id]

    def speaker(self, entry: _Entry, context_id: str) -> Callable[[BaseException], str]:
        """A function giving an error's message with the context named by the
        id its client uses (the engine's messages name the engine's id)."""
        return lambda exc: str(exc).replace(repr(entry.engine_id), repr(context_id))

    def restart(self, context_id: str) -> InterpreterContext:
        """Restart the context (a fresh process, same id); its public form."""
        with self.use(context_id) as entry:
            context = self._interpreter.restart_context(entry.engine_id)
        return self.public(context_id, context)

    def interrupt(self, context_id: str) -> None:
        """KeyboardInterrupt in the context's running code (nothing when idle)."""
        with self.use(context_id) as entry:
            self._interpreter.interrupt(entry.engine_id)

    def delete(self, context_id: str) -> None:
        with self._lock:
            if context_id == DEFAULT_CONTEXT_ID:
                raise ContextTableError(400, "the default context cannot be deleted")
            entry = self._find(context_id)
            del self._entries[context_id]
        self._interpreter.delete_context(entry.engine_id)

    def public(self, context_id: str, context: InterpreterContext) -> InterpreterContext:
        return dataclasses.replace(context, id=context_id)

    def list(self) -> List[InterpreterContext]:
        """The contexts, oldest first, by the ids clients use."""
        with self._lock:
            names = {entry.engine_id: name for name, entry in self._entries.items()}
        return [dataclasses.replace(context, id=names[context.id])
                for context in self._interpreter.list_contexts() if context.id in names]

    def expire(self, now: float) -> int:
        """Delete the contexts unused for ``idle_timeout`` seconds; return how many."""
        if self.idle_timeout is None:
            return 0
        with self._lock:
            idle = [(name, entry) for name, entry in self._entries.items()
                    if entry.users == 0 and now - entry.last_used >= self.idle_timeout]
            for name, _entry in idle:
                del self._entries[name]
                self._expired[name] = now
                while len(self._expired) > EXPIRED_MEMORY:
                    self._expired.popitem(last=False)
                self._metrics.context_expired()  # counted as it leaves the table
        for _name, entry in idle:
            try:
                self._interpreter.delete_context(entry.engine_id)
            except InterpError:
                pass  # already gone (the interpreter is closing)
        return len(idle)

    # -- input() over HTTP ---------------------------------------------------------

    def ask(self, entry: _Entry) -> Tuple[int, _InputSlot]:
        """Open an input request of ``entry``'s run; return its number and slot."""
        with self._lock:
            number = entry.next_input
            entry.next_input += 1
            slot = entry.inputs[number] = _InputSlot()
        return number, slot

    def forget(self, entry: _Entry, number: int) -> None:
        with self._lock:
            entry.inputs.pop(number, None)

    def answer(self, context_id: str, number: int, value: Optional[str]) -> None:
        """Answer input request ``number`` of the context's run (None: EOF), else a 409."""
        with self._lock:
            slot = self._find(context_id).inputs.pop(number, None)
        if slot is None:
            raise ContextTableError(409, "context %r has no input request %d waiting (answered already, or "
                            "the code stopped waiting)" % (context_id, number))
        slot.value = value
        slot.answered.set()
        if slot.notify is not None:
            slot.notify()
