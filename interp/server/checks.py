"""What a request may be: the HTTP errors a handler raises, the Host and
Origin rules' helpers, JSON bodies that cannot recurse too deep, context ids."""

from __future__ import annotations

import ipaddress
import math
import re
import socket
from http import HTTPStatus
from typing import Any, Dict, Optional, Tuple

from .. import _jsonlimits
from ..errors import (
    ContextNotFoundError,
    InterpError,
    InvalidCwdError,
)
from ..types import MIME_FIELDS, Result
from .limits import _EXHAUSTED, _GONE_ERRNOS, _TIMEOUTS, MAX_INT_DIGITS, MAX_JSON_DEPTH


def result_json(result: Result) -> Dict[str, Any]:
    """A Result as a JSON object: the formats that are set, ``extra`` when
    not empty, and ``is_main_result``."""
    data: Dict[str, Any] = {attr: getattr(result, attr) for attr in MIME_FIELDS.values()
                            if getattr(result, attr) is not None}
    if result.extra:
        data["extra"] = result.extra
    data["is_main_result"] = result.is_main_result
    return data


#: A context id in a path: letters, digits, '.', '_' and '-', up to 128 characters.
CONTEXT_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def check_context_id(context_id: str) -> str:
    """``context_id`` if it is a valid context id, else a 400."""
    if not CONTEXT_ID.fullmatch(context_id) or context_id in (".", ".."):
        raise HTTPError(400, "invalid context id %r: use 1 to 128 letters, digits, '.', '_' or '-'"
                        % context_id[:200])
    return context_id


class HTTPError(Exception):
    """An error response: status, message, and whether to close the connection."""

    def __init__(self, status: int, message: str, close: bool = False,
                 headers: Optional[Dict[str, str]] = None, kind: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close
        self.headers = headers or {}
        self.kind = kind  # the InterpError class behind it, named in the body as "interp_error"


def _client_gone(exc: BaseException) -> bool:
    """True for the errors of a connection whose client went away or stalled."""
    return isinstance(exc, (ConnectionError,) + _TIMEOUTS) or (
        isinstance(exc, OSError) and exc.errno in _GONE_ERRNOS)


def _http_error(exc: BaseException) -> Optional[HTTPError]:
    """The error response for an exception of a request's handling; None for
    a bug (a 500). One place maps every InterpError to its status."""
    if isinstance(exc, HTTPError):
        return exc
    kind = type(exc).__name__ if isinstance(exc, InterpError) else None
    if isinstance(exc, ContextNotFoundError):
        return HTTPError(404, str(exc), kind=kind)
    if isinstance(exc, InvalidCwdError):
        return HTTPError(400, str(exc), kind=kind)
    if isinstance(exc, InterpError) or (isinstance(exc, OSError) and exc.errno in _EXHAUSTED):
        return HTTPError(503, str(exc), kind=kind)  # e.g. no worker could start: out of fds or memory
    return None


def _error_body(status: int, message: str, kind: Optional[str] = None) -> Dict[str, str]:
    """An error response's body; ``kind`` names the InterpError behind it."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = {"error": phrase, "message": message}
    if kind is not None:
        body["interp_error"] = kind
    return body


def _is_json_type(value: Optional[str]) -> bool:
    return value is not None and value.split(";")[0].strip().lower() == "application/json"


def _host_name(value: str) -> Optional[str]:
    """The host of a Host header (lowercase, without port or IPv6 brackets);
    None if it is malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket:
            return None
    else:
        host, colon, port = value.partition(":")
        rest = colon + port
    if rest and not (rest[0] == ":" and rest[1:].isascii() and rest[1:].isdigit()):
        return None
    if not host or _NOT_IN_HOSTS.search(host):
        return None
    return host


_NOT_IN_HOSTS = re.compile(r"[ \t/\\@?#]")


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError("%s must be a positive number of seconds, got %r" % (name, value))
    return float(value)


def _parse_json(body: bytes) -> Any:
    """The JSON value of ``body``, with bounded nesting and only finite,
    bounded numbers (no NaN or Infinity). Raises a 400."""
    try:
        return _jsonlimits.loads(body, max_depth=MAX_JSON_DEPTH, max_int_digits=MAX_INT_DIGITS)
    except ValueError as exc:
        raise HTTPError(400, "the body %s" % exc) from None


def _json_object(body: bytes, fields: Dict[str, Tuple[type, ...]], required: Tuple[str, ...]) -> Dict[str, Any]:
    """Parse ``body`` as a JSON object with only ``fields`` (name -> allowed
    types) and the ``required`` ones; an empty body is ``{}``. Raises a 400."""
    value = _parse_json(body) if body.strip() else {}
    if not isinstance(value, dict):
        raise HTTPError(400, "the body must be a JSON object, not %s" % type(value).__name__)
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise HTTPError(400, "unknown field(s): %s (allowed: %s)" % (", ".join(unknown), ", ".join(fields)))
    for name in required:
        if name not in value:
            raise HTTPError(400, "the field %r is required" % name)
    names = {str: "a string", dict: "an object", int: "a number", float: "a number", type(None): "null"}
    for name, item in value.items():
        kinds = fields[name]
        if not isinstance(item, kinds) or (isinstance(item, bool) and bool not in kinds):
            allowed = " or ".join(dict.fromkeys(names.get(kind, kind.__name__) for kind in kinds))
            raise HTTPError(400, "the field %r must be %s" % (name, allowed))
    return value


def is_loopback(host: str) -> bool:
    """True if every address ``host`` resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)
