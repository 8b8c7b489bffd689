"""The file routes of the HTTP server: the interpreter's ``fs`` over HTTP.

    PUT    /files/{path}   raw bytes (application/octet-stream)  -> 201 {"path", "size"}
    GET    /files/{path}                                        -> 200 raw bytes
    POST   /fs/list        {"path"?}                            -> 200 [FileInfo, ...]
    POST   /fs/info        {"path"}                             -> 200 FileInfo
    POST   /fs/folder      {"path", "mode"?}                    -> 204
    POST   /fs/delete      {"path", "recursive"?}               -> 204
    POST   /fs/move        {"source", "destination"}            -> 204

``{path}`` is the rest of the URL's path, percent-decoded (``%2F`` and ``/``
alike), relative to the interpreter's file root (see interp.files). Bytes
move in chunks of interp.files.CHUNK both ways, never whole in memory: an
upload's body is bounded by ``max_upload`` (not ``max_body``), and each chunk
must arrive within ``io_timeout``. An upload with ``Expect: 100-continue``
gets its ``100 Continue`` only after the checks (token, path, sandbox), so a
refused upload sends no body. Errors of the file operations are JSON with a
``file_error`` (interp.files.error_to_json), from which the remote client
raises the same built-in exception.
"""

from __future__ import annotations

import errno
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from ..files import CHUNK, FileRoot, error_to_json
from ..fs import engine_root
from ..types import FileInfo
from .checks import HTTPError, _client_gone, _error_body, _json_object

if TYPE_CHECKING:
    from .._http11 import Headers
    from .app import InterpHTTPServer
    from .connection import Connection

#: Bytes an upload (PUT /files/...) may have, unless ``--max-upload`` says otherwise.
DEFAULT_MAX_UPLOAD = 1 << 30

#: The status of each file error (other OSErrors: 409, ValueError and TypeError: 400).
_STATUS: Dict[type, int] = {FileNotFoundError: 404, PermissionError: 403, IsADirectoryError: 409,
                            NotADirectoryError: 409, FileExistsError: 409}
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_UPLOAD_TYPES = ("application/octet-stream",)


def raw_body(method: str, path: str) -> bool:
    """True for a request whose body the route reads itself (an upload)."""
    return method == "PUT" and (path == "/files" or path.startswith("/files/"))


def info_json(info: FileInfo) -> Dict[str, Any]:
    return {"name": info.name, "is_dir": info.is_dir, "size": info.size, "mode": info.mode,
            "mod_time": info.mod_time}


def error_status(exc: BaseException) -> int:
    if isinstance(exc, (ValueError, TypeError)):
        return 400
    if isinstance(exc, OSError) and exc.errno in _FULL:
        return 507
    for kind, status in _STATUS.items():
        if isinstance(exc, kind):
            return status
    return 409


_FILE_ERRORS = (OSError, ValueError, TypeError)


class FileRoutes:
    """The file routes: RequestHandler's base, registered in its ROUTES. File
    operations run on the server's helper threads, never on the event loop."""

    if TYPE_CHECKING:  # what RequestHandler provides
        server: InterpHTTPServer
        conn: Connection
        headers: Headers
        command: str
        close_connection: bool

        def send_json(self, status: int, payload: Any, *, close: bool = False,
                      headers: Optional[Dict[str, str]] = None) -> None: ...

        def begin(self, status: int, fields: List[Tuple[str, str]], length: Optional[int], *,
                  close: bool = False, headers: Optional[Dict[str, str]] = None) -> None: ...

        def body_length(self, limit: int, what: str, hint: str = "") -> int: ...

        async def offload(self, function: Callable[..., Any], *args: Any) -> Any: ...

    def _file_root(self) -> FileRoot:
        return engine_root(self.server.interpreter._engine)()  # InterpError (503) once closed

    def _file_error(self, exc: BaseException, close: bool) -> None:
        """Answer with the JSON of a file error (``close``: the body was not read)."""
        status = error_status(exc)
        payload: Dict[str, Any] = dict(_error_body(status, str(exc)))
        payload["file_error"] = error_to_json(exc)
        self.send_json(status, payload, close=close)

    # -- raw bytes ---------------------------------------------------------------

    async def _put_file(self, body: bytes, path: str) -> None:
        length = self._upload_length()
        root = self._file_root()
        try:
            upload = await self.offload(root.begin_upload, path)
        except _FILE_ERRORS as exc:
            self._file_error(exc, close=length > 0)
            return
        left = length
        try:
            if (self.headers.get("Expect") or "").strip().lower() == "100-continue":
                self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the checks passed: send the body
            due, wanted = time.monotonic() + self.server.io_timeout, min(CHUNK, left)
            while left:  # each CHUNK bytes (or the rest) within io_timeout: a trickle cannot hold the slot
                try:
                    chunk = await self.conn.read_body(min(CHUNK, left), max(0.0, due - time.monotonic()))
                except TimeoutError:
                    raise HTTPError(408, "the upload's body stalled: no %d bytes within %g s"
                                    % (wanted, self.server.io_timeout), close=True) from None
                except EOFError:
                    chunk = b""
                if not chunk:
                    raise HTTPError(400, "the upload's body ended %d bytes early" % left, close=True)
                left -= len(chunk)
                wanted -= len(chunk)
                if wanted <= 0:
                    due, wanted = time.monotonic() + self.server.io_timeout, min(CHUNK, left)
                await self.offload(upload.write, chunk)
            await self.offload(upload.commit)
        except _FILE_ERRORS as exc:
            await self.offload(upload.abort)
            if not _client_gone(exc):
                self._file_error(exc, close=left > 0)
                return
            raise
        except BaseException:
            upload.abort()
            raise
        self.send_json(201, {"path": path, "size": upload.size})

    def _upload_length(self) -> int:
        """The Content-Length of an upload, checked (HTTPError otherwise)."""
        if not self.headers.get_all("Content-Length") and self.headers.get("Transfer-Encoding") is None:
            raise HTTPError(411, "an upload needs one Content-Length header", close=True)
        length = self.body_length(self.server.max_upload, "upload", " (--max-upload)")
        content_type = self.headers.get("Content-Type")
        if content_type is not None and content_type.split(";")[0].strip().lower() not in _UPLOAD_TYPES:
            raise HTTPError(415, "uploads are raw bytes, sent with 'Content-Type: application/octet-stream'"
                            " (got %r)" % content_type, close=True)
        return length

    async def _get_file(self, body: bytes, path: str) -> None:
        try:
            file, size = await self.offload(self._file_root().open_for_reading, path)
        except _FILE_ERRORS as exc:
            self._file_error(exc, close=False)
            return
        with file:
            self.begin(200, [("Content-Type", "application/octet-stream"),
                             ("X-Content-Type-Options", "nosniff"),  # a page that embeds it gets no script
                             ("Cache-Control", "no-store")], size)
            left = size  # what the head promised: a file growing meanwhile is cut there
            while left:
                chunk = await self.offload(file.read, min(CHUNK, left))
                if not chunk:  # it shrank: the client sees the response end early
                    self.close_connection = True
                    return
                self.conn.write(chunk)
                left -= len(chunk)
                await self.conn.drain(self.server.io_timeout)

    # -- JSON --------------------------------------------------------------------

    async def _fs_list(self, body: bytes) -> None:
        fields = _json_object(body, {"path": (str,)}, ())
        try:
            infos = await self.offload(self._file_root().list_files, fields.get("path", "."))
        except _FILE_ERRORS as exc:
            self._file_error(exc, close=False)
            return
        self.send_json(200, [info_json(info) for info in infos])

    async def _fs_info(self, body: bytes) -> None:
        fields = _json_object(body, {"path": (str,)}, ("path",))
        try:
            info = await self.offload(self._file_root().get_file_info, fields["path"])
        except _FILE_ERRORS as exc:
            self._file_error(exc, close=False)
            return
        self.send_json(200, info_json(info))

    async def _fs_folder(self, body: bytes) -> None:
        fields = _json_object(body, {"path": (str,), "mode": (str,)}, ("path",))
        await self._fs_do(lambda root: root.create_folder(fields["path"], fields.get("mode", "755")))

    async def _fs_delete(self, body: bytes) -> None:
        fields = _json_object(body, {"path": (str,), "recursive": (bool,)}, ("path",))
        await self._fs_do(lambda root: root.delete_file(fields["path"], fields.get("recursive", False)))

    async def _fs_move(self, body: bytes) -> None:
        fields = _json_object(body, {"source": (str,), "destination": (str,)}, ("source", "destination"))
        await self._fs_do(lambda root: root.move_files(fields["source"], fields["destination"]))

    async def _fs_do(self, action: Callable[[FileRoot], None]) -> None:
        root = self._file_root()
        try:
            await self.offload(action, root)
        except _FILE_ERRORS as exc:
            self._file_error(exc, close=False)
            return
        self.send_json(204, None)
