"""One client connection on the event loop: bytes in through the shared
HTTP/1.1 reader, bytes out through the transport with flow control, and the
deadlines that bound a slow or idle client. A connection costs a socket and
a task, never a thread.

A request is read and answered at a time, in order (pipelined requests wait
in the reader, which stops reading past READ_AHEAD bytes). Routing and the
answers are the job of :mod:`interp.server.routes`.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Union

from .. import _http11 as http11
from .limits import BUSY_HEADER_TIMEOUT, MAX_HEAD

if TYPE_CHECKING:
    from .app import InterpHTTPServer

#: Bytes of pipelined requests read ahead of the one being answered.
READ_AHEAD = 64 * 1024
#: Bytes the transport reads at once, into the server's one receive buffer.
RECEIVE_SIZE = 64 * 1024
#: The transport's write buffer above which writers wait (``drain``), and
#: below which they go on.
WRITE_HIGH = 256 * 1024
WRITE_LOW = 64 * 1024


class ClientGone(ConnectionError):
    """The client closed the connection, reset it, or stopped reading."""


class HeadTimeout(Exception):
    """A request head that had begun did not arrive in time."""


class Connection(asyncio.BufferedProtocol):
    """The server's side of one client connection. The transport reads into
    the server's one receive buffer (no allocation per read, and none per
    connection: an idle connection costs a few KiB), which ``buffer_updated``
    empties into the connection's reader before the loop reads anything else."""

    def __init__(self, server: InterpHTTPServer, on_open: Callable[[Connection], None],
                 on_close: Callable[[Connection], None]) -> None:
        self.server = server
        self._on_open = on_open  # asyncio calls neither connection_made nor _lost after a failed TLS handshake
        self._on_close = on_close
        self.reader = http11.Reader(requests=True, max_head=MAX_HEAD)
        self.transport: Optional[asyncio.Transport] = None
        self.peer = "-"
        self.eof = False  # the client sent FIN (it may still read)
        self.lost = False  # the connection is closed
        self._reading_paused = False
        self._writing_paused = False
        self._wakers: List[asyncio.Future[bool]] = []  # woken by any event on the connection
        self._gone_callbacks: List[Callable[[], None]] = []
        self.waiting_since: Optional[float] = None  # waiting for a request head since (None: not)
        self.task: Optional[asyncio.Task[None]] = None
        self._pending: List[Union[bytes, memoryview]] = []  # written, not yet handed to the transport
        self._pending_size = 0
        self._flush_handle: Optional[asyncio.Handle] = None
        self._flush_soon = False  # the flush is due this turn (else after a delay)
        self._alarm: Optional[asyncio.TimerHandle] = None  # rings at _alarm_at to wake waiters (deadlines)
        self._alarm_at = 0.0
        #: the server's loop (asyncio.get_running_loop() costs a system call each time)
        self._loop = asyncio.get_running_loop()

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._on_open(self)
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # stream lines as they come
            except OSError:
                pass
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else "-"
        from .routes import serve_connection  # routes imports this module
        self.task = self._loop.create_task(serve_connection(self))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server.inbox

    def buffer_updated(self, nbytes: int) -> None:
        self.reader.feed(self.server.inbox[:nbytes])  # copied: the buffer is every connection's
        if self.reader.buffered > READ_AHEAD and not self._reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._gone()
        self._wake()
        # keep the transport open: an answer may still go out (TLS cannot: asyncio closes it, and warns if asked)
        return self.server.tls is None

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost = True
        if self._alarm is not None:
            self._alarm.cancel()
            self._alarm = None
        self._gone()
        self._wake()
        self._on_close(self)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake()

    # -- waiting ----------------------------------------------------------------------

    def poke(self) -> None:
        """Make a waiting reader look at its deadline again (the server became full)."""
        self._wake()

    def _wake(self) -> None:
        wakers, self._wakers = self._wakers, []
        for waker in wakers:
            if not waker.done():
                waker.set_result(True)

    async def _event(self, deadline: Optional[float]) -> bool:
        """Wait for something to happen on the connection; False once
        ``deadline`` passed (the caller looks again after True)."""
        self.flush()  # what was written goes out before the task sleeps
        if deadline is not None:
            if deadline <= time.monotonic():
                return False
            self._arm(deadline)
        waker: asyncio.Future[bool] = self._loop.create_future()
        self._wakers.append(waker)
        await waker
        return deadline is None or time.monotonic() < deadline

    def _arm(self, deadline: float) -> None:
        """Make sure the alarm rings by ``deadline``. One alarm serves every
        wait, and one that rings earlier is kept: a kept-alive connection
        sets a timer every header timeout, not one per request."""
        if self._alarm is not None:
            if self._alarm_at <= deadline:
                return
            self._alarm.cancel()
        self._alarm_at = deadline
        self._alarm = self._loop.call_at(self._loop.time() + (deadline - time.monotonic()), self._ring)

    def _ring(self) -> None:
        self._alarm = None
        self._wake()

    def _resume_reading(self) -> None:
        if self._reading_paused and self.reader.buffered <= READ_AHEAD and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    # -- gone --------------------------------------------------------------------------

    @property
    def gone(self) -> bool:
        """The client left: closed (or half-closed) the connection, or reset it."""
        return self.lost or self.eof

    def on_gone(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` when the client leaves (now if it has); returns a
        function that stops watching."""
        if self.gone:
            callback()
            return lambda: None
        self._gone_callbacks.append(callback)
        return lambda: self._gone_callbacks.remove(callback) if callback in self._gone_callbacks else None

    def _gone(self) -> None:
        callbacks, self._gone_callbacks = self._gone_callbacks, []
        for callback in callbacks:
            callback()

    # -- reading -----------------------------------------------------------------------

    async def read_head(self) -> Optional[http11.Head]:
        """The next request's head; None when the client closed (or stayed
        idle) before sending one. Raises HeadTimeout when a begun head is not
        complete in time, http11.ProtocolError for a malformed one."""
        server = self.server
        self.waiting_since = since = time.monotonic()
        try:
            while True:
                head = self.reader.head()
                if head is not None:
                    return head
                if self.lost:
                    return None  # nobody to answer
                if self.eof:
                    if self.reader.started:
                        raise http11.ProtocolError("the request head ended early")
                    return None
                self._resume_reading()
                limit = server.header_timeout
                if server.busy():
                    limit = min(limit, BUSY_HEADER_TIMEOUT)
                if not await self._event(since + limit):
                    if server.busy() or time.monotonic() >= since + server.header_timeout:
                        if self.reader.started:
                            raise HeadTimeout()
                        return None
        finally:
            self.waiting_since = None

    async def read_body(self, limit: int, timeout: float) -> bytes:
        """Up to ``limit`` bytes of the current body, as soon as any arrive
        (b"" when it ended); TimeoutError when none arrive within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.reader.body(limit)
            if data or self.reader.done:
                return data
            if self.eof or self.lost:
                raise EOFError("the body ended early")
            self._resume_reading()
            if not await self._event(deadline):
                raise TimeoutError("the body stalled")

    # -- writing -----------------------------------------------------------------------

    def write(self, data: Union[bytes, memoryview], delay: float = 0.0, *, now: bool = False) -> None:
        """Queue ``data`` for the client (never waits); ClientGone if it left.

        What is written in one turn of the loop goes out in one send; with
        ``delay``, it may wait that long for more (a stream's head waits for
        its first event, so a quick run is one packet); ``now``: it goes out
        at once, with what waits before it."""
        if self.lost or self.transport is None or self.transport.is_closing():
            raise ClientGone("the client went away")
        self._pending.append(data)
        self._pending_size += len(data)
        self.server.metrics.sent(len(data))
        if now:
            self.flush()
        elif delay:
            if self._flush_handle is None:
                self._flush_handle = self._loop.call_later(delay, self.flush)
        elif self._flush_handle is None or not self._flush_soon:
            if self._flush_handle is not None:
                self._flush_handle.cancel()
            self._flush_handle = self._loop.call_soon(self.flush)
            self._flush_soon = True

    def flush(self) -> None:
        """Hand what was written to the transport now."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._flush_soon = False
        if not self._pending:
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending.clear()
        self._pending_size = 0
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    @property
    def backlog(self) -> int:
        """Bytes written and not yet taken by the kernel."""
        return self._pending_size + (0 if self.transport is None else self.transport.get_write_buffer_size())

    async def drain(self, stall: float, until: Optional[float] = None) -> None:
        """Wait until the client has taken most of what was written. ClientGone
        if it takes no byte for ``stall`` seconds (or left); returns early at
        ``until`` (a monotonic time) with the rest still queued."""
        if self._pending_size >= WRITE_HIGH:
            self.flush()
        progress_at, size = time.monotonic(), self.backlog
        while self._writing_paused:
            if self.lost:
                raise ClientGone("the client went away")
            deadline = progress_at + stall
            if until is not None and until < deadline:
                if not await self._event(until):
                    return
                continue
            if not await self._event(deadline):
                if self.backlog >= size:
                    raise ClientGone("the client took no byte for %g s" % stall)
            if self.backlog < size:
                progress_at, size = time.monotonic(), self.backlog
        if self.lost:
            raise ClientGone("the client went away")

    def close(self) -> None:
        """Close once what was written is sent (at once if the client left)."""
        self.flush()
        if self.transport is not None and not self.transport.is_closing():
            if self.lost:
                self.transport.abort()
            else:
                self.transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._pending_size = 0
        if self.transport is not None:
            self.transport.abort()

    def extra(self, name: str) -> Any:
        return None if self.transport is None else self.transport.get_extra_info(name)
