"""The listening server: one event loop serves every connection (a socket
and a task each, never a thread), bounded accepting (``--max-connections``),
idle-context expiry, and TLS on the loop itself."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import socket
import ssl
import sys
import threading
import time
import traceback
from typing import Any, FrozenSet, Iterable, Optional, Set, Tuple

from ..aio import AsyncCodeInterpreter
from ..api import CodeInterpreter
from ..mcp.core import MCPCore
from ..mcp.http import MCPEndpoint
from ..mcp.runners import LoopRunner
from . import metrics as _metrics
from .checks import _is_unspecified, _positive, is_loopback
from .connection import RECEIVE_SIZE, Connection
from .files import DEFAULT_MAX_UPLOAD
from .limits import (
    _EXHAUSTED,
    ACCEPT_BACKOFF,
    BODY_BUDGET,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_IO_TIMEOUT,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PORT,
    HELPER_THREADS,
    LISTEN_BACKLOG,
    TOKEN_ENV,
)
from .table import ContextTable

#: Seconds between two reports of running out of file descriptors.
EXHAUSTION_REPORTS = 60.0


class InterpHTTPServer:
    """An HTTP server over one shared CodeInterpreter, on one event loop.

    ``token`` (when not None) is required as ``Authorization: Bearer`` on
    every request; ``max_body`` bounds request bodies (413 beyond it).
    ``header_timeout`` and ``io_timeout`` bound how long a client may take
    (see DEFAULT_HEADER_TIMEOUT and DEFAULT_IO_TIMEOUT); at most
    ``max_connections`` are served at once. ``allowed_hosts`` are Host
    names accepted besides the bound address and loopback names (``*``:
    any); they need a token. Raises ValueError for bad options. Closing the
    server does not close the interpreter.

    :meth:`serve_forever` runs the loop in the calling thread. Runs are
    driven from the loop (an AsyncCodeInterpreter view of ``interpreter``,
    so other threads may use the interpreter too); starting and killing
    workers and file operations go to HELPER_THREADS threads made once.
    """

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
        self.interpreter = interpreter
        #: the same contexts, driven from the event loop
        self.aio = AsyncCodeInterpreter._sharing(interpreter._engine)
        self.metrics = _metrics.ServerMetrics()
        self.contexts = ContextTable(interpreter, self.metrics, max_contexts=max_contexts,
                                     idle_timeout=idle_timeout)
        #: MCP at /mcp: the same interpreter; its options (output_limit, task_after) are on mcp.core
        self.mcp = MCPEndpoint(MCPCore(interpreter, contexts=self.contexts))  # one table for both front ends
        self.token = token
        #: the timeout of runs that give none (None: the engine's DEFAULT_TIMEOUT; 0: no limit)
        self.default_timeout: Optional[float] = None
        self.max_body = max_body
        #: bytes of request bodies being read at once (503 beyond): idle connections are cheap, bodies are not
        self.body_budget = max(BODY_BUDGET, max_body)
        self.bodies_in_memory = 0
        self.log = log
        self.max_connections = max_connections
        #: TLS context when serving https (None: plain HTTP)
        self.tls = tls
        self.socket = socket.create_server(address, family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                           backlog=LISTEN_BACKLOG, reuse_port=False)
        self.socket.setblocking(False)
        self.server_address: Tuple[Any, ...] = self.socket.getsockname()
        self.hosts: FrozenSet[str] = extra_hosts | {
            name for name in (host.strip("[]").lower(), str(self.server_address[0]).lower())
            if not _is_unspecified(name)}
        self._connections: Set[Connection] = set()
        #: what the transports read into, one connection at a time (see Connection)
        self.inbox = memoryview(bytearray(RECEIVE_SIZE))
        self._accepting = 0  # connections accepted whose protocol is not made yet (TLS handshakes)
        self._starting: Set[asyncio.Task[None]] = set()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._wake_accept: Optional[asyncio.Event] = None
        self._stop: Optional[asyncio.Event] = None
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._out_of_fds = False
        self._reported_exhaustion = -EXHAUSTION_REPORTS  # when "out of resources" was last said
        self._said_exhausted = False  # ... in this shortage

    @property
    def port(self) -> int:
        """The port the server listens on (useful after binding port 0)."""
        return int(self.server_address[1])

    def host_allowed(self, name: str) -> bool:
        """True if a request may name ``name`` (lowercase, no port) in its Host header."""
        if "*" in self.hosts or name in self.hosts or name in ("localhost", "localhost."):
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def busy(self) -> bool:
        """True while every connection slot is taken."""
        return len(self._connections) + self._accepting >= self.max_connections

    # -- the loop ---------------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve on an event loop in this thread until :meth:`shutdown` (after
        which the server does not serve again). ``poll_interval`` is ignored
        (kept for http.server's signature)."""
        if self._stopping.is_set():
            return
        self._stopped.clear()
        loop = asyncio.new_event_loop()
        helpers = _helper_threads(HELPER_THREADS)
        loop.set_default_executor(helpers)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            try:
                self._close_connections(loop)
            finally:
                helpers.shutdown(wait=False)
                loop.close()
                self._loop = None
                self._stopped.set()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._wake_accept = asyncio.Event()
        if self._stopping.is_set():
            return
        core = self.mcp.core
        threads, core.runner = core.runner, LoopRunner(loop, self.aio)  # /mcp tool calls run on this loop
        reaper = None
        if self.contexts.idle_timeout is not None:
            reaper = loop.create_task(self._reap())
        accepting = loop.create_task(self._accept_loop())
        try:
            await self._stop.wait()
        finally:
            accepting.cancel()
            if reaper is not None:
                reaper.cancel()
            core.runner = threads

    def _close_connections(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close every connection and let their tasks end (a run is interrupted)."""
        for conn in list(self._connections):
            conn.abort()
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]  # the connections' among them
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=10))
        loop.run_until_complete(loop.shutdown_asyncgens())

    async def _reap(self) -> None:
        """Delete idle contexts, checking a few times per ``idle_timeout``."""
        timeout = self.contexts.idle_timeout or 1.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            try:
                await loop.run_in_executor(None, self.contexts.expire, time.monotonic())
            except Exception:  # never let the reaper die quietly on a bug
                sys.stderr.write("interp serve: error deleting idle contexts:\n%s" % traceback.format_exc())

    async def _accept_loop(self) -> None:
        """Accept connections while a slot is free; the others wait in the
        listen backlog. Out of file descriptors, pause instead of spinning."""
        loop = asyncio.get_running_loop()
        assert self._wake_accept is not None
        while True:
            if self.busy():
                self._squeeze()
                self._wake_accept.clear()
                await self._wake_accept.wait()
                continue
            try:
                sock, _address = await loop.sock_accept(self.socket)
            except OSError as exc:
                if exc.errno in _EXHAUSTED:
                    await self._exhausted("accepting connections", exc)
                continue
            if self._out_of_fds:
                self._out_of_fds = False
                if self._said_exhausted:
                    self._said_exhausted = False
                    sys.stderr.write("interp serve: accepting connections again\n")
            self._accepting += 1
            task = loop.create_task(self._start(sock))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    async def _start(self, sock: socket.socket) -> None:
        """Make the connection's protocol (after the TLS handshake, if any)."""
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(lambda: self._connect(), sock, ssl=self.tls,
                                               ssl_handshake_timeout=self.header_timeout if self.tls else None)
        except (OSError, asyncio.TimeoutError, ssl.SSLError, ConnectionError):
            sock.close()  # a failed handshake: nobody to answer
        except asyncio.CancelledError:
            sock.close()
            raise
        finally:
            self._accepting -= 1
            self._free_slot()

    def _connect(self) -> Connection:
        return Connection(self, self._opened, self._closed)

    def _opened(self, conn: Connection) -> None:
        """A connection is made (after its TLS handshake): it holds a slot until it closes."""
        self._connections.add(conn)

    def _closed(self, conn: Connection) -> None:
        self._connections.discard(conn)
        self._free_slot()

    def _free_slot(self) -> None:
        if self._wake_accept is not None and not self.busy():
            self._wake_accept.set()

    def _squeeze(self) -> None:
        """The server is full: connections waiting for a head get BUSY_HEADER_TIMEOUT now."""
        for conn in self._connections:
            if conn.waiting_since is not None:
                conn.poke()

    async def _exhausted(self, doing: str, exc: BaseException) -> None:
        """Out of file descriptors: say so (at most once a minute), and pause
        until a connection closes or ACCEPT_BACKOFF passed."""
        if not self._out_of_fds:
            self._out_of_fds = True
            now = time.monotonic()
            if now - self._reported_exhaustion >= EXHAUSTION_REPORTS:
                self._reported_exhaustion = now
                self._said_exhausted = True
                sys.stderr.write("interp serve: out of resources %s (%s); new connections wait in "
                                 "the backlog\n" % (doing, exc))
        assert self._wake_accept is not None
        self._wake_accept.clear()
        try:
            await asyncio.wait_for(self._wake_accept.wait(), ACCEPT_BACKOFF)
        except asyncio.TimeoutError:
            pass

    def stop(self) -> None:
        """Make :meth:`serve_forever` return soon (or at once, if it has not
        begun); does not wait. Safe from any thread and from a signal handler."""
        self._stopping.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` (from another thread) and wait until it returned."""
        self.stop()
        self._stopped.wait()

    def server_close(self) -> None:
        """Close the listening socket."""
        self.socket.close()


def _helper_threads(count: int) -> concurrent.futures.ThreadPoolExecutor:
    """A pool of ``count`` threads, all started now: the server's thread count
    does not change while it serves."""
    pool = concurrent.futures.ThreadPoolExecutor(count, thread_name_prefix="interp-serve")
    barrier = threading.Barrier(count + 1)
    try:
        for _ in range(count):
            pool.submit(barrier.wait, 10)
        barrier.wait(10)
    except threading.BrokenBarrierError:
        pass  # some thread was slow to start: the pool still works
    except BaseException:  # interrupted (SIGTERM at start-up): no thread may wait for the others forever
        barrier.abort()
        pool.shutdown(wait=False)
        raise
    return pool


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
