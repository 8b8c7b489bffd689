"""The MCP front end: ``python -m interp mcp`` (stdio) and ``/mcp`` of
``python -m interp serve`` (Streamable HTTP).

``core`` answers JSON-RPC messages of both protocol eras over one
CodeInterpreter (``rpc``: its errors); ``calls`` the tool calls, written
once as steps that ``runners`` perform on threads (stdio) or on the HTTP
server's event loop; ``tools`` holds the tools' schemas and result shapes;
``tasks`` the tasks of long calls; ``resources`` the files; ``stdio`` and
``http`` are the two transports.
"""

from .calls import MAX_IN_FLIGHT
from .stdio import (LATEST_PROTOCOL_VERSION, MAX_BACKLOG, MAX_BATCH, MAX_MESSAGE, PROTOCOL_VERSIONS, MCPServer,
                    add_output_arguments, check_output_arguments, main)

__all__ = ["LATEST_PROTOCOL_VERSION", "MAX_BACKLOG", "MAX_BATCH", "MAX_IN_FLIGHT", "MAX_MESSAGE", "PROTOCOL_VERSIONS",
           "MCPServer", "add_output_arguments", "check_output_arguments", "main"]
