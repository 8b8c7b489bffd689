"""What the remote twins do for each request, written once.

A request is a generator of I/O steps: it yields what it needs done and is
sent the outcome (or has the exception thrown in at the ``yield``, where its
own ``try`` handles it). :class:`~interp.remote.sync.RemoteCodeInterpreter`
performs the steps with blocking calls, :class:`~interp.remote.aio.AsyncRemoteCodeInterpreter`
with awaits (``_perform`` in each); everything else, from retrying on a
closed kept-alive connection to mapping a broken one, is here.

The steps (tuples, the first item names the step):

- ``(CONNECT,)``: a connection from the pool (new or kept alive);
- ``(SEND, conn, data, deadline)``: all of ``data``; socket.timeout past ``deadline``;
  ``(SEND, conn, data, deadline, True)``: the same, but it stops when an answer waits while the
  server does not read, and gives how many bytes went;
- ``(RECEIVE, conn, deadline)``: the next bytes (b"" at EOF); ``deadline`` may be None;
- ``(CALL, function, argument)``: a callback's value (awaited if it is awaitable);
- ``(READ, chunks)``: the next chunk of a local file (b"" at its end);
- ``(ANSWERED, conn)``: True if the server sent something (or closed) not read yet, without waiting.
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, Iterator, Mapping, Optional, Tuple

from ..errors import RemoteProtocolError, RemoteServerError, RunCancelledError
from ..types import ExecutionResult
from . import core as rc
from . import files as rf
from .client import T, _Cancelled, _input_value, _lost

if TYPE_CHECKING:
    from .client import _RemoteClient

CONNECT, SEND, RECEIVE, CALL, READ, ANSWERED = "connect", "send", "receive", "call", "read", "answered"

Step = Tuple[Any, ...]


class Escape(BaseException):
    """Carries a StopIteration that a step raised (a callback's) through the
    request's generator, which would turn it into a RuntimeError (PEP 479);
    the twin raises the StopIteration itself again."""
Steps = Generator[Step, Any, T]
#: What breaks a connection: the twins' I/O raises these (a timeout is a socket.timeout).
BROKEN = (OSError, EOFError, RemoteProtocolError)


def call(client: _RemoteClient, request: rc.Call[T]) -> Steps[T]:
    """Send one request and read its answer, on a kept-alive connection (an
    idempotent request is sent again once if a reused one was closed)."""
    client._check_open()
    data = rc.encode_request(request.request, client._address, client._token)
    for attempt in range(2):
        deadline = time.monotonic() + client._io_timeout
        conn = yield (CONNECT,)
        exchange = rc.CallExchange(request)
        sent = False
        try:
            yield (SEND, conn, data, deadline)
            sent = True
            while not exchange.done:
                chunk = yield (RECEIVE, conn, deadline)
                if not chunk:
                    exchange.eof()
                    break
                exchange.feed(chunk)
        except BROKEN as exc:
            conn.close()
            if conn.reused and request.idempotent and attempt == 0 and exchange.parser.received == 0:
                continue  # the server had closed the idle connection
            raise _lost(client._address, request.request, exc, sent=sent) from None
        except BaseException:
            conn.close()
            raise
        client._pool.put(conn, exchange.parser)
        return exchange.outcome()
    raise AssertionError("unreachable")  # pragma: no cover


def transfer(client: _RemoteClient, transfer: rf.Transfer, body: Optional[rf.Body],
             sink: Optional[Callable[[bytes], Any]]) -> Steps[Any]:
    """Carry out an upload (``body``) or a download (its bytes to ``sink``
    as they come) on a kept-alive connection; raise what the server
    answered. Each read and write must progress within ``io_timeout``."""
    client._check_open()
    head = transfer.head(client._address, client._token)
    for attempt in range(2):
        transfer.restart()
        conn = yield (CONNECT,)
        sent = False
        broken: Optional[OSError] = None  # what broke sending the body (the answer is read next)
        # The body: begun, and sent to its end. A connection whose body was begun
        # and not ended is closed: the rest would be taken for the next request.
        started = whole = False
        try:
            yield (SEND, conn, head, time.monotonic() + client._io_timeout)
            sent = True
            deadline = time.monotonic() + rf.EXPECT_WAIT
            while transfer.waiting:  # 100 Continue or a final answer, at most EXPECT_WAIT seconds
                try:
                    if not (yield from _pump(client, conn, transfer, sink, deadline)):
                        break
                except socket.timeout:
                    transfer.go_ahead()
            if transfer.proceed and body is not None:
                started = True
                chunks = rf.local_chunks(body)  # its errors are rf.LocalError
                left = b""  # of the chunk being sent
                while True:
                    if (yield (ANSWERED, conn)):  # read it: a refusal (a 413 at a quota) ends the body;
                        # an interim answer (100, 103) or an early success does not
                        if not (yield from _pump(client, conn, transfer, sink)) or transfer.refused:
                            break
                        continue
                    if not left:
                        left = yield (READ, chunks)
                        if not left:
                            whole = True
                            break
                    try:  # returns early if the server answers while it does not read
                        left = left[(yield (SEND, conn, left, time.monotonic() + client._io_timeout, True)):]
                    except OSError as exc:  # the server may have answered and closed
                        broken = exc
                        break
            while not transfer.done and (yield from _pump(client, conn, transfer, sink)):
                pass
        except rf.LocalError as exc:
            conn.close()
            raise exc.error from None
        except BROKEN as exc:
            conn.close()
            if conn.reused and attempt == 0 and transfer.parser.received == 0:
                continue  # the server had closed the idle connection
            raise _lost(client._address, transfer.request, broken or exc, sent=sent) from None
        except BaseException:
            conn.close()
            raise
        if whole or not started:
            client._pool.put(conn, transfer.parser)
        else:
            conn.close()  # the server answered before the body's end
        return transfer.outcome()
    raise AssertionError("unreachable")  # pragma: no cover


def _pump(client: _RemoteClient, conn: Any, transfer: rf.Transfer, sink: Optional[Callable[[bytes], Any]],
          deadline: Optional[float] = None) -> Steps[bool]:
    """Read and handle what the server sent next; False at its end."""
    chunk = yield (RECEIVE, conn, time.monotonic() + client._io_timeout if deadline is None else deadline)
    if not chunk:
        transfer.eof()
        return False
    for piece in transfer.feed(chunk):
        if sink is not None:
            yield (CALL, sink, piece)
    return True


def run(client: _RemoteClient, ctx: str, command: Dict[str, Any], seconds: Optional[float],
        callbacks: Mapping[str, Any]) -> Steps[ExecutionResult]:
    """Run a checked command on the server, calling back as its events
    stream in. Closing the connection (a callback raised, the caller was
    cancelled) stops the run on the server as a timeout would."""
    client._check_open()
    request = rc.run_request(ctx, command, seconds)
    data = rc.encode_request(request, client._address, client._token)
    deadline = None if seconds is None else time.monotonic() + seconds + client._io_timeout
    conn = yield (CONNECT,)
    run = rc.RunExchange(ctx, max_output=client._max_output, max_event=client._max_event)
    sent = False
    try:
        yield (SEND, conn, data, time.monotonic() + client._io_timeout)
        sent = True
        while not run.done:
            chunk = yield (RECEIVE, conn, deadline)
            if not chunk:
                run.eof()
                break
            for kind, payload in run.feed(chunk):
                yield from _deliver(client, ctx, kind, payload, callbacks)
    except _Cancelled:  # the sync twin's cancel event
        conn.close()
        raise RunCancelledError("the run was cancelled", run.result()) from None
    except BROKEN as exc:
        conn.close()
        raise _lost(client._address, request, exc, sent=sent, run=run) from None
    except BaseException:
        conn.close()  # a callback raised, or the caller was interrupted: the server stops the run
        raise
    client._pool.put(conn, run.parser)
    if run.parser.status != 200:
        raise run.error_response()
    return run.outcome()


def _deliver(client: _RemoteClient, ctx: str, kind: str, payload: Any,
             callbacks: Mapping[str, Any]) -> Steps[None]:
    """Call the callback of an event; an input request's answer goes back
    to the server (EOF without an ``on_input``, or when it raised EOFError)."""
    callback = callbacks.get(kind)
    if kind != "input":
        if callback is not None:
            yield (CALL, callback, payload)
        return
    number, prompt = payload
    value, raised = None, None
    if callback is not None:
        try:
            value = yield (CALL, callback, prompt)
        except EOFError as exc:
            raised = exc
    try:
        yield from call(client, rc.answer_call(ctx, number, _input_value(callback, value, raised)))
    except RemoteServerError as exc:
        if exc.status != 409:  # 409: the code stopped waiting for it
            raise


def next_chunk(chunks: Iterator[bytes]) -> bytes:
    """A READ step's outcome: the next chunk, or b"" at the end."""
    return next(chunks, b"")
