"""RemoteCodeInterpreter and AsyncRemoteCodeInterpreter: interp's API over
the HTTP server (``python -m interp serve``) of another process or machine.

Both twins drive the sans-IO core in ``interp.remote.core`` (requests, a bounded
HTTP/1.1 response parser, the NDJSON events of a run, result building,
error mapping) through the same request procedures (``interp.remote.steps``:
generators of I/O steps); the sync one performs the steps over non-blocking
sockets waited on with ``poll``, the async one over an asyncio protocol of
its own. Connections are kept alive and reused. What the network breaks
raises a RemoteError subclass (see interp.errors), never a socket error.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Generic, List, Optional, Protocol, Tuple, TypeVar

from ..errors import (
    ConnectionLostError,
    InterpError,
    RemoteProtocolError,
    ServerUnreachableError,
)
from . import core as rc

if TYPE_CHECKING:
    pass

T = TypeVar("T")


class _Idle(Protocol):
    """What the pool needs of a connection (both twins' connections have it)."""

    reused: bool
    idle_since: float
    idle_limit: float

    def usable(self, now: float) -> bool: ...

    def close(self) -> None: ...


C = TypeVar("C", bound=_Idle)

#: Seconds the client waits for a server beyond what a request itself may
#: take (a run's timeout): for a connection, each answer, a killed run's restart.
DEFAULT_IO_TIMEOUT = 30.0
#: Seconds to wait for a connection to be accepted.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: An idle kept-alive connection is reused only this long when the server
#: does not say (``Keep-Alive: timeout=N``; then N minus a margin).
DEFAULT_KEEP_ALIVE = 2.0
KEEP_ALIVE_MARGIN = 1.0
#: How often a sync run checks its ``cancel`` event.
CANCEL_POLL = 0.05
READ_SIZE = 256 * 1024
TOKEN_ENV = "INTERP_TOKEN"


class _Cancelled(Exception):
    """The caller's cancel event was set while waiting for the server."""


def _check_options(url: str, token: Optional[str], max_output: Optional[int], io_timeout: float,
                   connect_timeout: float, max_event: int) -> Tuple[rc.Address, Optional[str]]:
    address = rc.parse_url(url)
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    if token is not None and (not isinstance(token, str) or any(c in token for c in "\r\n")):
        raise ValueError("token must be a str without line breaks")
    for name, value in (("io_timeout", io_timeout), ("connect_timeout", connect_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise ValueError("%s must be a positive number of seconds, got %r" % (name, value))
    for name, size in (("max_output", max_output), ("max_event", max_event)):
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise ValueError("%s must be a positive int, got %r" % (name, size))
    return address, token


def _idle_limit(parser: rc.ResponseParser) -> float:
    if parser.keep_alive_timeout is None:
        return DEFAULT_KEEP_ALIVE
    return max(0.0, parser.keep_alive_timeout - KEEP_ALIVE_MARGIN)


class _IdleConnections(Generic[C]):
    """The kept-alive connections to one server that are idle, shared by the
    twins' pools (which add how a new connection is made): a connection goes
    back only if its response was read whole and the server keeps it alive,
    and is reused only while the server's keep-alive allows. The lock is
    never held across I/O (or an ``await``)."""

    def __init__(self, address: rc.Address, connect_timeout: float, tls: Optional[ssl.SSLContext]) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self.tls = tls
        self._lock = threading.Lock()
        self._idle: List[C] = []

    def _reuse(self) -> Optional[C]:
        """An idle connection still usable (marked reused), or None; closes the stale ones."""
        now = time.monotonic()
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or conn.usable(now):
                if conn is not None:
                    conn.reused = True
                return conn
            conn.close()

    def put(self, conn: C, parser: rc.ResponseParser) -> None:
        if not (parser.done and parser.keep_alive):
            conn.close()
            return
        conn.idle_since = time.monotonic()
        conn.idle_limit = _idle_limit(parser)
        with self._lock:
            self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _origin(address: rc.Address) -> str:
    return "%s://%s" % ("https" if address.tls else "http", address.host_header)


def _describe(address: rc.Address, request: rc.Request) -> str:
    return "%s %s on %s" % (request.method, request.path, _origin(address))


def _unreachable(address: rc.Address, exc: BaseException) -> ServerUnreachableError:
    return ServerUnreachableError("cannot connect to the interp server at %s: %s (nothing was sent)"
                                  % (_origin(address), exc or type(exc).__name__))


def _tls_context(address: rc.Address, ssl_context: Optional[ssl.SSLContext]) -> Optional[ssl.SSLContext]:
    """The TLS context of connections to ``address`` (None: plain HTTP)."""
    if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
        raise TypeError("ssl_context must be an ssl.SSLContext, not %s" % type(ssl_context).__name__)
    if not address.tls:
        if ssl_context is not None:
            raise ValueError("ssl_context goes with an https:// url")
        return None
    return ssl_context if ssl_context is not None else ssl.create_default_context()


def _lost(address: rc.Address, request: rc.Request, exc: BaseException, *, sent: bool,
          run: Optional[rc.RunExchange] = None) -> ConnectionLostError:
    """The error for a connection that broke during ``request``."""
    result = run.result() if run is not None else None
    if isinstance(exc, RemoteProtocolError):
        exc.result = result
        return exc
    why = "no answer within the client's io_timeout" if isinstance(exc, (socket.timeout, TimeoutError)) else (
        "the connection closed" if isinstance(exc, EOFError) or not str(exc) else str(exc))
    if not sent:
        return ConnectionLostError("lost the connection while sending %s (%s); the request did not reach "
                                   "the server" % (_describe(address, request), why), False, result)
    if run is not None:
        if run.streaming:
            state = ("the run had begun or was waiting for its turn: it may still be going on there; the "
                     "server stops a run whose client disconnects, as on a timeout")
        else:
            state = "the server had not yet taken the run: it may have started it since"
    else:
        state = "the request may have been carried out"
    return ConnectionLostError("lost the connection to the server during %s (%s); %s"
                               % (_describe(address, request), why, state), True, result)


def _input_value(on_input: Optional[Callable[[str], Any]], value: Any,
                 raised: Optional[BaseException]) -> Optional[str]:
    """The answer to send for an input request (None: EOF); raises what the
    callback raised (other than EOFError), or TypeError for a non-str."""
    if raised is not None:
        if isinstance(raised, EOFError):
            return None
        raise raised
    if on_input is None:
        return None
    if not isinstance(value, str):
        raise TypeError("on_input must return a str, not %s" % type(value).__name__)
    return value


def _check_cwd(cwd: Any) -> Optional[str]:
    if cwd is None:
        return None
    if isinstance(cwd, os.PathLike):
        cwd = os.fspath(cwd)
    if not isinstance(cwd, str):
        raise TypeError("cwd must be a str (a directory on the server), not %s" % type(cwd).__name__)
    return cwd


class _RemoteClient:
    """What the sync and async clients share: their options and their record
    of the contexts they created."""

    def __init__(self, url: str, token: Optional[str], max_output: Optional[int], io_timeout: float,
                 connect_timeout: float, max_event: int, delete_on_close: bool,
                 ssl_context: Optional[ssl.SSLContext]) -> None:
        self._address, self._token = _check_options(url, token, max_output, io_timeout, connect_timeout,
                                                    max_event)
        self._tls = _tls_context(self._address, ssl_context)
        self.url = url
        self._max_output = max_output
        self._io_timeout = float(io_timeout)
        self._connect_timeout = float(connect_timeout)
        self._max_event = max_event
        self._delete_on_close = delete_on_close
        self._created: Dict[str, None] = {}  # ids of the contexts this client made (ordered)
        self._closed = False
        self._pool: _IdleConnections[Any]  # each twin's own (see interp.remote.steps)

    def __repr__(self) -> str:
        return "<%s %s contexts=%d%s>" % (type(self).__name__, self.url, len(self._created),
                                          " closed" if self._closed else "")

    def _check_open(self) -> None:
        if self._closed:
            raise InterpError("this interpreter is closed; create a new one")
