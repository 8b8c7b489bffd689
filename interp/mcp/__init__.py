"""The MCP front end: ``python -m interp mcp`` (stdio) and ``/mcp`` of
``python -m interp serve`` (Streamable HTTP).

``core`` answers JSON-RPC messages of both protocol eras over one
CodeInterpreter; ``tools`` holds the tools' schemas and result shapes;
``tasks`` the tasks of long calls; ``stdio`` and ``http`` are the two
transports.
"""

from .stdio import MCPServer, add_output_arguments, check_output_arguments, main

__all__ = ["MCPServer", "add_output_arguments", "check_output_arguments", "main"]
