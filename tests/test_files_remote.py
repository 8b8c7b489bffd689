"""``fs`` of RemoteCodeInterpreter and AsyncRemoteCodeInterpreter (issue 23),
and the server's file routes underneath.

Every test of tests/test_files.py that works through the ``pair`` or ``fs``
fixture runs here again (imported, not copied) with both remote twins
talking over loopback sockets to a real InterpHTTPServer in this process:
the same methods, arguments, return values and exceptions as the local
``fs``. Then what only the remote side has: raw bytes on the wire, the
HTTP rules (token, Origin, Host, --max-upload), refused uploads that send
no body, and a server that breaks the connection.
"""

from __future__ import annotations

import asyncio
import errno
import http.client
import inspect
import json
import os
import socket
import threading
import time

import pytest

import test_files
from helpers import worker_processes_of
from interp import AsyncRemoteCodeInterpreter, InterpError, RemoteCodeInterpreter
from interp.errors import ConnectionLostError, RemoteServerError
from remote_helpers import ThreadServer
from test_files import Blocking

#: Tests of test_files.py that need a local interpreter, and why.
NOT_REMOTE = {
    "test_a_closed_interpreter_raises_interp_error": "closes a local interpreter (see the remote one below)",
}


def _collect(module):
    for name in dir(module):
        function = getattr(module, name)
        if name.startswith("test_") and name not in NOT_REMOTE and callable(function):
            parameters = inspect.signature(function).parameters
            if "pair" in parameters or "fs" in parameters:
                yield name, function


globals().update(dict(_collect(test_files)))


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    served = ThreadServer(str(root))
    try:
        yield served
    finally:
        served.close()
        assert worker_processes_of(os.getpid()) == []


@pytest.fixture(params=["sync", "async"])
def pair(request, server, tmp_path):
    """(remote interpreter, its fs called the sync way, the server's file root)."""
    root = tmp_path / "root"
    if request.param == "sync":
        client = RemoteCodeInterpreter(server.url, io_timeout=20)
        try:
            yield client, Blocking(client.fs), root
        finally:
            client.close()
    else:
        loop = asyncio.new_event_loop()
        aclient = AsyncRemoteCodeInterpreter(server.url, io_timeout=20)
        try:
            yield aclient, Blocking(aclient.fs, loop), root
        finally:
            loop.run_until_complete(aclient.close())
            loop.close()


@pytest.fixture
def fs(pair):
    return pair[1]


def test_a_closed_remote_interpreter_raises_interp_error(pair):
    client, fs, _ = pair
    if isinstance(client, RemoteCodeInterpreter):
        client.close()
    else:
        fs._loop.run_until_complete(client.close())
    for call in [lambda: fs.upload_file(b"x", "x"), lambda: fs.download_file("x"), lambda: fs.list_files("."),
                 lambda: fs.get_file_info("x"), lambda: fs.create_folder("x"), lambda: fs.delete_file("x"),
                 lambda: fs.move_files("x", "y")]:
        with pytest.raises(InterpError, match="closed"):
            call()


def test_the_remote_fs_equals_the_local_one(pair, server):
    fs = pair[1]
    local = server.interpreter.fs
    fs.upload_file(bytes(range(256)) * 5000, "deep/er/bin")
    fs.create_folder("deep/x", "700")
    assert fs.list_files("deep") == local.list_files("deep")
    assert fs.get_file_info("deep/er/bin") == local.get_file_info("deep/er/bin")
    assert fs.download_file("deep/er/bin") == local.download_file("deep/er/bin")
    assert fs.get_file_info("deep/x").mode == "drwx------"


def test_odd_names_survive_the_url(fs, server):
    names = ["a b", "100%.txt", "q?x=1#frag", "ü/ñ.txt", "semi;colon", "plus+sign", ".hidden", "%2F"]
    for index, name in enumerate(names):
        fs.upload_file(str(index).encode(), name)
        assert fs.download_file(name) == str(index).encode()
        assert server.interpreter.fs.download_file(name) == str(index).encode()
    assert fs.get_file_info("ü").is_dir


def test_large_files_cross_in_chunks(pair, tmp_path):
    _, fs, root = pair
    data = os.urandom(5 * 2**20 + 7)
    (tmp_path / "big").write_bytes(data)
    fs.upload_file(str(tmp_path / "big"), "big")
    assert (root / "big").read_bytes() == data
    fs.download_file("big", str(tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == data
    assert fs.download_file("big") == data
    fs.upload_file(b"", "empty")
    assert fs.download_file("empty") == b""
    fs.download_file("empty", str(tmp_path / "empty"))
    assert (tmp_path / "empty").read_bytes() == b""


def test_a_refused_upload_sends_no_body_and_the_connection_stays_usable(pair, tmp_path):
    _, fs, root = pair
    fs.upload_file(b"1", "file")
    big = os.urandom(8 * 2**20)
    for _ in range(3):
        with pytest.raises(NotADirectoryError):
            fs.upload_file(big, "file/inside")
        with pytest.raises(IsADirectoryError):
            fs.upload_file(big, ".")
    assert fs.download_file("file") == b"1"
    assert sorted(os.listdir(root)) == ["file"]  # no temporary file left


def test_an_unreadable_local_source_is_its_own_error(fs, tmp_path):
    with pytest.raises(FileNotFoundError):
        fs.upload_file(str(tmp_path / "missing"), "x")
    with pytest.raises(IsADirectoryError):
        fs.upload_file(str(tmp_path), "x")
    assert fs.list_files(".") == []


# -- the routes, as any HTTP client sees them ----------------------------------------

def _request(server, method, path, body=None, headers=None):
    host, port = server.url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_routes_move_raw_bytes(server, tmp_path):
    data = bytes(range(256))
    status, _, body = _request(server, "PUT", "/files/sub%2Fraw.bin", data,
                               {"Content-Type": "application/octet-stream"})
    assert status == 201 and json.loads(body) == {"path": "sub/raw.bin", "size": 256}
    status, headers, body = _request(server, "GET", "/files/sub/raw.bin")  # unencoded slashes too
    assert status == 200 and body == data and headers["Content-Type"] == "application/octet-stream"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Cache-Control"] == "no-store"
    status, _, body = _request(server, "POST", "/fs/list", json.dumps({"path": "sub"}),
                               {"Content-Type": "application/json"})
    assert status == 200 and [entry["name"] for entry in json.loads(body)] == ["raw.bin"]
    status, _, body = _request(server, "GET", "/files/nothing")
    assert status == 404 and json.loads(body)["file_error"] == {
        "error": "FileNotFoundError", "errno": errno.ENOENT, "message": "No such file or directory",
        "path": "nothing"}
    status, _, body = _request(server, "PUT", "/files/x", b"{}", {"Content-Type": "application/json"})
    assert status == 415
    status, _, _ = _request(server, "POST", "/files/x", b"")
    assert status == 405
    status, _, body = _request(server, "POST", "/fs/folder", json.dumps({"path": "f", "mode": "9"}),
                               {"Content-Type": "application/json"})
    assert status == 400 and json.loads(body)["file_error"]["error"] == "ValueError"
    status, _, body = _request(server, "POST", "/fs/info", json.dumps({"path": "a\0b"}),
                               {"Content-Type": "application/json"})
    assert status == 400


def test_an_upload_may_exceed_max_body_but_not_max_upload(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    server = ThreadServer(str(root), max_body=1000, max_upload=100_000)
    try:
        with RemoteCodeInterpreter(server.url) as client:
            client.fs.upload_file(b"x" * 100_000, "fits")
            assert (root / "fits").stat().st_size == 100_000
            with pytest.raises(RemoteServerError) as caught:
                client.fs.upload_file(b"x" * 100_001, "too-big")
            assert caught.value.status == 413 and "--max-upload" in str(caught.value)
            assert sorted(os.listdir(root)) == ["fits"]
            assert client.fs.list_files()[0].name == "fits"  # usable after the refusal
    finally:
        server.close()


def test_the_token_origin_and_host_rules_apply(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "secret").write_bytes(b"s")
    server = ThreadServer(str(root), token="sesame")
    try:
        for method, path, body in [("GET", "/files/secret", None), ("PUT", "/files/new", b"x" * 10),
                                   ("POST", "/fs/list", b"{}"), ("POST", "/fs/delete", b'{"path": "secret"}')]:
            headers = {"Content-Type": "application/json" if path.startswith("/fs") else "application/octet-stream"}
            assert _request(server, method, path, body, headers)[0] == 401
            with_token = dict(headers, Authorization="Bearer sesame")
            assert _request(server, method, path, body, dict(with_token, Origin="http://evil.example"))[0] == 403
            assert _request(server, method, path, body, dict(with_token, Host="evil.example"))[0] == 403
        assert sorted(os.listdir(root)) == ["secret"]
        with pytest.raises(RemoteServerError) as caught:
            RemoteCodeInterpreter(server.url, "wrong").fs.upload_file(b"x" * 2**20, "new")
        assert caught.value.status == 401
        with RemoteCodeInterpreter(server.url, "sesame") as client:
            assert client.fs.download_file("secret") == b"s"
        assert sorted(os.listdir(root)) == ["secret"]
    finally:
        server.close()


def _read_to_close(sock) -> bytes:
    answer = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return answer
        answer += data


def test_a_body_that_ends_early_leaves_nothing(server, tmp_path):
    root = tmp_path / "root"
    host, port = server.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(b"PUT /files/partial HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n"
                     + b"x" * 1000)
        sock.shutdown(socket.SHUT_WR)
        answer = _read_to_close(sock)
    assert answer.startswith(b"HTTP/1.1 400") and b"early" in answer
    assert os.listdir(root) == []


def test_a_download_to_a_local_path_leaves_nothing_on_a_server_error(fs, tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(FileNotFoundError):
        fs.download_file("missing", str(target))
    assert not target.exists() and [p for p in os.listdir(tmp_path) if p.startswith(".out")] == []


@pytest.mark.limit(300)
def test_200_mib_up_and_down_grow_neither_side_by_64_mib(tmp_path):
    from files_memory import BOUND, measure
    growth = measure(tmp_path)
    assert growth["client"] < BOUND and growth["server"] < BOUND, growth


def test_a_stalled_upload_is_dropped_and_leaves_nothing(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    server = ThreadServer(str(root), io_timeout=0.5)
    try:
        host, port = server.url.split("//")[1].split(":")
        with socket.create_connection((host, int(port)), timeout=20) as sock:
            sock.sendall(b"PUT /files/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
            answer = _read_to_close(sock)
            assert answer.startswith(b"HTTP/1.1 408") and b"stalled" in answer
            assert os.listdir(root) == []
        status, _, _ = _request(server, "PUT", "/files/x", b"", {"Transfer-Encoding": "chunked"})
        assert status == 411
    finally:
        server.close()


def _broken_server(response: bytes):
    """A socket that answers one request with ``response``, then closes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(response)
        listener.close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return "http://127.0.0.1:%d" % listener.getsockname()[1], thread


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_a_download_cut_short_is_a_connection_error_and_leaves_no_local_file(twin, tmp_path):
    url, thread = _broken_server(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                 b"Content-Length: 1000000\r\n\r\n" + b"x" * 5000)
    target = tmp_path / "out.bin"
    if twin == "sync":
        client = RemoteCodeInterpreter(url, io_timeout=10, delete_on_close=False)
        with pytest.raises(ConnectionLostError):
            client.fs.download_file("f", str(target))
        client.close()
    else:
        async def main():
            async with AsyncRemoteCodeInterpreter(url, io_timeout=10, delete_on_close=False) as client:
                with pytest.raises(ConnectionLostError):
                    await client.fs.download_file("f", str(target))
        asyncio.run(main())
    thread.join(10)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_an_upload_goes_ahead_when_no_100_continue_comes(twin):
    """A proxy may not pass ``Expect: 100-continue`` on: after a bound
    (EXPECT_WAIT) the body is sent anyway, as curl does."""
    listener = socket.create_server(("127.0.0.1", 0))
    received = {}

    def serve():
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = _content_length(head)
            while len(body) < length:
                body += conn.recv(65536)
            received.update(head=head, body=body)
            answer = b'{"path": "x", "size": %d}' % length
            conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer))
        listener.close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = "http://127.0.0.1:%d" % listener.getsockname()[1]
    data = os.urandom(300_000)
    if twin == "sync":
        with RemoteCodeInterpreter(url, io_timeout=10, delete_on_close=False) as client:
            client.fs.upload_file(data, "x")
    else:
        async def main():
            async with AsyncRemoteCodeInterpreter(url, io_timeout=10, delete_on_close=False) as client:
                await client.fs.upload_file(data, "x")
        asyncio.run(main())
    thread.join(10)
    assert received["body"] == data and b"Expect: 100-continue" in received["head"]


EMPTY_LIST = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"


def _scripted_server(handle):
    """A server calling ``handle(conn, head)`` for each request head, a thread
    per connection; returns its url and the list of connections it accepted."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)  # what a client sends soon waits
    accepted = []

    def serve(conn):
        with conn:
            data = b""
            try:
                while True:
                    while b"\r\n\r\n" not in data:
                        more = conn.recv(65536)
                        if not more:
                            return
                        data += more
                    head, _, data = data.partition(b"\r\n\r\n")
                    if handle(conn, head) is False:
                        return
            except OSError:  # the client reset the connection: its right
                return

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    return listener, "http://127.0.0.1:%d" % listener.getsockname()[1], accepted


def _both_twins(twin, url, script):
    """Run ``script(client)`` (a coroutine function for the async twin) on a client of ``url``."""
    if twin == "sync":
        with RemoteCodeInterpreter(url, io_timeout=30, delete_on_close=False) as client:
            return script(client)

    async def main():
        async with AsyncRemoteCodeInterpreter(url, io_timeout=30, delete_on_close=False) as client:
            return await script(client)
    return asyncio.run(main())


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_an_answer_in_the_middle_of_an_upload_is_the_error_raised(twin):
    """A server may refuse a body once it has seen part of it (a quota, a
    proxy's limit), answer and close: the answer is the error, not the
    broken connection it leaves (whose reset may come before it is read)."""
    def handle(conn, head):
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        got = 0
        while got < 200_000:
            got += len(conn.recv(65536))
        message = b'{"message": "over quota"}'
        conn.sendall(b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(message), message))
        time.sleep(0.2)  # the client gets the answer, then a reset for the bytes left unread
        return False
    listener, url, _ = _scripted_server(handle)
    data = b"x" * (20 << 20)

    def sync_script(client):
        with pytest.raises(RemoteServerError) as caught:
            client.fs.upload_file(data, "x")
        return caught.value

    async def async_script(client):
        with pytest.raises(RemoteServerError) as caught:
            await client.fs.upload_file(data, "x")
        return caught.value
    try:
        error = _both_twins(twin, url, sync_script if twin == "sync" else async_script)
    finally:
        listener.close()
    assert error.status == 413 and "over quota" in str(error)


@pytest.mark.parametrize("twin", ["sync", "async"])
@pytest.mark.parametrize("pause", [0, 0.5], ids=["at-once", "while-sending-blocks"])
def test_an_answer_before_the_body_ends_stops_the_upload_and_retires_its_connection(twin, pause):
    """A server that refuses a body part way (and keeps the connection open,
    no longer reading) is answered at once, not after io_timeout, and the
    connection, the rest of the body unsent, is never used again. With a
    pause, the answer comes while the client waits to send more."""
    def handle(conn, head):
        if not head.startswith(b"PUT"):
            conn.sendall(EMPTY_LIST)
            return True
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        got = 0
        while got < 100_000:
            got += len(conn.recv(65536))
        time.sleep(pause)
        message = b'{"message": "over quota"}'
        conn.sendall(b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(message), message))
        release.wait(25)  # open, reading nothing more
        return False
    release = threading.Event()
    listener, url, accepted = _scripted_server(handle)
    data = b"x" * (16 << 20)

    def sync_script(client):
        started = time.monotonic()
        with pytest.raises(RemoteServerError) as caught:
            client.fs.upload_file(data, "x")
        return caught.value, time.monotonic() - started, client.list_contexts()

    async def async_script(client):
        started = time.monotonic()
        with pytest.raises(RemoteServerError) as caught:
            await client.fs.upload_file(data, "x")
        return caught.value, time.monotonic() - started, await client.list_contexts()
    try:
        error, took, listed = _both_twins(twin, url, sync_script if twin == "sync" else async_script)
    finally:
        release.set()
        listener.close()
    assert error.status == 413 and "over quota" in str(error)
    assert took < 20  # io_timeout is 30 s
    assert listed == [] and len(accepted) == 2


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_bytes_an_idle_kept_alive_connection_got_are_not_the_next_answer(twin):
    """A proxy may say 408 on an idle connection before it closes it: the
    next request goes on a new connection, not answered by that."""
    def handle(conn, head):
        conn.sendall(EMPTY_LIST)
        if len(accepted) == 1:
            time.sleep(0.05)
            message = b'{"message": "idle too long"}'
            conn.sendall(b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(message), message))
            time.sleep(1)
            return False
        return True
    listener, url, accepted = _scripted_server(handle)

    def sync_script(client):
        client.list_contexts()
        time.sleep(0.3)
        return client.list_contexts()

    async def async_script(client):
        await client.list_contexts()
        await asyncio.sleep(0.3)
        return await client.list_contexts()
    try:
        assert _both_twins(twin, url, sync_script if twin == "sync" else async_script) == []
    finally:
        listener.close()
    assert len(accepted) == 2


def _content_length(head):
    return int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))


CREATED = (b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n"
           b'{"path": "x", "size": 10}')


@pytest.mark.parametrize("twin", ["sync", "async"])
@pytest.mark.parametrize("early", [b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n", CREATED],
                         ids=["interim", "success"])
def test_an_interim_or_successful_answer_before_the_body_ends_does_not_stop_it(twin, early):
    """Only a refusal ends an upload early: another 1xx (a proxy's 103) or
    a success the server sends while it goes on reading leaves the body
    to be sent whole, and the connection kept alive."""
    received = []

    def handle(conn, head):
        if not head.startswith(b"PUT"):
            conn.sendall(EMPTY_LIST)
            return True
        length = _content_length(head)
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        got = 0
        while got < 1 << 20:
            got += len(conn.recv(min(65536, length - got)))
        conn.sendall(early)  # then goes on reading
        while got < length:
            got += len(conn.recv(min(65536, length - got)))
        received.append(got)
        if early.startswith(b"HTTP/1.1 1"):
            conn.sendall(CREATED)
        return True
    listener, url, accepted = _scripted_server(handle)
    data = os.urandom(8 << 20)

    def sync_script(client):
        client.fs.upload_file(data, "x")
        return client.list_contexts()

    async def async_script(client):
        await client.fs.upload_file(data, "x")
        return await client.list_contexts()
    try:
        assert _both_twins(twin, url, sync_script if twin == "sync" else async_script) == []
    finally:
        listener.close()
    assert received == [len(data)] and len(accepted) == 1


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_uploads_to_a_quick_server_keep_their_connection(twin):
    """A server that answers the moment the body's last byte is in: the
    upload is whole, and the next one goes on the same connection."""
    def handle(conn, head):
        length = _content_length(head)
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        got = 0
        while got < length:
            got += len(conn.recv(min(65536, length - got)))
        conn.sendall(CREATED)
        return True
    listener, url, accepted = _scripted_server(handle)
    data = b"x" * (1 << 20)  # one chunk exactly

    def sync_script(client):
        for _ in range(20):
            client.fs.upload_file(data, "x")

    async def async_script(client):
        for _ in range(20):
            await client.fs.upload_file(data, "x")
    try:
        _both_twins(twin, url, sync_script if twin == "sync" else async_script)
    finally:
        listener.close()
    assert len(accepted) == 1
