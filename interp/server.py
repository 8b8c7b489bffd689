"""HTTP front end: ``python -m interp serve``.

A small JSON API over one shared :class:`~interp.CodeInterpreter`, for
programs in any language::

    POST   /contexts                {"cwd"?}        -> 201 context (id chosen by the server)
    PUT    /contexts/{id}           {"cwd"?}        -> 201 context (id chosen by the client)
    GET    /contexts                                -> 200 [context, ...]
    DELETE /contexts/{id}                           -> 204
    POST   /contexts/{id}/execute   {"code", "envs"?, "timeout"?, "stdin"?, "input"?}
                                                    -> 200 application/x-ndjson stream
    POST   /contexts/{id}/input     {"request", "value" | "eof"}   -> 204
    POST   /contexts/{id}/complete  {"code", "cursor"?}            -> 200 {"matches"}
    POST   /contexts/{id}/restart                   -> 200 context
    POST   /contexts/{id}/interrupt                 -> 204
    POST   /execute                 as above, plus "context_id"?
    POST   /mcp                     one MCP message (Streamable HTTP, interp.mcp.http)
    DELETE /mcp                     end an MCP session (Mcp-Session-Id)
    GET    /health                                  -> 200 {"status": "ok", ...}
    GET    /metrics                                 -> 200 Prometheus text

The routes are the table ROUTES. Every operation on a context names it in
the path, so a proxy can route by the id alone; ids are checked
(CONTEXT_ID). ``input_request`` events (``request``, ``prompt``) ask for
``input()`` answers when the request set ``"input": true``.

``/execute`` streams one JSON object per line, each sent in its own HTTP
chunk as it happens: ``stdout`` / ``stderr`` (``text``: one line),
``result`` (the Result fields that are set, plus ``is_main_result``),
``error`` (``name``, ``value``, ``traceback``), then exactly one final event:
``end`` (``execution_count``), ``timeout`` (``message``, ``restarted``) or
``interp_error`` (``name``, ``message``: the worker died, the context was
restarted or deleted during the run). A client that disconnects, or stops
reading its stream, cancels its run (``run_code(cancel=...)``): a queued run
is dropped; a running one gets KeyboardInterrupt and its context keeps its
state, unless the code ignores the interrupt for the grace period and is
killed, as after a timeout. The run's callbacks never wait for the client.

The context id ``default`` names the default context. Every request needs
``Authorization: Bearer <token>`` when a token is set; without one the
server only binds loopback addresses. Browsers are kept out: a request whose
``Origin`` is not the server's own gets 403, a ``Host`` that is neither the
bound address nor a loopback name gets 403 (DNS rebinding), and bodies must
be ``Content-Type: application/json`` (415), which a page cannot send to
another origin without CORS. Slow clients are bounded: a request's head must
arrive within ``header_timeout`` seconds, its body within ``io_timeout``, at
most ``max_connections`` are served at once (more wait in the listen
backlog). Every error, whatever its cause, is a JSON response:
``{"error": "Not Found", "message": "..."}``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import errno
import hmac
import http.client
import io
import itertools
import ipaddress
import json
import math
import os
import re
import select
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Deque, Dict, FrozenSet, Iterable, Iterator, List, Optional, Set, Tuple
from urllib.parse import unquote, urlsplit

from . import __version__, _jsonlimits, _metrics
from .mcp.core import MCPCore
from ._tls_relay import TLSRelay, server_context
from .mcp.http import KEEPALIVE as MCP_KEEPALIVE
from .mcp.http import MCPEndpoint
from .mcp.http import http_error_body as mcp_http_error_body
from .mcp.http import Response as MCPResponse
from .api import CodeInterpreter
from .engine import CANCEL_POLL, DEFAULT_CONTEXT_ID, DEFAULT_TIMEOUT, completion_command, run_command
from .errors import (ContextNotFoundError, ContextRestartedError, InterpError, InterpTimeoutError,
                     InvalidCwdError, RunCancelledError, WorkerDiedError)
from .frontend import OneLineParser, context_json, fail
from .mcp import add_output_arguments as add_mcp_arguments
from .mcp import check_output_arguments as check_mcp_arguments
from .sandbox import add_arguments as sandbox_arguments
from .sandbox import from_arguments as sandbox_from
from .types import MIME_FIELDS, ExecutionResult, InterpreterContext, Result

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_BODY = 10 * 1024 * 1024
#: Seconds a connection may take to deliver a request's line and headers,
#: counted from when the server starts waiting for it (so also the longest
#: a keep-alive connection may stay idle).
DEFAULT_HEADER_TIMEOUT = 10.0
#: Seconds the server waits for a request body, or for a client to accept
#: any byte of a response, before it treats the client as gone.
DEFAULT_IO_TIMEOUT = 30.0
#: Connections served at once; more wait in the listen backlog.
DEFAULT_MAX_CONNECTIONS = 64
#: While every connection slot is taken, a request head must arrive within
#: this many seconds of when the server began waiting for it (an honest
#: client sends it at once), so slow heads cannot keep others waiting long.
BUSY_HEADER_TIMEOUT = 1.0
#: Connections the kernel queues for the accept loop (capped by somaxconn).
LISTEN_BACKLOG = 1024
#: Bytes of a request line plus headers (431 beyond).
MAX_HEAD = 64 * 1024
#: Nesting of arrays and objects a request body may have (the API needs 2).
MAX_JSON_DEPTH = 32
#: Digits an integer in a request body may have.
MAX_INT_DIGITS = 30
#: The largest ``timeout`` of /execute, in seconds (0 means no limit).
MAX_TIMEOUT = 365 * 24 * 3600
#: Bytes of events that may wait behind the one being sent to an /execute
#: client (beyond what the kernel's socket buffers hold) before it counts as gone.
STREAM_BUFFER = 8 * 1024 * 1024
#: Pause of the accept loop when the process is out of file descriptors.
ACCEPT_BACKOFF = 0.1
TOKEN_ENV = "INTERP_TOKEN"
NAME = "interp serve"  # how the command line names itself in its complaints

_TIMEOUTS = (TimeoutError, socket.timeout)  # distinct classes before Python 3.10
#: errnos of a connection whose client vanished (besides ConnectionError and timeouts)
_GONE_ERRNOS = frozenset({errno.ENOTCONN, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN,
                          errno.EHOSTDOWN, errno.ETIMEDOUT})
_POLLRDHUP = getattr(select, "POLLRDHUP", 0)  # the peer closed its side (Linux)
#: accept() / os.pipe() / thread start failures that mean "out of resources, try later"
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EAGAIN})


def result_json(result: Result) -> Dict[str, Any]:
    """A Result as a JSON object: the formats that are set, ``extra`` when
    not empty, and ``is_main_result``."""
    data: Dict[str, Any] = {attr: getattr(result, attr) for attr in MIME_FIELDS.values()
                            if getattr(result, attr) is not None}
    if result.extra:
        data["extra"] = result.extra
    data["is_main_result"] = result.is_main_result
    return data


# -- the contexts a server holds, by the ids clients use -------------------------

#: A context id in a path: letters, digits, '.', '_' and '-', up to 128 characters.
CONTEXT_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
#: Ids of contexts deleted for being idle that are remembered (for a clear 404).
EXPIRED_MEMORY = 100_000


def check_context_id(context_id: str) -> str:
    """``context_id`` if it is a valid context id, else a 400."""
    if not CONTEXT_ID.fullmatch(context_id) or context_id in (".", ".."):
        raise HTTPError(400, "invalid context id %r: use 1 to 128 letters, digits, '.', '_' or '-'"
                        % context_id[:200])
    return context_id


class _InputSlot:
    """One ``input()`` of a run waiting for its answer over HTTP."""

    def __init__(self) -> None:
        self.answered = threading.Event()
        self.value: Optional[str] = None  # None: EOF


class _Entry:
    """A context as the server knows it: the engine's id behind the client's
    id, when it was last used, how many requests use it now, and the
    ``input()`` calls of its run that wait for an answer."""

    def __init__(self, engine_id: str) -> None:
        self.engine_id = engine_id
        self.last_used = time.monotonic()
        self.users = 0
        self.inputs: Dict[int, _InputSlot] = {}
        self.next_input = 1


class ContextTable:
    """The contexts of one server, by the id clients use (chosen by the client
    with ``PUT /contexts/{id}``, or the engine's for ``POST /contexts``).

    Bounds their number (``max_contexts``: a 503 beyond) and deletes those
    unused for ``idle_timeout`` seconds (a later request for one gets a 404
    that says so). The default context is always there and never expires.
    """

    def __init__(self, interpreter: CodeInterpreter, metrics: _metrics.ServerMetrics, *,
                 max_contexts: Optional[int] = None, idle_timeout: Optional[float] = None) -> None:
        self._interpreter = interpreter
        self._metrics = metrics
        self.max_contexts = max_contexts
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._entries: Dict[str, _Entry] = {}  # client id -> entry, oldest first
        self._creating: Set[str] = set()
        self._expired: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._default = _Entry(DEFAULT_CONTEXT_ID)
        self._anonymous = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def create(self, context_id: Optional[str], cwd: Optional[str]) -> InterpreterContext:
        """Start a context (with the client's id, or the engine's when None)."""
        with self._lock:
            if context_id is not None and (context_id in self._entries or context_id in self._creating
                                           or context_id == DEFAULT_CONTEXT_ID):
                raise HTTPError(409, "a context with id %r already exists" % context_id)
            if self.max_contexts is not None and len(self._entries) + len(self._creating) >= self.max_contexts:
                raise HTTPError(503, "this server holds its maximum of %d contexts (--max-contexts); "
                                "delete one or use another server" % self.max_contexts,
                                headers={"Retry-After": "1"})
            key = context_id if context_id is not None else "\0%d" % next(self._anonymous)
            self._creating.add(key)
        try:
            context = self._interpreter.create_context(cwd=cwd)
        finally:
            with self._lock:
                self._creating.discard(key)
        public = context_id if context_id is not None else context.id
        with self._lock:
            self._entries[public] = _Entry(context.id)
            self._expired.pop(public, None)
        self._metrics.context_created()
        return dataclasses.replace(context, id=public)

    def _find(self, context_id: str) -> _Entry:
        """The entry for ``context_id`` (with ``_lock`` held), else a 404."""
        if context_id == DEFAULT_CONTEXT_ID:
            return self._default
        entry = self._entries.get(context_id)
        if entry is not None:
            return entry
        if context_id in self._expired and self.idle_timeout is not None:
            raise HTTPError(404, "context %r was deleted after %g s without use (--idle-timeout)"
                            % (context_id, self.idle_timeout), kind="ContextNotFoundError")
        raise HTTPError(404, "no context with id %r on this server (deleted, never created, or it "
                        "lived on a server that went away)" % context_id, kind="ContextNotFoundError")

    @contextlib.contextmanager
    def use(self, context_id: str) -> Iterator[_Entry]:
        """Hold the context as in use (so it does not expire) for a request."""
        with self._lock:
            entry = self._find(context_id)
            entry.users += 1
        try:
            yield entry
        finally:
            with self._lock:
                entry.users -= 1
                entry.last_used = time.monotonic()

    def delete(self, context_id: str) -> None:
        with self._lock:
            if context_id == DEFAULT_CONTEXT_ID:
                raise HTTPError(400, "the default context cannot be deleted")
            entry = self._find(context_id)
            del self._entries[context_id]
        self._interpreter.delete_context(entry.engine_id)

    def public(self, context_id: str, context: InterpreterContext) -> InterpreterContext:
        return dataclasses.replace(context, id=context_id)

    def list(self) -> List[InterpreterContext]:
        """The contexts, oldest first, by the ids clients use."""
        with self._lock:
            names = {entry.engine_id: name for name, entry in self._entries.items()}
        return [dataclasses.replace(context, id=names[context.id])
                for context in self._interpreter.list_contexts() if context.id in names]

    def expire(self, now: float) -> int:
        """Delete the contexts unused for ``idle_timeout`` seconds; return how many."""
        if self.idle_timeout is None:
            return 0
        with self._lock:
            idle = [(name, entry) for name, entry in self._entries.items()
                    if entry.users == 0 and now - entry.last_used >= self.idle_timeout]
            for name, _entry in idle:
                del self._entries[name]
                self._expired[name] = now
                while len(self._expired) > EXPIRED_MEMORY:
                    self._expired.popitem(last=False)
        for _name, entry in idle:
            try:
                self._interpreter.delete_context(entry.engine_id)
            except InterpError:
                pass  # already gone (the interpreter is closing)
            self._metrics.context_expired()
        return len(idle)

    # -- input() over HTTP ---------------------------------------------------------

    def ask(self, entry: _Entry) -> Tuple[int, _InputSlot]:
        """Open an input request of ``entry``'s run; return its number and slot."""
        with self._lock:
            number = entry.next_input
            entry.next_input += 1
            slot = entry.inputs[number] = _InputSlot()
        return number, slot

    def forget(self, entry: _Entry, number: int) -> None:
        with self._lock:
            entry.inputs.pop(number, None)

    def answer(self, context_id: str, number: int, value: Optional[str]) -> None:
        """Answer input request ``number`` of the context's run (None: EOF), else a 409."""
        with self._lock:
            slot = self._find(context_id).inputs.pop(number, None)
        if slot is None:
            raise HTTPError(409, "context %r has no input request %d waiting (answered already, or "
                            "the code stopped waiting)" % (context_id, number))
        slot.value = value
        slot.answered.set()


# -- the HTTP server --------------------------------------------------------

class HTTPError(Exception):
    """An error response: status, message, and whether to close the connection."""

    def __init__(self, status: int, message: str, close: bool = False,
                 headers: Optional[Dict[str, str]] = None, kind: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close
        self.headers = headers or {}
        self.kind = kind  # the InterpError class behind it, named in the body as "interp_error"


class InterpHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server over one shared CodeInterpreter.

    ``token`` (when not None) is required as ``Authorization: Bearer`` on
    every request; ``max_body`` bounds request bodies (413 beyond it).
    ``header_timeout`` and ``io_timeout`` bound how long a client may take
    (see DEFAULT_HEADER_TIMEOUT and DEFAULT_IO_TIMEOUT); at most
    ``max_connections`` are served at once. ``allowed_hosts`` are Host
    names accepted besides the bound address and loopback names (``*``:
    any); they need a token. Raises ValueError for bad options. Closing the
    server does not close the interpreter.
    """

    daemon_threads = True
    block_on_close = False  # server_close() must not wait for runs; closing the interpreter ends them
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: Tuple[str, int], interpreter: CodeInterpreter, *,
                 token: Optional[str] = None, max_body: int = DEFAULT_MAX_BODY,
                 log: bool = True, header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                 io_timeout: float = DEFAULT_IO_TIMEOUT,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 allowed_hosts: Iterable[str] = (), max_contexts: Optional[int] = None,
                 idle_timeout: Optional[float] = None, tls: Optional[ssl.SSLContext] = None) -> None:
        if max_contexts is not None and (isinstance(max_contexts, bool) or not isinstance(max_contexts, int)
                                         or max_contexts < 1):
            raise ValueError("max_contexts must be a positive int, got %r" % (max_contexts,))
        if idle_timeout is not None:
            idle_timeout = _positive("idle_timeout", idle_timeout)
        self.header_timeout = _positive("header_timeout", header_timeout)
        self.io_timeout = _positive("io_timeout", io_timeout)
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            raise ValueError("max_connections must be a positive int, got %r" % (max_connections,))
        if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 0:
            raise ValueError("max_body must be an int >= 0, got %r" % (max_body,))
        extra_hosts = frozenset(name.strip().lower() for name in allowed_hosts)
        if extra_hosts and not token:
            raise ValueError("allowing other Host names needs a token: without one, any web page "
                             "could reach the server by DNS rebinding")
        host = address[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.interpreter = interpreter
        self.metrics = _metrics.ServerMetrics()
        self.contexts = ContextTable(interpreter, self.metrics, max_contexts=max_contexts,
                                     idle_timeout=idle_timeout)
        #: MCP at /mcp: the same interpreter; its options (output_limit, task_after) are on mcp.core
        self.mcp = MCPEndpoint(MCPCore(interpreter, max_contexts=max_contexts))
        self.token = token
        #: the timeout of runs that give none (None: the engine's DEFAULT_TIMEOUT; 0: no limit)
        self.default_timeout: Optional[float] = None
        self.max_body = max_body
        self.log = log
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._active = 0  # connections being served
        self._active_lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._out_of_fds = False
        super().__init__(address, RequestHandler)
        #: terminates TLS when serving https (None: plain HTTP)
        self.tls = None if tls is None else TLSRelay(tls, self.header_timeout)
        self.hosts: FrozenSet[str] = extra_hosts | {
            name for name in (host.strip("[]").lower(), str(self.server_address[0]).lower())
            if not _is_unspecified(name)}

    @property
    def port(self) -> int:
        """The port the server listens on (useful after binding port 0)."""
        return self.server_address[1]

    def host_allowed(self, name: str) -> bool:
        """True if a request may name ``name`` (lowercase, no port) in its Host header."""
        if "*" in self.hosts or name in self.hosts or name in ("localhost", "localhost."):
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    # -- accepting: bounded, and never spinning ----------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Accept connections until :meth:`shutdown` (after which the server
        does not serve again). At most ``max_connections`` are served at once;
        the others wait in the listen backlog. Out of file descriptors, the
        loop pauses instead of spinning."""
        self._stopped.clear()
        reaper = None
        if self.contexts.idle_timeout is not None:
            reaper = threading.Thread(target=self._reap, daemon=True, name="interp-http-idle")
            reaper.start()
        try:
            self.socket.setblocking(False)
            poller = select.poll()
            poller.register(self.socket, select.POLLIN)
            while not self._stopping.is_set():
                if not self._slots.acquire(timeout=poll_interval):
                    continue  # every slot is taken: leave new connections in the backlog
                if not self._accept_one(poller, poll_interval):
                    self._slots.release()
        finally:
            if reaper is not None:
                self._stopping.set()  # also when leaving on an exception (Ctrl-C, SIGTERM)
                reaper.join()
            self._stopped.set()

    def _reap(self) -> None:
        """Delete idle contexts, checking a few times per ``idle_timeout``."""
        timeout = self.contexts.idle_timeout or 1.0
        while not self._stopping.wait(min(1.0, timeout / 4)):
            try:
                self.contexts.expire(time.monotonic())
            except Exception:  # never let the reaper die quietly on a bug
                sys.stderr.write("interp serve: error deleting idle contexts:\n%s" % traceback.format_exc())

    def _accept_one(self, poller: select.poll, poll_interval: float) -> bool:
        """Wait for one connection and hand it to a thread, which then owns
        the slot the caller took; False if there was none (or it failed)."""
        if not poller.poll(int(poll_interval * 1000)) or self._stopping.is_set():
            return False
        try:
            request, client_address = self.socket.accept()
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno in _EXHAUSTED:
                self._exhausted("accepting connections", exc)
            return False
        with self._active_lock:
            self._active += 1
        try:
            self.process_request(request, client_address)
        except Exception as exc:  # RuntimeError: can't start new thread
            with self._active_lock:
                self._active -= 1
            self.shutdown_request(request)
            self._exhausted("starting a thread for a connection", exc)
            return False
        if self._out_of_fds:
            self._out_of_fds = False
            sys.stderr.write("interp serve: accepting connections again\n")
        return True

    def _exhausted(self, doing: str, exc: BaseException) -> None:
        """Out of file descriptors or threads: say so once, and pause."""
        if not self._out_of_fds:
            self._out_of_fds = True
            sys.stderr.write("interp serve: out of resources %s (%s); new connections wait in "
                             "the backlog\n" % (doing, exc))
        self._stopping.wait(ACCEPT_BACKOFF)

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` (from another thread) and wait until it returned."""
        self._stopping.set()
        self._stopped.wait()

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:  # the handler serves the plain end of a pair; the relay speaks TLS
            request = self.tls.wrap(request)
        super().process_request(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        if self.tls is not None:
            self.tls.close()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._active_lock:
                self._active -= 1
            self._slots.release()

    def busy(self) -> bool:
        """True while every connection slot is taken."""
        return self._active >= self.max_connections

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Last resort for an exception that escaped a handler (none should):
        one log entry, and none at all for a client that went away."""
        exc = sys.exc_info()[1]
        if exc is not None and _client_gone(exc):
            return
        sys.stderr.write("interp serve: error serving %s:\n%s" % (client_address, traceback.format_exc()))


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


class RequestHandler(BaseHTTPRequestHandler):
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
            body = self._read_body()
            body_read = True
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
        for route_method, template, name in ROUTES:
            pattern = template.split("/")[1:]
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
        return getattr(self, allowed[method]), tuple(check_context_id(arg) for arg in args)

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
        with self.server.contexts.use(context_id) as entry:
            context = self.server.interpreter.restart_context(entry.engine_id)
        self._send_json(200, context_json(self.server.contexts.public(context_id, context)))

    def _interrupt_context(self, body: bytes, context_id: str) -> None:
        with self.server.contexts.use(context_id) as entry:
            self.server.interpreter.interrupt(entry.engine_id)
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

        def public(exc: BaseException) -> str:  # messages name the context as the client does
            return str(exc).replace(repr(entry.engine_id), repr(context_id))

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
]


class _SSEStream:
    """An MCP response as Server-Sent Events over an _EventStream: the
    request's notifications, then its response."""

    def __init__(self, handler: RequestHandler) -> None:
        self._handler = handler
        handler.connection.setblocking(False)  # the stream's pump owns the socket until finish()
        self._events = _EventStream(handler.connection, handler.server.io_timeout, handler.server.metrics.sent,
                                    chunked=handler._chunked())
        self.gone = self._events.gone

    def begin(self, headers: Dict[str, str]) -> None:
        handler = self._handler
        handler._responded = True
        handler.log_request(200)
        handler.server.metrics.answered(200)
        lines = ["HTTP/1.1 200 OK", "Server: " + handler.version_string(), "Date: " + handler.date_time_string(),
                 *handler._framing()]
        lines += ["%s: %s" % item for item in headers.items()]
        self._events.begin(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def event(self, data: bytes) -> None:
        self._events.send_bytes(data)

    def finish(self) -> bool:
        """End the response; True if the client got all of it."""
        try:
            return self._events.finish() or not self._events.begun
        finally:
            self._handler.connection.settimeout(self._handler.server.io_timeout)


def _peer_closed(sock: socket.socket) -> bool:
    """True if the client closed its side of the connection (checked at once, without reading)."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | _POLLRDHUP)
    for _fd, flags in poller.poll(0):
        if flags & (select.POLLHUP | select.POLLERR | _POLLRDHUP):
            return True
        if flags & select.POLLIN:
            try:
                return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            except BlockingIOError:
                return False
            except OSError:
                return True
    return False


class _EventStream:
    """The body of one /execute response: NDJSON events as HTTP chunks.

    The run's callbacks never wait for the client: :meth:`send` writes what
    the (non-blocking) socket takes at once and queues the rest, which a pump
    thread writes out; the pump also watches the socket for the client going
    away. ``gone`` (the run's ``cancel`` event) is set when the client
    disconnects, when more than STREAM_BUFFER bytes of events wait behind the
    one being sent (so one large event is fine), or when it accepts no byte
    for ``stall`` seconds while there is something to send.
    """

    def __init__(self, sock: socket.socket, stall: float, on_sent: Callable[[int], None], *,
                 chunked: bool = True) -> None:
        self._sock = sock
        self._chunked = chunked  # else the body ends when the connection closes (HTTP/1.0)
        self._stall = stall
        self._on_sent = on_sent
        self._lock = threading.Lock()
        self._queue: Deque[bytes] = collections.deque()  # unsent data, by event
        self._sent = 0  # bytes of self._queue[0] already sent
        self._waiting = 0  # bytes of the events behind self._queue[0]
        self._ended = False
        self.begun = False
        self.lines = 0  # stdout and stderr events sent
        self.gone = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        try:
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
            self._pump_thread = threading.Thread(target=self._pump, daemon=True, name="interp-http-stream")
            self._pump_thread.start()
        except BaseException as exc:
            self._close_pipe()
            if isinstance(exc, RuntimeError):  # can't start new thread
                raise HTTPError(503, "the server is out of threads: %s" % exc) from None
            raise

    def begin(self, head: bytes) -> None:
        """Send the response head; from now on the response is this stream."""
        self.begun = True
        self._put(head)

    def send(self, event: Dict[str, Any]) -> None:
        if event["type"] in ("stdout", "stderr"):
            self.lines += 1
        self.send_bytes(json.dumps(event).encode("utf-8") + b"\n")

    def send_bytes(self, data: bytes) -> None:
        """Send ``data`` as one chunk (an MCP SSE event)."""
        self._put(b"%X\r\n%s\r\n" % (len(data), data) if self._chunked else data)

    def finish(self) -> bool:
        """End the body (if it began) and wait until the pump wrote it all, or
        the client went away or stalled; True if everything was delivered."""
        if self.begun and self._chunked:
            self._put(b"0\r\n\r\n")
        with self._lock:
            self._ended = True
        self._wake()
        self._pump_thread.join()
        self._close_pipe()
        with self._lock:
            return self.begun and not self.gone.is_set() and not self._queue

    def _put(self, data: bytes) -> None:
        with self._lock:
            if self.gone.is_set() or self._ended:
                return
            self._on_sent(len(data))
            if self._queue:
                if self._waiting > STREAM_BUFFER:
                    self.gone.set()  # the client does not keep up: as if it had left
                    self._wake()
                    return
                self._queue.append(data)
                self._waiting += len(data)
                return
            try:
                sent = self._sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.gone.set()
                self._wake()
                return
            if sent == len(data):
                return
            self._queue.append(data)
            self._sent = sent
        self._wake()  # the pump now has something to write

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError:  # full (a wake-up is pending anyway) or closed
            pass

    def _close_pipe(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _pump(self) -> None:
        try:
            self._pump_loop()
        finally:
            with self._lock:
                if not (self._ended and not self._queue):  # it left, stalled or broke: cancel the run
                    self.gone.set()

    def _pump_loop(self) -> None:
        sock = self._sock
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        watch = select.POLLIN | _POLLRDHUP  # POLLIN until the client sends its next request
        since: Optional[float] = None  # when the buffer last made progress (None: empty)
        while True:
            with self._lock:
                if self.gone.is_set() or (self._ended and not self._queue):
                    return
                pending = bool(self._queue)
            now = time.monotonic()
            if not pending:
                since = None
                wait_ms: Optional[int] = None
            else:
                since = now if since is None else since
                left = since + self._stall - now
                if left <= 0:
                    return  # stalled: the finally marks the client gone
                wait_ms = max(1, math.ceil(left * 1000))
            poller.register(sock.fileno(), watch | (select.POLLOUT if pending else 0))
            for fd, flags in poller.poll(wait_ms):
                if fd == self._wake_r:
                    _drain(fd)
                    continue
                if flags & (select.POLLHUP | select.POLLERR | select.POLLNVAL | _POLLRDHUP):
                    return  # the client closed the connection
                if flags & watch & select.POLLIN:
                    try:
                        peeked = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        peeked = None
                    except OSError:
                        return
                    if peeked == b"":
                        return  # the client closed the connection
                    if peeked:
                        watch = _POLLRDHUP  # a pipelined next request: watch only for a close
                if flags & select.POLLOUT:
                    with self._lock:
                        head = self._queue[0]
                        try:
                            sent = sock.send(memoryview(head)[self._sent:self._sent + 262144])
                        except BlockingIOError:
                            sent = 0
                        except OSError:
                            return
                        self._sent += sent
                        if self._sent == len(head):
                            self._queue.popleft()
                            self._sent = 0
                            if self._queue:
                                self._waiting -= len(self._queue[0])
                    if sent:
                        since = time.monotonic()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except OSError:  # BlockingIOError: empty
        pass


def _wait(sock: socket.socket, events: int, seconds: float) -> bool:
    """True once ``sock`` has ``events`` (or an error or hang-up) within ``seconds``."""
    poller = select.poll()
    poller.register(sock.fileno(), events)
    return bool(poller.poll(max(0, math.ceil(seconds * 1000))))


def _client_gone(exc: BaseException) -> bool:
    """True for the errors of a connection whose client went away or stalled."""
    return isinstance(exc, (ConnectionError,) + _TIMEOUTS) or (
        isinstance(exc, OSError) and exc.errno in _GONE_ERRNOS)


def _http_error(exc: BaseException) -> Optional[HTTPError]:
    """The error response for an exception of a request's handling; None for
    a bug (a 500). One place maps every InterpError to its status."""
    if isinstance(exc, HTTPError):
        return exc
    kind = type(exc).__name__ if isinstance(exc, InterpError) else None
    if isinstance(exc, ContextNotFoundError):
        return HTTPError(404, str(exc), kind=kind)
    if isinstance(exc, InvalidCwdError):
        return HTTPError(400, str(exc), kind=kind)
    if isinstance(exc, InterpError) or (isinstance(exc, OSError) and exc.errno in _EXHAUSTED):
        return HTTPError(503, str(exc), kind=kind)  # e.g. no worker could start: out of fds or memory
    return None


def _error_body(status: int, message: str, kind: Optional[str] = None) -> Dict[str, str]:
    """An error response's body; ``kind`` names the InterpError behind it."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = {"error": phrase, "message": message}
    if kind is not None:
        body["interp_error"] = kind
    return body


def _is_json_type(value: Optional[str]) -> bool:
    return value is not None and value.split(";")[0].strip().lower() == "application/json"


def _host_name(value: str) -> Optional[str]:
    """The host of a Host header (lowercase, without port or IPv6 brackets);
    None if it is malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket:
            return None
    else:
        host, colon, port = value.partition(":")
        rest = colon + port
    if rest and not (rest[0] == ":" and rest[1:].isascii() and rest[1:].isdigit()):
        return None
    if not host or any(char in host for char in " \t/\\@?#"):
        return None
    return host


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError("%s must be a positive number of seconds, got %r" % (name, value))
    return float(value)


# -- request bodies: JSON that cannot recurse too deep or hold odd numbers --------

def _parse_json(body: bytes) -> Any:
    """The JSON value of ``body``, with bounded nesting and only finite,
    bounded numbers (no NaN or Infinity). Raises a 400."""
    try:
        return _jsonlimits.loads(body, max_depth=MAX_JSON_DEPTH, max_int_digits=MAX_INT_DIGITS)
    except ValueError as exc:
        raise HTTPError(400, "the body %s" % exc) from None


def _json_object(body: bytes, fields: Dict[str, Tuple[type, ...]], required: Tuple[str, ...]) -> Dict[str, Any]:
    """Parse ``body`` as a JSON object with only ``fields`` (name -> allowed
    types) and the ``required`` ones; an empty body is ``{}``. Raises a 400."""
    value = _parse_json(body) if body.strip() else {}
    if not isinstance(value, dict):
        raise HTTPError(400, "the body must be a JSON object, not %s" % type(value).__name__)
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise HTTPError(400, "unknown field(s): %s (allowed: %s)" % (", ".join(unknown), ", ".join(fields)))
    for name in required:
        if name not in value:
            raise HTTPError(400, "the field %r is required" % name)
    names = {str: "a string", dict: "an object", int: "a number", float: "a number", type(None): "null"}
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
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def make_server(interpreter: CodeInterpreter, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                token: Optional[str] = None, max_body: int = DEFAULT_MAX_BODY, log: bool = True,
                header_timeout: float = DEFAULT_HEADER_TIMEOUT, io_timeout: float = DEFAULT_IO_TIMEOUT,
                max_connections: int = DEFAULT_MAX_CONNECTIONS,
                allowed_hosts: Iterable[str] = (), max_contexts: Optional[int] = None,
                idle_timeout: Optional[float] = None, tls: Optional[ssl.SSLContext] = None) -> InterpHTTPServer:
    """Bind an :class:`InterpHTTPServer` (call ``serve_forever()`` on it).

    Raises ValueError for a non-loopback ``host`` without a ``token``, for
    ``allowed_hosts`` without a token, and for bad options; OSError if the
    address cannot be bound.
    """
    if token is not None and not token.strip():
        raise ValueError("the token is empty or blank (an unset variable?): it would let anyone in; "
                         "give a real token, or none at all on a loopback address")
    if not token and not is_loopback(host):
        raise ValueError("refusing to listen on %r without a token: anyone who can reach it could "
                         "run code as you; set --token or %s, or bind 127.0.0.1" % (host, TOKEN_ENV))
    return InterpHTTPServer((host, port), interpreter, token=token or None, max_body=max_body, log=log,
                            header_timeout=header_timeout, io_timeout=io_timeout,
                            max_connections=max_connections, allowed_hosts=allowed_hosts,
                            max_contexts=max_contexts, idle_timeout=idle_timeout, tls=tls)


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m interp serve",
        description="Serve stateful Python contexts over HTTP (JSON; /execute streams NDJSON), and MCP "
                    "(Streamable HTTP) at /mcp.")
    http = parser.add_argument_group("HTTP")
    http.add_argument("--host", default=DEFAULT_HOST,
                      help="address to bind (default %(default)s; non-loopback needs a token)")
    http.add_argument("--port", type=int, default=DEFAULT_PORT,
                      help="port (default %(default)s; 0: any free port)")
    http.add_argument("--token", default=None,
                      help="require 'Authorization: Bearer TOKEN' (default: $%s; empty is refused)" % TOKEN_ENV)
    http.add_argument("--tls-cert", metavar="FILE",
                      help="serve https with this certificate chain (PEM); needs --tls-key")
    http.add_argument("--tls-key", metavar="FILE", help="the private key of --tls-cert (PEM)")
    http.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                      help="also accept requests whose Host header names NAME ('*': any); needs a "
                           "token (default: only the bound address and loopback names)")
    http.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, metavar="BYTES",
                      help="largest request body (default %(default)s)")
    http.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS, metavar="N",
                      help="connections served at once; more wait (default %(default)s)")
    http.add_argument("--header-timeout", type=float, default=DEFAULT_HEADER_TIMEOUT, metavar="SECONDS",
                      help="time a client has to send a request's headers, and the longest a "
                           "keep-alive connection stays idle (default %(default)g)")
    http.add_argument("--io-timeout", type=float, default=DEFAULT_IO_TIMEOUT, metavar="SECONDS",
                      help="time a client has to send a body, or to accept more of a response, "
                           "before it counts as gone (default %(default)g)")
    http.add_argument("--quiet", action="store_true", help="do not log each request to stderr")
    runs = parser.add_argument_group("contexts and runs (HTTP and MCP)")
    runs.add_argument("--cwd", metavar="DIR", help="default working directory of contexts")
    runs.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                      help="timeout of runs that give none (default %g; 0: no limit)" % DEFAULT_TIMEOUT)
    runs.add_argument("--max-contexts", type=int, default=None, metavar="N",
                      help="contexts clients may create; beyond, creating one is a 503 (default: no limit)")
    runs.add_argument("--idle-timeout", type=float, default=None, metavar="SECONDS",
                      help="delete a context unused for this long; later requests for it get a 404 "
                           "saying so (default: never)")
    mcp = parser.add_argument_group("MCP at /mcp")
    add_mcp_arguments(mcp)
    mcp.add_argument("--mcp-keepalive", type=float, default=MCP_KEEPALIVE, metavar="SECONDS",
                     help="an /mcp request still running after this long is answered as an SSE stream "
                          "that gets a comment after each such silence, so a client's read timeout does "
                          "not end a long silent run (default %(default)g)")
    sandbox_arguments(parser)
    return parser


def _check_arguments(args: argparse.Namespace) -> Optional[str]:
    """What is wrong with serve's options, in the words of the command line, or None."""
    def seconds(value: Optional[float], zero: bool) -> bool:  # finite, > 0 (or >= 0)
        return value is None or (math.isfinite(value) and (value >= 0 if zero else value > 0))

    if not 0 <= args.port <= 65535:
        return "--port must be from 0 to 65535, got %d" % args.port
    for flag, value, zero in (("--header-timeout", args.header_timeout, False),
                              ("--io-timeout", args.io_timeout, False),
                              ("--idle-timeout", args.idle_timeout, False),
                              ("--mcp-keepalive", args.mcp_keepalive, False),
                              ("--timeout", args.timeout, True)):
        if not seconds(value, zero):
            return "%s must be a number of seconds %s, got %s" % (flag, ">= 0" if zero else "> 0", value)
    for flag, value, least in (("--max-body", args.max_body, 0), ("--max-connections", args.max_connections, 1),
                               ("--max-contexts", args.max_contexts, 1)):
        if value is not None and value < least:
            return "%s must be >= %d, got %d" % (flag, least, value)
    if (args.tls_cert is None) != (args.tls_key is None):
        return "--tls-cert and --tls-key go together"
    return check_mcp_arguments(args)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``python -m interp serve``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    sandbox = sandbox_from(parser, args)
    problem = _check_arguments(args)
    if problem:
        return fail(NAME, problem)
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    if token is not None and not token.strip():
        return fail(NAME, "%s is empty or blank (an unset variable?); refusing to start without "
                          "authentication: give a real token, or none at all on a loopback address"
                    % ("--token" if args.token is not None else "$" + TOKEN_ENV))
    try:
        tls = None if args.tls_cert is None else server_context(args.tls_cert, args.tls_key)
    except (OSError, ValueError) as exc:
        return fail(NAME, str(exc))
    try:
        interpreter = CodeInterpreter(cwd=args.cwd, sandbox=sandbox)
    except InterpError as exc:
        return fail(NAME, str(exc))
    try:
        try:
            server = make_server(interpreter, args.host, args.port, token=token, max_body=args.max_body,
                                 log=not args.quiet, header_timeout=args.header_timeout,
                                 io_timeout=args.io_timeout, max_connections=args.max_connections,
                                 allowed_hosts=args.allow_host, max_contexts=args.max_contexts,
                                 idle_timeout=args.idle_timeout, tls=tls)
        except (ValueError, OSError, OverflowError) as exc:
            return fail(NAME, str(exc))
        server.mcp.core.output_limit, server.mcp.core.task_after = args.output_limit, args.task_after
        server.mcp.core.default_timeout = server.default_timeout = args.timeout
        server.mcp.keepalive = args.mcp_keepalive
        signal.signal(signal.SIGTERM, _exit_on_signal)
        host = args.host if ":" not in args.host else "[%s]" % args.host
        print("interp serve: listening on %s://%s:%d%s" % ("https" if tls else "http", host, server.port,
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
