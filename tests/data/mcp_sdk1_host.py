"""A host built on the official MCP Python SDK 1.x: start interp's MCP
server over stdio, call its tools, print what came back as JSON."""
import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main(checkout):
    params = StdioServerParameters(command=sys.argv[2], args=["-m", "interp", "mcp"], cwd=checkout,
                                   env={"PYTHONPATH": checkout, "PATH": os.environ.get("PATH", "")})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            first = await session.call_tool("run_code", {"code": "x = 6\nprint(x * 7)"})
            second = await session.call_tool("run_code", {"code": "x + 1"})
            failed = await session.call_tool("run_code", {"code": "1 / 0"})
            print(json.dumps({
                "version": init.protocolVersion,
                "tools": sorted(tool.name for tool in tools.tools),
                "first": [c.text for c in first.content if c.type == "text"],
                "first_structured": first.structuredContent,
                "second": [c.text for c in second.content if c.type == "text"],
                "failed": failed.isError,
            }))


asyncio.run(asyncio.wait_for(main(sys.argv[1]), 60))
