"""The sans-IO core of a run, shared by the sync and the async API.

:class:`Run` turns the bytes a worker sends into events (output lines, the
error) and decides when to interrupt or kill; it performs no I/O and reads
no clock. A driver (``api.py`` with ``select``, ``aio.py`` with the event
loop) feeds it bytes and the time, performs the actions it returns and calls
the user's callbacks for the events it returns.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, Dict, List, Optional, Tuple, Union

from . import protocol
from .types import ExecutionError, ExecutionResult, OutputMessage

#: A partial line (no newline yet) is delivered after waiting this long.
PARTIAL_LINE_DELAY = 0.1

# Actions a driver must perform.
INTERRUPT = "interrupt"  # SIGINT to the worker's process group
KILL = "kill"  # kill the process group; the run is over

# Event = (kind, payload): ("stdout"|"stderr", OutputMessage) or ("error", ExecutionError)
Event = Tuple[str, Union[OutputMessage, ExecutionError]]
Item = Union[Event, str]

# Run states.
RUNNING = "running"
INTERRUPTING = "interrupting"  # SIGINT sent, waiting for 'done' until the grace period ends
DONE = "done"  # the worker answered 'done'
KILLED = "killed"  # the grace period ran out
LOST = "lost"  # the worker closed the channel or sent garbage


class Connection:
    """Per-worker decoding state that outlives single runs.

    Frames that arrive after a run's ``done`` (output of a background thread,
    say) stay queued here for the next run.
    """

    def __init__(self) -> None:
        self.decoder = protocol.FrameDecoder(protocol.MAX_EVENT_FRAME)
        self.pending: Deque[dict] = deque()
        self.ready = False

    def receive(self, data: bytes) -> None:
        """Decode and validate ``data``; raise ProtocolError on garbage."""
        for message in self.decoder.feed(data):
            self.pending.append(protocol.validate_event(message))


class LineBuffer:
    """Splits a stream into lines; remembers when a partial line started."""

    def __init__(self) -> None:
        self.partial = ""
        self.since: Optional[float] = None

    def feed(self, text: str, now: float) -> List[str]:
        cut = text.rfind("\n") + 1
        if not cut:
            if text and not self.partial:
                self.since = now
            self.partial += text
            return []
        head = self.partial + text[:cut]
        self.partial = text[cut:]
        self.since = now if self.partial else None
        parts = head.split("\n")
        parts.pop()  # empty: head ends with "\n"
        return [part + "\n" for part in parts]

    def flush(self) -> List[str]:
        if not self.partial:
            return []
        line, self.partial, self.since = self.partial, "", None
        return [line]


class Run:
    """One run on one worker, from its command to its end."""

    def __init__(self, conn: Connection, code: str, *, envs: Optional[Dict[str, str]],
                 timeout: Optional[float], grace: float, now: float,
                 filename: Optional[str] = None) -> None:
        self.conn = conn
        self.command = protocol.encode({"t": "run", "code": code, "envs": envs, "filename": filename})
        self.deadline = now + timeout if timeout else None
        self.grace = grace
        self.kill_at: Optional[float] = None
        self.state = RUNNING
        self.timed_out = False
        self.abort_reason: Optional[BaseException] = None
        self.protocol_error: Optional[protocol.ProtocolError] = None
        self.error: Optional[ExecutionError] = None
        self._lines = {name: LineBuffer() for name in protocol.STREAMS}
        self._chunks: Dict[str, List[str]] = {name: [] for name in protocol.STREAMS}

    # -- inputs ------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.state in (DONE, KILLED, LOST)

    def start(self, now: float) -> List[Item]:
        """Handle frames that were already queued before this run began."""
        return self._process(now)

    def on_bytes(self, data: bytes, now: float) -> List[Item]:
        try:
            self.conn.receive(data)
        except protocol.ProtocolError as exc:
            self.protocol_error = exc
            items = self._process(now)  # what was valid before the garbage
            return items + self._end(LOST) + [KILL]
        return self._process(now)

    def on_eof(self, now: float, leftovers: Optional[Dict[str, bytes]] = None) -> List[Item]:
        """The channel closed: the worker died (or was killed).

        ``leftovers`` is output the worker wrote but did not forward before
        it died (see WorkerProcess.salvage); it is delivered as usual.
        """
        items = self._process(now)
        for stream, data in (leftovers or {}).items():
            if data and stream in self._lines:
                text = data.decode("utf-8", "replace")
                items.extend(self._lines_out(stream, self._lines[stream].feed(text, now)))
        return items + self._end(LOST)

    def on_timer(self, now: float) -> List[Item]:
        items: List[Item] = []
        for name, buffer in self._lines.items():
            if buffer.since is not None and now - buffer.since >= PARTIAL_LINE_DELAY:
                items.extend(self._lines_out(name, buffer.flush()))
        if self.state == RUNNING and self.deadline is not None and now >= self.deadline:
            self.timed_out = True
            items.extend(self._interrupt(now))
        elif self.state == INTERRUPTING and self.kill_at is not None and now >= self.kill_at:
            items.extend(self._end(KILLED))
            items.append(KILL)
        return items

    def abort(self, reason: BaseException, now: float) -> List[Item]:
        """Stop the run because the caller failed (a callback raised, a
        cancellation): interrupt it, deliver nothing more, remember why."""
        if self.abort_reason is None:
            self.abort_reason = reason
        if self.state == RUNNING:
            return [item for item in self._interrupt(now) if isinstance(item, str)]
        return []

    def wakeup_at(self) -> Optional[float]:
        """When the driver must call :meth:`on_timer` if no bytes come first."""
        times = [b.since + PARTIAL_LINE_DELAY for b in self._lines.values() if b.since is not None]
        if self.state == RUNNING and self.deadline is not None:
            times.append(self.deadline)
        if self.state == INTERRUPTING and self.kill_at is not None:
            times.append(self.kill_at)
        return min(times) if times else None

    # -- outputs -----------------------------------------------------------

    @property
    def delivering(self) -> bool:
        """Whether events should still reach the user's callbacks."""
        return self.abort_reason is None

    def result(self) -> ExecutionResult:
        return ExecutionResult(
            stdout="".join(self._chunks["stdout"]),
            stderr="".join(self._chunks["stderr"]),
            error=self.error,
        )

    # -- internals ---------------------------------------------------------

    def _interrupt(self, now: float) -> List[Item]:
        self.state = INTERRUPTING
        self.kill_at = now + self.grace
        return [INTERRUPT]

    def _end(self, state: str) -> List[Item]:
        self.state = state
        items: List[Item] = []
        for name, buffer in self._lines.items():
            items.extend(self._lines_out(name, buffer.flush()))
        return items

    def _lines_out(self, name: str, lines: List[str]) -> List[Item]:
        self._chunks[name].extend(lines)
        return [(name, OutputMessage(line)) for line in lines]

    def _process(self, now: float) -> List[Item]:
        items: List[Item] = []
        pending = self.conn.pending
        while pending and not self.finished:
            message = pending.popleft()
            kind = message["t"]
            if kind == "out":
                stream = message["s"]
                items.extend(self._lines_out(stream, self._lines[stream].feed(message["d"], now)))
            elif kind == "done":
                items.extend(self._end(DONE))
                error = message["error"]
                if error is not None:
                    self.error = ExecutionError(error["name"], error["value"], error["traceback"])
                    items.append(("error", self.error))
            elif kind == "ready":
                self.conn.ready = True
        return items
