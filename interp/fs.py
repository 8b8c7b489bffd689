"""``fs``: the file API of CodeInterpreter and AsyncCodeInterpreter.

Daytona's names and semantics (``sandbox.fs``), thin over
:class:`interp.files.FileRoot`: the sync object calls it on the caller's
thread, the async one in a worker thread so the event loop never blocks on
file I/O. Paths are relative to the interpreter's file root: the sandbox's
workspace when sandboxed (nothing outside it is reachable), else the default
context's cwd.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, List, Optional, TypeVar

from .files import FileRoot, UploadSource
from .types import FileInfo

if TYPE_CHECKING:
    from .engine import Engine

T = TypeVar("T")


def engine_root(engine: Engine) -> Callable[[], FileRoot]:
    """The file root of an interpreter's engine, looked up at each call:
    the sandbox's workspace (confined), else the default context's cwd.
    Raises InterpError once the interpreter is closed."""
    def root() -> FileRoot:
        default = engine.resolve(None)  # InterpError when closed; pins the default context's cwd
        if engine.sandbox is not None:
            return FileRoot(engine.sandbox.workspace, confined=True, opener=engine.workspace_fd)
        return FileRoot(default.cwd, confined=False)
    return root


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    import asyncio  # imported already by the async API, which alone makes AsyncFileSystem
    return await asyncio.to_thread(function, *args)


class FileSystem:
    """The files of one :class:`interp.CodeInterpreter` (its ``fs`` attribute).

    Errors are the built-in ones with their errno: FileNotFoundError,
    PermissionError (sandboxed: a path leading outside the workspace, through
    ``..`` or through a symbolic link), IsADirectoryError,
    NotADirectoryError, FileExistsError; ValueError for a bad mode, TypeError
    for arguments of the wrong type, InterpError once the interpreter is
    closed. Thread-safe.
    """

    def __init__(self, root: Callable[[], FileRoot]) -> None:
        self._root = root

    def __repr__(self) -> str:
        return "<FileSystem>"

    def upload_file(self, file: UploadSource, remote_path: str) -> None:
        """Write ``file`` (bytes-like, or a str naming a local file, which is
        streamed) to ``remote_path``: missing parent folders are made, a file
        there is replaced (keeping its mode), atomically."""
        self._root().upload_file(file, remote_path)

    def download_file(self, remote_path: str, local_path: Optional[str] = None) -> Optional[bytes]:
        """The bytes of the file ``remote_path``; with ``local_path``, stream
        them into that local file instead (no partial file is left behind on
        failure) and return None."""
        return self._root().download_file(remote_path, local_path)

    def list_files(self, path: str = ".") -> List[FileInfo]:
        """The entries of the folder ``path``, sorted by name, dotfiles included."""
        return self._root().list_files(path)

    def get_file_info(self, path: str) -> FileInfo:
        """What ``path`` is (a symbolic link is described, not followed)."""
        return self._root().get_file_info(path)

    def create_folder(self, path: str, mode: str = "755") -> None:
        """Make the folder ``path`` with exactly ``mode`` (octal, as a str),
        and any missing parents (755 less the umask, as
        ``mkdir -p``). An existing folder is left as it is."""
        self._root().create_folder(path, mode)

    def delete_file(self, path: str, recursive: bool = False) -> None:
        """Delete the file ``path`` (a link: only the link); a folder needs
        ``recursive=True`` and then goes with all it holds."""
        self._root().delete_file(path, recursive)

    def move_files(self, source: str, destination: str) -> None:
        """Move or rename ``source`` to ``destination`` (a file there is replaced)."""
        self._root().move_files(source, destination)


class AsyncFileSystem:
    """The files of one :class:`interp.AsyncCodeInterpreter`: the methods of
    :class:`FileSystem` as coroutines, their file I/O run in a thread."""

    def __init__(self, root: Callable[[], FileRoot]) -> None:
        self._root = root

    def __repr__(self) -> str:
        return "<AsyncFileSystem>"

    async def upload_file(self, file: UploadSource, remote_path: str) -> None:
        """See :meth:`FileSystem.upload_file`."""
        await _in_thread(self._root().upload_file, file, remote_path)

    async def download_file(self, remote_path: str, local_path: Optional[str] = None) -> Optional[bytes]:
        """See :meth:`FileSystem.download_file`."""
        return await _in_thread(self._root().download_file, remote_path, local_path)

    async def list_files(self, path: str = ".") -> List[FileInfo]:
        """See :meth:`FileSystem.list_files`."""
        return await _in_thread(self._root().list_files, path)

    async def get_file_info(self, path: str) -> FileInfo:
        """See :meth:`FileSystem.get_file_info`."""
        return await _in_thread(self._root().get_file_info, path)

    async def create_folder(self, path: str, mode: str = "755") -> None:
        """See :meth:`FileSystem.create_folder`."""
        await _in_thread(self._root().create_folder, path, mode)

    async def delete_file(self, path: str, recursive: bool = False) -> None:
        """See :meth:`FileSystem.delete_file`."""
        await _in_thread(self._root().delete_file, path, recursive)

    async def move_files(self, source: str, destination: str) -> None:
        """See :meth:`FileSystem.move_files`."""
        await _in_thread(self._root().move_files, source, destination)
