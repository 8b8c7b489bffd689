"""Streamed responses: the NDJSON of /execute and the SSE of /mcp, as HTTP
chunks (or, to an HTTP/1.0 client, until the connection closes).

Writers wait for a slow client (``drain``): a run whose client reads slowly
is slowed down with it, so a server holds about WRITE_HIGH bytes per
stream beyond the event being sent, not the whole output. The waiting is bounded: a client that takes
no byte for ``io_timeout`` seconds counts as gone, and from the run's
deadline on nothing waits (so the timeout fires on time), while at most
STREAM_BUFFER bytes may queue behind the event being sent.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Union

from .. import _http11 as http11
from .connection import WRITE_HIGH, ClientGone, Connection
from .limits import STREAM_BUFFER

#: Bytes of an event written at once before waiting for the client.
SLICE = WRITE_HIGH


class EventStream:
    """The body of one streamed response over ``conn``."""

    def __init__(self, conn: Connection, *, chunked: bool, stall: float, until: Optional[float] = None) -> None:
        self._conn = conn
        self._chunked = chunked  # else the body ends when the connection closes (HTTP/1.0)
        self._stall = stall
        self.until = until  # no waiting for the client from then on (a run's deadline)
        self.begun = False
        self.lines = 0  # stdout and stderr events sent
        self.gone = False  # the client left or does not keep up

    def begin(self, head: bytes) -> None:
        """Send the response head; from now on the response is this stream."""
        self.begun = True
        self._write(head)

    async def send(self, event: Dict[str, Any]) -> None:
        """Send one NDJSON event."""
        if event["type"] in ("stdout", "stderr"):
            self.lines += 1
        await self.send_bytes(_line(event))

    async def send_bytes(self, data: bytes) -> None:
        """Send ``data`` as one chunk (an SSE event), waiting while the client
        is behind; a large event goes out a slice at a time, so the server
        does not copy it whole for a slow client."""
        if self._conn.backlog > STREAM_BUFFER:
            self._left()
            raise ClientGone("the client does not keep up with its stream")
        if len(data) <= SLICE:  # most events: one write
            self._write(self._framed(data))
            await self._drain()
            return
        if self._chunked:
            self._write(http11.chunk_head(len(data)))
        view = memoryview(data)
        for start in range(0, len(data), SLICE):
            self._write(view[start:start + SLICE])
            await self._drain()
        if self._chunked:
            self._write(b"\r\n")

    def _framed(self, data: bytes) -> bytes:
        """``data`` as one whole chunk (as it is, to an HTTP/1.0 client)."""
        return http11.chunk_head(len(data)) + data + b"\r\n" if self._chunked else data

    async def _drain(self) -> None:
        try:
            await self._conn.drain(self._stall, self.until)
        except ClientGone:
            self._left()
            raise

    def _write(self, data: Union[bytes, memoryview], now: bool = False) -> None:
        if self.gone:
            raise ClientGone("the client went away")
        try:
            self._conn.write(data, now=now)
        except ClientGone:
            self._left()
            raise

    def _left(self) -> None:
        self.gone = True

    async def finish(self, last: Optional[Dict[str, Any]] = None) -> bool:
        """End the body (if it began), after the event ``last`` if given, and
        wait until the client took it all; True if everything was delivered."""
        if not self.begun or self.gone:
            return False
        try:
            # the final event (small) goes out with the end at once
            data = b"" if last is None else self._framed(_line(last))
            self._write(data + (http11.LAST_CHUNK if self._chunked else b""), now=True)
            await self._conn.drain(self._stall)
        except ClientGone:
            self._left()
            return False
        return True


def _line(event: Dict[str, Any]) -> bytes:
    """An event as one NDJSON line."""
    return json.dumps(event).encode("utf-8") + b"\n"
