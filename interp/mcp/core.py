"""The MCP protocol, apart from any transport: both eras, tools, tasks.

A request is served in one of two eras (the 2026-07-28 revision's
"Versioning and Compatibility"):

* **modern** (2026-07-28): the request names its revision in
  ``_meta["io.modelcontextprotocol/protocolVersion"]`` and carries
  ``io.modelcontextprotocol/clientCapabilities``; nothing is remembered
  between requests; every result has ``resultType`` and the server's
  identity in ``_meta``; ``server/discover`` tells the versions; tasks are
  the ``io.modelcontextprotocol/tasks`` extension.
* **legacy** (2024-11-05 to 2025-11-25): ``initialize`` negotiates a
  revision for a :class:`Session` (the stdio process, or one
  ``Mcp-Session-Id`` over HTTP) and the session's requests follow it.

The transports (stdio in :mod:`interp.mcp`, Streamable HTTP in
:mod:`interp.mcp.http`) hand each message to :meth:`MCPCore.handle` with
a ``reply`` for the response and a ``notify`` for the request's progress
notifications; a tool call is answered later, from its own thread. Every
request :meth:`MCPCore.handle` accepts gets exactly one ``reply``: its
response, or None when it was cancelled and gets no response (so a batch,
or an HTTP response, can end without it).

Request ids are scoped by the session's ``key``: the stdio process, one
``Mcp-Session-Id``, or, over HTTP without a session, the one POST that
carries the request (so ``notifications/cancelled`` names a request of
the same client only). Contexts live in a
:class:`~interp.server.table.ContextTable`, the one the HTTP server's
routes use too.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple

from .. import __version__
from ..api import CodeInterpreter
from .calls import RELATED_TASK_KEY, TASKS_EXTENSION, ToolCalls
from .resources import CAPABILITY as RESOURCES_CAPABILITY
from .resources import WRITE_FILE_TOOL, FileResources
from .rpc import (INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, UNSUPPORTED_PROTOCOL_VERSION, RPCError,
                  error_message)
from .runners import ThreadRunner
from .tasks import Task, TaskTable
from .tools import DEFAULT_OUTPUT_LIMIT, LEGACY_VERSIONS, MODERN_VERSIONS, SUPPORTED_VERSIONS, make_tools, tools_for

if TYPE_CHECKING:  # the server package imports this module
    from ..server.table import ContextTable
    from .calls import _Request

VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
#: How long clients may cache tools/list and server/discover (2026-07-28 CacheableResult).
CACHE_TTL_MS = 300_000

SERVER_INFO = {"name": "interp", "title": "interp Python interpreter", "version": __version__}
INSTRUCTIONS = ("Stateful Python interpreter: run_code keeps variables between calls. Use create_context "
                "for an isolated namespace (and a working directory) and pass its id as context_id.")


#: Where a request's one answer goes: its response, or None (cancelled: no response is sent).
Reply = Callable[[Optional[Dict[str, Any]]], None]
#: Where a request's notifications (progress) go.
Notify = Callable[[Dict[str, Any]], None]


class Session:
    """The state of the handshake era: the revision ``initialize``
    negotiated, and who the client is. ``key`` scopes request ids (for
    ``notifications/cancelled``) and task lists."""

    def __init__(self, key: str, version: str = LEGACY_VERSIONS[0]) -> None:
        self.key = key
        self.version = version
        self.initialized = False
        self.client_info: Optional[Dict[str, Any]] = None
        self.capabilities: Dict[str, Any] = {}


class Exchange:
    """One request being served: its era, revision and client capabilities,
    and where its response and notifications go."""

    def __init__(self, request_id: Any, method: str, session: Session, version: str, modern: bool,
                 capabilities: Dict[str, Any], reply: Reply, notify: Notify) -> None:
        self.id = request_id
        self.method = method
        self.session = session
        self.version = version
        self.modern = modern
        self.capabilities = capabilities
        self.reply = reply
        self.notify = notify

    def respond(self, result: Dict[str, Any]) -> None:
        """Send ``result``, completed as the era wants (``resultType`` and the server's identity)."""
        self.reply({"jsonrpc": "2.0", "id": self.id, "result": self.finish(result)})

    def finish(self, result: Dict[str, Any]) -> Dict[str, Any]:
        if not self.modern:
            return result
        result = dict(result)
        result.setdefault("resultType", "complete")
        meta = dict(result.get("_meta") or {})
        meta[SERVER_INFO_KEY] = {"name": SERVER_INFO["name"], "version": SERVER_INFO["version"]}
        result["_meta"] = meta
        return result


Handler = Callable[[Exchange, Dict[str, Any]], Dict[str, Any]]


class MCPCore(ToolCalls):
    """Serves MCP requests over one shared interpreter, for any transport.

    ``default_timeout``: of run_code calls that give none (None: the
    interpreter's 600 s). ``output_limit``: characters of each output part
    a result gives the model (0: no limit). ``task_after``: seconds after
    which a run_code call from a 2026-07-28 client that declared the tasks
    extension is answered with a task instead of waiting. ``contexts``: the
    context table the tools use (the HTTP server passes its own, so that
    both front ends see, limit and expire the same contexts); None: a table
    of this core's own, without limits.
    """

    def __init__(self, interpreter: CodeInterpreter, *, default_timeout: Optional[float] = None,
                 output_limit: int = DEFAULT_OUTPUT_LIMIT, task_after: float = 1.0,
                 contexts: Optional[ContextTable] = None) -> None:
        self.interpreter = interpreter
        self.default_timeout = default_timeout
        #: The operator's limit (0: none); a call's output_limit may lower it, never lift it.
        self.output_limit = output_limit
        self.task_after = task_after
        if contexts is None:
            from ..server.table import ContextTable  # here: the server package imports this module
            contexts = ContextTable(interpreter)
        self.contexts = contexts
        sandbox = interpreter.sandbox
        self.tools = make_tools(open_world=sandbox is None or bool(sandbox.network)) + [WRITE_FILE_TOOL]
        self.files = FileResources(interpreter)  # resources/list, resources/read, write_file
        self._by_name = {tool["name"]: tool for tool in self.tools}
        self.tasks = TaskTable()
        #: Performs tool calls: a thread each (the HTTP server puts a LoopRunner here, on its loop)
        self.runner = ThreadRunner(interpreter)
        self._lock = threading.Lock()
        self._requests: Dict[Tuple[str, str], _Request] = {}
        self._in_flight = 0  # tool calls whose thread has not ended
        self._settled = threading.Condition(self._lock)

    # -- messages ------------------------------------------------------------------

    def handle(self, message: Any, session: Session, reply: Reply, notify: Notify) -> bool:
        """Handle one message; a request is answered through ``reply``, now
        or later from another thread, exactly once (None: it was cancelled
        and gets no response). Returns whether ``reply`` will be called."""
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            reply(error_message(None, RPCError(INVALID_REQUEST, "not a JSON-RPC 2.0 message")))
            return True
        method = message.get("method")
        if method is None:
            if "result" in message or "error" in message:
                return False  # a response: this server sends no requests, ignore it
            reply(error_message(message.get("id"), RPCError(INVALID_REQUEST, "no method")))
            return True
        if "id" not in message:
            self._notification(method, message.get("params"), session)
            return False
        request_id = message["id"]
        if isinstance(request_id, bool) or not isinstance(request_id, (str, int)):
            reply(error_message(None, RPCError(INVALID_REQUEST, "the id must be a string or an integer")))
            return True
        try:
            if not isinstance(method, str):
                raise RPCError(INVALID_REQUEST, "the method must be a string")
            params = message.get("params", {})
            if not isinstance(params, dict):
                raise RPCError(INVALID_PARAMS, "params must be an object")
            exchange = self.exchange(request_id, method, params, session, reply, notify)
            if method == "tools/call":
                self._start_tool_call(exchange, params)
                return True
            if method == "tasks/result" and not exchange.modern and exchange.version >= "2025-11-25":
                self._start_task_result(exchange, params)
                return True
            handler = (self._modern_methods() if exchange.modern else self._legacy_methods(exchange)).get(method)
            if handler is None:
                raise RPCError(METHOD_NOT_FOUND, "method not found: %s" % method)
            exchange.respond(handler(exchange, params))
        except RPCError as exc:
            reply(error_message(request_id, exc))
        return True

    def exchange(self, request_id: Any, method: str, params: Dict[str, Any], session: Session,
                 reply: Reply, notify: Notify) -> Exchange:
        """The era and revision of a request (see the module docstring), or an RPCError."""
        meta = params.get("_meta")
        meta = meta if isinstance(meta, dict) else {}
        version = meta.get(VERSION_KEY)
        if method != "initialize" and version is not None:
            if not isinstance(version, str):
                raise RPCError(INVALID_PARAMS, "_meta.%s must be a string" % VERSION_KEY, malformed=True)
            if version in MODERN_VERSIONS:
                capabilities = meta.get(CAPABILITIES_KEY)
                if not isinstance(capabilities, dict):
                    raise RPCError(INVALID_PARAMS, "a %s request needs _meta.%s (an object)"
                                   % (version, CAPABILITIES_KEY), malformed=True)
                return Exchange(request_id, method, session, version, True, capabilities, reply, notify)
            if version not in LEGACY_VERSIONS:
                raise RPCError(UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version %r (supported: %s)"
                               % (version[:100], ", ".join(SUPPORTED_VERSIONS)),
                               {"supported": list(SUPPORTED_VERSIONS), "requested": version[:100]})
            if not session.initialized:
                return Exchange(request_id, method, session, version, False, {}, reply, notify)
        elif method == "server/discover":
            raise RPCError(INVALID_PARAMS, "server/discover needs _meta.%s and _meta.%s"
                           % (VERSION_KEY, CAPABILITIES_KEY), malformed=True)
        return Exchange(request_id, method, session, session.version, False, session.capabilities, reply, notify)

    def _notification(self, method: Any, params: Any, session: Session) -> None:
        if method == "notifications/cancelled" and isinstance(params, dict):
            self.cancel_request(session.key, params.get("requestId"))
        elif method == "notifications/initialized":
            session.initialized = True
        # anything else: nothing to do (no reply to notifications)

    def cancel_request(self, scope: str, request_id: Any) -> None:
        """Cancel a tool call in flight of the client ``scope`` (a session's
        key): its run stops and its ``reply`` gets None, no response (unknown
        or answered requests are ignored)."""
        try:
            key = (scope, json.dumps(request_id))
        except (TypeError, ValueError):
            return
        with self._lock:
            request = self._requests.get(key)
        if request is None:
            return
        with request.lock:
            if not request.answered:
                request.answered = True  # under the lock: the response is then surely not sent
                request.cancel.set()
                if request.task is not None:
                    self.tasks.cancel(request.task)
                request.exchange.reply(None)  # no response: the transport may end the request (or batch)

    def wait_idle(self) -> None:
        """Return once no tool call is in flight (each run ends within its timeout)."""
        with self._settled:
            while self._in_flight:
                self._settled.wait()

    # -- methods ---------------------------------------------------------------------

    def _legacy_methods(self, exchange: Exchange) -> Dict[str, Handler]:
        methods: Dict[str, Handler] = {"initialize": self._initialize, "ping": lambda exchange, params: {},
                   "tools/list": self._tools_list}
        methods.update(self._resource_methods())
        if exchange.version >= "2025-11-25":
            methods.update({"tasks/get": self._task_get, "tasks/list": self._task_list,
                            "tasks/cancel": self._task_cancel})
        return methods

    def _modern_methods(self) -> Dict[str, Handler]:
        return {"server/discover": self._discover, "tools/list": self._tools_list,
                "tasks/get": self._task_get, "tasks/update": self._task_update, "tasks/cancel": self._task_cancel,
                **self._resource_methods()}

    def _resource_methods(self) -> Dict[str, Handler]:
        """The interpreter's files as resources (interp.mcp.resources)."""
        return {"resources/list": lambda exchange, params: self.files.list(exchange.modern, exchange.version),
                "resources/templates/list": lambda exchange, params: self.files.templates(exchange.modern),
                "resources/read": lambda exchange, params: self.files.read(exchange.modern, params)}

    def _initialize(self, exchange: Exchange, params: Dict[str, Any]) -> Dict[str, Any]:
        requested = params.get("protocolVersion")
        if not isinstance(requested, str):
            raise RPCError(INVALID_PARAMS, "initialize needs a protocolVersion string")
        session = exchange.session
        session.version = requested if requested in LEGACY_VERSIONS else LEGACY_VERSIONS[0]
        info, capabilities = params.get("clientInfo"), params.get("capabilities")
        session.client_info = info if isinstance(info, dict) else None
        session.capabilities = capabilities if isinstance(capabilities, dict) else {}
        server_capabilities: Dict[str, Any] = {"tools": {"listChanged": False}, "resources": RESOURCES_CAPABILITY}
        if session.version >= "2025-11-25":
            server_capabilities["tasks"] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
        server_info = dict(SERVER_INFO)
        if session.version < "2025-06-18":
            del server_info["title"]
        return {"protocolVersion": session.version, "capabilities": server_capabilities,
                "serverInfo": server_info, "instructions": INSTRUCTIONS}

    def _discover(self, exchange: Exchange, params: Dict[str, Any]) -> Dict[str, Any]:
        return {"supportedVersions": list(SUPPORTED_VERSIONS),
                "capabilities": {"tools": {"listChanged": False}, "resources": RESOURCES_CAPABILITY,
                                 "extensions": {TASKS_EXTENSION: {}}},
                "instructions": INSTRUCTIONS, "ttlMs": CACHE_TTL_MS, "cacheScope": "public"}

    def _tools_list(self, exchange: Exchange, params: Dict[str, Any]) -> Dict[str, Any]:
        result: Dict[str, Any] = {"tools": tools_for(self.tools, exchange.version)}
        if exchange.modern:
            result.update(ttlMs=CACHE_TTL_MS, cacheScope="public")
        return result

    # -- tasks -----------------------------------------------------------------------

    def _find_task(self, exchange: Exchange, params: Dict[str, Any]) -> Task:
        task = self.tasks.get(params.get("taskId"))
        if task is None:
            raise RPCError(INVALID_PARAMS, "no task with id %r (it finished more than its ttl ago, or never "
                                           "existed)" % str(params.get("taskId"))[:100])
        return task

    def _task_get(self, exchange: Exchange, params: Dict[str, Any]) -> Dict[str, Any]:
        task = self._find_task(exchange, params)
        fields = task.fields(exchange.modern)
        if exchange.modern:  # 2026-07-28: the result or error comes with the task
            if task.status == "completed" and task.result is not None:
                fields["result"] = Exchange.finish(exchange, task.result)
            elif task.status == "failed" and task.error is not None:
                fields["error"] = task.error
        return fields

    def _task_result(self, task: Task) -> Dict[str, Any]:
        """The result of an ended task, as tools/call would have given it."""
        if task.status == "cancelled" or task.result is None:
            error = task.error or {"code": INVALID_PARAMS, "message": "task %s was cancelled: it has no result"
                                   % task.id}
            raise RPCError(error["code"], error["message"])
        result = dict(task.result)
        result["_meta"] = dict(result.get("_meta") or {}, **{RELATED_TASK_KEY: {"taskId": task.id}})
        return result

    def _task_list(self, exchange: Exchange, params: Dict[str, Any]) -> Dict[str, Any]:
        return {"tasks": [task.fields(False) for task in self.tasks.list(exchange.session.key)]}

    def _task_update(self, exchange: Exchange, params: Dict[str, Any]) -> Dict[str, Any]:
        self._find_task(exchange, params)  # no task of this server asks for input: nothing to take
        return {}

    def _task_cancel(self, exchange: Exchange, params: Dict[str, Any]) -> Dict[str, Any]:
        task = self._find_task(exchange, params)
        if not self.tasks.cancel(task) and not exchange.modern:
            raise RPCError(INVALID_PARAMS, "task %s has ended already (%s)" % (task.id, task.status))
        return {} if exchange.modern else task.fields(False)
