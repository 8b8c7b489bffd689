"""``python -m interp serve``: its command line."""

from __future__ import annotations

import argparse
import math
import os
import resource
import signal
import sys
from typing import List, Optional

from ..api import CodeInterpreter
from ..errors import (
    InterpError,
)
from .._options import Parser, add_timeout, fail, program
from ..mcp import add_output_arguments as add_mcp_arguments
from ..mcp import check_output_arguments as check_mcp_arguments
from ..mcp.http import KEEPALIVE as MCP_KEEPALIVE
from ..sandbox import add_arguments as sandbox_arguments
from ..sandbox import from_arguments as sandbox_from
from .app import make_server
from .files import DEFAULT_MAX_UPLOAD
from .limits import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_IO_TIMEOUT,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PORT,
    TOKEN_ENV,
)
from .tls import server_context


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=program() + " serve",
        description="Serve stateful Python contexts over HTTP (JSON; /execute streams NDJSON), and MCP "
                    "(Streamable HTTP) at /mcp.")
    http = parser.add_argument_group("HTTP")
    http.add_argument("--host", default=DEFAULT_HOST,
                      help="address to bind (default %(default)s; non-loopback needs a token)")
    http.add_argument("--port", type=int, default=DEFAULT_PORT,
                      help="port (default %(default)s; 0: any free port)")
    http.add_argument("--token", default=None,
                      help="require 'Authorization: Bearer TOKEN' (default: $%s; empty is refused)" % TOKEN_ENV)
    http.add_argument("--tls-cert", metavar="FILE",
                      help="serve https with this certificate chain (PEM); needs --tls-key")
    http.add_argument("--tls-key", metavar="FILE", help="the private key of --tls-cert (PEM)")
    http.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                      help="also accept requests whose Host header names NAME ('*': any); needs a "
                           "token (default: only the bound address and loopback names)")
    http.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, metavar="BYTES",
                      help="largest request body (default %(default)s)")
    http.add_argument("--max-upload", type=int, default=DEFAULT_MAX_UPLOAD, metavar="BYTES",
                      help="largest file upload (PUT /files/...), streamed to disk (default %(default)s)")
    http.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS, metavar="N",
                      help="connections served at once; more wait (default %(default)s)")
    http.add_argument("--header-timeout", type=float, default=DEFAULT_HEADER_TIMEOUT, metavar="SECONDS",
                      help="time a client has to send a request's headers, and the longest a "
                           "keep-alive connection stays idle (default %(default)g)")
    http.add_argument("--io-timeout", type=float, default=DEFAULT_IO_TIMEOUT, metavar="SECONDS",
                      help="time a client has to send a body, or to accept more of a response, "
                           "before it counts as gone (default %(default)g)")
    http.add_argument("--quiet", action="store_true", help="do not log each request to stderr")
    runs = parser.add_argument_group("contexts and runs (HTTP and MCP)")
    runs.add_argument("--cwd", metavar="DIR", help="default working directory of contexts")
    add_timeout(runs, "runs that give no timeout")
    runs.add_argument("--max-contexts", type=int, default=None, metavar="N",
                      help="contexts clients may create; beyond, creating one is a 503 (default: no limit)")
    runs.add_argument("--idle-timeout", type=float, default=None, metavar="SECONDS",
                      help="delete a context unused for this long; later requests for it get a 404 "
                           "saying so (default: never)")
    mcp = parser.add_argument_group("MCP at /mcp")
    add_mcp_arguments(mcp)
    mcp.add_argument("--mcp-keepalive", type=float, default=MCP_KEEPALIVE, metavar="SECONDS",
                     help="an /mcp request still running after this long is answered as an SSE stream "
                          "that gets a comment after each such silence, so a client's read timeout does "
                          "not end a long silent run (default %(default)g)")
    sandbox_arguments(parser)
    return parser


def _check_arguments(args: argparse.Namespace) -> Optional[str]:
    """What is wrong with serve's options, in the words of the command line, or None."""
    def seconds(value: Optional[float], zero: bool) -> bool:  # finite > 0; or, for a run, >= 0 (inf: no limit)
        return value is None or (value >= 0 if zero else (math.isfinite(value) and value > 0))

    if not 0 <= args.port <= 65535:
        return "--port must be from 0 to 65535, got %d" % args.port
    for flag, value, zero in (("--header-timeout", args.header_timeout, False),
                              ("--io-timeout", args.io_timeout, False),
                              ("--idle-timeout", args.idle_timeout, False),
                              ("--mcp-keepalive", args.mcp_keepalive, False)):
        if not seconds(value, zero):
            return "%s must be a number of seconds %s, got %s" % (flag, ">= 0" if zero else "> 0", value)
    for flag, value, least in (("--max-body", args.max_body, 0), ("--max-upload", args.max_upload, 0),
                               ("--max-connections", args.max_connections, 1),
                               ("--max-contexts", args.max_contexts, 1)):
        if value is not None and value < least:
            return "%s must be >= %d, got %d" % (flag, least, value)
    if (args.tls_cert is None) != (args.tls_key is None):
        return "--tls-cert and --tls-key go together"
    return check_mcp_arguments(args)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``python -m interp serve``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    sandbox = sandbox_from(parser, args)
    problem = _check_arguments(args)
    if problem:
        parser.error(problem)
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    if token is not None and not token.strip():
        return fail(parser.prog, "%s is empty or blank (an unset variable?); refusing to start without "
                          "authentication: give a real token, or none at all on a loopback address"
                    % ("--token" if args.token is not None else "$" + TOKEN_ENV))
    try:
        tls = None if args.tls_cert is None else server_context(args.tls_cert, args.tls_key)
    except (OSError, ValueError) as exc:
        return fail(parser.prog, str(exc))
    try:
        interpreter = CodeInterpreter(cwd=args.cwd, sandbox=sandbox)
    except InterpError as exc:
        return fail(parser.prog, str(exc))
    try:
        try:
            server = make_server(interpreter, args.host, args.port, token=token, max_body=args.max_body,
                                 log=not args.quiet, header_timeout=args.header_timeout,
                                 io_timeout=args.io_timeout, max_connections=args.max_connections,
                                 allowed_hosts=args.allow_host, max_contexts=args.max_contexts,
                                 idle_timeout=args.idle_timeout, tls=tls, max_upload=args.max_upload)
        except (ValueError, OSError, OverflowError) as exc:
            return fail(parser.prog, str(exc))
        server.mcp.core.output_limit, server.mcp.core.task_after = args.output_limit, args.task_after
        server.mcp.core.default_timeout = server.default_timeout = args.timeout
        server.mcp.keepalive = args.mcp_keepalive
        for signum in (signal.SIGTERM, signal.SIGINT):  # stop serving, then close the interpreter
            signal.signal(signum, lambda signum, frame: server.stop())
        _raise_open_files_limit()
        host = args.host if ":" not in args.host else "[%s]" % args.host
        print("interp serve: listening on %s://%s:%d%s" % ("https" if tls else "http", host, server.port,
              " (token required)" if token else ""), file=sys.stderr, flush=True)
        try:
            server.serve_forever()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            server.server_close()
    finally:
        interpreter.close()
    return 0


def _raise_open_files_limit() -> None:
    """Connections cost a file descriptor each: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError):
            pass



if __name__ == "__main__":
    sys.exit(main())
