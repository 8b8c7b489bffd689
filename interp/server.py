"""HTTP front end: ``python -m interp serve``.

A small JSON API over one shared :class:`~interp.CodeInterpreter`, for
programs in any language::

    POST   /contexts                {"cwd"?}        -> 201 context
    GET    /contexts                                -> 200 [context, ...]
    DELETE /contexts/{id}                           -> 204
    POST   /contexts/{id}/restart                   -> 200 context
    POST   /contexts/{id}/interrupt                 -> 204
    POST   /execute                 {"code", "context_id"?, "envs"?, "timeout"?}
                                                    -> 200 application/x-ndjson stream
    GET    /health                                  -> 200 {"status": "ok", ...}

``/execute`` streams one JSON object per line, each sent in its own HTTP
chunk as it happens: ``stdout`` / ``stderr`` (``text``: one line),
``result`` (the Result fields that are set, plus ``is_main_result``),
``error`` (``name``, ``value``, ``traceback``), then exactly one final event:
``end`` (``execution_count``), ``timeout`` (``message``, ``restarted``) or
``interp_error`` (``name``, ``message``: the worker died, the context was
restarted or deleted during the run). A client that disconnects cancels its
run (``run_code(cancel=...)``): a queued run is dropped; a running one gets
KeyboardInterrupt and its context keeps its state, unless the code ignores
the interrupt for the grace period and is killed, as after a timeout.

The context id ``default`` names the default context. Every request needs
``Authorization: Bearer <token>`` when a token is set; without one the
server only binds loopback addresses. Errors are JSON:
``{"error": "Not Found", "message": "..."}``.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
import os
import select
import signal
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

from . import __version__
from .api import CodeInterpreter
from .engine import DEFAULT_CONTEXT_ID, run_command
from .errors import ContextNotFoundError, InterpError, InterpTimeoutError, InvalidCwdError
from .frontend import context_json
from .types import MIME_FIELDS, Result

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_BODY = 10 * 1024 * 1024
TOKEN_ENV = "INTERP_TOKEN"


def result_json(result: Result) -> Dict[str, Any]:
    """A Result as a JSON object: the formats that are set, ``extra`` when
    not empty, and ``is_main_result``."""
    data: Dict[str, Any] = {attr: getattr(result, attr) for attr in MIME_FIELDS.values()
                            if getattr(result, attr) is not None}
    if result.extra:
        data["extra"] = result.extra
    data["is_main_result"] = result.is_main_result
    return data


# -- the HTTP server --------------------------------------------------------

class HTTPError(Exception):
    """An error response: status, message, and whether to close the connection."""

    def __init__(self, status: int, message: str, close: bool = False,
                 headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close
        self.headers = headers or {}


class InterpHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server over one shared CodeInterpreter.

    ``token`` (when not None) is required as ``Authorization: Bearer`` on
    every request; ``max_body`` bounds request bodies (413 beyond it).
    Closing the server does not close the interpreter.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], interpreter: CodeInterpreter, *,
                 token: Optional[str] = None, max_body: int = DEFAULT_MAX_BODY,
                 log: bool = True) -> None:
        host = address[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.interpreter = interpreter
        self.token = token
        self.max_body = max_body
        self.log = log
        super().__init__(address, RequestHandler)

    @property
    def port(self) -> int:
        """The port the server listens on (useful after binding port 0)."""
        return self.server_address[1]


class RequestHandler(BaseHTTPRequestHandler):
    """Routes one HTTP/1.1 request (keep-alive) to the shared interpreter."""

    protocol_version = "HTTP/1.1"
    server_version = "interp/" + __version__
    server: InterpHTTPServer

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

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log:
            super().log_message(format, *args)

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
        """http.server's own errors (malformed request line, unsupported
        method, oversized headers) as JSON too; the connection is closed."""
        self.close_connection = True
        try:
            self._send_json(code, _error_body(code, explain or message or HTTPStatus(code).phrase), close=True)
        except OSError:
            pass

    # -- plumbing ------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        try:
            self._check_auth()
            body = self._read_body()
            handler, args = self._route(method, urlsplit(self.path).path)
            handler(body, *args)
        except HTTPError as exc:
            if exc.close:
                self.close_connection = True
            self._send_json(exc.status, _error_body(exc.status, exc.message), close=exc.close,
                            headers=exc.headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _check_auth(self) -> None:
        token = self.server.token
        if token is None:
            return
        given = self.headers.get("Authorization", "")
        expected = "Bearer " + token
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                                   expected.encode("utf-8", "surrogateescape")):
            raise HTTPError(401, "missing or wrong 'Authorization: Bearer <token>' header",
                            close=True, headers={"WWW-Authenticate": 'Bearer realm="interp"'})

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") is not None:
            raise HTTPError(411, "chunked request bodies are not supported; send Content-Length",
                            close=True)
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
            if length < 0:
                raise ValueError
        except ValueError:
            raise HTTPError(400, "invalid Content-Length %r" % raw, close=True) from None
        if length > self.server.max_body:
            raise HTTPError(413, "request body of %d bytes exceeds the limit of %d bytes"
                            % (length, self.server.max_body), close=True)
        data = self.rfile.read(length)
        if len(data) != length:
            raise HTTPError(400, "request body ended early", close=True)
        return data

    def _route(self, method: str, path: str) -> Tuple[Callable[..., None], Tuple[str, ...]]:
        parts = [unquote(part) for part in path.split("/")[1:]]
        routes: Dict[str, Callable[..., None]]
        args: Tuple[str, ...] = ()
        if parts == ["contexts"]:
            routes = {"GET": self._list_contexts, "POST": self._create_context}
        elif len(parts) == 2 and parts[0] == "contexts" and parts[1]:
            routes, args = {"DELETE": self._delete_context}, (parts[1],)
        elif len(parts) == 3 and parts[0] == "contexts" and parts[1] and parts[2] in ("restart", "interrupt"):
            action = self._restart_context if parts[2] == "restart" else self._interrupt_context
            routes, args = {"POST": action}, (parts[1],)
        elif parts == ["execute"]:
            routes = {"POST": self._execute}
        elif parts == ["health"]:
            routes = {"GET": self._health}
        else:
            raise HTTPError(404, "no such endpoint: %s %s" % (method, path))
        if method not in routes:
            allowed = ", ".join(sorted(routes))
            raise HTTPError(405, "%s is not allowed on %s (allowed: %s)" % (method, path, allowed),
                            headers={"Allow": allowed})
        return routes[method], args

    def _send_json(self, status: int, payload: Any, *, close: bool = False,
                   headers: Optional[Dict[str, str]] = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode("utf-8") + b"\n"
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if data:
            self.wfile.write(data)

    # -- endpoints -------------------------------------------------------------

    def _health(self, body: bytes) -> None:
        self._send_json(200, {"status": "ok", "version": __version__})

    def _list_contexts(self, body: bytes) -> None:
        contexts = self.server.interpreter.list_contexts()
        self._send_json(200, [context_json(context) for context in contexts])

    def _create_context(self, body: bytes) -> None:
        fields = _json_object(body, {"cwd": (str, type(None))}, ())
        try:
            context = self.server.interpreter.create_context(cwd=fields.get("cwd"))
        except InvalidCwdError as exc:
            raise HTTPError(400, str(exc)) from None
        self._send_json(201, context_json(context))

    def _delete_context(self, body: bytes, context_id: str) -> None:
        if context_id in (None, DEFAULT_CONTEXT_ID):
            raise HTTPError(400, "the default context cannot be deleted")
        try:
            self.server.interpreter.delete_context(context_id)
        except ContextNotFoundError as exc:
            raise HTTPError(404, str(exc)) from None
        self._send_json(204, None)

    def _restart_context(self, body: bytes, context_id: str) -> None:
        try:
            context = self.server.interpreter.restart_context(context_id)
        except ContextNotFoundError as exc:
            raise HTTPError(404, str(exc)) from None
        self._send_json(200, context_json(context))

    def _interrupt_context(self, body: bytes, context_id: str) -> None:
        try:
            self.server.interpreter.interrupt(context_id)
        except ContextNotFoundError as exc:
            raise HTTPError(404, str(exc)) from None
        self._send_json(204, None)

    def _execute(self, body: bytes) -> None:
        fields = _json_object(body, {"code": (str,), "context_id": (str, type(None)),
                                     "envs": (dict, type(None)), "timeout": (int, float, type(None))},
                              ("code",))
        context_id = fields.get("context_id")
        try:  # the engine's own argument checks, while an error can still be a 400
            run_command(fields["code"], envs=fields.get("envs"), timeout=fields.get("timeout"))
        except (TypeError, ValueError) as exc:
            raise HTTPError(400, str(exc)) from None
        interpreter = self.server.interpreter
        if context_id is not None and context_id not in {c.id for c in interpreter.list_contexts()}:
            raise HTTPError(404, "no context with id %r" % context_id)

        stream = _EventStream(self)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Accel-Buffering", "no")
        self.end_headers()
        watcher = threading.Thread(target=_watch_disconnect, args=(self.connection, stream),
                                   daemon=True, name="interp-http-watch")
        watcher.start()
        try:
            result = interpreter.run_code(
                fields["code"], context=context_id, envs=fields.get("envs"),
                timeout=fields.get("timeout"), cancel=stream.gone,
                on_stdout=lambda m: stream.send({"type": "stdout", "text": m.output}),
                on_stderr=lambda m: stream.send({"type": "stderr", "text": m.output}),
                on_result=lambda r: stream.send({"type": "result", **result_json(r)}),
                on_error=lambda e: stream.send({"type": "error", "name": e.name, "value": e.value,
                                                "traceback": e.traceback}))
            stream.send({"type": "end", "execution_count": result.execution_count})
        except InterpTimeoutError as exc:
            stream.send({"type": "timeout", "message": str(exc), "restarted": exc.restarted})
        except (InterpError, TypeError, ValueError) as exc:  # RunCancelledError: nobody reads it
            stream.send({"type": "interp_error", "name": type(exc).__name__, "message": str(exc)})
        finally:
            stream.close()
        if stream.gone.is_set():
            self.close_connection = True


class _EventStream:
    """Writes NDJSON events as HTTP chunks. ``gone`` is set when the client
    went away (a failed write, or the watcher seeing the socket close); it
    is the run's ``cancel`` event, so that stops the run."""

    def __init__(self, handler: RequestHandler) -> None:
        self._handler = handler
        self._lock = threading.Lock()
        self.gone = threading.Event()
        self.closed = False

    def send(self, event: Dict[str, Any]) -> None:
        data = json.dumps(event).encode("utf-8") + b"\n"
        self._write(b"%X\r\n%s\r\n" % (len(data), data))

    def close(self) -> None:
        self._write(b"0\r\n\r\n")
        with self._lock:
            self.closed = True

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self.gone.is_set():
                return
            try:
                self._handler.wfile.write(data)
                self._handler.wfile.flush()
            except OSError:  # BrokenPipeError, ConnectionResetError, a timeout
                self.gone.set()

    def disconnected(self) -> None:
        """The watcher saw the client close the connection."""
        with self._lock:
            if not self.closed:
                self.gone.set()


def _watch_disconnect(sock: socket.socket, stream: _EventStream) -> None:
    """Until the response ends, watch the request's socket for the client
    closing it: a run that prints nothing would otherwise never notice."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    while not stream.closed and not stream.gone.is_set():
        try:
            events = poller.poll(200)
        except (OSError, ValueError):
            return
        for _fd, flags in events:
            if flags & (select.POLLHUP | select.POLLERR):
                stream.disconnected()
                return
            try:
                data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError:
                stream.disconnected()
                return
            if not data:
                stream.disconnected()
                return
            return  # the client sent its next request already: stop watching, do not spin


def _error_body(status: int, message: str) -> Dict[str, str]:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"error": phrase, "message": message}


def _json_object(body: bytes, fields: Dict[str, Tuple[type, ...]], required: Tuple[str, ...]) -> Dict[str, Any]:
    """Parse ``body`` as a JSON object with only ``fields`` (name -> allowed
    types) and the ``required`` ones; an empty body is ``{}``. Raises a 400."""
    if not body.strip():
        value: Any = {}
    else:
        try:
            value = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise HTTPError(400, "the body is not valid JSON: %s" % exc) from None
    if not isinstance(value, dict):
        raise HTTPError(400, "the body must be a JSON object, not %s" % type(value).__name__)
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise HTTPError(400, "unknown field(s): %s (allowed: %s)" % (", ".join(unknown), ", ".join(fields)))
    for name in required:
        if name not in value:
            raise HTTPError(400, "the field %r is required" % name)
    names = {str: "a string", dict: "an object", int: "a number", type(None): "null"}
    for name, item in value.items():
        kinds = fields[name]
        if not isinstance(item, kinds) or (isinstance(item, bool) and bool not in kinds):
            allowed = " or ".join(dict.fromkeys(names.get(kind, kind.__name__) for kind in kinds))
            raise HTTPError(400, "the field %r must be %s" % (name, allowed))
    return value


def is_loopback(host: str) -> bool:
    """True if every address ``host`` resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def make_server(interpreter: CodeInterpreter, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                token: Optional[str] = None, max_body: int = DEFAULT_MAX_BODY,
                log: bool = True) -> InterpHTTPServer:
    """Bind an :class:`InterpHTTPServer` (call ``serve_forever()`` on it).

    Raises ValueError for a non-loopback ``host`` without a ``token``, and
    OSError if the address cannot be bound.
    """
    if not token and not is_loopback(host):
        raise ValueError("refusing to listen on %r without a token: anyone who can reach it could "
                         "run code as you; set --token or %s, or bind 127.0.0.1" % (host, TOKEN_ENV))
    return InterpHTTPServer((host, port), interpreter, token=token or None, max_body=max_body, log=log)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m interp serve",
        description="Serve stateful Python contexts over HTTP (JSON; /execute streams NDJSON).")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="address to bind (default %(default)s; non-loopback needs a token)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="port (default %(default)s; 0: any free port)")
    parser.add_argument("--token", default=None,
                        help="require 'Authorization: Bearer TOKEN' (default: $%s)" % TOKEN_ENV)
    parser.add_argument("--cwd", metavar="DIR", help="default working directory of contexts")
    parser.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, metavar="BYTES",
                        help="largest request body (default %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="do not log each request to stderr")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``python -m interp serve``; returns the exit status."""
    args = _parser().parse_args(argv)
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    try:
        interpreter = CodeInterpreter(cwd=args.cwd)
    except InterpError as exc:
        print("interp serve: %s" % exc, file=sys.stderr)
        return 2
    try:
        try:
            server = make_server(interpreter, args.host, args.port, token=token,
                                 max_body=args.max_body, log=not args.quiet)
        except (ValueError, OSError) as exc:
            print("interp serve: %s" % exc, file=sys.stderr)
            return 2
        signal.signal(signal.SIGTERM, _exit_on_signal)
        host = args.host if ":" not in args.host else "[%s]" % args.host
        print("interp serve: listening on http://%s:%d%s" % (host, server.port,
              " (token required)" if token else ""), file=sys.stderr, flush=True)
        try:
            server.serve_forever()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            server.server_close()
    finally:
        interpreter.close()
    return 0


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
