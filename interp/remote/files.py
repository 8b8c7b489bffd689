"""The sans-IO part of the remote ``fs``, shared by the sync and the async twin.

It checks arguments as the local ``fs`` does (interp.files), builds the
requests of the server's file routes (interp.server.files) and reads their
answers: :class:`Transfer` is one upload or download whose bytes never sit
whole in memory (a body is sent in chunks the caller pulls from the
source; a download's bytes are handed on piece by piece as they arrive).
Errors come back as the built-in exceptions the server names.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, List, Optional, Tuple
from urllib.parse import quote

from ..errors import RemoteProtocolError
from ..files import CHUNK, check_path, parse_mode
from ..types import FileInfo
from . import core as rc

#: Makes the chunks of an upload's body, from the start (again on a retry).
Body = Callable[[], Iterator[bytes]]
#: Seconds an upload waits for ``100 Continue`` before sending its body
#: anyway (RFC 9110: not indefinitely; a proxy may not pass it on), as curl does.
EXPECT_WAIT = 1.0


def file_url(path: str) -> str:
    """The route of a file: ``/files/`` and its path, every byte but the
    unreserved ones percent-encoded (so ``/`` is ``%2F``)."""
    return "/files/" + quote(path, safe="")


def upload_source(source: Any) -> Tuple[int, Body]:
    """The size and chunks of what ``upload_file`` was given: bytes-like, or
    a str (or os.PathLike) naming a local file (its size now; OSError if it
    cannot be read, before anything is sent). TypeError otherwise."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = memoryview(source).cast("B")
        return len(data), lambda: (bytes(data[i:i + CHUNK]) for i in range(0, len(data), CHUNK))
    if isinstance(source, (str, os.PathLike)):
        local = check_path(source, "a local path")
        with open(local, "rb") as file:  # errors now (FileNotFoundError, IsADirectoryError...)
            size = os.fstat(file.fileno()).st_size
        return size, lambda: _read_local(local, size)
    raise TypeError("upload_file takes bytes or a local path (str), not %s" % type(source).__name__)


def _read_local(local: str, size: int) -> Iterator[bytes]:
    """Exactly ``size`` bytes of the local file (its size when the upload
    began); OSError if it shrank meanwhile."""
    with open(local, "rb") as file:
        left = size
        while left:
            chunk = file.read(min(CHUNK, left))
            if not chunk:
                raise OSError("the local file %r shrank during the upload" % local)
            left -= len(chunk)
            yield chunk


class LocalError(Exception):
    """An error of an upload's local source (raised as it is, not as a
    network error): ``error`` is the original."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def local_chunks(body: Body) -> Iterator[bytes]:
    """The chunks of ``body``, its errors wrapped in LocalError."""
    try:
        chunks = body()
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            yield chunk
    except Exception as exc:
        raise LocalError(exc) from exc


class Transfer:
    """One upload (``PUT /files/...``, a body of ``size`` bytes) or download
    (``GET /files/...``): its request head, then its answer.

    :meth:`feed` returns the bytes of a download's file as they arrive; a
    response that is not the success is kept (bounded) for :meth:`outcome`,
    which raises its error. For an upload, the body is sent once
    :attr:`proceed` (the server's ``100 Continue``), and not at all if a final
    answer came first (the server refused it).
    """

    def __init__(self, method: str, path: str, size: Optional[int] = None) -> None:
        self.method = method
        self.path = path
        self.size = size
        self.expect = 201 if method == "PUT" else 200
        self.request = rc.Request(method, file_url(path))
        self.parser = rc.ResponseParser(method)
        self._body = bytearray()
        self._forced = False

    def head(self, address: rc.Address, token: Optional[str]) -> bytes:
        """The request's head (no body: an upload's bytes follow it)."""
        fields = []
        if self.size is not None:
            fields += [("Content-Type", "application/octet-stream"), ("Content-Length", str(self.size))]
            if self.size:
                fields.append(("Expect", "100-continue"))
        return rc.request_head(self.method, self.request.path, address, token,
                               "application/octet-stream, application/json", fields)

    def restart(self) -> None:
        """Forget what was read (before sending again on a new connection)."""
        self.parser = rc.ResponseParser(self.method)
        self._body = bytearray()
        self._forced = False

    @property
    def waiting(self) -> bool:
        """An upload with a body waits for ``100 Continue`` or a final answer
        (at most EXPECT_WAIT seconds: then :meth:`go_ahead`)."""
        return bool(self.size) and not (self.parser.interim or self._forced) and not self.parser.head_done

    def go_ahead(self) -> None:
        """No answer to ``Expect`` came in time: send the body anyway."""
        self._forced = True

    @property
    def proceed(self) -> bool:
        """Send the body: the server said ``100 Continue``, or did not answer
        in time (and nothing final came)."""
        return bool(self.size) and bool(self.parser.interim or self._forced) and not self.parser.head_done

    @property
    def done(self) -> bool:
        return self.parser.done

    @property
    def refused(self) -> bool:
        """The server's final answer came and is not a success: the rest of
        the body is not wanted."""
        return self.parser.head_done and self.parser.status >= 300

    def feed(self, data: bytes) -> List[bytes]:
        """Bytes from the connection; those of the downloaded file they hold."""
        out: List[bytes] = []
        for piece in self.parser.feed(data):
            if self.method == "GET" and self.parser.status == 200:
                out.append(piece)
            else:
                self._body += piece
                if len(self._body) > rc.MAX_BODY:
                    raise RemoteProtocolError("the server sent a response body of more than %d bytes"
                                                 % rc.MAX_BODY)
        return out

    def eof(self) -> None:
        self.parser.eof()

    def outcome(self) -> None:
        """Nothing if it succeeded; else raises the error the server sent."""
        if self.parser.status != self.expect:
            raise rc.error_from_response(self.parser.status, bytes(self._body),
                                         self.parser.headers.get("content-type", ""))


# -- the JSON routes ------------------------------------------------------------

def _info(value: Any) -> FileInfo:
    if not (isinstance(value, dict) and isinstance(value.get("name"), str)
            and isinstance(value.get("is_dir"), bool) and isinstance(value.get("size"), int)
            and not isinstance(value.get("size"), bool) and isinstance(value.get("mode"), str)
            and isinstance(value.get("mod_time"), str)):
        raise RemoteProtocolError("the server sent a file description that is not "
                                     "{\"name\", \"is_dir\", \"size\", \"mode\", \"mod_time\"}")
    return FileInfo(value["name"], value["is_dir"], value["size"], value["mode"], value["mod_time"])


def _infos(value: Any) -> List[FileInfo]:
    if not isinstance(value, list):
        raise RemoteProtocolError("the server sent a listing that is not a list")
    return [_info(item) for item in value]


def _nothing(value: Any) -> None:
    return None


def list_call(path: Any) -> rc.Call[List[FileInfo]]:
    call = rc.Call(rc.Request("POST", "/fs/list", {"path": check_path(path)}), 200, _infos)
    call.idempotent = True  # it only reads
    return call


def info_call(path: Any) -> rc.Call[FileInfo]:
    call = rc.Call(rc.Request("POST", "/fs/info", {"path": check_path(path)}), 200, _info)
    call.idempotent = True
    return call


def folder_call(path: Any, mode: Any) -> rc.Call[None]:
    path = check_path(path)
    parse_mode(mode)
    return rc.Call(rc.Request("POST", "/fs/folder", {"path": path, "mode": mode}), 204, _nothing)


def delete_call(path: Any, recursive: Any) -> rc.Call[None]:
    path = check_path(path)
    if not isinstance(recursive, bool):
        raise TypeError("recursive must be a bool, not %s" % type(recursive).__name__)
    return rc.Call(rc.Request("POST", "/fs/delete", {"path": path, "recursive": recursive}), 204, _nothing)


def move_call(source: Any, destination: Any) -> rc.Call[None]:
    body = {"source": check_path(source, "source"), "destination": check_path(destination, "destination")}
    return rc.Call(rc.Request("POST", "/fs/move", body), 204, _nothing)
