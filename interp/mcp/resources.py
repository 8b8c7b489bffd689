"""The interpreter's files over MCP: resources and the ``write_file`` tool.

The regular files below the interpreter's file root (the sandbox's
workspace, else the default context's cwd: see interp.fs) are resources
with ``file://`` URIs (``resources/list``, ``resources/read``). A file that
is UTF-8 text is read as ``text``, anything else as a base64 ``blob``.
Symbolic links are never followed, sandboxed or not: the files are walked
and read through a confined interp.files.FileRoot (each component opened
with ``O_NOFOLLOW``), so a link the code planted shows nothing outside.
Listing is bounded (MAX_RESOURCES files, MAX_VISITED entries, MAX_DEPTH
folders deep; dot folders are skipped) and so is reading (MAX_READ bytes).

``write_file`` hands the code its data: it writes ``content`` (UTF-8 text,
or base64) to a path relative to the file root, as ``fs.upload_file``
does, and returns ``{path, uri, size}``.

Private to :mod:`interp.mcp`: the core registers the methods and the tool.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple
from urllib.parse import quote, unquote, urlsplit

from ..files import FileRoot
from ..fs import engine_root
from .tools import json_result, tool_error

if TYPE_CHECKING:
    from ..api import CodeInterpreter

#: Files resources/list names at most (the first found, folders walked depth first; sorted by path).
MAX_RESOURCES = 1000
#: Directory entries looked at while listing, at most.
MAX_VISITED = 20_000
#: Folders below the root that listing enters.
MAX_DEPTH = 16
#: Bytes of a file resources/read returns (a larger file is an error naming the bound).
MAX_READ = 8 * 2**20
#: Bytes a write_file call may write (its content arrives whole in one message).
MAX_WRITE = 32 * 2**20
#: The JSON-RPC error of an unknown resource (the MCP specification's).
RESOURCE_NOT_FOUND = -32002
INVALID_PARAMS = -32602

CAPABILITY: Dict[str, Any] = {"subscribe": False, "listChanged": False}
#: 2026-07-28 lists and reads are cacheable results: files change, so they are stale at once.
_UNCACHED: Dict[str, Any] = {"ttlMs": 0, "cacheScope": "private"}

WRITE_FILE_TOOL: Dict[str, Any] = {
    "name": "write_file",
    "title": "Write a file",
    "description": ("Write a file the code can open, relative to the interpreter's working directory (the "
                    "sandbox's workspace when sandboxed): missing folders are made, an existing file is "
                    "replaced. content is text (encoding 'utf-8', the default) or base64 (encoding 'base64') "
                    "for binary data. Returns the path, its file:// URI (a resource) and its size in bytes."),
    "inputSchema": {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Where to write, e.g. 'data/input.csv'."},
            "content": {"type": "string", "description": "The file's content, as encoding says."},
            "encoding": {"type": "string", "enum": ["utf-8", "base64"],
                         "description": "How content is encoded: 'utf-8' (text, the default) or 'base64'."},
        },
        "required": ["path", "content"],
        "additionalProperties": False,
    },
    "annotations": {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": True,
                    "openWorldHint": False},
}


def _rpc_error(code: int, message: str, data: Any = None) -> Exception:
    from .rpc import RPCError
    return RPCError(code, message, data)


class FileResources:
    """The resources and the write_file tool of one interpreter."""

    def __init__(self, interpreter: CodeInterpreter) -> None:
        self._root = engine_root(interpreter._engine)

    def _walker(self) -> FileRoot:
        """The file root, confined: links are never followed (a sandbox's
        root already is, and reaches its workspace as the sandbox shows it)."""
        root = self._root()
        return root if root.confined else FileRoot(root.root, confined=True)

    # -- resources/list, resources/read --------------------------------------

    def list(self, modern: bool, version: str) -> Dict[str, Any]:
        root = self._walker()
        found: List[Tuple[str, int]] = []
        visited = 0
        folders = [""]
        while folders and len(found) < MAX_RESOURCES and visited < MAX_VISITED:
            folder = folders.pop(0)
            try:
                infos = root.list_files(folder or ".", limit=MAX_VISITED - visited)
            except OSError:
                continue  # gone, or a link swapped in: skipped
            below = []
            for info in infos:
                visited += 1
                path = folder + "/" + info.name if folder else info.name
                if not _utf8(path):
                    continue  # a name that is not UTF-8 has no URI a client can send back
                if info.mode.startswith("-"):
                    found.append((path, info.size))
                elif info.is_dir and not info.name.startswith(".") and path.count("/") < MAX_DEPTH:
                    below.append(path)
                if len(found) >= MAX_RESOURCES or visited >= MAX_VISITED:
                    break
            folders[:0] = below  # depth first, in name order
        resources = []
        for path, size in sorted(found):
            item: Dict[str, Any] = {"uri": self.uri(root, path), "name": path}
            mime = _mime(path)
            if mime is not None:
                item["mimeType"] = mime
            if version >= "2025-03-26":
                item["size"] = size
            resources.append(item)
        return dict(resources=resources, **(_UNCACHED if modern else {}))

    def templates(self, modern: bool) -> Dict[str, Any]:
        return dict(resourceTemplates=[], **(_UNCACHED if modern else {}))

    def read(self, modern: bool, params: Dict[str, Any]) -> Dict[str, Any]:
        uri = params.get("uri")
        if not isinstance(uri, str):
            raise _rpc_error(INVALID_PARAMS, "resources/read needs a uri (a string)")
        root = self._walker()
        path = self._path(root, uri)
        try:
            file, size = root.open_for_reading(path)
        except FileNotFoundError:
            raise _rpc_error(RESOURCE_NOT_FOUND, "Resource not found: %s" % uri, {"uri": uri}) from None
        except (OSError, ValueError) as exc:
            raise _rpc_error(INVALID_PARAMS, "cannot read %s: %s" % (uri, exc), {"uri": uri}) from None
        with file:
            if size > MAX_READ:
                raise _rpc_error(INVALID_PARAMS, "%s has %d bytes; resources/read returns files of at most %d "
                                 "bytes (read a part with run_code)" % (uri, size, MAX_READ), {"uri": uri})
            data = file.read(size)
        mime = _mime(path)
        content: Dict[str, Any] = {"uri": uri}
        try:
            content["text"] = data.decode("utf-8")
            content["mimeType"] = mime or "text/plain"
        except UnicodeDecodeError:
            content["blob"] = base64.b64encode(data).decode("ascii")
            content["mimeType"] = mime if mime and not mime.startswith("text/") else "application/octet-stream"
        return dict(contents=[content], **(_UNCACHED if modern else {}))

    @staticmethod
    def uri(root: FileRoot, path: str) -> str:
        return "file://" + quote(os.path.join(root.root, path))

    @staticmethod
    def _path(root: FileRoot, uri: str) -> str:
        """The path below the root that ``uri`` names (RESOURCE_NOT_FOUND otherwise)."""
        parts = urlsplit(uri)
        full = unquote(parts.path)
        prefix = root.root.rstrip("/") + "/"
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not full.startswith(prefix):
            raise _rpc_error(RESOURCE_NOT_FOUND, "Resource not found: %s (resources are file:// URIs below %s)"
                             % (uri[:200], root.root), {"uri": uri[:1000]})
        return full[len(prefix):]

    # -- the write_file tool ---------------------------------------------------

    def write_file(self, arguments: Dict[str, Any]) -> Dict[str, Any]:
        encoding = arguments.get("encoding", "utf-8")
        if encoding not in ("utf-8", "base64"):
            return tool_error("encoding must be 'utf-8' or 'base64', not %r" % (encoding,))
        content = arguments["content"]
        try:
            data = content.encode("utf-8") if encoding == "utf-8" else base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: a lone surrogate, non-ASCII base64
            return tool_error("content is not valid %s: %s" % (encoding, exc))
        if len(data) > MAX_WRITE:
            return tool_error("content of %d bytes is over write_file's limit of %d bytes" % (len(data), MAX_WRITE))
        path = arguments["path"]
        try:
            root = self._root()
            root.upload_file(data, path)
        except Exception as exc:  # OSError, ValueError, InterpError: reported to the model
            return tool_error("%s: %s" % (type(exc).__name__, exc))
        full = os.path.normpath(os.path.join(root.root, path))  # a relative path starts at the root
        return json_result({"path": path, "uri": "file://" + quote(full), "size": len(data)})


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _mime(path: str) -> Optional[str]:
    return mimetypes.guess_type(path)[0]
