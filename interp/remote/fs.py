"""``fs`` of RemoteCodeInterpreter and AsyncRemoteCodeInterpreter: the
methods, arguments, return values and exceptions of the local ``fs``
(interp.fs), over the server's file routes. Bytes are streamed both ways
(the sans-IO part is interp.remote.files); only ``download_file`` without a
``local_path`` holds a whole file, the bytes it returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

from ..files import LocalWriter, UploadSource, check_path
from ..types import FileInfo
from . import files as rf

if TYPE_CHECKING:
    from .aio import AsyncRemoteCodeInterpreter
    from .sync import RemoteCodeInterpreter


class RemoteFileSystem:
    """The files of the server's interpreter, as :class:`interp.fs.FileSystem`
    (paths are relative to the server's file root: its sandbox's workspace,
    or its default context's cwd). Besides the built-in errors, what the
    network breaks raises the RemoteError subclasses. Thread-safe."""

    def __init__(self, client: RemoteCodeInterpreter) -> None:
        self._client = client

    def __repr__(self) -> str:
        return "<RemoteFileSystem %s>" % self._client.url

    def upload_file(self, file: UploadSource, remote_path: str) -> None:
        """See :meth:`interp.fs.FileSystem.upload_file` (a local file is streamed)."""
        size, body = rf.upload_source(file)
        self._client._transfer(rf.Transfer("PUT", check_path(remote_path, "remote_path"), size), body,
                               _refuse)

    def download_file(self, remote_path: str, local_path: Optional[str] = None) -> Optional[bytes]:
        """See :meth:`interp.fs.FileSystem.download_file` (into ``local_path``: streamed)."""
        transfer = rf.Transfer("GET", check_path(remote_path, "remote_path"))
        if local_path is None:
            pieces: List[bytes] = []
            self._client._transfer(transfer, None, pieces.append)
            return b"".join(pieces)
        local = check_path(local_path, "local_path")
        writers: List[LocalWriter] = []  # made with the first byte: the server's errors come first

        def sink(piece: bytes) -> None:
            if not writers:
                writers.append(LocalWriter(local))
            writers[0].write(piece)
        try:
            self._client._transfer(transfer, None, sink)
            if not writers:
                writers.append(LocalWriter(local))  # an empty file
        except BaseException:
            for writer in writers:
                writer.abort()
            raise
        writers[0].commit()
        return None

    def list_files(self, path: str = ".") -> List[FileInfo]:
        """See :meth:`interp.fs.FileSystem.list_files`."""
        return self._client._call(rf.list_call(path))

    def get_file_info(self, path: str) -> FileInfo:
        """See :meth:`interp.fs.FileSystem.get_file_info`."""
        return self._client._call(rf.info_call(path))

    def create_folder(self, path: str, mode: str = "755") -> None:
        """See :meth:`interp.fs.FileSystem.create_folder`."""
        self._client._call(rf.folder_call(path, mode))

    def delete_file(self, path: str, recursive: bool = False) -> None:
        """See :meth:`interp.fs.FileSystem.delete_file`."""
        self._client._call(rf.delete_call(path, recursive))

    def move_files(self, source: str, destination: str) -> None:
        """See :meth:`interp.fs.FileSystem.move_files`."""
        self._client._call(rf.move_call(source, destination))


class AsyncRemoteFileSystem:
    """The methods of :class:`RemoteFileSystem` as coroutines; local file
    I/O runs in a thread so the event loop never waits on a disk."""

    def __init__(self, client: AsyncRemoteCodeInterpreter) -> None:
        self._client = client

    def __repr__(self) -> str:
        return "<AsyncRemoteFileSystem %s>" % self._client.url

    async def upload_file(self, file: UploadSource, remote_path: str) -> None:
        """See :meth:`interp.fs.FileSystem.upload_file`."""
        import asyncio

        size, body = await asyncio.to_thread(rf.upload_source, file)
        await self._client._transfer(rf.Transfer("PUT", check_path(remote_path, "remote_path"), size), body,
                                     None)

    async def download_file(self, remote_path: str, local_path: Optional[str] = None) -> Optional[bytes]:
        """See :meth:`interp.fs.FileSystem.download_file`."""
        import asyncio

        transfer = rf.Transfer("GET", check_path(remote_path, "remote_path"))
        if local_path is None:
            pieces: List[bytes] = []

            async def keep(piece: bytes) -> None:
                pieces.append(piece)
            await self._client._transfer(transfer, None, keep)
            return b"".join(pieces)
        local = check_path(local_path, "local_path")
        writers: List[LocalWriter] = []

        async def write(piece: bytes) -> None:
            if not writers:
                writers.append(await asyncio.to_thread(LocalWriter, local))
            await asyncio.to_thread(writers[0].write, piece)
        try:
            await self._client._transfer(transfer, None, write)
            if not writers:
                writers.append(await asyncio.to_thread(LocalWriter, local))
            await asyncio.to_thread(writers[0].commit)
        except BaseException:
            for writer in writers:
                writer.abort()
            raise
        return None

    async def list_files(self, path: str = ".") -> List[FileInfo]:
        """See :meth:`interp.fs.FileSystem.list_files`."""
        return await self._client._call(rf.list_call(path))

    async def get_file_info(self, path: str) -> FileInfo:
        """See :meth:`interp.fs.FileSystem.get_file_info`."""
        return await self._client._call(rf.info_call(path))

    async def create_folder(self, path: str, mode: str = "755") -> None:
        """See :meth:`interp.fs.FileSystem.create_folder`."""
        await self._client._call(rf.folder_call(path, mode))

    async def delete_file(self, path: str, recursive: bool = False) -> None:
        """See :meth:`interp.fs.FileSystem.delete_file`."""
        await self._client._call(rf.delete_call(path, recursive))

    async def move_files(self, source: str, destination: str) -> None:
        """See :meth:`interp.fs.FileSystem.move_files`."""
        await self._client._call(rf.move_call(source, destination))


def _refuse(piece: bytes) -> None:
    """An upload's answer holds no file bytes."""


__all__ = ["AsyncRemoteFileSystem", "RemoteFileSystem"]
