"""The HTTP server's documented defaults and bounds (see the package's docstring)."""

from __future__ import annotations

import errno
import socket

from .. import _http11 as http11

DEFAULT_HOST = "127.0.0.1"


DEFAULT_PORT = 8765


DEFAULT_MAX_BODY = 10 * 1024 * 1024


#: Seconds a connection may take to deliver a request's line and headers,
#: counted from when the server starts waiting for it (so also the longest
#: a keep-alive connection may stay idle).
DEFAULT_HEADER_TIMEOUT = 10.0


#: Seconds the server waits for a request body, or for a client to accept
#: any byte of a response, before it treats the client as gone.
DEFAULT_IO_TIMEOUT = 30.0


#: Connections served at once; more wait in the listen backlog. A connection
#: costs a socket and a little memory (no thread), so thousands are fine.
DEFAULT_MAX_CONNECTIONS = 1024


#: Threads the server starts once, for blocking engine calls (starting and
#: killing workers) and file operations; requests never start a thread.
HELPER_THREADS = 4


#: While every connection slot is taken, a request head must arrive within
#: this many seconds of when the server began waiting for it (an honest
#: client sends it at once), so slow heads cannot keep others waiting long.
BUSY_HEADER_TIMEOUT = 1.0


#: Connections the kernel queues for the accept loop (capped by somaxconn).
LISTEN_BACKLOG = 1024


#: Bytes of request bodies the server reads at once, over all connections
#: (at least --max-body); a request past it gets 503 and may retry.
BODY_BUDGET = 256 * 1024 * 1024


#: Bytes of a request line plus headers (431 beyond): the shared reader's bound.
MAX_HEAD = http11.MAX_HEAD


#: Nesting of arrays and objects a request body may have (the API needs 2).
MAX_JSON_DEPTH = 32


#: Digits an integer in a request body may have.
MAX_INT_DIGITS = 30


#: The largest ``timeout`` of /execute, in seconds (0 means no limit).
MAX_TIMEOUT = 365 * 24 * 3600


#: Bytes of events that may wait behind the one being sent to an /execute
#: client (beyond what the kernel's socket buffers hold) before it counts as
#: gone. A stream waits for its client (its run slows down) long before this,
#: except after the run's deadline, when nothing waits.
STREAM_BUFFER = 8 * 1024 * 1024


#: Pause of the accept loop when the process is out of file descriptors.
ACCEPT_BACKOFF = 0.1


TOKEN_ENV = "INTERP_TOKEN"


NAME = "interp serve"  # how the command line names itself in its complaints


_TIMEOUTS = (TimeoutError, socket.timeout)  # distinct classes before Python 3.10


#: errnos of a connection whose client vanished (besides ConnectionError and timeouts)
_GONE_ERRNOS = frozenset({errno.ENOTCONN, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN,
                          errno.EHOSTDOWN, errno.ETIMEDOUT})


#: accept() / os.pipe() / thread start failures that mean "out of resources, try later"
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EAGAIN})
