"""The remote client: interp's API over ``python -m interp serve``.

``core`` is sans-IO (URLs, requests, the bounded HTTP/1.1 response parser,
a run's NDJSON events, results and errors); ``client`` holds what the twins
share (options, error wording, the record of contexts they made); ``sync``
and ``aio`` drive the core over blocking sockets and an asyncio protocol.
``files`` is the sans-IO part of ``fs`` (uploads and downloads streamed
over the server's file routes) and ``fs`` the twins' ``fs`` objects.
"""

from .aio import AsyncRemoteCodeInterpreter
from .client import DEFAULT_CONNECT_TIMEOUT, DEFAULT_IO_TIMEOUT, TOKEN_ENV
from .sync import RemoteCodeInterpreter

__all__ = [
           "DEFAULT_CONNECT_TIMEOUT",
           "DEFAULT_IO_TIMEOUT",
           "TOKEN_ENV",
           "AsyncRemoteCodeInterpreter",
           "RemoteCodeInterpreter",
]
