"""HTTP front end: ``python -m interp serve``.

A small JSON API over one shared :class:`~interp.CodeInterpreter`, for
programs in any language::

    POST   /contexts                {"cwd"?}        -> 201 context (id chosen by the server)
    PUT    /contexts/{id}           {"cwd"?}        -> 201 context (id chosen by the client)
    GET    /contexts                                -> 200 [context, ...]
    DELETE /contexts/{id}                           -> 204
    POST   /contexts/{id}/execute   {"code", "envs"?, "timeout"?, "stdin"?, "input"?}
                                                    -> 200 application/x-ndjson stream
    POST   /contexts/{id}/input     {"request", "value" | "eof"}   -> 204
    POST   /contexts/{id}/complete  {"code", "cursor"?}            -> 200 {"matches"}
    POST   /contexts/{id}/restart                   -> 200 context
    POST   /contexts/{id}/interrupt                 -> 204
    POST   /execute                 as above, plus "context_id"?
    POST   /mcp                     one MCP message (Streamable HTTP, interp.mcp.http)
    DELETE /mcp                     end an MCP session (Mcp-Session-Id)
    PUT    /files/{path}            raw bytes       -> 201 {"path", "size"}  (interp.server.files)
    GET    /files/{path}                            -> 200 raw bytes, streamed
    POST   /fs/list|info|folder|delete|move  {...}  -> the fs methods (interp.server.files)
    GET    /health                                  -> 200 {"status": "ok", ...}
    GET    /metrics                                 -> 200 Prometheus text

The routes are the table ROUTES. Every operation on a context names it in
the path, so a proxy can route by the id alone; ids are checked
(CONTEXT_ID). ``input_request`` events (``request``, ``prompt``) ask for
``input()`` answers when the request set ``"input": true``.

``/execute`` streams one JSON object per line, each sent in its own HTTP
chunk as it happens: ``stdout`` / ``stderr`` (``text``: one line),
``result`` (the Result fields that are set, plus ``is_main_result``),
``error`` (``name``, ``value``, ``traceback``), then exactly one final event:
``end`` (``execution_count``), ``timeout`` (``message``, ``restarted``) or
``interp_error`` (``name``, ``message``: the worker died, the context was
restarted or deleted during the run). A client that disconnects, or stops
reading its stream, cancels its run (``run_code(cancel=...)``): a queued run
is dropped; a running one gets KeyboardInterrupt and its context keeps its
state, unless the code ignores the interrupt for the grace period and is
killed, as after a timeout. The run's callbacks never wait for the client.

The context id ``default`` names the default context. Every request needs
``Authorization: Bearer <token>`` when a token is set; without one the
server only binds loopback addresses. Browsers are kept out: a request whose
``Origin`` is not the server's own gets 403, a ``Host`` that is neither the
bound address nor a loopback name gets 403 (DNS rebinding), and bodies must
be ``Content-Type: application/json`` (415), which a page cannot send to
another origin without CORS. Slow clients are bounded: a request's head must
arrive within ``header_timeout`` seconds, its body within ``io_timeout``, at
most ``max_connections`` are served at once (more wait in the listen
backlog). Every error, whatever its cause, is a JSON response:
``{"error": "Not Found", "message": "..."}``.

Modules: ``limits`` (defaults and bounds), ``checks`` (request rules and
errors), ``table`` (the context table), ``connection`` (one client
connection on the event loop: reading, writing, deadlines), ``routes`` (a
connection's requests and the routes), ``runs`` (the /execute streams),
``files`` (the file routes), ``streams`` (NDJSON and SSE bodies), ``app``
(the listening server and its event loop), ``tls`` (the TLS context),
``metrics`` (Prometheus text), ``cli`` (the command line). The HTTP/1.1
parsing is interp._http11, shared with the remote client.
"""

from .app import InterpHTTPServer, make_server
from .checks import CONTEXT_ID, HTTPError, check_context_id, is_loopback, result_json
from .cli import main
from .routes import ROUTES, RequestHandler
from .limits import (
                     DEFAULT_HEADER_TIMEOUT,
                     DEFAULT_HOST,
                     DEFAULT_IO_TIMEOUT,
                     DEFAULT_MAX_BODY,
                     DEFAULT_MAX_CONNECTIONS,
                     DEFAULT_PORT,
                     TOKEN_ENV,
)
from .table import ContextTable

__all__ = ["CONTEXT_ID", "DEFAULT_HEADER_TIMEOUT", "DEFAULT_HOST", "DEFAULT_IO_TIMEOUT", "DEFAULT_MAX_BODY",
           "DEFAULT_MAX_CONNECTIONS", "DEFAULT_PORT", "ROUTES", "TOKEN_ENV", "ContextTable", "HTTPError",
           "InterpHTTPServer", "RequestHandler", "check_context_id", "is_loopback", "main", "make_server",
           "result_json"]
