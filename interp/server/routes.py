"""A connection's requests, one after another, and the routes: the caller
checks (Host, Origin, token), bounded bodies, and the handlers, all on the
event loop over an AsyncCodeInterpreter view of the server's interpreter.
Blocking engine calls (starting and killing workers) go to the server's
fixed pool of helper threads."""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import sys
import time
import traceback
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

from .. import __version__
from .. import _http11 as http11
from ..commands import completion_command
from ..frontend import context_json
from ..mcp.http import Response as MCPResponse
from ..mcp.http import http_error_body as mcp_http_error_body
from .checks import (
    HTTPError,
    _client_gone,
    _error_body,
    _host_name,
    _http_error,
    _is_json_type,
    _json_object,
    check_context_id,
)
from .connection import ClientGone, Connection, HeadTimeout
from .files import FileRoutes, raw_body
from .limits import BUSY_HEADER_TIMEOUT
from .runs import RunRoutes
from .streams import EventStream

if TYPE_CHECKING:
    from .app import InterpHTTPServer

#: Methods with routes; others get 501.
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
SERVER_NAME = "interp/" + __version__


async def serve_connection(conn: Connection) -> None:
    """Answer the connection's requests in order until it closes, stays idle
    past the header timeout, or a response says to close."""
    server = conn.server
    try:
        while True:
            try:
                head = await conn.read_head()
            except HeadTimeout:
                await _refuse(conn, 408, "the request line and headers did not arrive in time (%g s; %g s while "
                              "the server is full)" % (server.header_timeout,
                                                       min(BUSY_HEADER_TIMEOUT, server.header_timeout)))
                return
            except http11.ProtocolError as exc:
                await _refuse(conn, exc.status, str(exc))
                return
            if head is None:
                return
            handler = RequestHandler(conn, head)
            keep = await handler.handle()
            if not keep or conn.eof or conn.lost or not conn.reader.done:
                return
            await conn.drain(server.io_timeout)  # a client that reads none of its answers is dropped
            conn.reader.next()
    except Exception as exc:
        if not _client_gone(exc):
            sys.stderr.write("interp serve: error serving %s:\n%s" % (conn.peer, traceback.format_exc()))
    finally:
        conn.close()


async def _refuse(conn: Connection, status: int, message: str) -> None:
    """Answer a request that could not be read, and close."""
    conn.server.metrics.answered(status)
    _log(conn, "-", status)
    try:
        body = _json(_error_body(status, message))
        conn.write(_head(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
                         close=True) + body)
        await conn.drain(conn.server.io_timeout)
    except ClientGone:
        pass


def _json(payload: Any) -> bytes:
    return b"" if payload is None else json.dumps(payload).encode("utf-8") + b"\n"


def _head(status: int, fields: List[Tuple[str, str]], *, close: bool, keep_alive: Optional[float] = None) -> bytes:
    """A response head: the status line, Server, Date, ``fields``, and how the connection goes on."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    fields = [("Server", SERVER_NAME), ("Date", _date())] + fields
    if close:
        fields.append(("Connection", "close"))
    elif keep_alive is not None:
        fields.append(("Keep-Alive", "timeout=%g" % keep_alive))
    return http11.encode_head("HTTP/1.1 %d %s" % (status, phrase), fields)


def _date(cache: List[Any] = [None, ""]) -> str:  # noqa: B006 - the cache of the current second
    """The Date header's value, made once a second."""
    now = int(time.time())
    if cache[0] != now:
        cache[0], cache[1] = now, formatdate(now, usegmt=True)
    return str(cache[1])


def _log(conn: Connection, request_line: str, status: int) -> None:
    """One line per answer on stderr (``--quiet``: none); control characters are escaped."""
    if conn.server.log:
        line = request_line.translate(_ESCAPES)
        sys.stderr.write('%s - - [%s] "%s" %d -\n' % (conn.peer, time.strftime("%d/%b/%Y %H:%M:%S"), line, status))


#: What a request line in the log shows for a control character (no terminal escapes from clients).
_ESCAPES = {code: "\\x%02x" % code for code in list(range(32)) + list(range(127, 160))}


#: Requests routed lately: (method, path) -> (handler name, path arguments).
_ROUTED: Dict[Tuple[str, str], Tuple[str, Tuple[str, ...]]] = {}
#: At most this many are remembered (the cache starts over when full).
ROUTES_REMEMBERED = 1024


def _resolve(method: str, path: str) -> Tuple[str, Tuple[str, ...]]:
    """The name of the handler for ``method`` on ``path`` and the path's
    ``{id}`` (validated); 404 for an unknown path, 405 for a wrong method."""
    parts = [unquote(part) for part in path.split("/")[1:]]
    allowed: Dict[str, str] = {}
    args: Tuple[str, ...] = ()
    rest: Tuple[str, ...] = ()  # a trailing {path}: the rest of the path, not checked as an id
    for route_method, name in _FIXED.get(tuple(parts), ()):
        allowed.setdefault(route_method, name)
    if len(parts) >= 2 and parts[1]:  # an {id} is always the second segment
        for route_method, name in _FIXED.get((parts[0], "{id}", *parts[2:]), ()):
            allowed.setdefault(route_method, name)
            args = (parts[1],)
    for route_method, pattern, name in _REST_PATTERNS:
        if parts[:len(pattern) - 1] == pattern[:-1]:
            allowed.setdefault(route_method, name)
            rest = ("/".join(parts[len(pattern) - 1:]),)
    if not allowed:
        raise HTTPError(404, "no such endpoint: %s %s" % (method, path))
    if method not in allowed:
        methods = ", ".join(sorted(allowed))
        raise HTTPError(405, "%s is not allowed on %s (allowed: %s)" % (method, path, methods),
                        headers={"Allow": methods})
    return allowed[method], tuple(check_context_id(arg) for arg in args) + rest


class RequestHandler(FileRoutes, RunRoutes):
    """One request: its checks, its body, its route and its answer."""

    def __init__(self, conn: Connection, head: http11.Head) -> None:
        self.conn = conn
        self.server: InterpHTTPServer = conn.server
        self.head = head
        self.headers = head.headers
        self.command = head.method
        self.path = head.target
        self.request_version = head.version
        self.close_connection = not head.keep_alive
        #: whether a streamed response is chunked (not to an HTTP/1.0 client, whose stream ends with the connection)
        self.chunked = head.version != "HTTP/1.0"
        self._responded = False
        self._held = 0  # bytes of the body counted in the server's budget

    # -- one request, start to end -------------------------------------------------------

    async def handle(self) -> bool:
        """Answer the request; True if the connection may carry another."""
        method, path = self.command, urlsplit(self.path).path
        body_read = False
        try:
            if method not in METHODS:
                raise HTTPError(501, "unsupported method %r" % method, close=True)
            self._check_caller()
            raw = raw_body(method, path)  # an upload reads its body as it goes
            body = b"" if raw else await self._read_body()
            body_read = not raw
            handler, args = self._route(method, path)
            outcome = handler(body, *args)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            if _client_gone(exc):
                return False
            error = _http_error(exc)
            if self._responded:  # a streamed response had begun: all we can do is end it
                if error is None:
                    self._log_fault()
                return False
            if error is None:
                self._log_fault()
                error = HTTPError(500, "internal server error: %s: %s" % (type(exc).__name__, exc), close=True)
            close = error.close or not body_read  # an unread body would be taken for the next request
            if path == "/mcp":  # MCP clients read JSON-RPC errors
                payload: Dict[str, Any] = mcp_http_error_body(error.status, error.message)
            else:
                payload = _error_body(error.status, error.message, error.kind)
            self.send_json(error.status, payload, close=close, headers=error.headers)
        finally:
            self.server.bodies_in_memory -= self._held
            self._held = 0
        return not self.close_connection

    def _log_fault(self) -> None:
        """Log the exception being handled, with its traceback (a server bug)."""
        sys.stderr.write("interp serve: internal error on %r from %s:\n%s"
                         % (self.head.request_line, self.conn.peer, traceback.format_exc()))

    def _check_caller(self) -> None:
        """Who may ask: a Host naming this server (DNS rebinding), no foreign
        Origin (a web page), then the token."""
        hosts = self.headers.get_all("Host")
        if len(hosts) != 1:
            raise HTTPError(400, "a request needs exactly one Host header")
        name = _host_name(hosts[0])
        if name is None or not self.server.host_allowed(name):
            raise HTTPError(403, "Host %r is neither this server's address nor a loopback name (with a "
                                 "token, the operator can allow it with --allow-host)" % hosts[0])
        origin = self.headers.get("Origin")
        if origin is not None:
            host = hosts[0].strip().lower()
            if origin.strip().lower() not in ("http://" + host, "https://" + host):
                raise HTTPError(403, "cross-origin requests are refused (Origin %r)" % origin)
        token = self.server.token
        if token is None:
            return
        # header values arrive decoded as Latin-1: compare the bytes that were sent
        given = (self.headers.get("Authorization") or "").encode("latin-1", "replace")
        expected = ("Bearer " + token).encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            raise HTTPError(401, "missing or wrong 'Authorization: Bearer <token>' header",
                            close=True, headers={"WWW-Authenticate": 'Bearer realm="interp"'})

    def body_length(self, limit: int, what: str, hint: str = "") -> int:
        """The request's Content-Length, checked against ``limit`` (413 beyond);
        the reader then expects that many bytes."""
        if self.headers.get("Transfer-Encoding") is not None:
            raise HTTPError(411, "a chunked %s is not supported; send Content-Length" % what, close=True)
        try:
            length = http11.content_length(self.headers) or 0
        except http11.ProtocolError as exc:
            raise HTTPError(400, str(exc), close=True) from None
        if length > limit:
            raise HTTPError(413, "%s of %d bytes exceeds the limit of %d bytes%s" % (what, length, limit, hint),
                            close=True)
        self.conn.reader.expect("length", length)
        return length

    async def _read_body(self) -> bytes:
        length = self.body_length(self.server.max_body, "request body")
        content_type = self.headers.get("Content-Type")
        if (length or content_type is not None) and not _is_json_type(content_type):
            raise HTTPError(415, "request bodies must be JSON, sent with 'Content-Type: application/json'"
                            " (got %r)" % content_type, close=True)
        if length and (self.headers.get("Expect") or "").strip().lower() == "100-continue":
            self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the checks passed: send the body
        server = self.server
        due = time.monotonic() + server.io_timeout
        parts = []
        while length:
            try:
                data = await self.conn.read_body(length, max(0.0, due - time.monotonic()))
            except TimeoutError:
                raise HTTPError(408, "the request body did not arrive within %g s" % server.io_timeout,
                                close=True) from None
            except EOFError:
                data = b""
            if not data:
                raise HTTPError(400, "request body ended early", close=True)
            self._hold(len(data))
            parts.append(data)
            length -= len(data)
        return b"".join(parts)

    def _hold(self, size: int) -> None:
        """Count ``size`` bytes of this request's body against the server's
        budget until the request is answered (503 past it)."""
        server = self.server
        if server.bodies_in_memory + size > server.body_budget:
            raise HTTPError(503, "the server holds %d bytes of request bodies, its limit; retry shortly"
                            % server.bodies_in_memory, close=True, headers={"Retry-After": "1"})
        server.bodies_in_memory += size
        self._held += size

    def _route(self, method: str, path: str) -> Tuple[Callable[..., Any], Tuple[str, ...]]:
        """The handler for ``method`` on ``path`` and the path's ``{id}``
        (validated); 404 for an unknown path, 405 for a wrong method."""
        found = _ROUTED.get((method, path))
        if found is None:
            found = _resolve(method, path)
            if len(path) <= 256:  # a client's long paths must not make the cache large
                if len(_ROUTED) >= ROUTES_REMEMBERED:
                    _ROUTED.clear()
                _ROUTED[method, path] = found
        return getattr(self, found[0]), found[1]

    # -- answers ---------------------------------------------------------------------------

    def send_json(self, status: int, payload: Any, *, close: bool = False,
                  headers: Optional[Dict[str, str]] = None) -> None:
        self.send(status, _json(payload), "application/json" if payload is not None else None, close=close,
                  headers=headers)

    def send(self, status: int, data: bytes, content_type: Optional[str], *, close: bool = False,
             headers: Optional[Dict[str, str]] = None) -> None:
        self.begin(status, [("Content-Type", content_type)] if content_type is not None else [],
                   len(data), close=close, headers=headers)
        if data and self.command != "HEAD":  # a response to HEAD has no body
            self.conn.write(data)

    def begin(self, status: int, fields: List[Tuple[str, str]], length: Optional[int], *, close: bool = False,
              headers: Optional[Dict[str, str]] = None, delay: float = 0.0) -> None:
        """Send a response head: with a Content-Length, or (None) streamed
        (``delay``: it may wait that long for the body's first bytes)."""
        self._responded = True
        close = close or self.close_connection
        if length is None and self.request_version == "HTTP/1.0":
            close = True  # an HTTP/1.0 client does not know chunking: the body ends when the connection closes
        self.close_connection = close
        self.server.metrics.answered(status)
        _log(self.conn, self.head.request_line, status)
        fields = fields + list((headers or {}).items())
        if length is not None:
            fields.append(("Content-Length", str(length)))
        elif not close:
            fields.append(("Transfer-Encoding", "chunked"))
        if not close and self.request_version == "HTTP/1.0":
            fields.append(("Connection", "keep-alive"))  # it asked for it, and gets it
        self.conn.write(_head(status, fields, close=close, keep_alive=self.server.header_timeout), delay)

    async def offload(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking engine call on one of the server's helper threads."""
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    # -- endpoints -----------------------------------------------------------------------------
    # InterpError subclasses propagate to handle(), which maps them (_http_error)

    def _health(self, body: bytes) -> None:
        self.send_json(200, {"status": "ok", "version": __version__})

    def _metrics(self, body: bytes) -> None:
        text = self.server.metrics.render(len(self.server.contexts))
        self.send(200, text.encode("utf-8"), "text/plain; version=0.0.4; charset=utf-8")

    def _list_contexts(self, body: bytes) -> None:
        self.send_json(200, [context_json(context) for context in self.server.contexts.list()])

    async def _create_context(self, body: bytes) -> None:
        fields = _json_object(body, {"cwd": (str, type(None))}, ())
        context = await self.offload(self.server.contexts.create, None, fields.get("cwd"))
        self.send_json(201, context_json(context))

    async def _put_context(self, body: bytes, context_id: str) -> None:
        fields = _json_object(body, {"cwd": (str, type(None))}, ())
        context = await self.offload(self.server.contexts.create, context_id, fields.get("cwd"))
        self.send_json(201, context_json(context))

    async def _delete_context(self, body: bytes, context_id: str) -> None:
        await self.offload(self.server.contexts.delete, context_id)
        self.send_json(204, None)

    async def _restart_context(self, body: bytes, context_id: str) -> None:
        self.send_json(200, context_json(await self.offload(self.server.contexts.restart, context_id)))

    def _interrupt_context(self, body: bytes, context_id: str) -> None:
        self.server.contexts.interrupt(context_id)
        self.send_json(204, None)

    async def _complete(self, body: bytes, context_id: str) -> None:
        fields = _json_object(body, {"code": (str,), "cursor": (int, type(None))}, ("code",))
        try:
            completion_command(fields["code"], fields.get("cursor"))
        except (TypeError, ValueError) as exc:
            raise HTTPError(400, str(exc)) from None
        with self.server.contexts.use(context_id) as entry:
            matches = await self.server.aio.complete(fields["code"], fields.get("cursor"), entry.engine_id)
        self.send_json(200, {"matches": matches})

    def _answer_input(self, body: bytes, context_id: str) -> None:
        fields = _json_object(body, {"request": (int,), "value": (str, type(None)), "eof": (bool, type(None))},
                              ("request",))
        value, eof = fields.get("value"), bool(fields.get("eof"))
        if (value is None) == (not eof):
            raise HTTPError(400, "give either 'value' (a string) or 'eof': true")
        self.server.contexts.answer(context_id, fields["request"], value)
        self.send_json(204, None)

    # -- MCP (Streamable HTTP) at /mcp: interp.mcp.http does the protocol --------------------

    async def _mcp_post(self, body: bytes) -> None:
        streams: List[_SSEStream] = []
        try:
            response = await self.server.mcp.post(self.headers, body, _MCPTransport(self, streams))
        finally:
            for stream in streams:
                if not await stream.finish():
                    self.close_connection = True
        if response is not None:
            self._mcp_respond(response)

    def _mcp_delete(self, body: bytes) -> None:
        self._mcp_respond(self.server.mcp.delete(self.headers))

    def _mcp_respond(self, response: MCPResponse) -> None:
        if response.status == 499:  # the client went away: nobody to answer
            self.close_connection = True
            return
        self.send_json(response.status, response.body, headers=response.headers)


class _SSEStream:
    """An MCP response as Server-Sent Events: the request's notifications, then its response."""

    def __init__(self, handler: RequestHandler) -> None:
        self._handler = handler
        self._events = EventStream(handler.conn, chunked=handler.chunked, stall=handler.server.io_timeout)

    def begin(self, headers: Dict[str, str]) -> None:
        self._handler.begin(200, list(headers.items()), None)
        self._events.begun = True

    async def event(self, data: bytes) -> None:
        await self._events.send_bytes(data)

    async def finish(self) -> bool:
        """End the response; True if the client got all of it."""
        return await self._events.finish() or not self._events.begun


class _MCPTransport:
    """The request as interp.mcp.http sees it (its Transport)."""

    def __init__(self, handler: RequestHandler, streams: List[_SSEStream]) -> None:
        self._handler = handler
        self._streams = streams

    def open_stream(self) -> _SSEStream:
        stream = _SSEStream(self._handler)
        self._streams.append(stream)
        return stream

    def on_gone(self, callback: Callable[[], None]) -> Callable[[], None]:
        return self._handler.conn.on_gone(callback)



#: Every endpoint: (method, path template, handler method). ``{id}`` matches
#: one path segment, a context id (validated, passed to the handler). To add
#: an endpoint, add a line here and a ``RequestHandler`` method taking
#: ``(body, *ids)`` (plain or async); errors are raised as HTTPError or InterpError.
ROUTES: List[Tuple[str, str, str]] = [
    ("GET", "/health", "_health"),
    ("GET", "/metrics", "_metrics"),
    ("GET", "/contexts", "_list_contexts"),
    ("POST", "/contexts", "_create_context"),
    ("PUT", "/contexts/{id}", "_put_context"),
    ("DELETE", "/contexts/{id}", "_delete_context"),
    ("POST", "/contexts/{id}/execute", "_execute_in"),
    ("POST", "/contexts/{id}/complete", "_complete"),
    ("POST", "/contexts/{id}/input", "_answer_input"),
    ("POST", "/contexts/{id}/interrupt", "_interrupt_context"),
    ("POST", "/contexts/{id}/restart", "_restart_context"),
    ("POST", "/execute", "_execute"),
    ("POST", "/mcp", "_mcp_post"),
    ("DELETE", "/mcp", "_mcp_delete"),
    # files (interp.server.files): {path} is the rest of the path
    ("PUT", "/files/{path}", "_put_file"),
    ("GET", "/files/{path}", "_get_file"),
    ("POST", "/fs/list", "_fs_list"),
    ("POST", "/fs/info", "_fs_info"),
    ("POST", "/fs/folder", "_fs_folder"),
    ("POST", "/fs/delete", "_fs_delete"),
    ("POST", "/fs/move", "_fs_move"),
]

#: ROUTES by their templates' segments: those of a fixed number of segments
#: (an ``{id}`` may only be the second), and those that end with ``{path}``
#: (the rest of the path, however long).
_FIXED: Dict[Tuple[str, ...], List[Tuple[str, str]]] = {}
_REST_PATTERNS: List[Tuple[str, List[str], str]] = []
for _method, _template, _name in ROUTES:
    _pattern = _template.split("/")[1:]
    assert "{id}" not in _pattern or _pattern.index("{id}") == 1 == _pattern.count("{id}"), _template
    if _pattern[-1] == "{path}":
        _REST_PATTERNS.append((_method, _pattern, _name))
    else:
        _FIXED.setdefault(tuple(_pattern), []).append((_method, _name))
