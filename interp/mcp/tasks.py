"""Tasks for the MCP server: a ``run_code`` call that runs on after its
request was answered, which the client polls and may cancel.

One table serves both shapes of the protocol: the experimental tasks of
revision 2025-11-25 (``params.task`` on the call; ``tasks/get``,
``tasks/result``, ``tasks/list``, ``tasks/cancel``) and the
``io.modelcontextprotocol/tasks`` extension of 2026-07-28 (the server
decides; ``tasks/get`` carries the result; ``tasks/update``,
``tasks/cancel``). Private to :mod:`interp.mcp`.
"""

from __future__ import annotations

import datetime
import json
import secrets
import threading
import time
from typing import Any, Dict, List, Optional

from .runners import Event

#: Tasks kept at once (running or finished within their time to live).
MAX_TASKS = 1000
#: Bytes of results (as JSON) the finished tasks keep together; a result that does not fit fails its task.
MAX_RESULT_BYTES = 64 * 1024 * 1024
#: The JSON-RPC error of a task whose result is over the budget (internal error).
_OVER_BUDGET = -32603
#: Time to live of a task, from its creation, in milliseconds: the default and the most a client may ask.
DEFAULT_TTL_MS = 3_600_000
MAX_TTL_MS = 24 * 3_600_000
#: The polling interval suggested to clients, in milliseconds.
POLL_INTERVAL_MS = 500

TERMINAL = ("completed", "failed", "cancelled")


def _now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Task:
    """One task: its status, and the tool result or JSON-RPC error it ended with."""

    def __init__(self, owner: str, ttl_ms: int) -> None:
        self.id = secrets.token_urlsafe(16)
        self.owner = owner  # the session (or "" when there is none) that may list it
        self.ttl_ms = ttl_ms
        self.status = "working"
        self.status_message: Optional[str] = "The code is running."
        self.created_at = _now_iso()
        self.updated_at = self.created_at
        self.expires = time.monotonic() + ttl_ms / 1000.0
        self.cancel = Event()  # the run's cancel event
        self.result: Optional[Dict[str, Any]] = None
        self.error: Optional[Dict[str, Any]] = None
        self.size = 0  # bytes of the result kept (as JSON)
        self.done = Event()  # set once terminal (a tool call on an event loop can wait for it)

    def fields(self, modern: bool) -> Dict[str, Any]:
        """The Task object: 2026-07-28 names (``ttlMs``, ``pollIntervalMs``) or 2025-11-25 ones."""
        task: Dict[str, Any] = {"taskId": self.id, "status": self.status, "createdAt": self.created_at,
                                "lastUpdatedAt": self.updated_at}
        if self.status_message is not None:
            task["statusMessage"] = self.status_message
        if modern:
            task.update(ttlMs=self.ttl_ms, pollIntervalMs=POLL_INTERVAL_MS)
        else:
            task.update(ttl=self.ttl_ms, pollInterval=POLL_INTERVAL_MS)
        return task


class TaskTable:
    """The tasks of one server, by id; finished tasks are dropped once their
    time to live has passed (running ones are kept until they end). At most
    MAX_TASKS are kept, and their results take at most ``max_bytes`` (as
    JSON) together: a result that does not fit fails its task, saying so."""

    def __init__(self, max_bytes: int = MAX_RESULT_BYTES) -> None:
        self._lock = threading.Lock()
        self._tasks: Dict[str, Task] = {}
        self.max_bytes = max_bytes
        self._bytes = 0  # of the results kept

    def create(self, owner: str, ttl_ms: Optional[int]) -> Optional[Task]:
        """A new working task, or None when MAX_TASKS are kept already."""
        ttl = DEFAULT_TTL_MS if ttl_ms is None else max(1000, min(int(ttl_ms), MAX_TTL_MS))
        with self._lock:
            self._expire()
            if len(self._tasks) >= MAX_TASKS:
                return None
            task = Task(owner, ttl)
            self._tasks[task.id] = task
            return task

    def drop(self, task: Task) -> None:
        """Forget a task whose result was given directly instead."""
        with self._lock:
            if self._tasks.pop(task.id, None) is not None:
                self._bytes -= task.size

    @property
    def bytes_kept(self) -> int:
        """Bytes of results the table keeps now (as JSON)."""
        with self._lock:
            return self._bytes

    def get(self, task_id: Any) -> Optional[Task]:
        with self._lock:
            self._expire()
            return self._tasks.get(task_id) if isinstance(task_id, str) else None

    def list(self, owner: str) -> List[Task]:
        with self._lock:
            self._expire()
            return [task for task in self._tasks.values() if task.owner == owner]

    def note(self, task: Task, message: str) -> None:
        """The latest output line, shown as a working task's statusMessage."""
        with self._lock:
            if task.status == "working":
                task.status_message = message[:1000]
                task.updated_at = _now_iso()

    def finish(self, task: Task, result: Optional[Dict[str, Any]], error: Optional[Dict[str, Any]]) -> None:
        """The run ended: completed with ``result`` or failed with ``error``
        (a cancelled task stays cancelled). A result over what is left of the
        byte budget is not kept: the task fails with an error that says so."""
        size = len(json.dumps(result)) if result is not None else 0
        with self._lock:
            self._expire()
            if task.status == "working" and result is not None and task.id in self._tasks:
                if self._bytes + size > self.max_bytes:
                    result, error = None, {"code": _OVER_BUDGET, "message": (
                        "the task's result (%d bytes as JSON) does not fit in what the server keeps for "
                        "task results (%d of %d bytes are taken); run it with a smaller output_limit, or "
                        "without a task" % (size, self._bytes, self.max_bytes))}
                else:
                    task.size = size
                    self._bytes += size
            if task.status == "working":
                task.status = "completed" if error is None else "failed"
                task.status_message = None if error is None else error.get("message")
                task.result, task.error = result, error
                task.updated_at = _now_iso()
            task.done.set()

    def cancel(self, task: Task) -> bool:
        """Cancel a working task (its run is interrupted, or dropped while it
        waits for its turn); False if it had ended already."""
        with self._lock:
            if task.status in TERMINAL:
                return False
            task.status = "cancelled"
            task.status_message = "The task was cancelled by request."
            task.updated_at = _now_iso()
            task.cancel.set()
        return True

    def _expire(self) -> None:
        now = time.monotonic()
        for task in [t for t in self._tasks.values() if t.done.is_set() and t.expires <= now]:
            del self._tasks[task.id]
            self._bytes -= task.size
