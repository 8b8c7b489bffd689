"""Streamed responses: the NDJSON of /execute and the SSE of /mcp, written
without making the run wait for the client, which counts as gone when it
leaves or stops reading."""

from __future__ import annotations

import collections
import json
import math
import os
import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Optional

from .checks import HTTPError
from .limits import _POLLRDHUP, STREAM_BUFFER

if TYPE_CHECKING:  # they import this module
    from .handler import RequestHandler


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
