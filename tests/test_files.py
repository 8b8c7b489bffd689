"""fs (issue 23): Daytona's file API on CodeInterpreter and AsyncCodeInterpreter, unsandboxed.
The sandbox's refusals are in tests/sandbox/test_sandbox_files.py."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import sys
import stat
import threading
from datetime import datetime, timedelta, timezone

import pytest

from helpers import worker_processes_of
from interp import AsyncCodeInterpreter, CodeInterpreter, FileInfo, InterpError
from interp.files import CHUNK, FileRoot, error_from_json, error_to_json


class Blocking:
    """An interpreter's ``fs`` called the sync way: the async one's
    coroutines run to completion on the interpreter's own loop."""

    def __init__(self, fs, loop=None):
        self._fs = fs
        self._loop = loop

    def __getattr__(self, name):
        method = getattr(self._fs, name)
        if self._loop is None:
            return method
        return lambda *args, **kwargs: self._loop.run_until_complete(asyncio.wait_for(method(*args, **kwargs), 30))


@pytest.fixture(params=["sync", "async"])
def pair(request, tmp_path):
    """(interpreter, its fs called the sync way, its root) for both APIs."""
    root = tmp_path / "root"
    root.mkdir()
    if request.param == "sync":
        interpreter = CodeInterpreter(cwd=str(root))
        try:
            yield interpreter, Blocking(interpreter.fs), root
        finally:
            interpreter.close()
    else:
        loop = asyncio.new_event_loop()
        interpreter = AsyncCodeInterpreter(cwd=str(root))
        try:
            yield interpreter, Blocking(interpreter.fs, loop), root
        finally:
            loop.run_until_complete(interpreter.close())
            loop.close()
    assert worker_processes_of(os.getpid()) == []


@pytest.fixture
def fs(pair):
    return pair[1]


def test_upload_download_round_trip_and_the_code_sees_it(pair):
    interpreter, fs, root = pair
    fs.upload_file(b"a,b\n1,2\n", "data/in/table.csv")  # parents are made
    assert (root / "data/in/table.csv").read_bytes() == b"a,b\n1,2\n"
    assert fs.download_file("data/in/table.csv") == b"a,b\n1,2\n"
    fs.upload_file(bytearray(b"x" * 10), "b.bin")
    fs.upload_file(memoryview(b"abcdef")[1:4], "c.bin")
    assert fs.download_file("b.bin") == b"x" * 10 and fs.download_file("c.bin") == b"bcd"
    fs.upload_file(b"", "empty")
    assert fs.download_file("empty") == b""
    if isinstance(interpreter, CodeInterpreter):
        result = interpreter.run_code("print(open('data/in/table.csv').read().split()[1])\n"
                                      "open('out.txt', 'w').write('from the code')")
        assert result.stdout == "1,2\n"
        assert fs.download_file("out.txt") == b"from the code"


def test_upload_replaces_a_longer_or_shorter_file(fs):
    fs.upload_file(b"one", "f")
    fs.upload_file(b"two, longer", "f")
    assert fs.download_file("f") == b"two, longer"
    fs.upload_file(b"3", "f")
    assert fs.download_file("f") == b"3"


def test_replace_keeps_mode_and_leaves_no_temporary_file(pair):
    _, fs, root = pair
    (root / "script.sh").write_bytes(b"old")
    os.chmod(root / "script.sh", 0o751)
    fs.upload_file(b"new", "script.sh")
    assert stat.S_IMODE(os.stat(root / "script.sh").st_mode) == 0o751
    assert (root / "script.sh").read_bytes() == b"new"
    assert os.listdir(root) == ["script.sh"]


def test_the_root_is_the_default_contexts_cwd_not_the_process_cwd(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with CodeInterpreter(cwd=str(tmp_path / "a")) as ci:
        monkeypatch.chdir(tmp_path / "b")
        ci.fs.upload_file(b"1", "here")
        assert os.listdir(tmp_path / "a") == ["here"] and os.listdir(tmp_path / "b") == []
    monkeypatch.chdir(tmp_path / "a")
    with CodeInterpreter() as ci:  # no cwd: the default context's, fixed when it is first used
        ci.fs.upload_file(b"2", "first")
        monkeypatch.chdir(tmp_path / "b")
        ci.fs.upload_file(b"3", "second")
        assert ci.run_code("import os; print(os.getcwd())").stdout == "%s\n" % (tmp_path / "a")
    assert sorted(os.listdir(tmp_path / "a")) == ["first", "here", "second"]
    assert os.listdir(tmp_path / "b") == []


def test_absolute_paths_reach_what_the_user_can(fs, tmp_path):
    outside = tmp_path / "outside.txt"
    fs.upload_file(b"abs", str(outside))
    assert outside.read_bytes() == b"abs" and fs.download_file(str(outside)) == b"abs"
    assert fs.download_file("../outside.txt") == b"abs"


def test_streaming_from_and_to_local_files(pair, tmp_path):
    _, fs, root = pair
    size = 2 * CHUNK + 12345
    data = os.urandom(size)
    local = tmp_path / "local.bin"
    local.write_bytes(data)
    assert fs.upload_file(str(local), "big.bin") is None
    assert (root / "big.bin").read_bytes() == data
    target = tmp_path / "back.bin"
    assert fs.download_file("big.bin", str(target)) is None
    assert target.read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["back.bin", "local.bin", "root"]


def test_a_failed_download_leaves_no_local_file(fs, tmp_path):
    target = tmp_path / "keep.txt"
    target.write_bytes(b"untouched")
    fs.create_folder("folder")
    for path, error in [("missing", FileNotFoundError), ("folder", IsADirectoryError)]:
        with pytest.raises(error):
            fs.download_file(path, str(target))
        with pytest.raises(error):
            fs.download_file(path, str(tmp_path / "new.txt"))
    assert target.read_bytes() == b"untouched"
    assert sorted(os.listdir(tmp_path)) == ["keep.txt", "root"]


def test_a_failed_local_write_removes_its_temporary_file(tmp_path):
    root = FileRoot(str(tmp_path), confined=False)
    (tmp_path / "f").write_bytes(b"x" * (3 * CHUNK))
    local = tmp_path / "out" / "copy"
    (tmp_path / "out").mkdir()
    chunks = root.read_chunks("f")

    def failing():
        yield next(chunks)
        raise OSError(errno.ENOSPC, "disk full (simulated)")

    from interp.files import write_local
    with pytest.raises(OSError, match="disk full"):
        write_local(str(local), failing())
    assert os.listdir(tmp_path / "out") == []


def test_a_failed_upload_keeps_the_old_file_and_no_temporary_file(tmp_path):
    root = FileRoot(str(tmp_path), confined=False)
    (tmp_path / "f").write_bytes(b"old")

    def failing():
        yield b"partial"
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError):
        root.write_chunks("f", failing())
    assert (tmp_path / "f").read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]


def test_list_files_sorted_with_dotfiles_and_links_as_links(pair):
    _, fs, root = pair
    for name in ["b.txt", ".hidden", "A.txt"]:
        (root / name).write_bytes(b"12345")
    (root / "dir").mkdir()
    (root / "dir" / "inner").write_bytes(b"")
    os.symlink("dir", root / "link")
    infos = fs.list_files(".")
    assert [info.name for info in infos] == [".hidden", "A.txt", "b.txt", "dir", "link"]
    by_name = {info.name: info for info in infos}
    assert by_name["b.txt"].size == 5 and by_name["b.txt"].mode == stat.filemode(os.stat(root / "b.txt").st_mode)
    assert by_name["dir"].is_dir and by_name["dir"].mode.startswith("d")
    assert not by_name["link"].is_dir and by_name["link"].mode == "lrwxrwxrwx"
    assert [info.name for info in fs.list_files("dir")] == ["inner"]
    assert fs.list_files() == infos  # default: the root
    with pytest.raises(NotADirectoryError):
        fs.list_files("b.txt")
    with pytest.raises(FileNotFoundError):
        fs.list_files("nowhere")


def test_get_file_info(pair):
    _, fs, root = pair
    (root / "f.txt").write_bytes(b"hello")
    os.chmod(root / "f.txt", 0o640)
    info = fs.get_file_info("f.txt")
    assert isinstance(info, FileInfo)
    assert (info.name, info.is_dir, info.size, info.mode) == ("f.txt", False, 5, "-rw-r-----")
    when = datetime.fromisoformat(info.mod_time)
    assert when.utcoffset() == timedelta(0)
    assert abs(when.timestamp() - os.stat(root / "f.txt").st_mtime) < 1e-3
    assert abs(when - datetime.now(timezone.utc)) < timedelta(minutes=5)
    assert fs.get_file_info(".").is_dir and fs.get_file_info(".").name == "root"
    os.symlink("/nonexistent", root / "dangling")
    assert fs.get_file_info("dangling").mode == "lrwxrwxrwx"


def test_create_folder_exact_mode_and_parents(pair):
    _, fs, root = pair
    old = os.umask(0o077)
    try:
        fs.create_folder("a/b/c", "775")
        fs.create_folder("x", "0750")
        fs.create_folder("y")
        fs.create_folder("nothing", "000")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(root / "a/b/c").st_mode) == 0o775
    assert stat.S_IMODE(os.stat(root / "a").st_mode) == 0o700  # parents: 755 less the umask, as mkdir -p
    assert stat.S_IMODE(os.stat(root / "x").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(root / "y").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(root / "nothing").st_mode) == 0
    assert fs.get_file_info("a/b/c").mode == "drwxrwxr-x"
    fs.create_folder("a/b/c", "700")  # an existing folder is left as it is
    assert stat.S_IMODE(os.stat(root / "a/b/c").st_mode) == 0o775
    fs.upload_file(b"", "file")
    with pytest.raises(FileExistsError) as caught:
        fs.create_folder("file")
    assert caught.value.errno == errno.EEXIST
    with pytest.raises(NotADirectoryError):
        fs.create_folder("file/sub")


@pytest.mark.parametrize("mode", ["888", "75", "abc", "07555", "755 ", "-755", ""])
def test_create_folder_bad_mode_is_a_value_error(fs, mode):
    with pytest.raises(ValueError, match="octal"):
        fs.create_folder("d", mode)


def test_create_folder_mode_must_be_a_str(pair):
    _, fs, root = pair
    with pytest.raises(TypeError):
        fs.create_folder("d", 0o755)
    assert os.listdir(root) == []


def test_delete_file(pair, tmp_path):
    _, fs, root = pair
    fs.upload_file(b"1", "f")
    fs.delete_file("f")
    assert os.listdir(root) == []
    fs.upload_file(b"1", "tree/a/b/c")
    decoy = tmp_path / "decoy"  # never a real system directory: a regression must not harm the host
    decoy.mkdir()
    (decoy / "kept").write_bytes(b"!")
    os.symlink(str(decoy), root / "tree" / "a" / "to-decoy")
    with pytest.raises(IsADirectoryError) as caught:
        fs.delete_file("tree")
    assert caught.value.errno == errno.EISDIR and "recursive=True" in str(caught.value)
    fs.delete_file("tree", recursive=True)
    assert os.listdir(root) == [] and (decoy / "kept").read_bytes() == b"!"
    with pytest.raises(FileNotFoundError):
        fs.delete_file("f")
    with pytest.raises(TypeError):
        fs.delete_file("f", recursive="yes")


def test_deleting_a_link_removes_only_the_link(pair, tmp_path):
    _, fs, root = pair
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious").write_bytes(b"!")
    os.symlink(str(keep), root / "link")
    fs.delete_file("link", recursive=True)
    os.symlink(str(keep / "precious"), root / "flink")
    fs.delete_file("flink")
    assert os.listdir(root) == [] and (keep / "precious").read_bytes() == b"!"


def test_move_files(pair):
    _, fs, root = pair
    fs.upload_file(b"1", "a.txt")
    fs.move_files("a.txt", "b.txt")
    fs.create_folder("dir")
    fs.move_files("b.txt", "dir/c.txt")
    fs.upload_file(b"2", "d.txt")
    fs.move_files("d.txt", "dir/c.txt")  # replaces
    assert os.listdir(root) == ["dir"] and (root / "dir/c.txt").read_bytes() == b"2"
    fs.move_files("dir", "renamed")
    assert os.listdir(root) == ["renamed"]
    with pytest.raises(FileNotFoundError) as caught:
        fs.move_files("missing", "x")
    assert caught.value.filename == "missing" and caught.value.filename2 == "x"
    with pytest.raises(FileNotFoundError):
        fs.move_files("renamed/c.txt", "no/such/folder/c.txt")


def test_errors_are_the_built_in_ones_with_errno(pair):
    _, fs, root = pair
    fs.upload_file(b"1", "file")
    fs.create_folder("dir")
    cases = [
        (lambda: fs.download_file("missing"), FileNotFoundError, errno.ENOENT),
        (lambda: fs.get_file_info("missing/deeper"), FileNotFoundError, errno.ENOENT),
        (lambda: fs.download_file("file/x"), NotADirectoryError, errno.ENOTDIR),
        (lambda: fs.download_file("dir"), IsADirectoryError, errno.EISDIR),
        (lambda: fs.upload_file(b"x", "dir"), IsADirectoryError, errno.EISDIR),
        (lambda: fs.upload_file(b"x", "file/x"), NotADirectoryError, errno.ENOTDIR),
        (lambda: fs.move_files("dir", "file"), NotADirectoryError, errno.ENOTDIR),
    ]
    for call, error, code in cases:
        with pytest.raises(error) as caught:
            call()
        assert caught.value.errno == code
    with pytest.raises(OSError) as caught:
        fs.delete_file(".")
    assert caught.value.errno in (errno.EPERM, errno.EISDIR)
    assert sorted(os.listdir(root)) == ["dir", "file"]


def test_bad_argument_types_are_type_errors(fs):
    for call in [lambda: fs.upload_file(b"x", None), lambda: fs.upload_file(b"x", 5),
                 lambda: fs.upload_file(b"x", b"bytes-path"), lambda: fs.upload_file(12, "x"),
                 lambda: fs.upload_file(["a"], "x"), lambda: fs.download_file(None),
                 lambda: fs.download_file("x", 3), lambda: fs.list_files(1.5),
                 lambda: fs.get_file_info(object()), lambda: fs.move_files("a", None)]:
        with pytest.raises(TypeError):
            call()
    with pytest.raises(ValueError, match="NUL"):
        fs.upload_file(b"x", "a\0b")


def test_a_fifo_is_refused_not_waited_on(pair):
    _, fs, root = pair
    os.mkfifo(root / "pipe")
    with pytest.raises(PermissionError, match="not a regular file"):
        fs.download_file("pipe")
    assert fs.get_file_info("pipe").mode.startswith("p")


def test_a_closed_interpreter_raises_interp_error(pair):
    interpreter, fs, _ = pair
    if isinstance(interpreter, CodeInterpreter):
        interpreter.close()
    else:
        fs._loop.run_until_complete(interpreter.close())
    for call in [lambda: fs.upload_file(b"x", "x"), lambda: fs.download_file("x"), lambda: fs.list_files("."),
                 lambda: fs.get_file_info("x"), lambda: fs.create_folder("x"), lambda: fs.delete_file("x"),
                 lambda: fs.move_files("x", "y")]:
        with pytest.raises(InterpError, match="closed"):
            call()


def test_concurrent_uploads_are_atomic(tmp_path):
    blobs = [bytes([n]) * (CHUNK + 7) for n in range(6)]
    with CodeInterpreter(cwd=str(tmp_path)) as ci:
        threads = [threading.Thread(target=ci.fs.upload_file, args=(blob, "same")) for blob in blobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert ci.fs.download_file("same") in blobs
    assert os.listdir(tmp_path) == ["same"]


def test_async_fs_does_not_block_the_event_loop(tmp_path):
    """The upload reads a local FIFO that only a coroutine on the same loop
    writes: if the file I/O ran on the loop, this would never finish."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    async def writer():
        while True:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO until the upload opened it
            except OSError as exc:
                assert exc.errno == errno.ENXIO
                await asyncio.sleep(0.01)
                continue
            os.set_blocking(fd, True)
            os.write(fd, b"through the fifo")
            os.close(fd)
            return

    async def main():
        async with AsyncCodeInterpreter(cwd=str(tmp_path)) as ci:
            await asyncio.gather(ci.fs.upload_file(str(fifo), "got"), writer())
            return await ci.fs.download_file("got")

    assert asyncio.run(asyncio.wait_for(main(), 30)) == b"through the fifo"


def test_errors_round_trip_through_json():
    originals = [FileNotFoundError(errno.ENOENT, "No such file", "a/b"), PermissionError(errno.EACCES, "no"),
                 IsADirectoryError(errno.EISDIR, "dir", "d"), NotADirectoryError(errno.ENOTDIR, "nd", "f/x"),
                 FileExistsError(errno.EEXIST, "exists", "e"), OSError(errno.ENOTEMPTY, "not empty", "d"),
                 ValueError("bad mode"), TypeError("bad type")]
    import json
    for original in originals:
        data = json.loads(json.dumps(error_to_json(original)))
        again = error_from_json(data)
        assert type(again) is type(original) and str(again) == str(original)
        if isinstance(original, OSError):
            assert (again.errno, again.filename) == (original.errno, original.filename)
    assert isinstance(error_from_json({"error": "Nonsense"}), ValueError)
    assert isinstance(error_from_json({"error": "FileNotFoundError", "errno": True}), ValueError)


def test_unsandboxed_links_lead_where_they_point_for_reads_and_writes(pair, tmp_path):
    _, fs, root = pair
    (tmp_path / "real.txt").write_bytes(b"real")
    os.symlink(str(tmp_path / "real.txt"), root / "link")
    assert fs.download_file("link") == b"real"
    fs.upload_file(b"new", "link")  # writes the file the link leads to, the link stays
    assert os.path.islink(root / "link") and (tmp_path / "real.txt").read_bytes() == b"new"
    os.symlink("loop", root / "loop")
    with pytest.raises(OSError) as caught:
        fs.upload_file(b"x", "loop")
    assert caught.value.errno == errno.ELOOP


def test_a_tree_too_deep_to_delete_is_a_clear_error(pair):
    from interp.files import MAX_DEPTH
    _, fs, root = pair
    os.makedirs(os.path.join(root, "ok", *["d"] * MAX_DEPTH))
    fs.delete_file("ok", recursive=True)
    os.makedirs(os.path.join(root, "deep", *["d"] * (MAX_DEPTH + 1)))
    with pytest.raises(OSError, match="folders deep") as caught:
        fs.delete_file("deep", recursive=True)
    assert caught.value.errno == errno.EMLINK and caught.value.filename == "deep"
    assert os.listdir(root) == ["deep"]
    fs.delete_file("deep/" + "/".join(["d"] * 10), recursive=True)  # its deepest part first
    fs.delete_file("deep", recursive=True)
    assert os.listdir(root) == []


MEMORY_PROBE = """
import os, resource, sys
sys.path.insert(0, sys.argv[1])
from interp import CodeInterpreter
size = int(sys.argv[2])
with open("big.bin", "wb") as f:
    for _ in range(size // 2**20):
        f.write(b"%d" % _ * (2**20 // len(b"%d" % _)) + b"x" * (2**20 % len(b"%d" % _)))
with CodeInterpreter(cwd=os.getcwd()) as ci:
    ci.fs.list_files(".")  # everything imported and warmed up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ci.fs.upload_file("big.bin", "copy/big.bin")
    ci.fs.download_file("copy/big.bin", "back.bin")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert os.path.getsize("back.bin") == size
print((after - before) * 1024)
"""


@pytest.mark.limit(120)
def test_streaming_keeps_memory_flat(tmp_path):
    """A 128 MiB upload from a local path and download into one grow the
    peak RSS by far less than the file: it moves in 1 MiB chunks."""
    size = 128 << 20
    proc = subprocess.run([sys.executable, "-c", MEMORY_PROBE, os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), str(size)], cwd=str(tmp_path), capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr
    growth = int(proc.stdout)
    assert growth < size // 8, "peak RSS grew by %d MiB" % (growth >> 20)


def test_the_upload_object_for_the_http_routes(tmp_path):
    """FileRoot.begin_upload: checks first, then chunks, then commit or abort."""
    root = FileRoot(str(tmp_path), confined=True)
    (tmp_path / "dir").mkdir()
    with pytest.raises(IsADirectoryError):
        root.begin_upload("dir")
    upload = root.begin_upload("f")
    upload.write(b"half")
    upload.abort()
    upload.abort()
    assert os.listdir(tmp_path) == ["dir"]
    upload = root.begin_upload("sub/f")
    for chunk in (b"one ", b"two"):
        upload.write(chunk)
    assert upload.size == 7 and not os.path.exists(tmp_path / "sub" / "f")
    upload.commit()
    assert (tmp_path / "sub" / "f").read_bytes() == b"one two"
    assert sorted(os.listdir(tmp_path / "sub")) == ["f"]
