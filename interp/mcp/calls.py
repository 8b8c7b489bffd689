"""Tool calls and ``tasks/result``: requests answered later, once their run
(or their task) ends. Each is written once, as a generator of steps that a
runner performs (interp.mcp.runners): on its own thread for the stdio
server, as a task on the HTTP server's event loop for ``/mcp``."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple, Union

from ..commands import run_command
from ..engine import DEFAULT_CONTEXT_ID
from ..errors import ContextRestartedError, InterpError, InterpTimeoutError, RunCancelledError, WorkerDiedError
from ..frontend import context_json
from ..types import OutputMessage
from .rpc import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, SERVER_BUSY, RPCError, error_message
from .runners import Blocking, Event, LoopRunner, Steps, Submit, ThreadRunner, Wait
from .tasks import Task, TaskTable
from .tools import effective_output_limit, json_result, run_code_result, shape_result, tool_error

if TYPE_CHECKING:
    from ..api import CodeInterpreter
    from ..server.table import ContextTable
    from .core import Exchange
    from .resources import FileResources

#: Tool calls handled at once (task runs included); a call beyond this gets SERVER_BUSY at once.
MAX_IN_FLIGHT = 256

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
RELATED_TASK_KEY = "io.modelcontextprotocol/related-task"


class _Request:
    """A tool call in flight. ``cancel`` stops its run; ``answered`` is set
    once its response went out (or must never go: it was cancelled)."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.cancel = Event()
        #: Set once a run_code call has its place in its context's line (or
        #: failed before); the stdio reader waits for it before taking the
        #: next message, so runs on a context go in arrival order.
        self.started = Event()
        self.lock = threading.Lock()
        self.answered = False
        self.task: Optional[Task] = None


class ToolCalls:
    """MCPCore's tool calls (its base class)."""

    if TYPE_CHECKING:  # what MCPCore provides
        interpreter: CodeInterpreter
        contexts: ContextTable
        files: FileResources
        tasks: TaskTable
        output_limit: int
        default_timeout: Optional[float]
        task_after: float
        _by_name: Dict[str, Dict[str, Any]]
        _lock: threading.Lock
        _settled: threading.Condition
        _requests: Dict[Tuple[str, str], _Request]
        _in_flight: int

        def _find_task(self, exchange: Exchange, params: Dict[str, Any]) -> Task: ...

        def _task_result(self, task: Task) -> Dict[str, Any]: ...

    #: Performs the calls' steps: threads by default; the HTTP server puts a LoopRunner here.
    runner: Union[ThreadRunner, LoopRunner]

    # -- tasks/result (2025-11-25) --------------------------------------------------

    def _start_task_result(self, exchange: Exchange, params: Dict[str, Any]) -> None:
        """2025-11-25 ``tasks/result``: answered once the task ends (other
        messages are served meanwhile)."""
        task = self._find_task(exchange, params)
        self._enter()

        def steps() -> Steps:
            yield Wait(task.done)
            return self._task_result(task)

        def done(result: Any, error: Optional[BaseException]) -> None:
            try:
                if isinstance(error, RPCError):
                    exchange.reply(error_message(exchange.id, error))
                elif error is not None:
                    exchange.reply(error_message(exchange.id, RPCError(INTERNAL_ERROR, "%s: %s"
                                                                      % (type(error).__name__, error))))
                else:
                    exchange.respond(result)
            finally:
                self._settle()
        self._start(steps(), done, "task-result")

    def _enter(self) -> None:
        with self._lock:
            if self._in_flight >= MAX_IN_FLIGHT:
                raise RPCError(SERVER_BUSY, "server busy: %d calls are in progress (the limit)" % MAX_IN_FLIGHT)
            self._in_flight += 1

    def _start(self, steps: Steps, done: Callable[[Any, Optional[BaseException]], None], name: str) -> None:
        try:
            self.runner.start(steps, done, name)
        except RuntimeError as exc:  # "can't start new thread"
            self._settle()
            raise RPCError(SERVER_BUSY, "server busy: %s" % exc) from None

    # -- tool calls ------------------------------------------------------------------

    def _start_tool_call(self, exchange: Exchange, params: Dict[str, Any]) -> None:
        from .tools import check_schema
        name = params.get("name")
        if not isinstance(name, str) or name not in self._by_name:
            raise RPCError(INVALID_PARAMS, "unknown tool: %r (tools: %s)" % (name, ", ".join(self._by_name)))
        arguments = params.get("arguments", {})
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise RPCError(INVALID_PARAMS, "arguments must be an object")
        meta = params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        if isinstance(token, bool) or not isinstance(token, (str, int, type(None))):
            raise RPCError(INVALID_PARAMS, "progressToken must be a string or an integer")
        legacy_task = params.get("task") if exchange.version == "2025-11-25" and not exchange.modern else None
        if legacy_task is not None:
            if name != "run_code":
                raise RPCError(METHOD_NOT_FOUND, "tool %s cannot run as a task (only run_code can)" % name)
            if not isinstance(legacy_task, dict) or not isinstance(legacy_task.get("ttl", 0), (int, type(None))):
                raise RPCError(INVALID_PARAMS, "task must be an object with an optional integer ttl")
        problem = check_schema(arguments, self._by_name[name]["inputSchema"], "arguments")
        if problem:
            message = "invalid arguments for %s: %s" % (name, problem)
            if exchange.version >= "2025-11-25":  # input validation errors are tool execution errors
                exchange.respond(tool_error(message))
                return
            raise RPCError(INVALID_PARAMS, message)
        request = _Request(exchange)
        key = (exchange.session.key, json.dumps(exchange.id))
        wants_task = exchange.modern and name == "run_code" and TASKS_EXTENSION in (
            exchange.capabilities.get("extensions") or {})
        if legacy_task is not None or wants_task:  # before the request is known: nothing can cancel it yet
            request.task = self.tasks.create(exchange.session.key, legacy_task.get("ttl") if legacy_task else None)
            if request.task is None:
                raise RPCError(SERVER_BUSY, "server busy: too many tasks are kept; retry later")
            request.task.cancel = request.cancel
        with self._lock:
            refusal = None
            if key in self._requests:
                refusal = RPCError(INVALID_REQUEST, "request id %s is already in use" % key[1])
            elif self._in_flight >= MAX_IN_FLIGHT:
                refusal = RPCError(SERVER_BUSY, "server busy: %d tool calls are in progress (the limit); "
                                                "retry when some have been answered" % MAX_IN_FLIGHT)
            else:
                self._requests[key] = request
                self._in_flight += 1
        if refusal is not None:
            if request.task is not None:
                self.tasks.drop(request.task)
            raise refusal
        try:
            self.runner.start(self._tool_steps(request, name, arguments, token),
                              lambda result, error: self._conclude(request, key, result, error), name)
        except RuntimeError as exc:  # "can't start new thread"
            self._forget(key)
            self._settle()
            if request.task is not None:
                self.tasks.drop(request.task)
            with request.lock:
                if request.answered:
                    return  # cancelled meanwhile: answered (with None) already
                request.answered = True
            raise RPCError(SERVER_BUSY, "server busy: %s" % exc) from None
        if name == "run_code":
            self.runner.wait_queued(request.started)
        if legacy_task is not None:  # 2025-11-25: the task, at once; the result comes from tasks/result
            self._promote(request, key)
        elif wants_task:
            self.runner.later(self.task_after, lambda: self._promote(request, key))

    def _promote(self, request: _Request, key: Tuple[str, str]) -> None:
        """Answer a call still running with its task (CreateTaskResult)."""
        task = request.task
        assert task is not None
        with request.lock:
            if request.answered:
                return
            request.answered = True
            self._forget(key)  # notifications/cancelled no longer applies: tasks/cancel does
            exchange = request.exchange
            fields = task.fields(exchange.modern)
            if exchange.modern:
                exchange.respond(dict(fields, resultType="task"))
            else:
                exchange.respond({"task": fields, "_meta": {
                    "io.modelcontextprotocol/model-immediate-response":
                        "The code is running as task %s; poll it with tasks/get." % task.id}})

    def _forget(self, key: Tuple[str, str]) -> None:
        with self._lock:
            self._requests.pop(key, None)

    def _settle(self) -> None:
        with self._settled:
            self._in_flight -= 1
            self._settled.notify_all()

    def _tool_steps(self, request: _Request, name: str, arguments: Dict[str, Any], token: Any) -> Steps:
        """The tool call's steps; returns its result, shaped for the client's revision."""
        try:
            if name == "run_code":
                result = yield from self._run_code(request, arguments, token)
            elif name == "write_file":
                result = yield Blocking(self.files.write_file, (arguments,))
            else:
                result = yield from self._context_tool(name, arguments)
        finally:
            request.started.set()
        return shape_result(result, request.exchange.version)

    def _conclude(self, request: _Request, key: Tuple[str, str], result: Optional[Dict[str, Any]],
                  failure: Optional[BaseException]) -> None:
        """Answer a tool call that ended (unless it was cancelled or answered with its task)."""
        exchange = request.exchange
        error = None if failure is None else RPCError(INTERNAL_ERROR, "%s: %s" % (type(failure).__name__, failure))
        self._forget(key)
        try:
            if request.task is not None:
                self.tasks.finish(request.task, result, None if error is None else
                                  error_message(None, error)["error"])
                if not exchange.modern:
                    return  # 2025-11-25: answered with its task, always
            with request.lock:
                if request.answered:
                    return  # cancelled, or answered with its task
                request.answered = True
                if request.task is not None:
                    self.tasks.drop(request.task)  # it ended before it became a task: answer directly
                if error is not None:
                    exchange.reply(error_message(exchange.id, error))
                else:
                    assert result is not None
                    exchange.respond(result)
        finally:
            self._settle()

    def _run_code(self, request: _Request, arguments: Dict[str, Any], token: Any) -> Steps:
        exchange, task = request.exchange, request.task
        limit = effective_output_limit(arguments.get("output_limit"), self.output_limit)
        counter = [0]  # callbacks run in order

        def stream(prefix: str) -> Callable[[OutputMessage], None]:
            def on_line(message: OutputMessage) -> None:
                line = prefix + message.output.rstrip("\n")
                if task is not None:
                    self.tasks.note(task, line)
                if token is None or request.cancel.is_set() or (exchange.modern and request.answered):
                    return  # nobody asked, or the request was answered (with its task)
                counter[0] += 1
                exchange.notify({"jsonrpc": "2.0", "method": "notifications/progress",
                                 "params": {"progressToken": token, "progress": counter[0], "message": line}})
            return on_line

        callbacks = {"stdout": stream(""), "stderr": stream("[stderr] ")} if token is not None or task else {}
        context_id = arguments.get("context_id") or DEFAULT_CONTEXT_ID
        message: Callable[[BaseException], str] = str
        try:
            command, seconds = run_command(arguments["code"], callbacks=callbacks,
                                           timeout=arguments.get("timeout", self.default_timeout))
            with self.contexts.use(context_id) as entry:
                message = self.contexts.speaker(entry, context_id)
                # the reader takes the next message once this run has its place in the context's line
                result = yield Submit(entry.engine_id, command, seconds, callbacks, request.cancel,
                                      request.started.set)
        except InterpTimeoutError as exc:
            state = ("the context was restarted: its variables are lost" if exc.restarted else
                     "the run was interrupted: the context's variables are kept")
            return run_code_result(exc.result, "timeout", "[timeout]\n%s (%s)" % (message(exc), state), limit,
                                   state_kept=not exc.restarted)
        except (WorkerDiedError, ContextRestartedError) as exc:
            outcome = "worker_died" if isinstance(exc, WorkerDiedError) else "restarted"
            return run_code_result(exc.result, outcome, "[%s]\n%s (the context's variables are lost)"
                                   % (type(exc).__name__, message(exc)), limit, state_kept=False)
        except (InterpError, TypeError, ValueError) as exc:  # RunCancelledError: not sent (or a cancelled task)
            kind = "cancelled" if isinstance(exc, RunCancelledError) else type(exc).__name__
            return run_code_result(None, "failed", "[%s]\n%s" % (kind, message(exc)), limit)
        return run_code_result(result, "ok" if result.error is None else "error", None, limit)

    def _context_tool(self, name: str, arguments: Dict[str, Any]) -> Steps:
        """The context tools, through the context table (its limit, its ids)."""
        contexts = self.contexts
        try:
            if name == "create_context":
                context = yield Blocking(contexts.create, (None, arguments.get("cwd")))
                return json_result({"context": context_json(context)})
            if name == "list_contexts":
                return json_result({"contexts": [context_json(c) for c in contexts.list()]})
            context_id = arguments.get("context_id") or DEFAULT_CONTEXT_ID
            if name == "delete_context":
                if context_id == DEFAULT_CONTEXT_ID:
                    return tool_error("the default context cannot be deleted (use restart_context)")
                yield Blocking(contexts.delete, (context_id,))
                return json_result({"deleted": context_id})
            if name == "restart_context":
                context = yield Blocking(contexts.restart, (context_id,))
                return json_result({"context": context_json(context)})
            contexts.interrupt(context_id)
            return json_result({"interrupted": context_id})
        except (InterpError, OSError, TypeError, ValueError) as exc:
            return tool_error("%s: %s" % (type(exc).__name__, exc))
