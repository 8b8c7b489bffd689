"""The sans-IO core of the remote client, shared by the sync and the async twin.

It builds the HTTP/1.1 requests of the server's API, parses responses (a
small parser with a bound on everything it holds: head, body, each event),
turns the NDJSON events of a run into the callbacks' payloads and the
ExecutionResult, and maps error responses and final events to interp's
exceptions. It performs no I/O and reads no clock: ``remote.py`` sends the
bytes, feeds what comes back, and calls the callbacks.
"""

from __future__ import annotations

import errno
import json
import re
from typing import Any, Callable, Dict, Generic, List, Mapping, NamedTuple, Optional, Tuple, TypeVar, Union
from urllib.parse import quote, urlsplit

from .. import _http11 as http11
from .. import _jsonlimits
from ..core import Capture
from ..engine import DEFAULT_CONTEXT_ID, ContextRef
from ..files import error_from_json
from ..errors import (
    ConnectionLostError,
    ContextNotFoundError,
    ContextRestartedError,
    InterpError,
    InterpTimeoutError,
    InvalidCwdError,
    RemoteProtocolError,
    RemoteServerError,
    WorkerDiedError,
)
from ..types import (MIME_FIELDS, ExecutionError, ExecutionResult, InterpreterContext, OutputMessage, Result,
                     format_problem)

#: Bytes of a response body that is not a stream (a list of contexts, an error).
MAX_BODY = 16 * 1024 * 1024
#: Bytes of one event of a run's stream (one NDJSON line); a server's
#: results are at most 32 MiB of JSON, escaped.
DEFAULT_MAX_EVENT = 64 * 1024 * 1024
#: Nesting of arrays and objects in what a server sends (a result's JSON
#: value nests at most 100 deep in the worker's protocol).
MAX_JSON_DEPTH = 128
#: Digits of an integer in what a server sends.
MAX_INT_DIGITS = 30
#: Stands for a result past the ``max_output`` budget of results.
RESULT_DROPPED = "[interp: a result of %d bytes was not kept (max_output=%d); on_result received it]"

#: Interim (1xx) responses skipped before a final one; more is a protocol error.
MAX_INTERIM = 16
#: Results a run keeps (besides the ``max_output`` budget of their bytes);
#: those past it reach ``on_result`` but are not kept.
MAX_RESULTS = 10_000
#: Stands for the results past MAX_RESULTS.
RESULTS_DROPPED = "[interp: results past the first %d were not kept; on_result received them]"

#: A context id as the server accepts it in a path.
CONTEXT_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")

T = TypeVar("T")


# -- addresses and requests ----------------------------------------------------------

class Address(NamedTuple):
    """Where a server is: host, port, the path prefix of its API, the Host
    header, and whether it speaks TLS (https)."""

    host: str
    port: int
    prefix: str
    host_header: str
    tls: bool = False


def parse_url(url: str) -> Address:
    """The Address of an ``http[s]://host[:port][/prefix]`` URL; ValueError otherwise."""
    if not isinstance(url, str):
        raise TypeError("url must be a str, not %s" % type(url).__name__)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("url must start with http:// or https:// (got %r)" % url)
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("url must be http[s]://HOST[:PORT][/PATH], got %r" % url)
    default = 443 if parts.scheme == "https" else 80
    try:
        port = parts.port or default
    except ValueError as exc:
        raise ValueError("bad port in %r: %s" % (url, exc)) from None
    host = parts.hostname
    shown = "[%s]" % host if ":" in host else host
    return Address(host, port, parts.path.rstrip("/"), shown if port == default else "%s:%d" % (shown, port),
                   parts.scheme == "https")


def context_id(ref: ContextRef) -> str:
    """The id a context reference names (None: the default context). Raises
    TypeError, or ContextNotFoundError for an id no server can hold."""
    if ref is None:
        return DEFAULT_CONTEXT_ID
    if isinstance(ref, InterpreterContext):
        ref = ref.id
    if not isinstance(ref, str):
        raise TypeError("context must be an InterpreterContext or its id, not %s" % type(ref).__name__)
    if not CONTEXT_ID.fullmatch(ref) or ref in (".", ".."):
        raise ContextNotFoundError("no context with id %r (not a valid id: 1 to 128 letters, digits, "
                                   "'.', '_' or '-')" % ref)
    return ref


class Request(NamedTuple):
    """One API request: method, path (under the URL's prefix) and JSON body."""

    method: str
    path: str
    body: Any = None


def request_head(method: str, path: str, address: Address, token: Optional[str], accept: str,
                 fields: List[Tuple[str, str]]) -> bytes:
    """A request's head (HTTP/1.1, keep-alive) for ``path`` under the URL's prefix."""
    head = [("Host", address.host_header), ("Accept", accept)]
    if token:  # sent as its UTF-8 bytes, which the server compares
        head.append(("Authorization", "Bearer " + token.encode("utf-8").decode("latin-1")))
    return http11.encode_head("%s %s%s HTTP/1.1" % (method, quote(address.prefix), path), head + fields)


def encode_request(request: Request, address: Address, token: Optional[str]) -> bytes:
    """The bytes of ``request`` as HTTP/1.1 with keep-alive."""
    fields = []
    data = b""
    if request.body is not None:
        data = json.dumps(request.body).encode("utf-8")
        fields.append(("Content-Type", "application/json"))
    if data or request.method in ("POST", "PUT"):
        fields.append(("Content-Length", str(len(data))))
    return request_head(request.method, request.path, address, token, "application/json, application/x-ndjson",
                        fields) + data


def _path(context: str, action: str = "") -> str:
    return "/contexts/%s%s" % (context, "/" + action if action else "")


# -- responses -------------------------------------------------------------------------

class ResponseParser:
    """One HTTP/1.1 response, read with the shared sans-IO reader
    (interp._http11), which bounds what it holds.

    :meth:`feed` returns the body bytes it decoded (chunked, Content-Length
    or until the connection closes); ``status`` and ``headers`` (lowercase
    names) are set once the head is in, skipping interim (1xx) responses;
    ``done`` once the body ended. Raises RemoteProtocolError for anything
    that is not HTTP/1.1.
    """

    def __init__(self, method: str) -> None:
        self._method = method
        self._reader = http11.Reader(requests=False)  # heads of at most http11.MAX_HEAD bytes
        self._head_done = False
        self.status = 0
        self.headers: Dict[str, str] = {}
        self.keep_alive = False
        self.keep_alive_timeout: Optional[float] = None
        self.interim = 0  # 1xx responses skipped

    @property
    def received(self) -> int:
        """Bytes fed so far."""
        return self._reader.received

    @property
    def head_done(self) -> bool:
        return self._head_done

    @property
    def done(self) -> bool:
        return self._head_done and self._reader.done

    def feed(self, data: bytes) -> List[bytes]:
        reader = self._reader
        reader.feed(data)
        try:
            while not self._head_done:
                head = reader.head()
                if head is None:
                    return []
                self._take(head)
            out = reader.body()
            if reader.done and reader.buffered:  # a server must not send what nobody asked for
                raise RemoteProtocolError("the server sent %d bytes after its response" % reader.buffered)
        except http11.ProtocolError as exc:
            raise RemoteProtocolError("the server's answer is not HTTP/1.1: %s" % exc) from None
        return [out] if out else []

    def eof(self) -> List[bytes]:
        """The connection closed: the end of a body read until close (else an error)."""
        try:
            self._reader.eof()
        except http11.ProtocolError:
            raise EOFError("the connection closed in the middle of a response") from None
        if not self.done:
            raise EOFError("the connection closed in the middle of a response")
        self.keep_alive = self.keep_alive and self._framing != "close"
        return []

    def _take(self, head: http11.Head) -> None:
        if 100 <= head.status < 200 and head.status != 101:  # interim (102, 103...): skipped, as RFC 9110 says
            self.interim += 1
            if self.interim > MAX_INTERIM:
                raise RemoteProtocolError("the server sent more than %d interim (1xx) responses" % MAX_INTERIM)
            self._reader.skip()
            return
        self._head_done = True
        self.status = head.status
        for name, value in head.headers:
            key = name.lower()
            self.headers[key] = (self.headers[key] + ", " + value) if key in self.headers else value
        self.keep_alive = head.keep_alive
        timeout = re.search(r"timeout=([0-9.]+)", self.headers.get("keep-alive", ""))
        if timeout is not None:
            try:
                self.keep_alive_timeout = float(timeout.group(1))
            except ValueError:
                pass
        self._framing, length = http11.response_framing(head, self._method)
        if self._framing == "close":
            self.keep_alive = False
        self._reader.expect(self._framing, length)


def _bad(what: str) -> RemoteProtocolError:
    return RemoteProtocolError("the server sent %s; is it interp serve?" % what)


def decode_json(data: bytes) -> Any:
    """A JSON value from the server, bounded (RemoteProtocolError otherwise)."""
    try:
        return _jsonlimits.loads(data, max_depth=MAX_JSON_DEPTH, max_int_digits=MAX_INT_DIGITS)
    except ValueError as exc:
        raise _bad("JSON that %s" % exc) from None


def error_from_response(status: int, body: bytes, content_type: str) -> Exception:
    """The exception for an error response: the InterpError the server names
    (``interp_error``), the built-in one a file route names (``file_error``),
    else a RemoteServerError with the status."""
    message: str = ""
    kind: Optional[str] = None
    file_error: Any = None
    if content_type.split(";")[0].strip().lower() == "application/json" and len(body) <= MAX_BODY:
        try:
            value = decode_json(body)
        except RemoteProtocolError:
            value = None
        if isinstance(value, dict):
            found_message, found_kind = value.get("message"), value.get("interp_error")
            message = found_message if isinstance(found_message, str) else ""
            kind = found_kind if isinstance(found_kind, str) else None
            file_error = value.get("file_error")
    if isinstance(file_error, dict):
        return error_from_json(file_error)
    if not message:
        message = body[:200].decode("utf-8", "replace").strip() or "no message"
    if kind == "ContextNotFoundError":
        return ContextNotFoundError(message)
    if kind == "InvalidCwdError":
        found = re.match(r"\[Errno (\d+)\] (.*)", message, re.DOTALL)
        if found:
            return InvalidCwdError(int(found.group(1)), found.group(2))
        return InvalidCwdError(errno.ENOENT, message)
    return RemoteServerError(status, message)


# -- plain calls -------------------------------------------------------------------------

class Call(Generic[T]):
    """One request with a JSON (or empty) answer: what to send, the status
    that means success, and how to read the answer."""

    def __init__(self, request: Request, expect: int, decode: Callable[[Any], T]) -> None:
        self.request = request
        self.expect = expect
        self.decode = decode
        #: Whether it may be sent again on a fresh connection when a reused
        #: one turns out closed (it changes nothing if it ran twice).
        self.idempotent = request.method in ("GET", "PUT", "DELETE")


class CallExchange(Generic[T]):
    """Reads the response of a Call; :meth:`outcome` is its value or raises."""

    def __init__(self, call: Call[T]) -> None:
        self.call = call
        self.parser = ResponseParser(call.request.method)
        self._body = bytearray()

    @property
    def done(self) -> bool:
        return self.parser.done

    def feed(self, data: bytes) -> None:
        for piece in self.parser.feed(data):
            self._body += piece
            if len(self._body) > MAX_BODY:
                raise _bad("a response body of more than %d bytes" % MAX_BODY)

    def eof(self) -> None:
        self.parser.eof()

    def outcome(self) -> T:
        status = self.parser.status
        if status != self.call.expect:
            raise error_from_response(status, bytes(self._body), self.parser.headers.get("content-type", ""))
        return self.call.decode(decode_json(bytes(self._body)) if self._body.strip() else None)


def _context(value: Any) -> InterpreterContext:
    if not (isinstance(value, dict) and isinstance(value.get("id"), str) and isinstance(value.get("cwd"), str)
            and isinstance(value.get("language", ""), str) and isinstance(value.get("active", True), bool)):
        raise _bad("a context that is not {\"id\", \"cwd\", \"language\", \"active\"}")
    return InterpreterContext(value["id"], value["cwd"], value.get("language", "python"), value.get("active", True))


def _contexts(value: Any) -> List[InterpreterContext]:
    if not isinstance(value, list):
        raise _bad("a list of contexts that is not a list")
    return [_context(item) for item in value]


def _matches(value: Any) -> List[str]:
    if not (isinstance(value, dict) and isinstance(value.get("matches"), list)
            and all(isinstance(item, str) for item in value["matches"])):
        raise _bad("completions that are not {\"matches\": [str, ...]}")
    return list(value["matches"])


def _nothing(value: Any) -> None:
    return None


def create_call(context: str, cwd: Optional[str]) -> Call[InterpreterContext]:
    return Call(Request("PUT", _path(context), {"cwd": cwd}), 201, _context)


def list_call() -> Call[List[InterpreterContext]]:
    return Call(Request("GET", "/contexts"), 200, _contexts)


def delete_call(context: str) -> Call[None]:
    return Call(Request("DELETE", _path(context)), 204, _nothing)


def restart_call(context: str) -> Call[InterpreterContext]:
    return Call(Request("POST", _path(context, "restart")), 200, _context)


def interrupt_call(context: str) -> Call[None]:
    return Call(Request("POST", _path(context, "interrupt")), 204, _nothing)


def complete_call(context: str, code: str, cursor: int) -> Call[List[str]]:
    return Call(Request("POST", _path(context, "complete"), {"code": code, "cursor": cursor}), 200, _matches)


def answer_call(context: str, request: int, value: Optional[str]) -> Call[None]:
    """The answer to an ``input_request`` (None: EOF)."""
    body: Dict[str, Any] = {"request": request}
    if value is None:
        body["eof"] = True
    else:
        body["value"] = value
    return Call(Request("POST", _path(context, "input"), body), 204, _nothing)


def health_call() -> Call[Any]:
    return Call(Request("GET", "/health"), 200, lambda value: value)


# -- runs ----------------------------------------------------------------------------------

def run_request(context: str, command: Mapping[str, Any], seconds: Optional[float]) -> Request:
    """The execute request for a validated run command (see commands.run_command)."""
    body: Dict[str, Any] = {"code": command["code"], "timeout": 0 if seconds is None else seconds}
    for name in ("envs", "stdin"):
        if command.get(name) is not None:
            body[name] = command[name]
    if command.get("input"):
        body["input"] = True
    return Request("POST", _path(context, "execute"), body)


#: A payload for a callback: ("stdout" | "stderr", OutputMessage), ("result",
#: Result), ("error", ExecutionError) or ("input", (request number, prompt)).
Delivery = Tuple[str, Union[OutputMessage, Result, ExecutionError, Tuple[int, str]]]


class RunExchange:
    """Reads the response of one execute request: the HTTP stream, its NDJSON
    events (each at most ``max_event`` bytes), the payloads for callbacks,
    and the result, keeping at most ``max_output`` characters per stream."""

    def __init__(self, context: str, *, max_output: Optional[int], max_event: int = DEFAULT_MAX_EVENT) -> None:
        self.context = context
        self.parser = ResponseParser("POST")
        self.max_output = max_output
        self.max_event = max_event
        self._line = bytearray()
        self._error_body = bytearray()
        self._capture = {"stdout": Capture(max_output), "stderr": Capture(max_output)}
        self._results: List[Result] = []
        self._results_size = 0
        self._results_dropped = 0
        self._results_past = 0  # results past MAX_RESULTS
        self._error: Optional[ExecutionError] = None
        self.final: Optional[Dict[str, Any]] = None  # the end, timeout or interp_error event

    @property
    def streaming(self) -> bool:
        """The server answered 200: the run has its place on the server."""
        return self.parser.head_done and self.parser.status == 200

    @property
    def done(self) -> bool:
        return self.parser.done

    def feed(self, data: bytes) -> List[Delivery]:
        """Bytes from the connection; the payloads for callbacks they complete."""
        out: List[Delivery] = []
        for piece in self.parser.feed(data):
            if self.parser.status != 200:
                self._error_body += piece[:MAX_BODY + 1 - len(self._error_body)]
                continue
            start = 0
            while True:
                end = piece.find(b"\n", start)
                chunk = piece[start:] if end < 0 else piece[start:end]
                if len(self._line) + len(chunk) > self.max_event:
                    raise _bad("an event of more than %d bytes" % self.max_event)
                self._line += chunk
                if end < 0:
                    break
                line, self._line = bytes(self._line), bytearray()
                start = end + 1
                if line.strip():  # blank lines may keep a connection alive
                    out.extend(self._event(decode_json(line)))
        if self.parser.done and self.parser.status == 200 and self.final is None:
            raise ConnectionLostError("the server ended the run's stream without saying how the run ended",
                                      may_be_running=True, result=self.result())
        return out

    def eof(self) -> None:
        self.parser.eof()

    def _event(self, event: Any) -> List[Delivery]:
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise _bad("an event that is not a JSON object with a 'type'")
        if self.final is not None:
            raise _bad("an event after the run's last one")
        kind = event["type"]
        if kind in ("stdout", "stderr"):
            text = _field(event, "text", str)
            self._capture[kind].add(text)
            return [(kind, OutputMessage(text))]
        if kind == "result":
            result = _result(event)
            self._keep(result, len(json.dumps(event)))
            return [("result", result)]
        if kind == "error":
            self._error = ExecutionError(_field(event, "name", str), _field(event, "value", str),
                                         _field(event, "traceback", str))
            return [("error", self._error)]
        if kind == "input_request":
            return [("input", (_field(event, "request", int), _field(event, "prompt", str)))]
        if kind == "end":
            _field(event, "execution_count", int)
        elif kind == "timeout":
            _field(event, "message", str)
            _field(event, "restarted", bool)
        elif kind == "interp_error":
            _field(event, "name", str)
            _field(event, "message", str)
            if not isinstance(event.get("returncode"), (int, type(None))) or isinstance(event.get("returncode"), bool):
                raise _bad("an interp_error event whose 'returncode' is not an integer")
            for name in ("stdout", "stderr"):  # what a worker that died while idle had written
                if name in event:
                    self._capture[name].add(_field(event, name, str))
        else:
            return []  # an event type from a newer server: ignored
        count = event.get("execution_count", 0)
        if not isinstance(count, int) or isinstance(count, bool):
            raise _bad("a %r event whose 'execution_count' is not an integer" % kind)
        self.final = event
        return []

    def _keep(self, result: Result, size: int) -> None:
        if len(self._results) >= MAX_RESULTS:  # bounded in count too: stand-ins are objects as well
            self._results_past += 1
            return
        if self.max_output is not None and self._results_size + size > self.max_output:
            self._results_dropped += 1
            result = Result(text=RESULT_DROPPED % (size, self.max_output), is_main_result=result.is_main_result)
        else:
            self._results_size += size
        self._results.append(result)

    def result(self) -> ExecutionResult:
        """What the run produced so far."""
        count = self.final.get("execution_count", 0) if self.final is not None else 0
        results = list(self._results)
        if self._results_past:
            results.append(Result(text=RESULTS_DROPPED % MAX_RESULTS))
        return ExecutionResult(stdout=self._capture["stdout"].text(), stderr=self._capture["stderr"].text(),
                               error=self._error, results=results, execution_count=count,
                               truncated=bool(self._results_dropped or self._results_past or any(
                                   capture.dropped for capture in self._capture.values())))

    def error_response(self) -> Exception:
        """The exception for a response that was not a stream (404, 503, ...)."""
        return error_from_response(self.parser.status, bytes(self._error_body),
                                   self.parser.headers.get("content-type", ""))

    def outcome(self) -> ExecutionResult:
        """The run's result, or the exception its final event stands for."""
        event = self.final
        assert event is not None
        result = self.result()
        if event["type"] == "end":
            return result
        if event["type"] == "timeout":
            raise InterpTimeoutError(event["message"], result, restarted=event["restarted"])
        name, message = event["name"], event["message"]
        if name == "WorkerDiedError":
            raise WorkerDiedError(message, result, event.get("returncode"))
        if name == "ContextRestartedError":
            raise ContextRestartedError(message, result)
        if name == "ContextNotFoundError":
            raise ContextNotFoundError(message)
        raise InterpError("%s: %s" % (name, message))


def _field(event: Dict[str, Any], name: str, kind: type) -> Any:
    value = event.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _bad("a %r event whose %r is not %s" % (event["type"], name, kind.__name__))
    return value


def _result(event: Dict[str, Any]) -> Result:
    fields: Dict[str, Any] = {}
    for attr in MIME_FIELDS.values():
        if attr in event:
            value = event[attr]
            problem = format_problem(attr, value)
            if problem:
                raise _bad("a result whose %r is %s" % (attr, problem))
            fields[attr] = value
    extra = event.get("extra", {})
    if not isinstance(extra, dict):
        raise _bad("a result whose 'extra' is not an object")
    return Result(**fields, extra=extra, is_main_result=_field(event, "is_main_result", bool))

