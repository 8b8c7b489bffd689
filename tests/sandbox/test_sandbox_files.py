"""fs on a sandboxed interpreter (issue 23): nothing outside the workspace,
ever. The code plants links to /etc, /root and a host directory outside the
workspace, links in the middle of paths, and swaps links in while the host
works; every call through one is a PermissionError and the host is untouched.

Safety of the tests themselves: only reads go through links (or absolute
paths) to real system directories. Every write, delete or move aims at the
decoy directory ``outside``, so a regression fails a test instead of
damaging the machine."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid

import pytest

from conftest import no_leftovers
from interp import AsyncCodeInterpreter, CodeInterpreter, FileInfo
from interp.sandbox import Sandbox


@pytest.fixture
def outside(tmp_path):
    """A host directory beside the workspace, invisible to the sandbox."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret").write_bytes(b"host secret")
    (path / "victim").write_bytes(b"host victim")
    (path / "sub").mkdir()
    (path / "sub" / "deep").write_bytes(b"host deep")
    return path


def _read(path):
    with open(path, "rb") as file:
        return file.read()


def _host_state(outside):
    return sorted((str(path.relative_to(outside)), path.is_dir() or _read(path)) for path in outside.rglob("*"))


HOST = [("secret", b"host secret"), ("sub", True), ("sub/deep", b"host deep"), ("victim", b"host victim")]


@pytest.fixture
def planted(box, outside):
    """The box after its code planted links: to /etc, /root and ``outside``;
    mid-path links to "..", "/" and a directory inside the workspace; links
    to /etc/passwd (read only) and to ``outside``'s secret as last
    components; and a FIFO."""
    result = box.run_code(
        "import os\n"
        "os.symlink('/etc', 'etc'); os.symlink('/root', 'root'); os.symlink(%r, 'out')\n"
        "os.makedirs('d/inner'); os.symlink('..', 'd/up'); os.symlink('/', 'd/slash')\n"
        "os.symlink('inner', 'd/rel'); open('d/inner/x', 'w').write('inner')\n"
        "os.symlink('/etc/passwd', 'passwd'); os.symlink(%r, 'secretlink')\n"
        "open('mine.txt', 'w').write('mine'); os.mkfifo('fifo')\n"
        % (str(outside), str(outside / "secret")))
    assert result.error is None, result.error
    return box


REFUSED = [
    # reads through links to system directories
    ("download_file", ("etc/passwd",)), ("download_file", ("root/.bashrc",)),
    ("download_file", ("d/slash/etc/passwd",)), ("download_file", ("passwd",)), ("download_file", ("etc",)),
    ("list_files", ("etc",)), ("list_files", ("root",)), ("list_files", ("d/slash",)),
    ("get_file_info", ("etc/passwd",)), ("get_file_info", ("d/slash/etc",)),
    # everything through links to the decoy host directory
    ("download_file", ("out/secret",)), ("download_file", ("d/up/out/secret",)), ("download_file", ("secretlink",)),
    ("upload_file", (b"pwned", "out/new")), ("upload_file", (b"pwned", "out/secret")),
    ("upload_file", (b"pwned", "secretlink")), ("upload_file", (b"pwned", "d/up/out/new")),
    ("upload_file", (b"pwned", "out/sub/deep")),
    ("create_folder", ("out/newdir",)), ("create_folder", ("out",)), ("create_folder", ("d/up/out/newdir",)),
    ("list_files", ("out",)), ("list_files", ("out/sub",)), ("list_files", ("d/up/out",)),
    ("get_file_info", ("out/secret",)), ("get_file_info", ("d/up/mine.txt",)),
    ("delete_file", ("out/secret",)), ("delete_file", ("out/victim",)), ("delete_file", ("d/up/out/victim",)),
    ("delete_file", ("out/sub", True)), ("delete_file", ("d/up/out/sub", True)),
    ("move_files", ("out/secret", "stolen")), ("move_files", ("mine.txt", "out/mine.txt")),
    ("move_files", ("out/sub", "stolen")), ("move_files", ("mine.txt", "d/up/out/victim")),
    # a mid-path link that stays inside the workspace is refused all the same
    ("download_file", ("d/rel/x",)), ("upload_file", (b"x", "d/rel/new")), ("move_files", ("d/rel/x", "x")),
    ("list_files", ("d/rel",)),
]


@pytest.mark.parametrize("method,args", REFUSED,
                         ids=["%s-%s" % (method, "-".join(map(repr, args))) for method, args in REFUSED])
def test_a_planted_link_is_never_followed(planted, outside, method, args):
    before = _host_state(outside)
    passwd = _read("/etc/passwd")
    with pytest.raises(PermissionError) as caught:
        getattr(planted.fs, method)(*args)
    assert caught.value.errno == 13 and "link" in str(caught.value)
    assert _host_state(outside) == before == HOST and _read("/etc/passwd") == passwd


def test_absolute_paths_and_dotdot_are_refused(planted, outside):
    fs, workspace = planted.fs, planted.sandbox.workspace
    decoys = [str(outside / "secret"), str(outside / "sub"), "../outside/secret", "d/../../outside/sub",
              "d/inner/../../../outside/victim", workspace + "/../outside/secret", workspace + "/../outside"]
    for path in decoys:
        for call in [lambda: fs.download_file(path), lambda: fs.upload_file(b"x", path), lambda: fs.list_files(path),
                     lambda: fs.get_file_info(path), lambda: fs.create_folder(path + "/new"),
                     lambda: fs.delete_file(path, True), lambda: fs.move_files(path, "here"),
                     lambda: fs.move_files("mine.txt", path)]:
            with pytest.raises(PermissionError):
                call()
    for path in ["/etc/passwd", "/", "/tmp", "..", "d/../.."]:  # real system paths: reads only
        for call in [lambda: fs.download_file(path), lambda: fs.list_files(path), lambda: fs.get_file_info(path)]:
            with pytest.raises(PermissionError):
                call()
    assert _host_state(outside) == HOST and fs.download_file("mine.txt") == b"mine"


def test_inside_the_workspace_everything_works(planted, outside):
    fs, workspace = planted.fs, planted.sandbox.workspace
    names = [info.name for info in fs.list_files(".")]
    assert names == ["d", "etc", "fifo", "mine.txt", "out", "passwd", "root", "secretlink"]
    links = {info.name: info.mode for info in fs.list_files(".") if not info.is_dir and info.mode[0] == "l"}
    assert sorted(links) == ["etc", "out", "passwd", "root", "secretlink"]
    assert fs.get_file_info("etc").mode == "lrwxrwxrwx" and not fs.get_file_info("etc").is_dir
    assert fs.download_file(workspace + "/mine.txt") == b"mine"  # an absolute path inside is fine
    fs.upload_file(b"hello", "data/in.csv")
    assert planted.run_code("print(open('data/in.csv').read())").stdout == "hello\n"
    assert [info.name for info in fs.list_files("d")] == ["inner", "rel", "slash", "up"]
    with pytest.raises(PermissionError, match="not a regular file"):
        fs.download_file("fifo")  # refused at once, not waited on
    fs.move_files("secretlink", "renamed-link")  # a link moves as a link
    assert os.readlink(os.path.join(workspace, "renamed-link")) == str(outside / "secret")
    fs.delete_file("out", recursive=True)  # the link goes, not what it points to
    fs.delete_file("d/slash")  # (a link to "/" must not be in a tree this test deletes: see the module doc)
    planted.run_code("import os; os.symlink(%r, 'd/decoy')" % str(outside))
    fs.delete_file("d", recursive=True)  # links inside are removed, never followed (d/up leads to "..")
    fs.delete_file("renamed-link")
    assert _host_state(outside) == HOST
    assert sorted(os.listdir(workspace)) == ["data", "etc", "fifo", "mine.txt", "passwd", "root"]


SWAPPER = """
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)

def exchange(a, b):  # renameat2(RENAME_EXCHANGE): both names exist at every instant
    if libc.renameat2(-100, a.encode(), -100, b.encode(), 2) != 0:
        raise OSError(ctypes.get_errno(), 'renameat2')

os.makedirs('d'); open('d/secret', 'wb').write(b'workspace'); os.symlink(%(outside)r, 'other')
open('f', 'wb').write(b'workspace'); os.symlink(%(outside)r + '/secret', 'g')
open('ready', 'w').close()
end = time.time() + 40
flips = 0
while time.time() < end and not os.path.exists('stop'):
    exchange('d', 'other')
    exchange('f', 'g')
    flips += 1
print(flips)
"""


@pytest.mark.limit(120)
def test_a_link_swapped_in_during_calls_is_never_followed(box, outside):
    """The code flips 'd' between a directory and a link to a host directory
    (and 'f' between a file and a link to a host file) as fast as it can,
    atomically, while the host keeps working through them."""
    workspace = box.sandbox.workspace
    context = box.create_context()
    done = {}
    swapper = threading.Thread(target=lambda: done.update(
        result=box.run_code(SWAPPER % {"outside": str(outside)}, context=context, timeout=60)))
    swapper.start()
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(workspace, "ready")):
            assert time.monotonic() < deadline and swapper.is_alive(), done
            time.sleep(0.01)
        fs = box.fs
        calls = [lambda: fs.download_file("d/secret"), lambda: fs.download_file("f"),
                 lambda: fs.upload_file(b"pwned", "d/pwned"), lambda: fs.list_files("d"),
                 lambda: fs.get_file_info("d/secret"), lambda: fs.delete_file("d/victim"),
                 lambda: fs.create_folder("d/newdir"), lambda: fs.move_files("d/secret", "d/secret")]
        seen = {}
        rounds = 0
        while rounds < 200 or not {"ok", "PermissionError"} <= set(seen):
            assert time.monotonic() < deadline, "after %d rounds: %s" % (rounds, seen)
            for call in calls:
                try:
                    value = call()
                except (PermissionError, FileNotFoundError, NotADirectoryError) as exc:
                    kind = type(exc).__name__
                else:
                    kind = "ok"
                    if isinstance(value, FileInfo):
                        assert value.size == len(b"workspace"), value  # not the host's secret
                    elif isinstance(value, list):
                        assert "victim" not in [info.name for info in value]
                    else:
                        assert value is None or value == b"workspace", value
                seen[kind] = seen.get(kind, 0) + 1
            rounds += 1
    finally:
        open(os.path.join(workspace, "stop"), "w").close()
        swapper.join(60)
    assert not swapper.is_alive()
    assert done["result"].error is None and int(done["result"].stdout) > 0
    assert _host_state(outside) == HOST


def test_root_secrets_are_out_of_reach(box):
    """A link to /root: as root a planted secret is there; the host never reads or removes it."""
    name = "interp-test-%s" % uuid.uuid4().hex
    secret = os.path.join("/root", name)
    try:
        with open(secret, "wb") as file:
            file.write(b"root secret")
    except OSError:
        secret = None  # unprivileged: /root is not ours to write (and not the sandbox's to read)
    try:
        box.run_code("import os; os.symlink('/root', 'r'); os.symlink('/root/%s', 's')" % name)
        for call in [lambda: box.fs.download_file("r/" + name), lambda: box.fs.download_file("s"),
                     lambda: box.fs.delete_file("r/" + name), lambda: box.fs.upload_file(b"x", "s"),
                     lambda: box.fs.move_files("r/" + name, "taken")]:
            with pytest.raises(PermissionError):
                call()
        if secret is not None:
            with open(secret, "rb") as file:
                assert file.read() == b"root secret"
    finally:
        if secret is not None:
            os.unlink(secret)


def test_async_fs_is_confined_too(tmp_path, outside):
    workspace = tmp_path / "workspace"
    workspace.mkdir()

    async def main():
        async with AsyncCodeInterpreter(sandbox=Sandbox(workspace)) as ci:
            await ci.run_code("import os; os.symlink(%r, 'out')" % str(outside))
            with pytest.raises(PermissionError):
                await ci.fs.download_file("out/secret")
            with pytest.raises(PermissionError):
                await ci.fs.upload_file(b"x", str(outside / "new"))
            await ci.fs.upload_file(b"fine", "in.txt")
            return (await ci.run_code("print(open('in.txt').read())")).stdout

    assert asyncio.run(asyncio.wait_for(main(), 60)) == "fine\n"
    assert _host_state(outside) == HOST
    no_leftovers()


def test_a_temporary_workspace_is_the_root(outside):
    with CodeInterpreter(sandbox=True) as ci:
        ci.fs.upload_file(b"1", "a.txt")
        result = ci.run_code("import os; print(os.getcwd(), open('a.txt').read())")
        assert result.stdout == "%s 1\n" % ci.sandbox.workspace
        # the temporary workspace is a tmpfs only the sandbox has: fs reaches it through the zygote
        assert os.listdir(ci.sandbox.workspace) == []
        ci.run_code("import os; os.makedirs('out'); open('out/made.txt', 'w').write('by the code')")
        assert ci.fs.download_file("out/made.txt") == b"by the code"
        assert [info.name for info in ci.fs.list_files(".")] == ["a.txt", "out"]
    no_leftovers()
