"""MCP over stdio: ``python -m interp mcp``.

A Model Context Protocol server over stdio: newline-delimited JSON-RPC 2.0
messages on stdin and stdout. Both eras of the protocol are served: the
stateless revision 2026-07-28 (each request names its revision in
``_meta``; ``server/discover``) and, after an ``initialize`` handshake,
2025-11-25, 2025-06-18, 2025-03-26 and 2024-11-05 (see
:mod:`interp.mcp.core`; the Streamable HTTP transport is
:mod:`interp.mcp.http`). It gives a model a stateful Python interpreter
through six tools: ``run_code``, ``create_context``, ``list_contexts``,
``delete_context``, ``restart_context`` and ``interrupt``, all over one
shared :class:`~interp.CodeInterpreter`.

Requests are handled on their own threads (a long run in one context does
not block a call on another); responses and notifications are written one
JSON object per line under a lock. With a ``progressToken``, each output
line of ``run_code`` is also sent as ``notifications/progress``;
``notifications/cancelled`` cancels that run (``run_code(cancel=...)``: it
is interrupted, or dropped if it is still waiting for its turn on the
context) and no response is sent.
At end of input the requests already read are answered (each run within its
own timeout), then the server ends and closes the interpreter (every worker
is killed); SIGTERM ends it at once. Nothing else may write to the real
stdout: ``main`` points fd 1 and ``sys.stdout`` at stderr and keeps a
private copy of the original for the protocol.

No input can stop the server from answering: a line longer than
:data:`MAX_MESSAGE` bytes, invalid UTF-8, invalid JSON or JSON nested deeper
than Python's recursion limit gets error -32700 and the next line is read.
One thread writes every message, so a client that is slow to read never
holds up a run (its timeout holds); while more than :data:`MAX_BACKLOG`
bytes wait for such a client, progress notifications are dropped and no
further message is read. A batch holds at most :data:`MAX_BATCH` messages.
At most :data:`MAX_IN_FLIGHT` tool calls are handled at once; more get
error -32000 at once.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sys
import threading
from typing import Any, BinaryIO, Callable, Deque, List, Optional, Tuple

from .calls import MAX_IN_FLIGHT
from .core import MCPCore, Session
from .rpc import (INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, SERVER_BUSY,
                  RPCError, error_message)
from .tools import (DEFAULT_OUTPUT_LIMIT, MAX_OUTPUT_LIMIT, SUPPORTED_VERSIONS, check_schema, run_code_result,
                         tool_error)
from ..api import CodeInterpreter
from ..errors import InterpError
from .._options import Parser, add_timeout, program
from ..sandbox import add_arguments as sandbox_arguments
from ..sandbox import from_arguments as sandbox_from

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "MAX_BACKLOG",
    "MAX_BATCH",
    "MAX_IN_FLIGHT",
    "MAX_MESSAGE",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "PROTOCOL_VERSIONS",
    "SERVER_BUSY",
    "MCPCore",
    "MCPServer",
    "RPCError",
    "check_schema",
    "main",
    "run_code_result",
    "tool_error",
]

#: Largest message (one line) accepted, in bytes; a longer line gets -32700
#: and is skipped up to its end.
MAX_MESSAGE = 16 * 1024 * 1024
#: Messages in one batch; a longer batch gets -32600 (and no other reply).
MAX_BATCH = 10_000
#: Bytes of messages that may wait for a client slow to read its stdout;
#: beyond this, progress notifications are dropped and reading pauses.
MAX_BACKLOG = 32 * 1024 * 1024
#: Revisions this server speaks, newest first (the first is stateless).
PROTOCOL_VERSIONS = SUPPORTED_VERSIONS
LATEST_PROTOCOL_VERSION = SUPPORTED_VERSIONS[0]


class _Outbox:
    """The messages for the client, written in order by one thread, so that
    no caller ever waits for a client that is slow to read.

    ``out`` must be a blocking stream; a partial write (a raw stream) is
    completed. Once a write fails (the client closed its end), everything
    is dropped.
    """

    def __init__(self, out: BinaryIO, limit: int) -> None:
        self._out = out
        self._limit = limit
        self._queue: Deque[bytes] = collections.deque()
        self._backlog = 0  # bytes queued or being written
        self._gone = False
        self._closing = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._write_queued, daemon=True, name="interp-mcp-writer")
        self._thread.start()

    def put(self, data: bytes, optional: bool = False) -> None:
        """Queue ``data`` for writing; never blocks. An ``optional`` message
        (a progress notification) is dropped while the backlog is over the limit."""
        with self._changed:
            if self._gone or (optional and self._backlog >= self._limit):
                return
            self._queue.append(data)
            self._backlog += len(data)
            self._changed.notify_all()

    def wait_for_room(self) -> None:
        """Return once the backlog is under the limit (or the client is gone)."""
        with self._changed:
            while self._backlog >= self._limit and not self._gone:
                self._changed.wait()

    def close(self) -> None:
        """Write everything queued, then stop the writer (``out`` stays open).
        Waits as long as the client takes to read it."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join()

    def _write_queued(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._closing:
                    self._changed.wait()
                if not self._queue:
                    return
                data = b"".join(self._queue)  # one write for a burst of small messages
                self._queue.clear()
            try:
                view = memoryview(data)
                while view:
                    written = self._out.write(view)
                    view = view[len(view) if written is None else written:]
                self._out.flush()
            except (OSError, ValueError):  # the client closed its end: nobody will read
                with self._changed:
                    self._gone = True
                    self._queue.clear()
                    self._backlog = 0
                    self._changed.notify_all()
                return
            with self._changed:
                self._backlog -= len(data)
                self._changed.notify_all()


class MCPServer:
    """An MCP server over a pair of byte streams (stdin / stdout for stdio).

    Both eras are served (see :mod:`interp.mcp.core`): the process is the
    handshake era's session. ``default_timeout`` is the timeout of
    ``run_code`` calls that give none (None: the interpreter's default, 600
    s); ``output_limit`` the characters of each output part a result gives
    the model (0: no limit). ``outfile`` must be blocking; an unbuffered one
    (``buffering=0``) is best, so that a writer blocked on a client that
    does not read holds no lock at exit. :meth:`serve` returns after end of
    input once every request read has been answered; the interpreter is the
    caller's to close. The context tools see the contexts made through this
    server (a table of its own), not those made on the interpreter directly.
    """

    def __init__(self, interpreter: CodeInterpreter, infile: BinaryIO, outfile: BinaryIO, *,
                 default_timeout: Optional[float] = None, output_limit: int = DEFAULT_OUTPUT_LIMIT,
                 task_after: float = 1.0) -> None:
        self.core = MCPCore(interpreter, default_timeout=default_timeout, output_limit=output_limit,
                            task_after=task_after)
        self.interpreter = interpreter
        self.session = Session("")
        self._in = infile
        self._out = outfile
        self._outbox: Optional[_Outbox] = None

    # -- reading ---------------------------------------------------------------

    def serve(self) -> None:
        """Read and handle messages until end of input, then wait until
        every request read has been answered (each run within its own
        timeout) and written, and return."""
        self._outbox = _Outbox(self._out, MAX_BACKLOG)
        while True:
            self._outbox.wait_for_room()
            try:
                line = self._in.readline(MAX_MESSAGE + 1)
                if len(line) > MAX_MESSAGE and not line.endswith(b"\n"):
                    self._discard_rest_of_line()
                    self._send_error(None, RPCError(PARSE_ERROR, "message longer than %d bytes (the limit); "
                                                    "it was skipped" % MAX_MESSAGE))
                    continue
            except (OSError, ValueError):  # stdin broke or was closed: as end of input
                break
            if not line:
                break
            try:
                self._receive(line)
            except Exception as exc:  # a bug must not stop the server
                self._send_error(None, RPCError(INTERNAL_ERROR, "%s: %s" % (type(exc).__name__, exc)))
        self.core.wait_idle()
        self._outbox.close()

    def _receive(self, line: bytes) -> None:
        """Parse and handle one line."""
        if not line.strip():
            return
        try:
            message = json.loads(line.decode("utf-8"), parse_constant=_not_json)
        except (UnicodeDecodeError, ValueError) as exc:
            self._send_error(None, RPCError(PARSE_ERROR, "parse error: %s" % exc))
            return
        except RecursionError:
            self._send_error(None, RPCError(PARSE_ERROR, "parse error: JSON nested too deeply"))
            return
        if isinstance(message, list):  # a batch (2025-03-26 and older)
            self._handle_batch(message)
        else:
            self.core.handle(message, self.session, self._send, self._notify)

    def _discard_rest_of_line(self) -> None:
        while True:
            chunk = self._in.readline(MAX_MESSAGE)
            if not chunk or chunk.endswith(b"\n"):
                return

    def _handle_batch(self, batch: List[Any]) -> None:
        if not batch or len(batch) > MAX_BATCH:
            self._send_error(None, RPCError(INVALID_REQUEST, "a batch must hold 1 to %d messages, not %d"
                                            % (MAX_BATCH, len(batch))))
            return
        collect, count_known = batch_collector(self._send)
        count_known(sum(1 for message in batch if self.core.handle(message, self.session, collect, self._notify)))

    # -- writing ------------------------------------------------------------------------

    def _send(self, message: Any) -> None:
        """Queue one message for the client; never waits for it (None: a
        cancelled request's answer, which is no message)."""
        if self._outbox is not None and message is not None:
            self._outbox.put(encode(message) + b"\n")

    def _notify(self, message: Any) -> None:
        """A progress notification: dropped while a slow client has more
        than MAX_BACKLOG bytes to read."""
        if self._outbox is not None:
            self._outbox.put(encode(message) + b"\n", optional=True)

    def _send_error(self, request_id: Any, error: RPCError) -> None:
        self._send(error_message(request_id, error))


def batch_collector(send: Callable[[Any], None]) -> Tuple[Callable[[Any], None], Callable[[int], None]]:
    """For a batch: a ``reply`` that gathers the replies, and a function
    taking how many replies come; the batch's one reply (a list) is sent
    once all are in. A cancelled member's reply is None: it counts, but is
    not in the list. A batch of notifications (or of cancelled requests
    only) gets no reply at all."""
    replies: List[Any] = []
    expected: List[Optional[int]] = [None]
    lock = threading.Lock()

    def send_if_complete() -> None:  # with lock held
        answers = [reply for reply in replies if reply is not None]
        if expected[0] is not None and expected[0] == len(replies) and answers:
            send(answers)

    def collect(reply: Any) -> None:
        with lock:
            replies.append(reply)
            send_if_complete()

    def count_known(count: int) -> None:
        with lock:
            expected[0] = count
            send_if_complete()
    return collect, count_known


def encode(message: Any) -> bytes:
    """A message as compact ASCII JSON; one that cannot be encoded (a bug)
    becomes an internal error that still answers its request."""
    try:
        return json.dumps(message, separators=(",", ":")).encode("ascii")
    except (TypeError, ValueError, RecursionError) as exc:
        request_id = message.get("id") if isinstance(message, dict) else None
        error = RPCError(INTERNAL_ERROR, "the reply could not be encoded: %s" % exc)
        return json.dumps(error_message(request_id, error), separators=(",", ":")).encode("ascii")


def _not_json(constant: str) -> Any:
    """json.loads hook: NaN and Infinity are not JSON."""
    raise ValueError("%s is not valid JSON" % constant)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=program() + " mcp",
        description="Serve a stateful Python interpreter to an MCP host over stdio.")
    parser.add_argument("--cwd", metavar="DIR", help="working directory of the contexts")
    add_timeout(parser, "run_code calls that give no timeout")
    add_output_arguments(parser)
    sandbox_arguments(parser)
    return parser


def add_output_arguments(parser: Any) -> None:
    """The MCP options shared by ``mcp`` and ``serve`` (``parser``: an
    ArgumentParser or one of its argument groups)."""
    parser.add_argument("--output-limit", type=int, default=DEFAULT_OUTPUT_LIMIT, metavar="CHARS",
                        help="characters of each output part (stdout, stderr, a result, a traceback) a "
                             "run_code result gives the model; the middle of longer output is cut, keeping "
                             "head and tail (default %(default)s; 0: no limit; a call's output_limit may "
                             "lower it, never lift it)")
    parser.add_argument("--task-after", type=float, default=1.0, metavar="SECONDS",
                        help="answer a run_code call still running after this long with a task the client "
                             "polls, for 2026-07-28 clients that declare the tasks extension (default %(default)g)")


def check_output_arguments(args: argparse.Namespace) -> Optional[str]:
    """What is wrong with the MCP options, or None."""
    if not 0 <= args.output_limit <= MAX_OUTPUT_LIMIT:
        return "--output-limit must be from 0 to %d" % MAX_OUTPUT_LIMIT
    if not args.task_after >= 0:
        return "--task-after must be >= 0"
    return None


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``python -m interp mcp``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    problem = check_output_arguments(args)
    if problem:
        parser.error(problem)
    sandbox = sandbox_from(parser, args)
    # The protocol owns the real stdout: keep a private copy and send fd 1
    # (and sys.stdout) to stderr so that nothing else can corrupt it. The
    # copy is unbuffered: a write blocked on a client that does not read
    # then holds no lock that exit would wait for.
    sys.stdout.flush()
    with os.fdopen(os.dup(1), "wb", buffering=0) as protocol_out:
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        try:
            interpreter = CodeInterpreter(cwd=args.cwd, sandbox=sandbox)
        except InterpError as exc:
            print("interp mcp: %s" % exc, file=sys.stderr)
            return 2
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        try:
            MCPServer(interpreter, sys.stdin.buffer, protocol_out, default_timeout=args.timeout,
                      output_limit=args.output_limit, task_after=args.task_after).serve()
        except KeyboardInterrupt:
            pass
        finally:
            interpreter.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
