"""One connection's requests: bounded heads and bodies, the caller checks
(Host, Origin, token), the routes and their handlers."""

from __future__ import annotations

import hmac
import http.client
import io
import json
import select
import socket
import sys
import time
import traceback
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

from .. import __version__
from ..commands import completion_command, run_command
from ..engine import CANCEL_POLL, DEFAULT_CONTEXT_ID
from ..errors import (
    ContextNotFoundError,
    ContextRestartedError,
    InterpError,
    InterpTimeoutError,
    RunCancelledError,
    WorkerDiedError,
)
from ..frontend import context_json
from ..mcp.http import Response as MCPResponse
from ..mcp.http import http_error_body as mcp_http_error_body
from ..types import ExecutionResult
from .checks import (
    HTTPError,
    _client_gone,
    _error_body,
    _host_name,
    _http_error,
    _is_json_type,
    _json_object,
    check_context_id,
    result_json,
)
from .files import FileRoutes, raw_body
from .limits import _TIMEOUTS, BUSY_HEADER_TIMEOUT, MAX_HEAD, MAX_TIMEOUT
from .streams import _EventStream, _peer_closed, _SSEStream, _wait
from .table import _Entry

if TYPE_CHECKING:  # they import this module
    from .app import InterpHTTPServer


class _SocketReader(io.RawIOBase):
    """The raw reading side of a connection, with a deadline the handler
    sets for each request head and body (TimeoutError once it passes, however
    slowly the bytes trickle in). While reading a head (``head_since``: when
    the wait began) and the server is ``busy()``, the deadline is at most
    BUSY_HEADER_TIMEOUT after ``head_since``."""

    def __init__(self, sock: socket.socket, busy: Callable[[], bool]) -> None:
        super().__init__()
        self._sock = sock
        self._busy = busy
        self.deadline: Optional[float] = None
        self.head_since: Optional[float] = None
        self.received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self.deadline is not None:
            deadline = self.deadline
            if self.head_since is not None and self._busy():
                deadline = min(deadline, self.head_since + BUSY_HEADER_TIMEOUT)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the client did not send its request in time")
            # waits in slices while reading a head, to notice the server becoming busy
            if _wait(self._sock, select.POLLIN, remaining if self.head_since is None else min(remaining, 0.25)):
                break
        count = self._sock.recv_into(buffer)
        self.received += count
        return count


class _HeadTooLarge(http.client.HTTPException):
    """The request line and headers are over MAX_HEAD bytes."""


class _RequestReader(io.BufferedReader):
    """The connection's ``rfile``: counts what a request head reads, so that
    many long header lines cannot pile up (``head_left``: None outside heads)."""

    head_left: Optional[int] = None

    def readline(self, size: Optional[int] = -1) -> bytes:
        line = super().readline(size)
        if self.head_left is not None:
            self.head_left -= len(line)
            if self.head_left < 0:
                raise _HeadTooLarge("the request line and headers exceed %d bytes" % MAX_HEAD)
        return line


class RequestHandler(FileRoutes):
    """Routes one HTTP/1.1 request (keep-alive) to the shared interpreter."""

    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # so that errors about a bad request line get a status line
    server_version = "interp/" + __version__
    disable_nagle_algorithm = True  # stream lines as they come
    server: InterpHTTPServer

    def setup(self) -> None:
        # a TLS relay hands us a Unix socket pair, which has no Nagle to disable
        self.disable_nagle_algorithm = self.request.family != socket.AF_UNIX  # type: ignore[misc]
        super().setup()
        self.connection.settimeout(self.server.io_timeout)  # bounds writes to a client that reads nothing
        self.rfile.close()
        self._raw = _SocketReader(self.connection, self.server.busy)
        self._reader = self.rfile = _RequestReader(self._raw)
        self._responded = False

    # every method goes through _dispatch, so a known path with the wrong method gets 405
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def handle_expect_100(self) -> bool:
        """An upload answers ``Expect: 100-continue`` itself, after its checks."""
        return raw_body(self.command, urlsplit(self.path).path) or super().handle_expect_100()

    def log_message(self, format: str, *args: Any) -> None:
        """Request lines; ``--quiet`` turns them off."""
        if self.server.log:
            super().log_message(format, *args)

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
        """http.server's own errors (malformed request line, unsupported
        method, oversized headers) as JSON too; the connection is closed."""
        self.close_connection = True
        if self._responded:
            return
        try:
            self._send_json(code, _error_body(code, explain or message or HTTPStatus(code).phrase), close=True)
        except OSError:
            pass

    # -- one request, start to end -------------------------------------------------

    def handle_one_request(self) -> None:
        """Read one request and answer it. Nothing escapes: a client that went
        away or stalled is dropped quietly (408 when it had begun a request),
        anything else unexpected is a 500 with a message, logged once."""
        self.command, self.requestline, self.request_version = "", "", self.default_request_version
        self._responded = False
        self._raw.head_since = time.monotonic()
        self._raw.deadline = self._raw.head_since + self.server.header_timeout
        self._reader.head_left = None
        received = self._raw.received
        try:
            try:
                line = self.rfile.readline(65537)
                for _ in range(8):  # a few blank lines before a request are allowed
                    if line not in (b"\r\n", b"\n"):
                        break
                    line = self.rfile.readline(65537)
                self.raw_requestline = line
                if len(line) > 65536:
                    self.send_error(414, "the request line exceeds 65536 bytes")
                    return
                if not line:
                    self.close_connection = True
                    return
                self._reader.head_left = MAX_HEAD - len(line)
                if not self.parse_request():
                    return
                self._raw.head_since = None
            except _TIMEOUTS:
                self.close_connection = True
                if self._raw.received != received:  # not merely an idle keep-alive connection
                    self.send_error(408, "the request line and headers did not arrive in time (%g s; "
                                    "%g s while the server is full)"
                                    % (self.server.header_timeout, min(BUSY_HEADER_TIMEOUT,
                                                                       self.server.header_timeout)))
                return
            self._reader.head_left = None
            if len(self.requestline.split()) != 3:
                self.send_error(400, "the request line must be 'METHOD /path HTTP/1.1'")
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_error(501, "unsupported method %r" % self.command)
                return
            method()
        except Exception as exc:
            if _client_gone(exc):  # it went away, or stopped reading: nobody to tell
                self.close_connection = True
            else:  # a bug: say so to the client and the log, once
                self._internal_error(exc)

    def _internal_error(self, exc: BaseException) -> None:
        self._log_fault()
        self.send_error(500, "internal server error: %s: %s" % (type(exc).__name__, exc))

    def _log_fault(self) -> None:
        """Log the exception being handled, with its traceback (a server bug)."""
        sys.stderr.write("interp serve: internal error on %r from %s:\n%s"
                         % (self.requestline, self.address_string(), traceback.format_exc()))

    def _dispatch(self, method: str) -> None:
        body_read = False
        try:
            self._check_caller()
            raw = raw_body(method, urlsplit(self.path).path)  # an upload reads its body as it goes
            body = b"" if raw else self._read_body()
            body_read = not raw
            handler, args = self._route(method, urlsplit(self.path).path)
            handler(body, *args)
        except Exception as exc:
            if _client_gone(exc):
                raise
            error = _http_error(exc)
            if self._responded:  # a streamed response had begun: all we can do is end it
                self.close_connection = True
                if error is None:
                    self._log_fault()
                return
            if error is None:
                self._internal_error(exc)
                return
            close = error.close or not body_read  # an unread body would be taken for the next request
            if close:
                self.close_connection = True
            if urlsplit(self.path).path == "/mcp":  # MCP clients read JSON-RPC errors
                payload: Dict[str, Any] = mcp_http_error_body(error.status, error.message)
            else:
                payload = _error_body(error.status, error.message, error.kind)
            self._send_json(error.status, payload, close=close, headers=error.headers)

    def _check_caller(self) -> None:
        """Who may ask: a Host naming this server (DNS rebinding), no foreign
        Origin (a web page), then the token."""
        hosts = self.headers.get_all("Host") or []
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
        given = self.headers.get("Authorization", "").encode("latin-1", "replace")
        expected = ("Bearer " + token).encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            raise HTTPError(401, "missing or wrong 'Authorization: Bearer <token>' header",
                            close=True, headers={"WWW-Authenticate": 'Bearer realm="interp"'})

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") is not None:
            raise HTTPError(411, "chunked request bodies are not supported; send Content-Length",
                            close=True)
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1:
            raise HTTPError(400, "a request may have one Content-Length header, not %d" % len(lengths),
                            close=True)
        raw = lengths[0].strip() if lengths else "0"
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise HTTPError(400, "invalid Content-Length %r" % raw, close=True)
        length = int(raw)
        if length > self.server.max_body:
            raise HTTPError(413, "request body of %d bytes exceeds the limit of %d bytes"
                            % (length, self.server.max_body), close=True)
        content_type = self.headers.get("Content-Type")
        if (length or content_type is not None) and not _is_json_type(content_type):
            raise HTTPError(415, "request bodies must be JSON, sent with 'Content-Type: application/json'"
                            " (got %r)" % content_type, close=True)
        if not length:
            return b""
        self._raw.deadline = time.monotonic() + self.server.io_timeout
        try:
            data = self.rfile.read(length)
        except _TIMEOUTS:
            raise HTTPError(408, "the request body did not arrive within %g s" % self.server.io_timeout,
                            close=True) from None
        if len(data) != length:
            raise HTTPError(400, "request body ended early", close=True)
        return data

    def _route(self, method: str, path: str) -> Tuple[Callable[..., None], Tuple[str, ...]]:
        """The handler for ``method`` on ``path`` and the path's ``{id}``
        (validated); 404 for an unknown path, 405 for a wrong method."""
        parts = [unquote(part) for part in path.split("/")[1:]]
        allowed: Dict[str, str] = {}
        args: Tuple[str, ...] = ()
        rest: Tuple[str, ...] = ()  # a trailing {path}: the rest of the path, not checked as an id
        for route_method, template, name in ROUTES:
            pattern = template.split("/")[1:]
            if pattern[-1] == "{path}":
                if parts[:len(pattern) - 1] == pattern[:-1]:
                    allowed.setdefault(route_method, name)
                    rest = ("/".join(parts[len(pattern) - 1:]),)
                continue
            if len(pattern) == len(parts) and all((want == "{id}" and bool(part)) or want == part
                                                   for want, part in zip(pattern, parts)):
                allowed.setdefault(route_method, name)
                args = tuple(part for want, part in zip(pattern, parts) if want == "{id}")
        if not allowed:
            raise HTTPError(404, "no such endpoint: %s %s" % (method, path))
        if method not in allowed:
            methods = ", ".join(sorted(allowed))
            raise HTTPError(405, "%s is not allowed on %s (allowed: %s)" % (method, path, methods),
                            headers={"Allow": methods})
        return getattr(self, allowed[method]), tuple(check_context_id(arg) for arg in args) + rest

    def _send_json(self, status: int, payload: Any, *, close: bool = False,
                   headers: Optional[Dict[str, str]] = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode("utf-8") + b"\n"
        self._send(status, data, "application/json" if payload is not None else None, close=close,
                   headers=headers)

    def _send(self, status: int, data: bytes, content_type: Optional[str], *, close: bool = False,
              headers: Optional[Dict[str, str]] = None) -> None:
        self._responded = True
        self.server.metrics.answered(status)
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
        else:
            self.send_header("Keep-Alive", "timeout=%g" % self.server.header_timeout)
        self.end_headers()
        if data and self.command != "HEAD":  # a response to HEAD has no body
            self.wfile.write(data)
            self.server.metrics.sent(len(data))

    # -- endpoints -------------------------------------------------------------
    # InterpError subclasses propagate to _dispatch, which maps them (_http_error)

    def _health(self, body: bytes) -> None:
        self._send_json(200, {"status": "ok", "version": __version__})

    def _metrics(self, body: bytes) -> None:
        text = self.server.metrics.render(len(self.server.contexts))
        self._send(200, text.encode("utf-8"), "text/plain; version=0.0.4; charset=utf-8")

    def _list_contexts(self, body: bytes) -> None:
        contexts = self.server.contexts.list()
        self._send_json(200, [context_json(context) for context in contexts])

    def _create_context(self, body: bytes) -> None:
        fields = _json_object(body, {"cwd": (str, type(None))}, ())
        self._send_json(201, context_json(self.server.contexts.create(None, fields.get("cwd"))))

    def _put_context(self, body: bytes, context_id: str) -> None:
        fields = _json_object(body, {"cwd": (str, type(None))}, ())
        self._send_json(201, context_json(self.server.contexts.create(context_id, fields.get("cwd"))))

    def _delete_context(self, body: bytes, context_id: str) -> None:
        self.server.contexts.delete(context_id)
        self._send_json(204, None)

    def _restart_context(self, body: bytes, context_id: str) -> None:
        self._send_json(200, context_json(self.server.contexts.restart(context_id)))

    def _interrupt_context(self, body: bytes, context_id: str) -> None:
        self.server.contexts.interrupt(context_id)
        self._send_json(204, None)

    def _complete(self, body: bytes, context_id: str) -> None:
        fields = _json_object(body, {"code": (str,), "cursor": (int, type(None))}, ("code",))
        try:
            completion_command(fields["code"], fields.get("cursor"))
        except (TypeError, ValueError) as exc:
            raise HTTPError(400, str(exc)) from None
        with self.server.contexts.use(context_id) as entry:
            matches = self.server.interpreter.complete(fields["code"], fields.get("cursor"), entry.engine_id)
        self._send_json(200, {"matches": matches})

    def _answer_input(self, body: bytes, context_id: str) -> None:
        fields = _json_object(body, {"request": (int,), "value": (str, type(None)), "eof": (bool, type(None))},
                              ("request",))
        value, eof = fields.get("value"), bool(fields.get("eof"))
        if (value is None) == (not eof):
            raise HTTPError(400, "give either 'value' (a string) or 'eof': true")
        self.server.contexts.answer(context_id, fields["request"], value)
        self._send_json(204, None)

    def _execute(self, body: bytes) -> None:
        fields = _json_object(body, dict(_RUN_FIELDS, context_id=(str, type(None))), ("code",))
        self._stream_run(fields.get("context_id") or DEFAULT_CONTEXT_ID, fields)

    def _execute_in(self, body: bytes, context_id: str) -> None:
        self._stream_run(context_id, _json_object(body, _RUN_FIELDS, ("code",)))

    def _stream_run(self, context_id: str, fields: Dict[str, Any]) -> None:
        """Run the fields of an execute request in a context, streaming its events."""
        timeout = fields.get("timeout")
        if timeout is None:
            timeout = self.server.default_timeout
        elif not 0 <= timeout <= MAX_TIMEOUT:
            raise HTTPError(400, "the field 'timeout' must be from 0 (no limit) to %d seconds, got %r"
                            % (MAX_TIMEOUT, timeout))
        wants_input = bool(fields.get("input"))
        try:  # the engine's own argument checks, while an error can still be a 400
            command, seconds = run_command(fields["code"], envs=fields.get("envs"), timeout=timeout,
                                           stdin=fields.get("stdin"), on_input=_ask if wants_input else None)
        except (TypeError, ValueError) as exc:
            raise HTTPError(400, str(exc)) from None
        with self.server.contexts.use(context_id) as entry:
            stream = _EventStream(self.connection, self.server.io_timeout, self.server.metrics.sent,
                                  chunked=self._chunked())
            callbacks: Dict[str, Callable[[Any], Any]] = {
                "stdout": lambda m: stream.send({"type": "stdout", "text": m.output}),
                "stderr": lambda m: stream.send({"type": "stderr", "text": m.output}),
                "result": lambda r: stream.send({"type": "result", **result_json(r)}),
                "error": lambda e: stream.send({"type": "error", "name": e.name, "value": e.value,
                                                "traceback": e.traceback}),
            }
            if wants_input:
                callbacks["input"] = self._asker(entry, stream, seconds)
            try:
                self.connection.setblocking(False)  # the stream's pump owns the socket until finish()
                final = self._run(stream, entry, context_id, command, seconds, callbacks)
                if final is not None:
                    stream.send(final)
            finally:
                delivered = stream.finish()
                self.connection.settimeout(self.server.io_timeout)
        if not delivered:
            self.close_connection = True

    def _asker(self, entry: _Entry, stream: _EventStream, seconds: Optional[float]) -> Callable[[str], str]:
        """The run's ``on_input``: an ``input_request`` event, then wait for
        its answer (POST .../input), at most the run's timeout (then EOF)."""
        table = self.server.contexts

        def ask(prompt: str) -> str:
            number, slot = table.ask(entry)
            try:
                stream.send({"type": "input_request", "request": number, "prompt": prompt})
                give_up = None if seconds is None else time.monotonic() + seconds
                while not slot.answered.wait(CANCEL_POLL):
                    if stream.gone.is_set():
                        raise RunCancelledError("the client went away while input() waited")
                    if give_up is not None and time.monotonic() >= give_up:
                        raise EOFError
            finally:
                table.forget(entry, number)
            if slot.value is None:
                raise EOFError
            return slot.value
        return ask

    def _run(self, stream: _EventStream, entry: _Entry, context_id: str, command: Dict[str, Any],
             seconds: Optional[float], callbacks: Dict[str, Callable[[Any], Any]]) -> Optional[Dict[str, Any]]:
        """Run the command, streaming its events; return the final event (None
        when the client is gone). Before the stream has begun (an unknown
        context, say), errors propagate to become plain JSON error responses."""
        def begin() -> None:  # the run has its place in line: the 200 goes out now
            self._responded = True
            self.log_request(200)
            self.server.metrics.answered(200)
            stream.begin(self._stream_head())

        public = self.server.contexts.speaker(entry, context_id)  # messages name the context as the client does

        metrics = self.server.metrics
        started = time.monotonic()
        try:
            result = self.server.interpreter._submit(entry.engine_id, command, seconds, callbacks,
                                                     cancel=stream.gone, queued=begin)
        except InterpTimeoutError as exc:
            metrics.run_ended("timeout", time.monotonic() - started, timed_out=True)
            return {"type": "timeout", "message": public(exc), "restarted": exc.restarted,
                    "execution_count": exc.result.execution_count}
        except RunCancelledError:
            metrics.run_ended("cancelled", time.monotonic() - started)
            return None  # nobody reads it
        except Exception as exc:
            if not stream.begun:
                raise
            outcome = _OUTCOMES.get(type(exc), "failed")
            metrics.run_ended(outcome, time.monotonic() - started, died=isinstance(exc, WorkerDiedError))
            if not isinstance(exc, InterpError):
                self._log_fault()
            event: Dict[str, Any] = {"type": "interp_error", "name": type(exc).__name__, "message": public(exc)}
            if isinstance(exc, WorkerDiedError):
                event["returncode"] = exc.returncode
            partial = getattr(exc, "result", None)
            if isinstance(partial, ExecutionResult):
                event["execution_count"] = partial.execution_count
                if not stream.lines:  # output of a worker that died while idle: never streamed
                    event.update(stdout=partial.stdout, stderr=partial.stderr)
            return event
        metrics.run_ended("ok" if result.error is None else "error", time.monotonic() - started)
        return {"type": "end", "execution_count": result.execution_count}

    # -- MCP (Streamable HTTP) at /mcp: interp.mcp.http does the protocol ---------

    def _mcp_post(self, body: bytes) -> None:
        streams: List[_SSEStream] = []

        def open_stream() -> _SSEStream:
            stream = _SSEStream(self)
            streams.append(stream)
            return stream
        try:
            response = self.server.mcp.post(self.headers, body, open_stream,
                                             lambda: _peer_closed(self.connection))
        finally:
            for stream in streams:
                if not stream.finish():
                    self.close_connection = True
        if response is not None:
            self._mcp_respond(response)

    def _mcp_delete(self, body: bytes) -> None:
        self._mcp_respond(self.server.mcp.delete(self.headers))

    def _mcp_respond(self, response: MCPResponse) -> None:
        if response.status == 499:  # the client went away: nobody to answer
            self.close_connection = True
            return
        self._send_json(response.status, response.body, headers=response.headers)

    def _chunked(self) -> bool:
        """Whether a streamed response can be chunked: an HTTP/1.0 client does
        not know chunking, so its stream ends when the connection closes."""
        if self.request_version == "HTTP/1.0":
            self.close_connection = True
            return False
        return True

    def _framing(self) -> List[str]:
        """The header lines saying how a streamed response's body ends."""
        if self.request_version == "HTTP/1.0":
            return ["Connection: close"]
        return ["Transfer-Encoding: chunked", "Keep-Alive: timeout=%g" % self.server.header_timeout]

    def _stream_head(self) -> bytes:
        lines = ["HTTP/1.1 200 OK", "Server: " + self.version_string(), "Date: " + self.date_time_string(),
                 "Content-Type: application/x-ndjson", *self._framing(), "Cache-Control: no-store",
                 "X-Accel-Buffering: no"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _ask(prompt: str) -> str:
    """Stands for the HTTP ``on_input`` while a request is checked."""
    raise EOFError


#: The fields of an execute request's body and their types.
_RUN_FIELDS: Dict[str, Tuple[type, ...]] = {
    "code": (str,), "envs": (dict, type(None)), "timeout": (int, float, type(None)),
    "stdin": (str, type(None)), "input": (bool, type(None))}


#: The outcome label of a run that ended with an InterpError (see _metrics.OUTCOMES).
_OUTCOMES: Dict[type, str] = {WorkerDiedError: "worker_died", ContextRestartedError: "restarted",
                              ContextNotFoundError: "deleted"}


#: Every endpoint: (method, path template, handler method). ``{id}`` matches
#: one path segment, a context id (validated, passed to the handler). To add
#: an endpoint, add a line here and a ``RequestHandler`` method taking
#: ``(body, *ids)``; errors are raised as HTTPError or InterpError.
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
