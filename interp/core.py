"""The sans-IO core of a run, shared by the sync and the async API.

:class:`Run` turns the bytes a worker sends into events (output lines, the
error) and decides when to interrupt or kill; it performs no I/O and reads
no clock. A driver (``api.py`` with ``select``, ``aio.py`` with the event
loop) feeds it bytes and the time, performs the actions it returns and calls
the user's callbacks for the events it returns.
"""

from __future__ import annotations

import base64
import codecs
import json
import os
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, Iterable, List, Optional, Tuple, Union

from . import protocol
from ._worker.display import DROPPED_KEY, fit_bundle
from .types import ExecutionError, ExecutionResult, OutputMessage, Result

if TYPE_CHECKING:  # the core never touches the worker: it only carries the driver's handle
    from .process import WorkerProcess

Message = Dict[str, Any]

#: A partial line (no newline yet) is delivered after waiting this long.
PARTIAL_LINE_DELAY = 0.1
#: A partial line is released as it is once it grows this long.
MAX_PARTIAL_CHARS = 1024 * 1024
#: Appended to a stream that ``max_output`` cut.
TRUNCATION_MARKER = ("\n[interp: output truncated: %d more characters were not kept "
                     "(max_output=%d); callbacks received all of it]\n")
#: Stands for a result past the ``max_output`` budget of results (its
#: callback received it whole).
RESULT_DROPPED = "[interp: a result of %d characters was not kept (max_output=%d); on_result received it]"
#: Results a run keeps when ``max_output`` is set, stand-ins included; the rest
#: are counted in one last stand-in (RESULTS_NOT_LISTED).
MAX_KEPT_RESULTS = 10_000
RESULTS_NOT_LISTED = ("[interp: %d more results (%d characters) were not kept (at most %d results are kept "
                      "per run); on_result received them]")
#: Delivered (on stderr) when output printed between runs overran ``max_output``
#: while nobody could take it (during a completion).
BETWEEN_RUNS_DROPPED = "[interp: %d characters printed between runs were dropped (max_output=%d)]\n"
#: Largest read of a worker's channel in one call (both drivers): a pipe
#: holds 64 KiB, and a buffer this size comes from the heap, not a fresh mapping.
READ_SIZE = 64 * 1024
#: Largest write to a worker's channel in one call.
SEND_CHUNK = 256 * 1024

#: Command ids not yet used, drawn from os.urandom a batch at a time.
_fresh_ids: List[int] = []


def new_command_id() -> int:
    """A command id the worker cannot guess before it reads the command."""
    try:
        return _fresh_ids.pop()  # atomic: threads never share an id
    except IndexError:
        data = os.urandom(6 * 64)
        _fresh_ids.extend(int.from_bytes(data[i:i + 6], "big") for i in range(0, len(data), 6))
        return _fresh_ids.pop()


if hasattr(os, "register_at_fork"):  # a fork of the application draws its own
    os.register_at_fork(after_in_child=_fresh_ids.clear)


# Actions a driver must perform.
INTERRUPT = "interrupt"  # SIGINT to the worker's process group
LAST_LOOK = "last_look"  # read what the channel holds now, then call give_up() if not done
KILL = "kill"  # kill the process group; the run is over

# Event = (kind, payload): ("stdout"|"stderr", OutputMessage), ("error", ExecutionError),
# ("result", Result) or ("input", prompt) -- the last one wants an answer_input().
Event = Tuple[str, Union[OutputMessage, ExecutionError, Result, str]]
Item = Union[Event, str]

# Run states.
RUNNING = "running"
INTERRUPTING = "interrupting"  # SIGINT sent, waiting for 'done' until the grace period ends
DONE = "done"  # the worker answered 'done'
KILLED = "killed"  # the grace period ran out
LOST = "lost"  # the worker closed the channel or sent garbage


class Connection:
    """Per-worker decoding state that outlives single runs.

    Output arrives as raw bytes and is decoded here (UTF-8, invalid bytes
    replaced), so that a character split between frames, or between a frame
    and what is salvaged after a crash, comes out whole. Frames that arrive
    after a run's ``done`` (output of a background thread, say) stay queued
    here for the next run.
    """

    def __init__(self) -> None:
        self.decoder = protocol.FrameDecoder(protocol.MAX_EVENT_FRAME)
        self.pending: Deque[Message] = deque()
        self.ready = False
        self._text = {name: codecs.getincrementaldecoder("utf-8")("replace")
                      for name in protocol.STREAMS}

    def receive(self, data: bytes) -> None:
        """Decode and validate ``data``; raise ProtocolError on garbage."""
        for message in self.decoder.feed(data):
            protocol.validate_event(message)
            if message["t"] == "out":
                self._output(message["s"], message["b"])
                continue
            if message["t"] == "done":
                self._finish_text()  # a run's end does not wait for the rest of a character
            self.pending.append(message)

    def close(self, leftovers: Optional[Dict[str, bytes]] = None) -> None:
        """The channel reached its end: queue the output cut short in its
        last frame, then ``leftovers`` (what the worker never forwarded)."""
        cut = self.decoder.incomplete_output()
        if cut is not None:
            self._output(*cut)
        for name, data in (leftovers or {}).items():
            if name in self._text:
                self._output(name, data)
        self._finish_text()

    def _output(self, name: str, data: bytes, final: bool = False) -> None:
        text = self._text[name].decode(data, final)
        if text:
            self.pending.append({"t": "out", "s": name, "d": text})

    def _finish_text(self) -> None:
        for name in self._text:
            self._output(name, b"", final=True)


class LineBuffer:
    """Splits a stream into lines; remembers when a partial line started.

    A partial line longer than ``max_partial`` characters is released as it
    is, so one endless line cannot grow the parent's memory.
    """

    def __init__(self, max_partial: int = MAX_PARTIAL_CHARS) -> None:
        self.partial = ""
        self.since: Optional[float] = None
        self.max_partial = max_partial

    def feed(self, text: str, now: float) -> List[str]:
        """Add ``text``; return the lines it completes (and an overlong partial one)."""
        cut = text.rfind("\n") + 1
        if not cut:
            if text and not self.partial:
                self.since = now
            self.partial += text
            return self.flush() if len(self.partial) >= self.max_partial else []
        head = self.partial + text[:cut]
        self.partial = text[cut:]
        self.since = now if self.partial else None
        parts = head.split("\n")
        parts.pop()  # empty: head ends with "\n"
        lines = [part + "\n" for part in parts]
        if len(self.partial) >= self.max_partial:
            lines.extend(self.flush())
        return lines

    def flush(self) -> List[str]:
        """Release the partial line, if any."""
        if not self.partial:
            return []
        line, self.partial, self.since = self.partial, "", None
        return [line]


class Capture:
    """What one stream of a run keeps: at most ``limit`` characters (None:
    everything), counting what it had to drop."""

    def __init__(self, limit: Optional[int]) -> None:
        self.limit = limit
        self.chunks: List[str] = []
        self.kept = 0
        self.dropped = 0

    def add(self, text: str) -> None:
        """Keep ``text``, or as much of it as the limit allows."""
        if self.limit is not None and self.kept + len(text) > self.limit:
            room = max(0, self.limit - self.kept)
            self.dropped += len(text) - room
            text = text[:room]
        if text:
            self.chunks.append(text)
            self.kept += len(text)

    def text(self) -> str:
        """Everything kept, with the truncation marker if something was dropped."""
        joined = "".join(self.chunks)
        if len(self.chunks) > 1:
            self.chunks = [joined]
        if self.dropped:
            joined += TRUNCATION_MARKER % (self.dropped, self.limit)
        return joined


class Run:
    """One request to one worker (a ``run`` or a ``complete`` command), from
    sending it to its end."""

    def __init__(self, conn: Connection, worker: WorkerProcess, command: Message, *,
                 timeout: Optional[float], grace: float, now: float,
                 listen: Iterable[str] = protocol.STREAMS, max_output: Optional[int] = None) -> None:
        self.conn = conn
        self.worker = worker  # the driver's handle on the worker, opaque here
        self.id = new_command_id()  # the worker's replies must name it
        command = dict(command, id=self.id)
        #: A file descriptor of the parent whose bytes become the run's fd 0 (see feed_stdin).
        self.stdin_fd: Optional[int] = command.pop("stdin_fd", None)
        self._stdin_credit = False  # the worker asked for the next chunk (stdin_more)
        self._stdin_ended = False
        self.outgoing = bytearray(protocol.encode(command))  # for the worker, from _sent on
        self._sent = 0
        self.is_completion = command.get("t") == "complete"
        self.deadline = now + timeout if timeout else None
        self.grace = grace
        self.kill_at: Optional[float] = None
        self.overdue = False  # a timeout's grace period ran out (see on_timer)
        self.state = RUNNING
        self.timed_out = False
        self.abort_reason: Optional[BaseException] = None
        self.protocol_error: Optional[protocol.ProtocolError] = None
        self.error: Optional[ExecutionError] = None
        self.results: List[Result] = []
        self.execution_count = 0
        self.matches: List[str] = []
        self.fatal: Optional[str] = None  # why the worker said it must exit
        self.fatal_errno: Optional[int] = None  # set when that was its cwd (checked where the code runs)
        #: Set (from any thread) by an interrupt() meant for this run; see 'started'.
        self.interrupt_requested = False
        self.max_output = max_output
        self._deferred: List[Message] = []  # frames a completion leaves for the next run
        self._deferred_size = 0
        self._deferred_dropped = 0
        self._results_size = 0  # characters of results kept
        self._results_dropped = 0  # results replaced by a stand-in, or cut
        self._unlisted: List[int] = [0, 0, 0]  # results past MAX_KEPT_RESULTS: count, characters, main ones
        self._dropped_between = 0  # output lost between runs, reported by this run
        self._asked: Deque[int] = deque()  # input requests delivered, not yet answered
        self._interrupt_when_ready = False
        # Line splitting only for streams someone listens to; capture for all.
        self._lines = {name: LineBuffer() for name in protocol.STREAMS if name in listen}
        self._capture = {name: Capture(max_output) for name in protocol.STREAMS}

    # -- inputs ------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """The run is over: answered, killed, or its worker is gone."""
        return self.state in (DONE, KILLED, LOST)

    def start(self, now: float) -> List[Item]:
        """Handle frames that were already queued before this run began."""
        return self._process(now)

    def on_bytes(self, data: bytes, now: float) -> List[Item]:
        """Bytes from the worker's channel; garbage ends the run (LOST, KILL)."""
        try:
            self.conn.receive(data)
        except protocol.ProtocolError as exc:
            items = self._process(now)  # what was valid before the garbage
            return items + self._violation(exc)
        return self._process(now)

    def on_eof(self, now: float, leftovers: Optional[Dict[str, bytes]] = None) -> List[Item]:
        """The channel closed: the worker died (or was killed).

        ``leftovers`` is output the worker wrote but did not forward before
        it died (see WorkerProcess.salvage); it is delivered as usual.
        """
        self.conn.close(leftovers)
        return self._process(now) + self._end(LOST)

    def on_timer(self, now: float) -> List[Item]:
        """Time passed: release waiting partial lines, interrupt at the deadline,
        take a last look (then kill) when the grace period is over."""
        items: List[Item] = []
        for name, buffer in self._lines.items():
            if buffer.since is not None and now - buffer.since >= PARTIAL_LINE_DELAY:
                items.extend(self._deliver(name, buffer.flush()))
        if self.state == RUNNING and self.deadline is not None and now >= self.deadline:
            self.timed_out = True
            items.extend(self._interrupt(now))
        elif self.kill_at is not None and now >= self.kill_at:
            # The grace period is over. Callbacks that fell behind get nothing
            # more (it is all in the result): the caller must not wait for them.
            self.kill_at = None
            self.overdue = True
            if self.state == INTERRUPTING:
                # The worker may well have answered while the caller was busy
                # in callbacks: look at what is waiting before deciding to kill.
                items.append(LAST_LOOK)
        return items

    def give_up(self) -> List[Item]:
        """After the last look found no answer: the run is killed."""
        if self.finished:
            return []
        return self._end(KILLED) + [KILL]

    def abort(self, reason: BaseException, now: float) -> List[str]:
        """Stop the run because the caller failed (a callback raised, a
        cancellation): interrupt it, deliver nothing more, remember why."""
        if self.abort_reason is None:
            self.abort_reason = reason
        if self.state == RUNNING:
            return self._interrupt(now)
        return []

    @property
    def wants_write(self) -> bool:
        return self._sent < len(self.outgoing)

    def to_send(self) -> bytes:
        """The next chunk of bytes for the worker; report progress to :meth:`sent`."""
        return bytes(self.outgoing[self._sent:self._sent + SEND_CHUNK])

    def sent(self, count: int) -> None:
        self._sent += count
        if self._sent >= len(self.outgoing):
            self.outgoing.clear()
            self._sent = 0

    def cannot_send(self) -> None:
        """The channel is broken (the worker died): drop what was left to send."""
        self.outgoing.clear()
        self._sent = 0

    def answer_input(self, value: Optional[str], interrupt: bool = False) -> None:
        """Answer the oldest unanswered ``input`` event: a line, None for EOF,
        or (``interrupt``) KeyboardInterrupt raised by the code's input()."""
        number = self._asked.popleft() if self._asked else -1
        reply: Dict[str, object] = {"t": "input_reply", "n": number}
        if interrupt:
            reply["interrupt"] = True
        elif value is None:
            reply["eof"] = True
        else:
            reply["value"] = value
        self.outgoing += protocol.encode(reply)

    @property
    def wants_stdin(self) -> bool:
        """The driver should read ``stdin_fd`` and pass what it reads to
        :meth:`feed_stdin`: the worker asked for more and everything sent
        before has gone (so the parent holds at most one chunk)."""
        return (self._stdin_credit and not self._stdin_ended and self.state == RUNNING
                and not self.wants_write)

    def feed_stdin(self, data: bytes) -> None:
        """The next bytes of the run's stdin (b"": end of file), for the worker."""
        self._stdin_credit = False
        if data:
            message: Dict[str, object] = {"t": "stdin", "d": base64.b64encode(data).decode("ascii")}
        else:
            message = {"t": "stdin", "eof": True}
            self._stdin_ended = True
        self.outgoing += protocol.encode(message)

    def wakeup_at(self) -> Optional[float]:
        """When the driver must call :meth:`on_timer` if no bytes come first."""
        times = [b.since + PARTIAL_LINE_DELAY for b in self._lines.values() if b.since is not None]
        if self.state == RUNNING and self.deadline is not None:
            times.append(self.deadline)
        if self.kill_at is not None:  # also once done: callbacks behind then stop (see on_timer)
            times.append(self.kill_at)
        return min(times) if times else None

    # -- outputs -----------------------------------------------------------

    @property
    def delivering(self) -> bool:
        """Whether events should still reach the user's callbacks: not after
        the caller aborted, nor once a timeout's grace period is over."""
        return self.abort_reason is None and not self.overdue

    def result(self) -> ExecutionResult:
        """What the run produced so far, as an ExecutionResult."""
        return ExecutionResult(
            stdout=self._capture["stdout"].text(),
            stderr=self._capture["stderr"].text(),
            error=self.error,
            results=self._kept_results(),
            execution_count=self.execution_count,
            truncated=bool(any(capture.dropped for capture in self._capture.values())
                           or self._results_dropped or self._unlisted[0] or self._dropped_between),
        )

    # -- internals ---------------------------------------------------------

    def _interrupt(self, now: float) -> List[str]:
        self.state = INTERRUPTING
        self.kill_at = now + self.grace
        if not self.conn.ready:  # SIGINT would kill a Python still starting: wait for 'ready'
            self._interrupt_when_ready = True
            return []
        return [INTERRUPT]

    def _violation(self, error: protocol.ProtocolError) -> List[Item]:
        """The worker sent garbage or a frame impossible in this state: the
        run ends (LOST) and the worker must be killed."""
        if self.finished:
            return []
        self.protocol_error = error
        return self._end(LOST) + [KILL]

    def _end(self, state: str) -> List[Item]:
        self.state = state
        if self._deferred_dropped:
            self._deferred.append({"t": "out", "s": "stderr", "lost": self._deferred_dropped,
                                   "d": BETWEEN_RUNS_DROPPED % (self._deferred_dropped, self.max_output)})
            self._deferred_dropped = 0
        if self._deferred:
            self.conn.pending.extendleft(reversed(self._deferred))
            self._deferred = []
        items: List[Item] = []
        for name, buffer in self._lines.items():
            items.extend(self._deliver(name, buffer.flush()))
        return items

    def _output(self, name: str, text: str, now: float) -> List[Item]:
        self._capture[name].add(text)
        buffer = self._lines.get(name)
        return self._deliver(name, buffer.feed(text, now)) if buffer is not None else []

    @staticmethod
    def _deliver(name: str, lines: List[str]) -> List[Item]:
        return [(name, OutputMessage(line)) for line in lines]

    def _process(self, now: float) -> List[Item]:
        items: List[Item] = []
        pending = self.conn.pending
        while pending and not self.finished:
            message = pending.popleft()
            kind = message["t"]
            if kind in ("out", "result") and self.is_completion:
                self._defer(message)  # output between runs belongs to the next run
            elif kind == "out":
                self._dropped_between += message.get("lost", 0)
                items.extend(self._output(message["s"], message["d"], now))
            elif kind == "result":
                items.append(("result", self._keep(message["data"], message["main"])))
            elif kind == "input":
                self._asked.append(message["n"])
                items.append(("input", message["prompt"]))
            elif kind in ("done", "completions", "started") and message["re"] != self.id:
                items.extend(self._violation(protocol.ProtocolError(
                    "%r frame names command %r, not the one in progress" % (kind, message["re"]))))
            elif kind == "done" and not self.is_completion:
                self.execution_count = message["count"]
                items.extend(self._end(DONE))
                error = message["error"]
                if error is not None:
                    self.error = ExecutionError(error["name"], error["value"], error["traceback"])
                    items.append(("error", self.error))
            elif kind == "completions" and self.is_completion:
                self.matches = message["matches"]
                items.extend(self._end(DONE))
            elif kind == "started":
                # The worker got a SIGINT before this run began: if it was ours, it was lost.
                if self.state == INTERRUPTING or self.interrupt_requested:
                    items.append(INTERRUPT)
            elif kind == "fatal":
                self.fatal = message["message"]
                errno = message.get("cwd_errno")
                if isinstance(errno, int) and not isinstance(errno, bool):
                    self.fatal_errno = errno
            elif kind == "stdin_more" and self.stdin_fd is not None:
                self._stdin_credit = True
            elif kind == "ready":
                self.conn.ready = True
                if self._interrupt_when_ready or self.interrupt_requested:
                    self._interrupt_when_ready = False
                    items.append(INTERRUPT)
            else:
                items.extend(self._violation(protocol.ProtocolError(
                    "%r frame during a %s" % (kind, "completion" if self.is_completion else "run"))))
        return items

    def _keep(self, bundle: Message, main: bool) -> Result:
        """The Result for ``bundle`` (whole, for on_result); keep it in the
        run's results, or, once the results kept would pass ``max_output``
        characters, keep it cut as the worker cuts (largest formats first,
        text/plain last) or a stand-in; past MAX_KEPT_RESULTS results, only
        count it."""
        result = Result.from_bundle(bundle, main)
        if self.max_output is None:
            self.results.append(result)
            return result
        size = _bundle_size(bundle)
        if len(self.results) >= MAX_KEPT_RESULTS:
            self._unlisted[0] += 1
            self._unlisted[1] += size
            self._unlisted[2] += bool(main)
            return result
        kept, room = result, self.max_output - self._results_size
        if size > room:
            self._results_dropped += 1
            cut = fit_bundle(dict(bundle), max(room, 0))
            cut_size = _bundle_size(cut)
            if cut_size <= room and set(cut) - {DROPPED_KEY}:
                kept, size = Result.from_bundle(cut, main), cut_size
            else:
                kept, size = Result(text=RESULT_DROPPED % (size, self.max_output), is_main_result=main), 0
        self._results_size += size
        self.results.append(kept)
        return result

    def _kept_results(self) -> List[Result]:
        count, size, main = self._unlisted
        if not count:
            return list(self.results)
        summary = Result(text=RESULTS_NOT_LISTED % (count, size, MAX_KEPT_RESULTS), is_main_result=main > 0)
        return self.results + [summary]

    def _defer(self, message: Message) -> None:
        """Hold output that comes during a completion for the next run, up to
        ``max_output`` characters; count what does not fit."""
        size = len(message["d"]) if message["t"] == "out" else _bundle_size(message["data"])
        if self.max_output is not None and self._deferred_size + size > self.max_output:
            self._deferred_dropped += size
        else:
            self._deferred_size += size
            self._deferred.append(message)


def _bundle_size(bundle: Message) -> int:
    """Characters a MIME bundle holds (what a result costs to keep)."""
    return sum(len(key) + (len(value) if isinstance(value, str) else len(json.dumps(value)))
               for key, value in bundle.items())
