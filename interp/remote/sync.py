"""RemoteCodeInterpreter: the sync twin, over non-blocking sockets waited on with poll."""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional

from ..commands import completion_command, run_command
from ..engine import DEFAULT_MAX_OUTPUT, ContextRef
from ..errors import (
    InterpError,
    RemoteError,
    RunCancelledError,
)
from ..types import ExecutionResult, InterpreterContext
from . import core as rc
from . import files as rf
from . import steps as st
from .fs import RemoteFileSystem
from .client import (
    CANCEL_POLL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IO_TIMEOUT,
    DEFAULT_KEEP_ALIVE,
    READ_SIZE,
    T,
    _Cancelled,
    _check_cwd,
    _IdleConnections,
    _RemoteClient,
    _unreachable,
)

# -- sync -----------------------------------------------------------------------------

class _Connection:
    """A kept-alive connection: a non-blocking socket, waited on with poll
    until each call's own deadline (no timeout to set per call: a send or a
    receive is one system call when the socket is ready, as it mostly is)."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.reused = False
        self.idle_since = 0.0
        self.idle_limit = DEFAULT_KEEP_ALIVE
        self._poller = select.poll()
        self._poller.register(sock.fileno(), select.POLLIN)
        self._events = select.POLLIN

    def usable(self, now: float) -> bool:
        """Still worth reusing: not idle too long, and the server has not closed it."""
        if now - self.idle_since >= self.idle_limit:
            return False
        return not self._poll(select.POLLIN, 0)  # readable while idle: closed (or garbage)

    def send(self, data: bytes, deadline: float, answers: bool = False) -> int:
        """Send all of ``data``; socket.timeout past ``deadline``. With
        ``answers``, stop when the server answers while it does not read.
        Returns how many bytes went."""
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view):]
            except (BlockingIOError, ssl.SSLWantWriteError):
                self._wait(select.POLLOUT | (select.POLLIN if answers else 0), deadline)
                if answers and self.answered():
                    break
            except ssl.SSLWantReadError:  # TLS may need to read before it writes
                self._wait(select.POLLIN, deadline)
        return len(data) - len(view)

    def recv(self, deadline: Optional[float], cancel: Optional[threading.Event]) -> bytes:
        """The next bytes (b"" at EOF); socket.timeout past ``deadline``; _Cancelled."""
        events = select.POLLIN
        while True:
            if cancel is not None and cancel.is_set():  # checked before each read: a flood of output cannot hide it
                raise _Cancelled()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise socket.timeout("timed out")
            wait = left
            if cancel is not None:
                wait = CANCEL_POLL if wait is None else min(wait, CANCEL_POLL)
            if self._buffered() or self._poll(events, -1 if wait is None else max(1, int(wait * 1000))):
                try:
                    return self.sock.recv(READ_SIZE)
                except (BlockingIOError, ssl.SSLWantReadError):  # a TLS record not all here yet
                    events = select.POLLIN
                except ssl.SSLWantWriteError:
                    events = select.POLLOUT

    def answered(self) -> bool:
        """Bytes (or the end) wait to be read now."""
        return self._buffered() or self._poll(select.POLLIN, 0)

    def _wait(self, events: int, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0 or not self._poll(events, max(1, int(left * 1000))):
            raise socket.timeout("timed out")

    def _poll(self, events: int, timeout_ms: int) -> bool:
        if events != self._events:
            self._poller.modify(self.sock.fileno(), events)
            self._events = events
        return bool(self._poller.poll(timeout_ms))

    def _buffered(self) -> bool:
        """TLS bytes already decrypted, which poll cannot see."""
        return isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class _Pool(_IdleConnections["_Connection"]):
    """Idle kept-alive connections to one server, shared by threads."""

    def get(self) -> _Connection:
        conn = self._reuse()
        if conn is not None:
            return conn
        try:
            sock = socket.create_connection((self.address.host, self.address.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise _unreachable(self.address, exc) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:  # the handshake, within the connect timeout; ssl.SSLError is an OSError
                sock = self.tls.wrap_socket(sock, server_hostname=self.address.host)
            except OSError as exc:
                sock.close()
                raise _unreachable(self.address, exc) from None
        return _Connection(sock)


class RemoteCodeInterpreter(_RemoteClient):
    """:class:`interp.CodeInterpreter`'s API over an interp HTTP server.

    ``url`` is the server's address, ``http://HOST:PORT`` or
    ``https://HOST:PORT`` (a path after it is a prefix of every route, for a
    proxy that adds one). https is verified against the system's CAs, or as
    ``ssl_context`` (an ``ssl.SSLContext``: a private CA, a client
    certificate) says. ``token`` is sent as ``Authorization: Bearer``
    (default: ``$INTERP_TOKEN``, if set); over plain HTTP it crosses the
    network in the clear. ``max_output`` bounds the
    characters of each stream a result keeps, as for CodeInterpreter.
    ``io_timeout`` is how long the client waits for the server beyond what
    a request may take itself (a run's timeout), ``connect_timeout`` how long
    for a connection; ``max_event`` bounds one event of a run's stream.

    Methods, arguments, results, exceptions and callbacks are those of
    CodeInterpreter (callbacks run on the calling thread as lines arrive).
    Contexts are created with a client-chosen id (``PUT /contexts/{id}``), so
    a proxy can route every request of a context by its path. What the
    network breaks raises ServerUnreachableError, ConnectionLostError (its
    ``may_be_running`` says whether a run may still go on), RemoteProtocolError
    or RemoteServerError. :meth:`close` deletes the contexts this client
    created (``delete_on_close=False`` keeps them). Thread-safe.
    """

    _pool: _Pool

    def __init__(self, url: str, token: Optional[str] = None, *,
                 max_output: Optional[int] = DEFAULT_MAX_OUTPUT, io_timeout: float = DEFAULT_IO_TIMEOUT,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, max_event: int = rc.DEFAULT_MAX_EVENT,
                 delete_on_close: bool = True, ssl_context: Optional[ssl.SSLContext] = None) -> None:
        super().__init__(url, token, max_output, io_timeout, connect_timeout, max_event, delete_on_close,
                         ssl_context)
        self._pool = _Pool(self._address, self._connect_timeout, self._tls)
        self._lock = threading.Lock()
        #: Files in and out (Daytona's ``fs``), as on CodeInterpreter: see :class:`interp.remote.fs.RemoteFileSystem`.
        self.fs = RemoteFileSystem(self)

    def __enter__(self) -> RemoteCodeInterpreter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _perform(self, steps: st.Steps[T], cancel: Optional[threading.Event] = None) -> T:
        """Carry out a request's steps (see interp.remote.steps) with blocking calls."""
        value: Any = None
        error: Optional[BaseException] = None
        while True:
            try:
                step = steps.send(value) if error is None else steps.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            except st.Escape as escape:
                raise escape.args[0] from None
            value = error = None
            try:
                kind = step[0]
                if kind == st.RECEIVE:
                    value = step[1].recv(step[2], cancel)
                elif kind == st.SEND:
                    value = step[1].send(*step[2:])
                elif kind == st.CALL:
                    value = step[1](step[2])
                elif kind == st.CONNECT:
                    value = self._pool.get()
                elif kind == st.ANSWERED:
                    value = step[1].answered()
                else:
                    value = st.next_chunk(step[1])
            except StopIteration as exc:
                error = st.Escape(exc)
            except BaseException as exc:  # thrown in where the step was asked for
                error = exc

    def _call(self, call: rc.Call[T]) -> T:
        return self._perform(st.call(self, call))

    def _transfer(self, transfer: rf.Transfer, body: Optional[rf.Body], sink: Callable[[bytes], None]) -> None:
        self._perform(st.transfer(self, transfer, body, sink))

    def run_code(self, code: str, *, context: ContextRef = None,
                 on_stdout: Optional[Callable[[Any], Any]] = None,
                 on_stderr: Optional[Callable[[Any], Any]] = None,
                 on_error: Optional[Callable[[Any], Any]] = None,
                 on_result: Optional[Callable[[Any], Any]] = None,
                 on_input: Optional[Callable[[str], str]] = None,
                 stdin: Optional[str] = None,
                 envs: Optional[Mapping[str, str]] = None,
                 timeout: Optional[float] = None,
                 cancel: Optional[threading.Event] = None) -> ExecutionResult:
        """Run ``code`` in ``context`` on the server and wait; see
        :meth:`interp.CodeInterpreter.run_code`. Callbacks run on this thread
        as the server streams each line. ``cancel`` (or a callback that
        raises) closes the stream, which stops the run on the server as a
        timeout would; RunCancelledError's ``result`` is what had arrived."""
        callbacks: Dict[str, Any] = {"stdout": on_stdout, "stderr": on_stderr, "error": on_error,
                                     "result": on_result, "input": on_input}
        command, seconds = run_command(code, envs=envs, timeout=timeout, stdin=stdin, on_input=on_input,
                                       callbacks=callbacks)
        if cancel is not None and not hasattr(cancel, "is_set"):
            raise TypeError("cancel must be a threading.Event, not %s" % type(cancel).__name__)
        ctx = rc.context_id(context)
        self._check_open()
        if cancel is not None and cancel.is_set():
            raise RunCancelledError("the run was cancelled before it started")
        return self._perform(st.run(self, ctx, command, seconds, callbacks), cancel)

    def complete(self, code: str, cursor: Optional[int] = None, context: ContextRef = None) -> List[str]:
        """See :meth:`interp.CodeInterpreter.complete`."""
        command = completion_command(code, cursor)
        return self._call(rc.complete_call(rc.context_id(context), command["code"], command["cursor"]))

    def interrupt(self, context: ContextRef = None) -> None:
        """See :meth:`interp.CodeInterpreter.interrupt` (any thread)."""
        self._call(rc.interrupt_call(rc.context_id(context)))

    def restart_context(self, context: ContextRef = None) -> InterpreterContext:
        """See :meth:`interp.CodeInterpreter.restart_context`."""
        return self._call(rc.restart_call(rc.context_id(context)))

    def create_context(self, cwd: Optional[str] = None) -> InterpreterContext:
        """Start a new isolated context on the server, in ``cwd`` (a directory
        on the server; default: the server's ``--cwd``), under a new id."""
        ctx = str(uuid.uuid4())
        context = self._call(rc.create_call(ctx, _check_cwd(cwd)))
        with self._lock:
            self._created[ctx] = None
        return context

    def list_contexts(self) -> List[InterpreterContext]:
        """The contexts the server holds (not the default one), oldest first."""
        return self._call(rc.list_call())

    def delete_context(self, context: ContextRef) -> None:
        """Delete a context on the server (its worker and every process it started)."""
        if context is None:
            raise TypeError("delete_context needs a context (or its id)")
        ctx = rc.context_id(context)
        try:
            self._call(rc.delete_call(ctx))
        finally:
            with self._lock:
                self._created.pop(ctx, None)

    def close(self) -> None:
        """Delete the contexts this client created (unless ``delete_on_close``
        is False; an unreachable server is not waited for) and close the
        connections. Further calls raise InterpError. Idempotent."""
        if self._closed:
            return
        try:
            with self._lock:
                created = list(self._created) if self._delete_on_close else []
            for ctx in created:
                try:
                    self.delete_context(ctx)
                except RemoteError:
                    break  # the server is gone: nothing left to delete there
                except InterpError:
                    pass  # already deleted (by the server's idle timeout, say)
        finally:
            self._closed = True
            self._pool.close()
