"""File operations on an interpreter's file root, without any transport.

A :class:`FileRoot` is a directory (the sandbox's workspace, or the default
context's cwd) and a rule: *confined* (sandboxed) or not. Every operation
resolves its path to a directory fd and a name in it, then works with the
``*at`` calls relative to that fd, so the sync and async ``fs`` objects, and
later the HTTP routes and the remote client, share one implementation:

* Confined: a path is a relative path (or an absolute one inside the
  workspace); ``..`` is refused, and each component is opened with
  ``O_NOFOLLOW`` relative to the one before, so a symbolic link anywhere in a
  path, even one swapped in during the call, ends the call with
  PermissionError and is never followed by the host. The last component of a
  listing, an info, a delete or a move is the link itself.
* Not confined: paths are resolved as the operating system resolves them
  (relative ones against the root); interp is no sandbox there.

Errors are the built-in OSError subclasses with their errno; ValueError and
TypeError for bad arguments. :func:`error_to_json` and :func:`error_from_json`
map them to JSON and back, so a remote client can raise the same class.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from datetime import datetime, timezone
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from .types import FileInfo

CHUNK = 1 << 20  # bytes per read and write when streaming
MAX_DEPTH = 256  # folders below the one delete_file(recursive=True) removes
#: Bytes, or a str (or os.PathLike) naming a local file to stream.
UploadSource = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]"]

_CLOEXEC = os.O_CLOEXEC
_WALK = os.O_PATH | os.O_DIRECTORY | _CLOEXEC  # a directory we only pass through
_MODE = re.compile(r"[0-7]{3,4}\Z")
_TEMP_PREFIX = ".interp-upload-"


def _error(code: int, message: str, path: str) -> OSError:
    """The built-in subclass for ``code`` (OSError picks it from the errno)."""
    return OSError(code, message, path)


def check_path(path: Any, what: str = "path") -> str:
    """``path`` as a str: TypeError unless it is a str or os.PathLike of str,
    ValueError if it contains a NUL."""
    if not isinstance(path, str):
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str):
            raise TypeError("%s must be a str, not %s" % (what, type(path).__name__))
    if "\0" in path:
        raise ValueError("%s contains a NUL character" % what)
    return path


def parse_mode(mode: Any) -> int:
    """An octal permission string ("755", "0700") as an int; TypeError if it
    is not a str, ValueError if it is not 3 or 4 octal digits."""
    if not isinstance(mode, str):
        raise TypeError("mode must be an octal str such as \"755\", not %s" % type(mode).__name__)
    if not _MODE.match(mode):
        raise ValueError("mode must be 3 or 4 octal digits such as \"755\", not %r" % mode)
    return int(mode, 8)


def file_info(name: str, st: os.stat_result) -> FileInfo:
    """The FileInfo of a stat result (from lstat: a link is a link)."""
    mod_time = datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat()
    return FileInfo(name=name, is_dir=stat.S_ISDIR(st.st_mode), size=st.st_size,
                    mode=stat.filemode(st.st_mode), mod_time=mod_time)


class _Target:
    """A resolved path: ``parent`` is an fd of its directory and ``name`` its
    last component, or ``name`` is None when the path is the root itself and
    ``parent`` is the root's fd. Close it (it is a context manager)."""

    def __init__(self, parent: int, name: Optional[str], path: str) -> None:
        self.parent = parent
        self.name = name
        self.path = path  # as the caller gave it, for error messages
        self.closed = False

    def __enter__(self) -> _Target:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.parent)

    def lstat(self) -> os.stat_result:
        if self.name is None:
            return os.stat(self.parent)
        return os.stat(self.name, dir_fd=self.parent, follow_symlinks=False)

    def require_name(self, action: str) -> str:
        if self.name is None:
            raise _error(errno.EPERM, "cannot %s the file root itself" % action, self.path)
        return self.name


class Upload:
    """A file being uploaded: :meth:`write` its bytes, then :meth:`commit`
    (a temporary file beside the target is renamed over it) or :meth:`abort`
    (the temporary file is removed); one of the two must be called. As a
    context manager it commits on success and aborts on an exception."""

    def __init__(self, target: _Target, name: str, mode: int) -> None:
        self._target = target
        self._name = name
        self._temp, fd = _make_temp(target.parent, mode)
        self._file = os.fdopen(fd, "wb")
        self.size = 0
        try:
            if mode != 0o644:
                os.fchmod(fd, mode)  # the replaced file's mode, on the fd: never through a name
        except BaseException:
            self.abort()
            raise

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self.size += len(data)

    def commit(self) -> None:
        """Put the file in place (replacing what was there)."""
        try:
            self._file.close()
            os.rename(self._temp, self._name, src_dir_fd=self._target.parent, dst_dir_fd=self._target.parent)
        except BaseException:
            self.abort()
            raise
        self._target.close()

    def abort(self) -> None:
        """Drop what was written; the target is left as it was. Idempotent."""
        if self._target.closed:
            return
        try:
            self._file.close()
        except OSError:
            pass
        try:
            os.unlink(self._temp, dir_fd=self._target.parent)
        except OSError:
            pass
        self._target.close()


class FileRoot:
    """The directory an interpreter's ``fs`` works in; see the module's doc."""

    def __init__(self, root: str, confined: bool, opener: Optional[Callable[[], int]] = None) -> None:
        self.root = os.path.abspath(root)
        self.confined = confined
        # A fresh descriptor of the root as the code sees it (a sandbox's
        # zygote sends it), where the host's path would not lead there.
        self._opener = opener

    def __repr__(self) -> str:
        return "<FileRoot %r%s>" % (self.root, " confined" if self.confined else "")

    # -- path resolution ------------------------------------------------

    def _components(self, path: str) -> List[str]:
        """The components of a confined path below the root; PermissionError
        for ``..`` or an absolute path outside the root."""
        if os.path.isabs(path):
            root = self.root.rstrip("/") + "/"
            if path.rstrip("/") == self.root.rstrip("/"):
                path = ""
            elif path.startswith(root):
                path = path[len(root):]
            else:
                raise _error(errno.EACCES, "outside the sandbox's workspace %s" % self.root, path)
        parts = [part for part in path.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise _error(errno.EACCES, "'..' is not allowed in a sandboxed path", path)
        return parts

    def _open_dir(self, parent: int, name: str, path: str, create: bool) -> int:
        """Open ``name`` in ``parent`` to walk through, never following a link
        when confined (made first, mode 755, if ``create`` and missing)."""
        flags = _WALK | (os.O_NOFOLLOW if self.confined else 0)
        for _ in range(3):
            try:
                return os.open(name, flags, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    raise _error(errno.ENOENT, "no such file or directory", path) from None
                try:
                    os.mkdir(name, 0o755, dir_fd=parent)
                except FileExistsError:
                    pass  # made meanwhile: open it
                except OSError as exc:
                    raise OSError(exc.errno, exc.strerror, path) from None
            except OSError as exc:
                raise self._open_error(exc, parent, name, path) from None
        raise _error(errno.EAGAIN, "the directory %r keeps changing" % name, path)

    def _open_error(self, exc: OSError, parent: int, name: str, path: str) -> OSError:
        """What to raise when opening ``name`` in ``parent`` failed: confined,
        ELOOP (O_NOFOLLOW met a link) or a link found there is a
        PermissionError; else the same error naming the caller's path."""
        if self.confined and exc.errno == errno.ELOOP:
            return self._link_refused(name, path)
        if self.confined and exc.errno == errno.ENOTDIR:
            try:
                self._refuse_link(parent, name, path)
            except PermissionError as refused:
                return refused
        return OSError(exc.errno, exc.strerror, path)

    @staticmethod
    def _link_refused(name: str, path: str) -> OSError:
        return _error(errno.EACCES, "%r is a symbolic link; links inside the sandbox's workspace "
                      "are not followed" % name, path)

    def _refuse_link(self, parent: int, name: str, path: str) -> None:
        """PermissionError if ``name`` in ``parent`` is a symbolic link."""
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except OSError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise self._link_refused(name, path)

    def resolve(self, path: Any, create_parents: bool = False, what: str = "path") -> _Target:
        """``path`` as a directory fd and a last component (see _Target)."""
        path = check_path(path, what)
        if self.confined:
            parts, start = self._components(path), self.root
        else:
            parts, start = os.path.abspath(os.path.join(self.root, path)).split("/")[1:], "/"
            parts = [part for part in parts if part]
        fd = self._opener() if self.confined and self._opener is not None else os.open(start, _WALK)
        try:
            for part in parts[:-1]:
                next_fd = self._open_dir(fd, part, path, create_parents)
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return _Target(fd, parts[-1] if parts else None, path)

    # -- reading ----------------------------------------------------------

    def get_file_info(self, path: Any) -> FileInfo:
        """The FileInfo of ``path`` (a link is described, not followed)."""
        with self.resolve(path) as target:
            st = target.lstat()
            return file_info(target.name or os.path.basename(self.root), st)

    def _open_listing(self, target: _Target) -> int:
        if target.name is None:
            return os.open(".", os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC, dir_fd=target.parent)
        flags = os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC | (os.O_NOFOLLOW if self.confined else 0)
        try:
            return os.open(target.name, flags, dir_fd=target.parent)
        except OSError as exc:
            raise self._open_error(exc, target.parent, target.name, target.path) from None

    def list_files(self, path: Any = ".", limit: Optional[int] = None) -> List[FileInfo]:
        """The entries of the directory ``path``, sorted by name, dotfiles
        included, links shown as links (with ``limit``: the first ``limit``
        entries the directory yields, so a huge one costs no more)."""
        with self.resolve(path) as target:
            fd = self._open_listing(target)
            try:
                infos: List[FileInfo] = []
                with os.scandir(fd) as entries:
                    for entry in entries:
                        if limit is not None and len(infos) >= limit:
                            break
                        try:
                            infos.append(file_info(entry.name, entry.stat(follow_symlinks=False)))
                        except FileNotFoundError:
                            continue  # removed while listing
            finally:
                os.close(fd)
        return sorted(infos, key=lambda info: info.name)

    def open_for_reading(self, path: Any) -> Tuple[IO[bytes], int]:
        """A binary file object on the regular file ``path`` and its size when
        opened; IsADirectoryError for a directory, PermissionError for a link
        (confined) or anything else that is not a regular file."""
        with self.resolve(path) as target:
            name = target.require_name("read")
            flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | _CLOEXEC | (os.O_NOFOLLOW if self.confined else 0)
            try:
                fd = os.open(name, flags, dir_fd=target.parent)
            except OSError as exc:
                raise self._open_error(exc, target.parent, name, target.path) from None
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise _error(errno.EISDIR, "is a directory", target.path)
            if not stat.S_ISREG(st.st_mode):
                raise _error(errno.EACCES, "not a regular file (%s); only regular files are read"
                             % stat.filemode(st.st_mode)[0], target.path)
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb", buffering=0), st.st_size
        except BaseException:
            os.close(fd)
            raise

    def read_chunks(self, path: Any) -> Iterator[bytes]:
        """The bytes of ``path`` in chunks of at most CHUNK. Confined, reading
        stops at the size the file had when opened (the code may be appending
        forever)."""
        file, size = self.open_for_reading(path)
        with file:
            left: Optional[int] = size if self.confined else None
            while left is None or left > 0:
                chunk = file.read(CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def download_file(self, path: Any, local_path: Any = None) -> Optional[bytes]:
        """The bytes of ``path``; or, with ``local_path``, stream them into that
        local file (through a temporary file beside it, renamed on success,
        removed on failure) and return None."""
        if local_path is None:
            return b"".join(self.read_chunks(path))
        local = check_path(local_path, "local_path")
        chunks = self.read_chunks(path)
        first = next(chunks, b"")  # the remote file's errors come before a local file is made
        write_local(local, _prepend(first, chunks))
        return None

    # -- writing ----------------------------------------------------------

    def upload_file(self, source: Any, path: Any) -> None:
        """Write ``source`` (bytes-like, or a str naming a local file, streamed)
        to ``path``: missing parents are made, a file there is replaced (its
        mode kept) through a temporary file renamed over it."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = memoryview(source).cast("B")
            chunks: Iterator[bytes] = (bytes(data[i:i + CHUNK]) for i in range(0, len(data), CHUNK))
            self.write_chunks(path, chunks)
        elif isinstance(source, (str, os.PathLike)):
            local = check_path(source, "a local path")
            with open(local, "rb") as file:
                self.write_chunks(path, iter(lambda: file.read(CHUNK), b""))
        else:
            raise TypeError("upload_file takes bytes or a local path (str), not %s" % type(source).__name__)

    def write_chunks(self, path: Any, chunks: Iterator[bytes]) -> None:
        """Write ``chunks`` to ``path``, atomically (see upload_file)."""
        with self.begin_upload(path) as upload:
            for chunk in chunks:
                upload.write(chunk)

    def begin_upload(self, path: Any, follow: bool = True) -> Upload:
        """Start writing ``path`` (see upload_file): missing parents are made
        and the checks done now, so errors come before any byte is sent."""
        target = self.resolve(path, create_parents=True)
        try:
            name = target.require_name("write")
            mode = 0o644
            try:
                st = os.stat(name, dir_fd=target.parent, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                if stat.S_ISLNK(st.st_mode):
                    if self.confined:
                        raise self._link_refused(name, target.path)
                    if not follow:  # realpath left a link: a loop
                        raise _error(errno.ELOOP, "too many levels of symbolic links", target.path)
                    real = os.path.realpath(os.path.join(self.root, target.path))
                    target.close()
                    return self.begin_upload(real, False)  # not confined: write where the link leads
                if stat.S_ISDIR(st.st_mode):
                    raise _error(errno.EISDIR, "is a directory", target.path)
                mode = stat.S_IMODE(st.st_mode)
            return Upload(target, name, mode)
        except BaseException:
            target.close()
            raise

    def create_folder(self, path: Any, mode: Any = "755") -> None:
        """Make the directory ``path`` with exactly ``mode`` (octal str;
        missing parents get 755 less the umask). An existing directory is left as it is;
        anything else there raises FileExistsError."""
        bits = parse_mode(mode)
        with self.resolve(path, create_parents=True) as target:
            if target.name is None:
                return  # the root: a directory that exists
            name = target.name
            try:
                os.mkdir(name, 0o700, dir_fd=target.parent)
            except FileExistsError:
                st = target.lstat()
                if self.confined and stat.S_ISLNK(st.st_mode):
                    raise self._link_refused(name, target.path) from None
                if stat.S_ISDIR(os.stat(name, dir_fd=target.parent).st_mode):
                    return
                raise _error(errno.EEXIST, "exists and is not a directory", target.path) from None
            try:  # exactly ``bits``, whatever the umask; never through a link swapped in
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC, dir_fd=target.parent)
            except OSError as exc:
                raise self._open_error(exc, target.parent, name, target.path) from None
            try:
                os.fchmod(fd, bits)
            finally:
                os.close(fd)

    def delete_file(self, path: Any, recursive: bool = False) -> None:
        """Remove ``path`` (a link: the link only). A directory needs
        ``recursive=True`` (IsADirectoryError otherwise); then its whole tree
        goes, links inside it removed, never followed."""
        if not isinstance(recursive, bool):
            raise TypeError("recursive must be a bool, not %s" % type(recursive).__name__)
        with self.resolve(path) as target:
            name = target.require_name("delete")
            st = target.lstat()
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=target.parent)
            elif not recursive:
                raise _error(errno.EISDIR, "is a directory; pass recursive=True to delete it", target.path)
            else:
                _remove_tree(target.parent, name, target.path)

    def move_files(self, source: Any, destination: Any) -> None:
        """Rename ``source`` to ``destination`` (replacing a file there, as
        rename(2) does; a link moves as a link)."""
        with self.resolve(source, what="source") as src:
            src_name = src.require_name("move")
            with self.resolve(destination, what="destination") as dst:
                dst_name = dst.require_name("replace")
                try:
                    os.rename(src_name, dst_name, src_dir_fd=src.parent, dst_dir_fd=dst.parent)
                except OSError as exc:
                    raise OSError(exc.errno, exc.strerror, src.path, None, dst.path) from None


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _make_temp(parent: int, mode: int) -> Tuple[str, int]:
    """A new file in ``parent`` for an upload: (its name, a write fd)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC
    for _ in range(100):
        name = _TEMP_PREFIX + os.urandom(8).hex()
        try:
            return name, os.open(name, flags, 0o600 if mode != 0o644 else 0o644, dir_fd=parent)
        except FileExistsError:
            continue
    raise _error(errno.EEXIST, "no free temporary name", _TEMP_PREFIX)


def _remove_tree(parent: int, name: str, path: str, depth: int = 0) -> None:
    """Remove the directory ``name`` in ``parent`` and everything below it,
    never following a link (one swapped in is unlinked instead). One fd is
    held per level: deeper than MAX_DEPTH is an error, not a RecursionError."""
    if depth > MAX_DEPTH:
        raise _error(errno.EMLINK, "more than %d folders deep; delete its deepest part first" % MAX_DEPTH, path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            os.unlink(name, dir_fd=parent)  # no longer a directory: remove what is there
            return
        raise
    try:
        with os.scandir(fd) as entries:
            children = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
        for child, is_dir in children:
            try:
                if is_dir:
                    _remove_tree(fd, child, path, depth + 1)
                else:
                    os.unlink(child, dir_fd=fd)
            except FileNotFoundError:
                pass
            except IsADirectoryError:
                _remove_tree(fd, child, path, depth + 1)  # became a directory meanwhile
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)


class LocalWriter:
    """A local file being written piece by piece (a download): the bytes go
    to a temporary file beside ``local_path``, renamed over it by
    :meth:`commit`, removed by :meth:`abort` (idempotent)."""

    def __init__(self, local_path: str) -> None:
        self.path = local_path
        folder, base = os.path.split(os.path.abspath(local_path))
        if not base:
            raise _error(errno.EISDIR, "is a directory", local_path)
        fd, self._temp = tempfile.mkstemp(prefix="." + base[:100] + ".", suffix=".part", dir=folder)
        self._file: Optional[IO[bytes]] = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        assert self._file is not None, "the local file was already committed or aborted"
        self._file.write(data)

    def commit(self) -> None:
        try:
            assert self._file is not None, "the local file was already committed or aborted"
            self._file.close()
            self._file = None
            os.chmod(self._temp, 0o666 & ~_umask())
            os.replace(self._temp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
        try:
            os.unlink(self._temp)
        except OSError:
            pass


def write_local(local_path: str, chunks: Iterator[bytes]) -> None:
    """Stream ``chunks`` into the local file ``local_path`` through a
    temporary file beside it, renamed over it on success, removed on failure."""
    writer = LocalWriter(local_path)
    try:
        for chunk in chunks:
            writer.write(chunk)
    except BaseException:
        writer.abort()
        raise
    writer.commit()


def _umask() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


# -- errors as JSON (for the HTTP routes and the remote client) ---------------

_ARGUMENT_ERRORS: Dict[str, Callable[[str], Exception]] = {"ValueError": ValueError, "TypeError": TypeError}


def error_to_json(exc: BaseException) -> Dict[str, Any]:
    """An OSError, ValueError or TypeError as ``{"error": class name,
    "errno": ..., "message": ..., "path": ...}`` (errno and path for OSError;
    ``path2`` too when it names a second path)."""
    if isinstance(exc, OSError):
        data = {"error": type(exc).__name__, "errno": exc.errno, "message": exc.strerror or str(exc),
                "path": exc.filename if isinstance(exc.filename, str) else None}
        if isinstance(exc.filename2, str):  # a move's destination
            data["path2"] = exc.filename2
        return data
    return {"error": type(exc).__name__, "message": str(exc)}


def error_from_json(data: Dict[str, Any]) -> Exception:
    """The exception :func:`error_to_json` described: the same built-in class
    (OSError picks it from the errno), or ValueError if ``data`` names nothing known."""
    name, message = data.get("error"), data.get("message")
    message = message if isinstance(message, str) else ""
    if name in _ARGUMENT_ERRORS:
        return _ARGUMENT_ERRORS[str(name)](message)
    code, path = data.get("errno"), data.get("path")
    if isinstance(code, int) and not isinstance(code, bool):
        path2 = data.get("path2")
        if isinstance(path, str) and isinstance(path2, str):
            return OSError(code, message, path, None, path2)
        if isinstance(path, str):
            return OSError(code, message, path)
        return OSError(code, message)
    return ValueError("unknown file error %r: %s" % (name, message))
