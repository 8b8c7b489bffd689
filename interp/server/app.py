"""The listening server: bounded accepting (``--max-connections``), a
thread per connection, idle-context expiry, and TLS termination."""

from __future__ import annotations

import ipaddress
import select
import socket
import ssl
import sys
import threading
import time
import traceback
from http.server import ThreadingHTTPServer
from typing import Any, FrozenSet, Iterable, Optional, Tuple

from ..api import CodeInterpreter
from ..mcp.core import MCPCore
from ..mcp.http import MCPEndpoint
from . import metrics as _metrics
from .checks import _client_gone, _is_unspecified, _positive, is_loopback
from .files import DEFAULT_MAX_UPLOAD
from .handler import RequestHandler
from .limits import (
    _EXHAUSTED,
    ACCEPT_BACKOFF,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_IO_TIMEOUT,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PORT,
    LISTEN_BACKLOG,
    TOKEN_ENV,
)
from .table import ContextTable
from .tls import TLSRelay


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
                 idle_timeout: Optional[float] = None, tls: Optional[ssl.SSLContext] = None,
                 max_upload: int = DEFAULT_MAX_UPLOAD) -> None:
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
        if isinstance(max_upload, bool) or not isinstance(max_upload, int) or max_upload < 0:
            raise ValueError("max_upload must be an int >= 0, got %r" % (max_upload,))
        #: the largest upload (PUT /files/...), streamed to disk: not bounded by max_body
        self.max_upload = max_upload
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
        self.mcp = MCPEndpoint(MCPCore(interpreter, contexts=self.contexts))  # one table for both front ends
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


def make_server(interpreter: CodeInterpreter, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                token: Optional[str] = None, max_body: int = DEFAULT_MAX_BODY, log: bool = True,
                header_timeout: float = DEFAULT_HEADER_TIMEOUT, io_timeout: float = DEFAULT_IO_TIMEOUT,
                max_connections: int = DEFAULT_MAX_CONNECTIONS,
                allowed_hosts: Iterable[str] = (), max_contexts: Optional[int] = None,
                idle_timeout: Optional[float] = None, tls: Optional[ssl.SSLContext] = None,
                max_upload: int = DEFAULT_MAX_UPLOAD) -> InterpHTTPServer:
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
                            max_contexts=max_contexts, idle_timeout=idle_timeout, tls=tls,
                            max_upload=max_upload)
