"""JSON-RPC 2.0 errors as MCP uses them: the codes, the exception, the message."""

from __future__ import annotations

from typing import Any, Dict

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_BUSY = -32000
HEADER_MISMATCH = -32020
MISSING_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022


class RPCError(Exception):
    """A JSON-RPC error response. ``malformed`` marks a request the HTTP
    transport must answer with 400 (a modern request missing its ``_meta``)."""

    def __init__(self, code: int, message: str, data: Any = None, malformed: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.malformed = malformed


def error_message(request_id: Any, error: RPCError) -> Dict[str, Any]:
    body: Dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data is not None:
        body["data"] = error.data
    return {"jsonrpc": "2.0", "id": request_id, "error": body}
