"""MCP over Streamable HTTP: the ``/mcp`` endpoint of ``python -m interp serve``.

Each JSON-RPC message is one POST. A request is answered with one JSON
object, or, when it asked for progress (``_meta.progressToken``) and the
client accepts ``text/event-stream``, with an SSE stream of its progress
notifications ending with the response. A request still unanswered after
:attr:`MCPEndpoint.keepalive` seconds is switched to an SSE stream too (if
the client accepts one), which carries an SSE comment after each such
silence: a client's read timeout (the official SDK's is 300 s) must not
end a long silent run. A notification or response gets 202. A client
that disconnects cancels its request (the run is interrupted, as on stdio
by ``notifications/cancelled``). A request cancelled by
``notifications/cancelled`` gets no response, and its POST ends: its SSE
stream ends without one (204 for a client that takes only JSON); a batch
answers its other members.

Request ids are scoped to their client: a handshake-era session's
requests share its scope; any other POST (a 2026-07-28 request, or a
handshake-era one without a session) is a scope of its own, so its ids
clash with no other client's and no other POST can cancel it (in the
stateless era, closing the response is the cancellation).

Eras (see :mod:`interp.mcp.core`): a 2026-07-28 request carries its
revision in ``_meta`` and must mirror it, its method and its tool name in
the ``MCP-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name`` headers
(400 with -32020 otherwise); it needs no session. An ``initialize`` opens a
handshake-era session whose id comes back in ``Mcp-Session-Id``; requests
naming an unknown session get 404, DELETE ends one. A handshake-era
request without a session is served at the revision of its
``MCP-Protocol-Version`` header (2025-03-26 without one). GET gets 405:
this server offers no standalone stream.

The HTTP server's own rules apply before any of this: Host and Origin
checks (a browser page gets 403), the token, ``Content-Type:
application/json`` and the body size limit. Private to interp.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import itertools
import json
import secrets
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Protocol, Tuple

from .. import _jsonlimits
from .core import VERSION_KEY, MCPCore, Session
from .rpc import (HEADER_MISMATCH, INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, MISSING_CLIENT_CAPABILITY,
                  PARSE_ERROR, UNSUPPORTED_PROTOCOL_VERSION, RPCError, error_message)
from .tools import LEGACY_VERSIONS, MODERN_VERSIONS, SUPPORTED_VERSIONS

#: Nesting of arrays and objects a message may have.
MAX_DEPTH = 64
#: Handshake-era sessions kept; beyond, the one unused longest is ended.
MAX_SESSIONS = 1000
#: Seconds a session may go unused before it ends (a later request for it gets 404).
SESSION_IDLE = 3600.0
#: Revision of a handshake-era request with neither a session nor an MCP-Protocol-Version header.
DEFAULT_LEGACY_VERSION = "2025-03-26"
#: The head of an SSE response.
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
#: Seconds of silence after which a pending request's response becomes an SSE stream and gets a comment.
KEEPALIVE = 10.0
#: Bytes of progress notifications that may wait for a slow client (later ones are dropped meanwhile).
MAX_NOTIFICATION_BACKLOG = 256 * 1024
#: What a silent SSE response gets every KEEPALIVE seconds (a comment: clients ignore it).
KEEPALIVE_COMMENT = b": keepalive\n\n"


class Response:
    """What the endpoint answers: a status, headers, and a JSON body (None: empty)."""

    def __init__(self, status: int, body: Any = None, headers: Optional[Dict[str, str]] = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


class Stream(Protocol):
    """The transport's side of an SSE response (the HTTP server implements it)."""

    def begin(self, headers: Dict[str, str]) -> None:
        """Send the response head: 200 with ``headers``, chunked."""

    async def event(self, data: bytes) -> None:
        """Send one SSE event (waits while the client is behind; ConnectionError once it left)."""


class Transport(Protocol):
    """What the endpoint needs of the HTTP request it answers."""

    def open_stream(self) -> Stream:
        """Turn the response into an SSE stream (its head is sent by Stream.begin)."""

    def on_gone(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (on the loop) when the client leaves; returns a function that stops watching."""


#: What the outbox of a request gets when its client left.
_GONE = object()


def _error_response(status: int, request_id: Any, error: RPCError) -> Response:
    return Response(status, error_message(request_id, error))


def _status_of(message: Dict[str, Any], modern: bool, malformed: bool) -> int:
    """The HTTP status of a response (2026-07-28 "Protocol Version Header" and "Server Validation")."""
    error = message.get("error")
    if not isinstance(error, dict):
        return 200
    code = error.get("code")
    if malformed or code in (PARSE_ERROR, INVALID_REQUEST, HEADER_MISMATCH, MISSING_CLIENT_CAPABILITY,
                             UNSUPPORTED_PROTOCOL_VERSION):
        return 400
    if code == METHOD_NOT_FOUND and modern:
        return 404
    return 200


def http_error_body(status: int, message: str) -> Dict[str, Any]:
    """The body of an HTTP-level rejection of a /mcp request (a wrong token, a foreign Origin, a body
    too large...): a JSON-RPC error, which MCP clients show (the official SDK reports only "Server
    returned an error response" for any other body)."""
    code = INVALID_REQUEST if status < 500 else INTERNAL_ERROR
    return error_message(None, RPCError(code, message, {"status": status}))


def _header_value(value: str) -> Optional[str]:
    """A header value, decoded from the ``=?base64?...?=`` form; None if invalid."""
    if value.startswith("=?base64?") and value.endswith("?="):
        try:
            return base64.b64decode(value[9:-2], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
    if any(not (32 <= ord(ch) < 127 or ch == "\t") for ch in value):
        return None
    return value


class MCPEndpoint:
    """The ``/mcp`` endpoint over a shared :class:`MCPCore`."""

    def __init__(self, core: MCPCore, keepalive: float = KEEPALIVE) -> None:
        self.core = core
        #: Seconds of silence before a pending response becomes an SSE stream and gets a keep-alive comment.
        self.keepalive = keepalive
        self._lock = threading.Lock()
        self._scopes = itertools.count()  # of POSTs without a session: each is a client's scope of its own
        self._sessions: collections.OrderedDict[str, Tuple[Session, float]] = collections.OrderedDict()

    # -- sessions (handshake era) -------------------------------------------------------

    def _new_session(self) -> Session:
        session = Session(secrets.token_urlsafe(24))
        with self._lock:
            self._expire(time.monotonic())
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.popitem(last=False)
            self._sessions[session.key] = (session, time.monotonic())
        return session

    def _session(self, key: str) -> Optional[Session]:
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            entry = self._sessions.get(key)
            if entry is None:
                return None
            self._sessions[key] = (entry[0], now)
            self._sessions.move_to_end(key)
            return entry[0]

    def _expire(self, now: float) -> None:
        while self._sessions:
            key, (_session, used) = next(iter(self._sessions.items()))
            if now - used < SESSION_IDLE:
                return
            del self._sessions[key]

    def delete(self, headers: Any) -> Response:
        """DELETE /mcp: end the session named by ``Mcp-Session-Id``."""
        key = headers.get("Mcp-Session-Id")
        if key is None:
            return _error_response(400, None, RPCError(INVALID_REQUEST, "DELETE /mcp needs an Mcp-Session-Id"))
        with self._lock:
            found = self._sessions.pop(key, None)
        if found is None:
            return _error_response(404, None, RPCError(INVALID_REQUEST, "no such session (it ended or expired)"))
        return Response(204)

    # -- POST ----------------------------------------------------------------------------

    async def post(self, headers: Any, body: bytes, transport: Transport) -> Optional[Response]:
        """Answer one POST. Returns the response, or None when it was streamed
        (``transport.open_stream()`` was called and the stream carried it)."""
        accept = [part.split(";")[0].strip().lower() for part in (headers.get("Accept") or "").split(",")]
        takes_json = any(kind in ("application/json", "application/*", "*/*") for kind in accept)
        takes_sse = any(kind in ("text/event-stream", "text/*", "*/*") for kind in accept)
        if not (takes_json or takes_sse):
            return _error_response(406, None, RPCError(INVALID_REQUEST, "the Accept header must list "
                                                       "application/json and text/event-stream"))
        try:
            message = _jsonlimits.loads(body, max_depth=MAX_DEPTH, max_int_digits=30)
        except ValueError as exc:
            return _error_response(400, None, RPCError(PARSE_ERROR, "parse error: the body %s" % exc))
        if isinstance(message, list):
            return await self._batch(headers, message, transport)
        if not isinstance(message, dict):
            return _error_response(400, None, RPCError(INVALID_REQUEST, "not a JSON-RPC 2.0 message"))
        params = message.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        version = meta.get(VERSION_KEY) if isinstance(meta, dict) else None
        modern = isinstance(version, str) and version in MODERN_VERSIONS and message.get("method") != "initialize"
        response_headers: Dict[str, str] = {}
        if modern:
            problem = self._check_headers(headers, message, version)
            if problem is not None:
                return _error_response(400, message.get("id"), RPCError(HEADER_MISMATCH, problem))
            session = Session("post-%d" % next(self._scopes))  # stateless: ids are this POST's alone
        else:
            found = self._legacy_session(headers, message)
            if isinstance(found, Response):
                return found
            session = found
            if message.get("method") == "initialize" and "id" in message:
                response_headers["Mcp-Session-Id"] = session.key
        if "id" not in message or "method" not in message:  # a notification or a response
            replies: List[Optional[Dict[str, Any]]] = []
            self.core.handle(message, session, replies.append, lambda note: None)
            if replies:
                return Response(400, replies[0])
            return Response(202)
        return await self._request(message, session, modern, response_headers, takes_json, takes_sse, transport)

    def _check_headers(self, headers: Any, message: Dict[str, Any], version: Any) -> Optional[str]:
        """What is wrong with a 2026-07-28 request's mirrored headers, or None."""
        expected = [("MCP-Protocol-Version", version), ("Mcp-Method", message.get("method"))]
        params = message.get("params") or {}
        if message.get("method") in ("tools/call", "prompts/get", "resources/read"):
            expected.append(("Mcp-Name", params.get("name", params.get("uri"))))
        for name, want in expected:
            given = headers.get_all(name) or []
            if len(given) != 1:
                return "Header mismatch: the request needs one %s header (got %d)" % (name, len(given))
            value = _header_value(given[0].strip()) if name == "Mcp-Name" else given[0].strip()
            if value != want:
                return "Header mismatch: %s header value %r does not match body value %r" % (
                    name, given[0][:100], str(want)[:100])
        return None

    def _legacy_session(self, headers: Any, message: Dict[str, Any]) -> Any:
        """The session of a handshake-era message, or the error Response."""
        if message.get("method") == "initialize":
            return self._new_session()
        key = headers.get("Mcp-Session-Id")
        if key is not None:
            session = self._session(key)
            if session is None:
                return _error_response(404, message.get("id"), RPCError(
                    INVALID_REQUEST, "no such session (it ended or expired): initialize again"))
            return session
        version = (headers.get("MCP-Protocol-Version") or DEFAULT_LEGACY_VERSION).strip()
        if version not in LEGACY_VERSIONS:
            return _error_response(400, message.get("id"), RPCError(
                UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version %r (supported: %s)"
                % (version[:100], ", ".join(SUPPORTED_VERSIONS)),
                {"supported": list(SUPPORTED_VERSIONS), "requested": version[:100]}))
        session = Session("post-%d" % next(self._scopes), version)
        session.initialized = True
        return session

    async def _request(self, message: Dict[str, Any], session: Session, modern: bool,
                       response_headers: Dict[str, str], takes_json: bool, takes_sse: bool,
                       transport: Transport) -> Optional[Response]:
        params = message.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        wants_progress = isinstance(meta, dict) and meta.get("progressToken") is not None
        outbox = _Outbox()
        put = outbox.deliverer
        stream: Optional[Stream] = None

        def open_stream() -> Stream:
            opened = transport.open_stream()
            opened.begin(dict(response_headers, **SSE_HEADERS))
            return opened
        if takes_sse and (wants_progress or not takes_json):
            stream = open_stream()
        stop_watching = transport.on_gone(outbox.gone)
        try:
            self.core.handle(message, session, put(True), put(False) if stream is not None else lambda note: None)
            while True:
                try:
                    item = await asyncio.wait_for(outbox.get(), self.keepalive if takes_sse else None)
                except asyncio.TimeoutError:  # a silent request: keep the client's read timeout at bay
                    if stream is None:
                        stream = open_stream()
                    await stream.event(KEEPALIVE_COMMENT)
                    continue
                if item is _GONE:
                    self.core.cancel_request(session.key, message.get("id"))
                    return None if stream is not None else Response(499)
                if item is None:  # cancelled (notifications/cancelled): no response, and the POST ends
                    if stream is None and takes_sse:
                        stream = open_stream()
                    return None if stream is not None else Response(204, None, response_headers)
                if isinstance(item, bytes):  # a notification, encoded (there is a stream)
                    assert stream is not None
                    await stream.event(item)
                    continue
                if stream is not None:
                    await stream.event(_sse(item))
                    return None
                malformed = bool(item.get("error")) and _looks_malformed(item)
                return Response(_status_of(item, modern, malformed), item, response_headers)
        except ConnectionError:  # the stream's client left or stalled
            self.core.cancel_request(session.key, message.get("id"))
            return None
        finally:
            stop_watching()

    async def _batch(self, headers: Any, batch: List[Any], transport: Transport) -> Response:
        """A JSON-RPC batch (2025-03-26): answered as one JSON array."""
        if not batch:
            return _error_response(400, None, RPCError(INVALID_REQUEST, "an empty batch"))
        if len(batch) > 100:
            return _error_response(400, None, RPCError(INVALID_REQUEST, "a batch over HTTP holds at most 100 "
                                                                        "messages"))
        found = self._legacy_session(headers, {})
        if isinstance(found, Response):
            return found
        replies = _Outbox()
        collect = replies.deliverer(True)
        stop_watching = transport.on_gone(replies.gone)
        try:
            expected = sum(1 for item in batch if self.core.handle(item, found, collect, lambda note: None))
            answers = []
            for _ in range(expected):
                reply = await replies.get()
                if reply is _GONE:
                    for item in batch:
                        if isinstance(item, dict):
                            self.core.cancel_request(found.key, item.get("id"))
                    return Response(499)
                if reply is not None:  # None: a member cancelled, which gets no response
                    answers.append(reply)
        finally:
            stop_watching()
        return Response(200, answers) if answers else Response(202)


class _Outbox:
    """What a request has for its client: its notifications and its one
    response, put in from any thread (the core answers tool calls from theirs).

    Notifications wait encoded, at most MAX_NOTIFICATION_BACKLOG bytes of
    them: past that, while the client is behind, new ones are dropped (they
    are progress, each superseding the last), so a run that prints fast to a
    client that reads slowly cannot fill the server's memory."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        #: a response (dict), a notification (SSE bytes), None (cancelled: no response) or _GONE
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._waiting = 0  # bytes of notifications in the queue

    def deliverer(self, final: bool) -> Callable[[Optional[Dict[str, Any]]], None]:
        def deliver(item: Optional[Dict[str, Any]]) -> None:
            try:
                self._loop.call_soon_threadsafe(self._put, final, item)
            except RuntimeError:  # the server's loop is closed: nobody waits any more
                pass
        return deliver

    def _put(self, final: bool, item: Optional[Dict[str, Any]]) -> None:
        if final or item is None:
            self._queue.put_nowait(item)
            return
        data = _sse(item)
        if self._waiting + len(data) > MAX_NOTIFICATION_BACKLOG:
            return
        self._waiting += len(data)
        self._queue.put_nowait(data)

    def gone(self) -> None:
        """The client left."""
        self._queue.put_nowait(_GONE)

    async def get(self) -> Any:
        """The next item (see ``_queue``)."""
        item = await self._queue.get()
        if isinstance(item, bytes):
            self._waiting -= len(item)
        return item


def _sse(message: Dict[str, Any]) -> bytes:
    return b"event: message\ndata: " + json.dumps(message).encode("utf-8") + b"\n\n"


def _looks_malformed(message: Dict[str, Any]) -> bool:
    """A -32602 about missing ``_meta`` fields (a malformed modern request: 400)."""
    error = message["error"]
    return error.get("code") == -32602 and "_meta" in str(error.get("message", ""))
