"""A raw HTTP/1.1 client driven by the running asyncio loop, for tests that
hold thousands of connections to ``interp serve`` without a thread each:
non-blocking sockets read and written with ``loop.sock_*``, responses
parsed by hand (Content-Length, chunked, or until close), NDJSON streams
read event by event as they arrive, and every socket closed at the end."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple


class Problem(Exception):
    """The server answered something other than what the test expects."""


def request(method: str, path: str, body: Any = None, headers: Sequence[Tuple[str, str]] = ()) -> bytes:
    """One HTTP/1.1 request as bytes; ``body`` is sent as JSON."""
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"]
    data = b""
    if body is not None:
        data = json.dumps(body).encode()
        lines += ["Content-Type: application/json", "Content-Length: %d" % len(data)]
    lines += ["%s: %s" % pair for pair in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


def execute_request(context: str, code: str, timeout: float = 60) -> bytes:
    return request("POST", "/contexts/%s/execute" % context, {"code": code, "timeout": timeout})


@dataclass
class Response:
    status: int
    headers: Dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> List[Dict[str, Any]]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


class Client:
    """A non-blocking socket read and written through the running loop."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.pending = b""  # NDJSON bytes of a stream not yet ended by a newline

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def _more(self) -> None:
        data = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
        if not data:
            raise Problem("the server closed the connection mid-response (after %r)" % bytes(self.buffer[-200:]))
        self.buffer += data

    async def read_until(self, separator: bytes) -> bytes:
        while True:
            end = self.buffer.find(separator)
            if end >= 0:
                data = bytes(self.buffer[:end])
                del self.buffer[:end + len(separator)]
                return data
            await self._more()

    async def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            await self._more()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def head(self) -> Tuple[int, Dict[str, str]]:
        lines = (await self.read_until(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise Problem("not a status line: %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    async def chunk(self) -> Optional[bytes]:
        """The next chunk of a chunked body; None after the last (and its trailer)."""
        size_line = await self.read_until(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            raise Problem("not a chunk size: %r" % size_line) from None
        if size == 0:
            while await self.read_until(b"\r\n"):
                pass
            return None
        data = await self.read_exact(size)
        if await self.read_exact(2) != b"\r\n":
            raise Problem("a chunk not ended by CRLF")
        return data

    async def response(self) -> Response:
        status, headers = await self.head()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                part = await self.chunk()
                if part is None:
                    break
                parts.append(part)
            body = b"".join(parts)
        elif "content-length" in headers:
            body = await self.read_exact(int(headers["content-length"]))
        elif status == 204 or status == 304 or status < 200:
            body = b""
        else:
            body = await self.rest()
        return Response(status, headers, body)

    async def stream_head(self) -> None:
        """Read the head of an /execute response, which must be an NDJSON stream."""
        status, headers = await self.head()
        if status != 200 or headers.get("content-type") != "application/x-ndjson":
            raise Problem("not an NDJSON stream: %d %r" % (status, headers))

    async def next_event(self) -> Optional[Dict[str, Any]]:
        """The stream's next event as it arrives; None at its end."""
        while b"\n" not in self.pending:
            part = await self.chunk()
            if part is None:
                if self.pending.strip():
                    raise Problem("a stream ended inside an event: %r" % self.pending[:200])
                return None
            self.pending += part
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line) if line.strip() else await self.next_event()

    async def rest(self) -> bytes:
        """Everything until the server closes the connection."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.sock_recv(self.sock, 65536)
            except ConnectionResetError:
                data = b""
            if not data:
                data, self.buffer = bytes(self.buffer), bytearray()
                return data
            self.buffer += data

    def state(self) -> str:
        """'open' (nothing to read), 'data' (bytes wait) or 'closed' (end or reset), without waiting."""
        try:
            return "data" if self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) else "closed"
        except BlockingIOError:
            return "open"
        except OSError:
            return "closed"

    def drain(self) -> None:
        """Read whatever has arrived, without waiting."""
        try:
            while self.sock.recv(65536, socket.MSG_DONTWAIT):
                pass
        except OSError:  # BlockingIOError: nothing more
            pass

    def reset(self) -> None:
        """Close with a TCP reset, as a client that crashed."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


class Clients:
    """Connections to one server on 127.0.0.1, each kept here so that all are
    closed at the end whatever happens (:meth:`close_all`)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.all: List[Client] = []

    async def connect(self, rcvbuf: int = 0) -> Client:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client = Client(sock)
        self.all.append(client)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
        return client

    async def exchange(self, data: bytes) -> Response:
        """Send ``data`` on a fresh connection, read one response, close."""
        client = await self.connect()
        try:
            await client.send(data)
            return await client.response()
        finally:
            client.sock.close()

    async def execute(self, context: str, code: str, timeout: float = 60) -> List[Dict[str, Any]]:
        response = await self.exchange(execute_request(context, code, timeout))
        if response.status != 200:
            raise Problem("/execute on %s: %d %r" % (context, response.status, response.body[:300]))
        return response.events()

    def close_all(self) -> None:
        for client in self.all:
            client.sock.close()
        self.all = []


def stdout(*texts: str) -> List[Dict[str, Any]]:
    """The events of a run that prints ``texts`` and ends (execution_count left out)."""
    return [{"type": "stdout", "text": text} for text in texts] + [{"type": "end"}]


def without_counts(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [{k: v for k, v in event.items() if k != "execution_count"} for event in events]
