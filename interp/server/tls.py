"""TLS for ``interp serve --tls-cert FILE --tls-key FILE``.

Each accepted connection is handed to the HTTP handler as one end of a
socket pair; one event loop thread (for all connections) does the TLS
handshake with the client and relays bytes between the two, so every rule
the handler applies to a plain connection (head and body deadlines, slow
readers, a client going away, pipelining) applies unchanged. The relay holds
at most a transport's buffer per direction: when one side does not take
more, reading from the other pauses (asyncio's flow control), so a slow
client still shows up to the handler as a socket that accepts nothing.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from typing import Optional, Set, Tuple

#: Bytes a relay buffers towards one side before it stops reading the other.
HIGH_WATER = 256 * 1024


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """The server's TLS context: TLS 1.2 or later, the certificate chain and
    key (PEM). OSError or ValueError (ssl.SSLError) for a file that is
    missing, unreadable or not a matching certificate and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        raise ValueError("--tls-cert %s and --tls-key %s are not a matching PEM certificate and key (%s)"
                         % (cert_file, key_file, exc.reason or exc)) from None
    except OSError as exc:
        raise OSError("cannot read the TLS certificate or key: %s" % exc) from None
    return context


class _Side(asyncio.Protocol):
    """One end of a relay: what it receives is written to its peer."""

    def __init__(self, relay: _Pair) -> None:
        self.relay = relay
        self.transport: Optional[asyncio.Transport] = None
        self.peer: Optional[_Side] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None or peer.transport.is_closing():
            self.relay.close()
            return
        peer.transport.write(data)

    def eof_received(self) -> Optional[bool]:
        peer = self.peer
        if peer is not None and peer.transport is not None and peer.transport.can_write_eof():
            peer.transport.write_eof()  # the plain side: the handler sees the client's half-close
            return True
        self.relay.close()
        return None

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.relay.close()

    # flow control: our transport's buffer is full, so stop reading the peer
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.transport.is_closing():
            self.peer.transport.resume_reading()


class _Pair:
    """The client's TLS connection and the handler's end of the socket pair."""

    def __init__(self, relay: TLSRelay) -> None:
        self._relay = relay
        self.client = _Side(self)
        self.inner = _Side(self)
        self.client.peer, self.inner.peer = self.inner, self.client
        self.closed = False

    def close(self, abort: bool = False) -> None:
        """Close both sides (flushing what they hold, unless ``abort``)."""
        if self.closed:
            return
        self.closed = True
        self._relay._pairs.discard(self)
        for side in (self.client, self.inner):
            if side.transport is not None:
                side.transport.abort() if abort else side.transport.close()


class TLSRelay:
    """The event loop thread that terminates TLS for a threaded server."""

    def __init__(self, context: ssl.SSLContext, handshake_timeout: float) -> None:
        self.context = context
        self.handshake_timeout = handshake_timeout
        self._pairs: Set[_Pair] = set()
        self._starting: Set[asyncio.Task[None]] = set()  # handshakes under way
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="interp-https")
        self._thread.start()

    def wrap(self, sock: socket.socket) -> socket.socket:
        """Take an accepted TCP connection; return the plain socket to serve
        it on (the relay speaks TLS with the client)."""
        inner, outer = socket.socketpair()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            outer.setblocking(False)
            asyncio.run_coroutine_threadsafe(self._start(sock, outer), self._loop)
        except BaseException:
            for each in (inner, outer, sock):
                each.close()
            raise
        return inner

    async def _start(self, sock: socket.socket, outer: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        pair = _Pair(self)
        self._pairs.add(pair)
        task = asyncio.current_task()
        assert task is not None
        self._starting.add(task)
        try:
            await loop.connect_accepted_socket(lambda: pair.inner, outer)
            await loop.connect_accepted_socket(lambda: pair.client, sock, ssl=self.context,
                                               ssl_handshake_timeout=self.handshake_timeout)
        except (OSError, asyncio.TimeoutError, asyncio.CancelledError):  # a failed or slow handshake
            pair.close(abort=True)  # the handler sees EOF
            sock.close()  # the very objects the transports hold: closing twice is nothing
            outer.close()
        finally:
            self._starting.discard(task)

    def close(self) -> None:
        """Close every relayed connection and stop the thread."""
        async def stop() -> None:
            starting = list(self._starting)
            for task in starting:
                task.cancel()
            await asyncio.gather(*starting, return_exceptions=True)
            for pair in list(self._pairs):
                pair.close(abort=True)
            for _ in range(3):  # the transports' own closing callbacks
                await asyncio.sleep(0)
        if self._loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        except Exception:  # a loop that is stuck: closing it below is all we can do
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


__all__: Tuple[str, ...] = ("TLSRelay", "server_context")
