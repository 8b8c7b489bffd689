"""MCP front end: ``python -m interp mcp``.

A Model Context Protocol server over stdio: newline-delimited JSON-RPC 2.0
messages on stdin and stdout (revision 2025-06-18; 2025-03-26 and 2024-11-05
when the client asks for them). It gives a model a stateful Python
interpreter through six tools: ``run_code``, ``create_context``,
``list_contexts``, ``delete_context``, ``restart_context`` and
``interrupt``, all over one shared :class:`~interp.CodeInterpreter`.

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
import itertools
import json
import os
import signal
import sys
import threading
from typing import Any, BinaryIO, Callable, Deque, Dict, List, Optional, Tuple

from . import __version__
from .api import CodeInterpreter
from .errors import ContextRestartedError, InterpError, InterpTimeoutError, WorkerDiedError
from .engine import DEFAULT_CONTEXT_ID, run_command
from .frontend import context_json
from .sandbox import add_arguments as sandbox_arguments
from .sandbox import from_arguments as sandbox_from
from .types import ExecutionResult, OutputMessage

#: Protocol revisions this server speaks, newest first.
PROTOCOL_VERSIONS = ("2025-06-18", "2025-03-26", "2024-11-05")
LATEST_PROTOCOL_VERSION = PROTOCOL_VERSIONS[0]
#: Largest message (one line) accepted, in bytes; a longer line gets -32700
#: and is skipped up to its end.
MAX_MESSAGE = 16 * 1024 * 1024
#: Messages in one batch; a longer batch gets -32600 (and no other reply).
MAX_BATCH = 10_000
#: Tool calls handled at once; a call beyond this gets SERVER_BUSY at once.
MAX_IN_FLIGHT = 256
#: Bytes of messages that may wait for a client slow to read its stdout;
#: beyond this, progress notifications are dropped and reading pauses.
MAX_BACKLOG = 32 * 1024 * 1024

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_BUSY = -32000

_CONTEXT_ID = {"type": "string",
               "description": "Id of a context from create_context; omit (or 'default') for the default context."}

TOOLS: List[Dict[str, Any]] = [
    {
        "name": "run_code",
        "title": "Run Python code",
        "description": (
            "Run Python code in a stateful interpreter context and return its output. Variables, "
            "imports and functions persist between calls on the same context. The value of the "
            "last expression is returned as the result (like a notebook cell); PNG images (e.g. "
            "matplotlib figures after plt.show()) come back as images. stdout, stderr, the result "
            "and the traceback of an uncaught exception are labelled in the output. input() gets EOF."),
        "inputSchema": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "The Python code to run."},
                "context_id": _CONTEXT_ID,
                "timeout": {"type": "number", "minimum": 0,
                            "description": "Seconds before the run is interrupted (0: no limit; default 600)."},
            },
            "required": ["code"],
            "additionalProperties": False,
        },
    },
    {
        "name": "create_context",
        "title": "Create an interpreter context",
        "description": "Start a new, isolated Python context (its own process and variables) and return its id.",
        "inputSchema": {
            "type": "object",
            "properties": {"cwd": {"type": "string", "description": "Working directory of the context."}},
            "additionalProperties": False,
        },
    },
    {
        "name": "list_contexts",
        "title": "List interpreter contexts",
        "description": "List the contexts made by create_context (the default context is not listed).",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
    },
    {
        "name": "delete_context",
        "title": "Delete an interpreter context",
        "description": "Stop a context's process and every process it started; its id becomes invalid.",
        "inputSchema": {
            "type": "object",
            "properties": {"context_id": {"type": "string", "description": "Id of the context to delete."}},
            "required": ["context_id"],
            "additionalProperties": False,
        },
    },
    {
        "name": "restart_context",
        "title": "Restart an interpreter context",
        "description": "Replace a context's process with a fresh one (same id and directory); all its state is lost.",
        "inputSchema": {"type": "object", "properties": {"context_id": _CONTEXT_ID},
                        "additionalProperties": False},
    },
    {
        "name": "interrupt",
        "title": "Interrupt running code",
        "description": ("Raise KeyboardInterrupt in the code running in a context (no effect when it is "
                        "idle); state is kept."),
        "inputSchema": {"type": "object", "properties": {"context_id": _CONTEXT_ID},
                        "additionalProperties": False},
    },
]
_TOOLS_BY_NAME = {tool["name"]: tool for tool in TOOLS}


class RPCError(Exception):
    """A JSON-RPC error response."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class _Request:
    """A tool call in flight; setting ``cancel`` (notifications/cancelled)
    stops its run and its response."""

    def __init__(self, request_id: Any) -> None:
        self.id = request_id
        self.cancel = threading.Event()
        #: Set once a run_code call has its place in its context's line (or
        #: failed before); the reader waits for it before taking the next
        #: message, so runs on a context go in arrival order.
        self.started = threading.Event()


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

    ``default_timeout`` is the timeout of ``run_code`` calls that give
    none (None: the interpreter's default, 600 s). ``outfile`` must be
    blocking; an unbuffered one (``buffering=0``) is best, so that a writer
    blocked on a client that does not read holds no lock at exit.
    :meth:`serve` returns after end of input once every request read has
    been answered; the interpreter is the caller's to close.
    """

    def __init__(self, interpreter: CodeInterpreter, infile: BinaryIO, outfile: BinaryIO, *,
                 default_timeout: Optional[float] = None) -> None:
        self.interpreter = interpreter
        self._in = infile
        self._out = outfile
        self._outbox: Optional[_Outbox] = None
        self._requests_lock = threading.Lock()
        self._requests: Dict[str, _Request] = {}
        self._in_flight = 0  # tool calls not yet answered (cancelled ones until they end)
        self._settled = threading.Condition(self._requests_lock)
        self.default_timeout = default_timeout
        self.protocol_version = LATEST_PROTOCOL_VERSION
        self.client_info: Optional[Dict[str, Any]] = None

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
        with self._settled:
            while self._in_flight:
                self._settled.wait()
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
            self._handle(message, self._send)

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
        replies: List[Any] = []
        expected: List[Optional[int]] = [None]  # known once every message was handled
        lock = threading.Lock()

        def send_if_complete() -> None:  # with lock held
            if expected[0] is not None and expected[0] == len(replies) and replies:
                self._send(list(replies))

        def collect(reply: Dict[str, Any]) -> None:
            with lock:
                replies.append(reply)
                send_if_complete()

        count = sum(1 for message in batch if self._handle(message, collect))
        with lock:
            expected[0] = count
            send_if_complete()  # a batch of notifications gets no reply at all

    def _handle(self, message: Any, reply: Callable[[Any], None]) -> bool:
        """Handle one message; a request is answered through ``reply``, now
        or later from another thread. Returns whether a reply comes."""
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            reply(_error(None, RPCError(INVALID_REQUEST, "not a JSON-RPC 2.0 message")))
            return True
        method = message.get("method")
        if method is None:
            if "result" in message or "error" in message:
                return False  # a response: this server sends no requests, ignore it
            reply(_error(message.get("id"), RPCError(INVALID_REQUEST, "no method")))
            return True
        if "id" not in message:
            self._notification(method, message.get("params"))
            return False
        request_id = message["id"]
        if isinstance(request_id, bool) or not isinstance(request_id, (str, int)):
            reply(_error(None, RPCError(INVALID_REQUEST, "the id must be a string or an integer")))
            return True
        try:
            if not isinstance(method, str):
                raise RPCError(INVALID_REQUEST, "the method must be a string")
            params = message.get("params", {})
            if not isinstance(params, dict):
                raise RPCError(INVALID_PARAMS, "params must be an object")
            if method == "tools/call":
                self._start_tool_call(request_id, params, reply)
                return True
            handler = self._methods().get(method)
            if handler is None:
                raise RPCError(METHOD_NOT_FOUND, "method not found: %s" % method)
            result = handler(params)
        except RPCError as exc:
            reply(_error(request_id, exc))
        else:
            reply({"jsonrpc": "2.0", "id": request_id, "result": result})
        return True

    def _methods(self) -> Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]]:
        return {"initialize": self._initialize, "ping": lambda params: {},
                "tools/list": self._tools_list}

    def _notification(self, method: Any, params: Any) -> None:
        if method == "notifications/cancelled" and isinstance(params, dict):
            self._cancel(params.get("requestId"))
        # notifications/initialized and anything unknown: nothing to do (no reply to notifications)

    # -- lifecycle and listing -----------------------------------------------------

    def _initialize(self, params: Dict[str, Any]) -> Dict[str, Any]:
        requested = params.get("protocolVersion")
        if not isinstance(requested, str):
            raise RPCError(INVALID_PARAMS, "initialize needs a protocolVersion string")
        self.protocol_version = requested if requested in PROTOCOL_VERSIONS else LATEST_PROTOCOL_VERSION
        info = params.get("clientInfo")
        self.client_info = info if isinstance(info, dict) else None
        return {
            "protocolVersion": self.protocol_version,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "interp", "title": "interp Python interpreter", "version": __version__},
            "instructions": ("Stateful Python interpreter: run_code keeps variables between calls. "
                             "Use create_context for an isolated namespace (and a working directory)."),
        }

    def _tools_list(self, params: Dict[str, Any]) -> Dict[str, Any]:
        if self.protocol_version >= "2025-06-18":
            return {"tools": TOOLS}
        return {"tools": [{k: v for k, v in tool.items() if k != "title"} for tool in TOOLS]}

    # -- tools ------------------------------------------------------------------------

    def _start_tool_call(self, request_id: Any, params: Dict[str, Any], reply: Callable[[Any], None]) -> None:
        name = params.get("name")
        if not isinstance(name, str) or name not in _TOOLS_BY_NAME:
            raise RPCError(INVALID_PARAMS, "unknown tool: %r (tools: %s)" % (name, ", ".join(_TOOLS_BY_NAME)))
        arguments = params.get("arguments", {})
        if arguments is None:
            arguments = {}
        problem = check_schema(arguments, _TOOLS_BY_NAME[name]["inputSchema"], "arguments")
        if problem:
            raise RPCError(INVALID_PARAMS, "invalid arguments for %s: %s" % (name, problem))
        meta = params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        if isinstance(token, bool) or not isinstance(token, (str, int, type(None))):
            raise RPCError(INVALID_PARAMS, "progressToken must be a string or an integer")
        request = _Request(request_id)
        key = json.dumps(request_id)
        with self._requests_lock:
            if key in self._requests:
                raise RPCError(INVALID_REQUEST, "request id %s is already in use" % key)
            if self._in_flight >= MAX_IN_FLIGHT:
                raise RPCError(SERVER_BUSY, "server busy: %d tool calls are in progress (the limit); "
                                            "retry when some have been answered" % MAX_IN_FLIGHT)
            self._requests[key] = request
            self._in_flight += 1
        try:
            threading.Thread(target=self._call_tool, args=(request, name, arguments, token, reply),
                             daemon=True, name="interp-mcp-%s" % name).start()
        except RuntimeError as exc:  # "can't start new thread"
            with self._requests_lock:
                self._requests.pop(key, None)
            self._settle()
            raise RPCError(SERVER_BUSY, "server busy: %s" % exc) from None
        if name == "run_code":
            request.started.wait()

    def _settle(self) -> None:
        """A tool call ended (answered, or not when it was cancelled)."""
        with self._settled:
            self._in_flight -= 1
            self._settled.notify_all()

    def _call_tool(self, request: _Request, name: str, arguments: Dict[str, Any], token: Any,
                   reply: Callable[[Any], None]) -> None:
        try:
            if name == "run_code":
                result = self._run_code(request, arguments, token)
            else:
                result = self._context_tool(name, arguments)
            if self.protocol_version < "2025-06-18":  # structured content came with 2025-06-18
                result.pop("structuredContent", None)
            message: Dict[str, Any] = {"jsonrpc": "2.0", "id": request.id, "result": result}
        except Exception as exc:  # a bug here must not kill the server or leave the client waiting
            message = _error(request.id, RPCError(INTERNAL_ERROR, "%s: %s" % (type(exc).__name__, exc)))
        finally:
            request.started.set()
        with self._requests_lock:
            self._requests.pop(json.dumps(request.id), None)
        try:
            if not request.cancel.is_set():
                reply(message)
        finally:
            self._settle()

    def _run_code(self, request: _Request, arguments: Dict[str, Any], token: Any) -> Dict[str, Any]:
        progress = itertools.count(1)  # callbacks run in order on this thread

        def stream(prefix: str) -> Optional[Callable[[OutputMessage], None]]:
            def on_line(message: OutputMessage) -> None:
                if not request.cancel.is_set():
                    self._send({"jsonrpc": "2.0", "method": "notifications/progress",
                                "params": {"progressToken": token, "progress": next(progress),
                                           "message": prefix + message.output.rstrip("\n")}},
                               optional=True)
            return None if token is None else on_line

        callbacks = {"stdout": stream(""), "stderr": stream("[stderr] ")}
        try:
            command, seconds = run_command(arguments["code"], callbacks=callbacks,
                                           timeout=arguments.get("timeout", self.default_timeout))
            # The reader takes the next message once this run has its place in
            # the context's line: runs on a context go in arrival order.
            result = self.interpreter._submit(arguments.get("context_id"), command, seconds, callbacks,
                                              request.cancel, queued=request.started.set)
        except InterpTimeoutError as exc:
            return run_code_result(exc.result, "[timeout]\n" + str(exc))
        except (WorkerDiedError, ContextRestartedError) as exc:
            return run_code_result(exc.result, "[%s]\n%s" % (type(exc).__name__, exc))
        except (InterpError, TypeError, ValueError) as exc:
            return tool_error("%s: %s" % (type(exc).__name__, exc))  # RunCancelledError: not sent
        return run_code_result(result)

    def _context_tool(self, name: str, arguments: Dict[str, Any]) -> Dict[str, Any]:
        interpreter = self.interpreter
        try:
            if name == "create_context":
                context = interpreter.create_context(cwd=arguments.get("cwd"))
                return json_result({"context": context_json(context)})
            if name == "list_contexts":
                return json_result({"contexts": [context_json(c) for c in interpreter.list_contexts()]})
            context_id = arguments.get("context_id")
            if name == "delete_context":
                if context_id in (None, DEFAULT_CONTEXT_ID):
                    return tool_error("the default context cannot be deleted (use restart_context)")
                interpreter.delete_context(context_id)
                return json_result({"deleted": context_id})
            if name == "restart_context":
                context = interpreter.restart_context(context_id)
                return json_result({"context": context_json(context)})
            interpreter.interrupt(context_id)
            return json_result({"interrupted": context_id or DEFAULT_CONTEXT_ID})
        except (InterpError, OSError, TypeError, ValueError) as exc:
            return tool_error("%s: %s" % (type(exc).__name__, exc))

    def _cancel(self, request_id: Any) -> None:
        with self._requests_lock:
            request = self._requests.get(json.dumps(request_id))
            if request is not None:  # else finished already, or never seen: nothing to do
                request.cancel.set()  # under the lock: the response is then surely not sent

    # -- writing ------------------------------------------------------------------------

    def _send(self, message: Any, optional: bool = False) -> None:
        """Queue one message for the client; never waits for it. An
        ``optional`` one (a progress notification) is dropped while a slow
        client has more than MAX_BACKLOG bytes to read."""
        try:
            data = json.dumps(message, separators=(",", ":")).encode("ascii")
        except (TypeError, ValueError, RecursionError) as exc:  # a bug: still answer the request
            request_id = message.get("id") if isinstance(message, dict) else None
            error = RPCError(INTERNAL_ERROR, "the reply could not be encoded: %s" % exc)
            data = json.dumps(_error(request_id, error), separators=(",", ":")).encode("ascii")
        if self._outbox is not None:
            self._outbox.put(data + b"\n", optional)

    def _send_error(self, request_id: Any, error: RPCError) -> None:
        self._send(_error(request_id, error))


def _not_json(constant: str) -> Any:
    """json.loads hook: NaN and Infinity are not JSON."""
    raise ValueError("%s is not valid JSON" % constant)


def _error(request_id: Any, error: RPCError) -> Dict[str, Any]:
    body: Dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data is not None:
        body["data"] = error.data
    return {"jsonrpc": "2.0", "id": request_id, "error": body}


def tool_error(text: str) -> Dict[str, Any]:
    """A tool result that reports a failure to the model."""
    return {"content": [{"type": "text", "text": text}], "isError": True}


def json_result(value: Dict[str, Any]) -> Dict[str, Any]:
    """A tool result carrying ``value`` as JSON text and as structured content."""
    return {"content": [{"type": "text", "text": json.dumps(value, indent=2)}], "structuredContent": value,
            "isError": False}


def run_code_result(result: Optional[ExecutionResult], failure: Optional[str] = None) -> Dict[str, Any]:
    """The run_code tool result: one text item with labelled sections
    ([stdout], [stderr], [display], [result], [error], then ``failure``),
    one image item per PNG result; ``isError`` when the code raised or the
    run failed."""
    sections: List[str] = []
    images: List[Dict[str, Any]] = []
    if result is not None:
        if result.stdout:
            sections.append("[stdout]\n" + result.stdout.rstrip("\n"))
        if result.stderr:
            sections.append("[stderr]\n" + result.stderr.rstrip("\n"))
        for item in result.results:
            if item.png is not None:
                images.append({"type": "image", "data": item.png, "mimeType": "image/png"})
            elif item.text is not None:
                sections.append(("[result]\n" if item.is_main_result else "[display]\n") + item.text)
        if result.error is not None:
            sections.append("[error]\n" + result.error.traceback.rstrip("\n"))
    if failure:
        sections.append(failure)
    if not sections and not images:
        sections.append("[no output]")
    content: List[Dict[str, Any]] = [{"type": "text", "text": "\n\n".join(sections)}] if sections else []
    structured: Dict[str, Any] = {
        "stdout": result.stdout if result else "",
        "stderr": result.stderr if result else "",
        "error": None if result is None or result.error is None else
        {"name": result.error.name, "value": result.error.value, "traceback": result.error.traceback},
        "execution_count": result.execution_count if result else 0,
    }
    return {"content": content + images, "structuredContent": structured,
            "isError": bool(failure) or (result is not None and result.error is not None)}


_JSON_TYPES: Dict[str, Tuple[type, ...]] = {"string": (str,), "number": (int, float), "integer": (int,),
                                            "object": (dict,), "array": (list,), "boolean": (bool,)}


def check_schema(value: Any, schema: Dict[str, Any], where: str) -> Optional[str]:
    """Check ``value`` against the subset of JSON Schema the tool schemas
    use (type, properties, required, additionalProperties, minimum); return
    what is wrong, or None."""
    kind = schema.get("type")
    if kind is not None:
        ok = isinstance(value, _JSON_TYPES[kind]) and (kind == "boolean" or not isinstance(value, bool))
        if not ok:
            return "%s must be %s %s" % (where, "an" if kind[0] in "aeiou" else "a", kind)
    if "minimum" in schema and value < schema["minimum"]:
        return "%s must be >= %s" % (where, schema["minimum"])
    if kind == "object":
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                return "%s.%s is required" % (where, name)
        for name, item in value.items():
            if name in properties:
                problem = check_schema(item, properties[name], "%s.%s" % (where, name))
                if problem:
                    return problem
            elif schema.get("additionalProperties") is False:
                return "%s has an unknown property %r (allowed: %s)" % (where, name, ", ".join(properties))
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m interp mcp",
        description="Serve a stateful Python interpreter to an MCP host over stdio.")
    parser.add_argument("--cwd", metavar="DIR", help="working directory of the contexts")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="timeout of run_code calls that give none (default 600; 0: no limit)")
    sandbox_arguments(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``python -m interp mcp``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.timeout is not None and not args.timeout >= 0:
        print("interp mcp: --timeout must be >= 0", file=sys.stderr)
        return 2
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
            MCPServer(interpreter, sys.stdin.buffer, protocol_out, default_timeout=args.timeout).serve()
        except KeyboardInterrupt:
            pass
        finally:
            interpreter.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
