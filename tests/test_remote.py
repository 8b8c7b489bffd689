"""The remote client and the HTTP API it needs (issue 15): real servers,
real sockets. Hostile servers are raw sockets that send what a broken or
malicious server would; the client must raise a clear RemoteError and bound
what it reads."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import ssl
import threading
import time

import pytest

from interp import (AsyncRemoteCodeInterpreter, ConnectionLostError, ContextNotFoundError, InterpTimeoutError,
                    RemoteCodeInterpreter, RemoteProtocolError, RemoteServerError, ServerUnreachableError)
from remote_helpers import ProcessServer, ThreadServer, make_certificate


@pytest.fixture(params=["http", "https"])
def server(request, tmp_path, monkeypatch):
    """A server over plain HTTP, then the same over TLS (its certificate
    trusted as the system's CAs are, so clients verify it by default)."""
    certificate = None
    if request.param == "https":
        certificate = make_certificate(str(tmp_path))
        monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    srv = ThreadServer(str(tmp_path), certificate)
    try:
        yield srv
    finally:
        srv.close()


def _raw(url: str, method: str, path: str, body=None, headers=None):
    scheme, _, address = url.partition("://")
    host, port = address.split(":")
    if scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, int(port), timeout=10, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=dict({"Content-Type": "application/json"} if data else {},
                                                           **(headers or {})))
        response = conn.getresponse()
        payload = response.read()
        return response.status, (json.loads(payload) if payload and payload[:1] in b"[{" else payload)
    finally:
        conn.close()


# -- the API over real servers ---------------------------------------------------------------


def test_contexts_have_client_chosen_ids_and_every_operation_is_addressed_by_path(server, tmp_path):
    status, context = _raw(server.url, "PUT", "/contexts/my-ctx.1", {"cwd": str(tmp_path)})
    assert status == 201 and context["id"] == "my-ctx.1" and context["cwd"] == str(tmp_path)
    assert _raw(server.url, "PUT", "/contexts/my-ctx.1", {})[0] == 409
    assert _raw(server.url, "PUT", "/contexts/default", {})[0] == 409
    status, error = _raw(server.url, "PUT", "/contexts/bad%20id", {})
    assert status == 400 and "invalid context id" in error["message"]
    assert _raw(server.url, "PUT", "/contexts/" + "x" * 129, {})[0] == 400
    with RemoteCodeInterpreter(server.url, delete_on_close=False) as ci:
        ci.run_code("value = 41", context="my-ctx.1")
        assert ci.run_code("value + 1", context="my-ctx.1").text == "42"
        assert ci.complete("val", context="my-ctx.1") == ["value"]
        assert [c.id for c in ci.list_contexts()] == ["my-ctx.1"]
        assert ci.restart_context("my-ctx.1").id == "my-ctx.1"
        ci.delete_context("my-ctx.1")
        with pytest.raises(ContextNotFoundError, match=r"my-ctx\.1"):
            ci.run_code("1", context="my-ctx.1")
        with pytest.raises(ContextNotFoundError, match="not a valid id"):
            ci.run_code("1", context="no such id")


def test_new_routes_keep_the_browser_and_body_rules(server):
    _raw(server.url, "PUT", "/contexts/c1", {})
    status, error = _raw(server.url, "POST", "/contexts/c1/execute", {"code": "1"},
                         {"Origin": "http://evil.example"})
    assert status == 403 and "cross-origin" in error["message"]
    status, _ = _raw(server.url, "POST", "/contexts/c1/execute", None,
                     {"Content-Type": "text/plain", "Content-Length": "10"})
    assert status in (400, 415)
    assert _raw(server.url, "POST", "/contexts/c1/input", {"request": 1, "value": "x"})[0] == 409
    assert _raw(server.url, "POST", "/contexts/c1/input", {"request": 1})[0] == 400
    assert _raw(server.url, "GET", "/contexts/c1/execute")[0] == 405
    assert _raw(server.url, "POST", "/contexts/c1/complete", {"code": "x", "cursor": 9})[0] == 400


def test_token_is_sent_and_a_wrong_one_is_a_clear_error(tmp_path):
    srv = ThreadServer(str(tmp_path), token="s3cret")
    try:
        with RemoteCodeInterpreter(srv.url, "s3cret") as ci:
            assert ci.run_code("print(1)").stdout == "1\n"
        with RemoteCodeInterpreter(srv.url, "wrong") as ci:
            with pytest.raises(RemoteServerError) as info:
                ci.run_code("1")
            assert info.value.status == 401
    finally:
        srv.close()


def test_max_contexts_is_a_clear_503(tmp_path):
    srv = ThreadServer(str(tmp_path), max_contexts=2)
    try:
        with RemoteCodeInterpreter(srv.url) as ci:
            ci.create_context()
            ci.create_context()
            with pytest.raises(RemoteServerError, match="maximum of 2 contexts") as info:
                ci.create_context()
            assert info.value.status == 503
            ci.run_code("1")  # the default context does not count
    finally:
        srv.close()


def test_idle_contexts_are_deleted_and_later_requests_say_so(tmp_path):
    srv = ThreadServer(str(tmp_path), idle_timeout=0.5)
    try:
        with RemoteCodeInterpreter(srv.url) as ci:
            idle, busy = ci.create_context(), ci.create_context()
            ci.run_code("import time\ntime.sleep(2.5)", context=busy)  # in use: not deleted meanwhile
            ci.run_code("1", context=busy)
            with pytest.raises(ContextNotFoundError, match="without use"):
                ci.run_code("1", context=idle)
            metrics = _raw(srv.url, "GET", "/metrics")[1].decode()
            assert "interp_contexts_expired_total 1" in metrics
    finally:
        srv.close()


def test_metrics_count_runs_timeouts_deaths_and_bytes(server):
    with RemoteCodeInterpreter(server.url) as ci:
        ci.create_context()
        ci.run_code("print('x')")
        ci.run_code("1/0")
        with pytest.raises(InterpTimeoutError):
            ci.run_code("import time\ntime.sleep(5)", timeout=0.3)
        with pytest.raises(Exception, match="died"):
            ci.run_code("import os\nos._exit(3)")
        status, text = _raw(server.url, "GET", "/metrics")
    values = dict(line.rsplit(" ", 1) for line in text.decode().splitlines() if not line.startswith("#"))
    assert status == 200 and values["interp_contexts"] == "1"
    assert values['interp_runs_total{outcome="ok"}'] == "1" and values['interp_runs_total{outcome="error"}'] == "1"
    assert values["interp_timeouts_total"] == "1" and values["interp_worker_deaths_total"] == "1"
    assert values["interp_run_duration_seconds_count"] == "4"
    assert int(values["interp_http_response_bytes_total"]) > 100


def test_input_round_trips_over_http_and_a_stale_answer_is_dropped(server):
    with RemoteCodeInterpreter(server.url) as ci:
        prompts = []
        result = ci.run_code("a = input('one? ')\nb = input('two? ')\nprint(a + b)",
                             on_input=lambda prompt: prompts.append(prompt) or prompt.upper())
        assert prompts == ["one? ", "two? "] and result.stdout == "ONE? TWO? \n"


def test_connections_are_kept_alive_and_reused(server):
    with RemoteCodeInterpreter(server.url) as ci:
        for _ in range(20):
            ci.run_code("1")
            ci.list_contexts()
        assert len(ci._pool._idle) == 1


# -- the network failing ----------------------------------------------------------------


def test_an_unreachable_server(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there
    ci = RemoteCodeInterpreter("http://127.0.0.1:%d" % port)
    with pytest.raises(ServerUnreachableError, match="nothing was sent"):
        ci.run_code("1")
    ci.close()


@pytest.mark.limit(90)
def test_a_server_that_dies_mid_stream(tmp_path):
    srv = ProcessServer(str(tmp_path / "serve.log"))
    try:
        ci = RemoteCodeInterpreter(srv.url)
        with pytest.raises(ConnectionLostError) as info:
            ci.run_code("import time\nprint('a', flush=True)\ntime.sleep(30)",
                        on_stdout=lambda message: srv.kill())
        assert info.value.may_be_running and info.value.result.stdout == "a\n"
        assert "may still be going on" in str(info.value)
        with pytest.raises(ServerUnreachableError):
            ci.run_code("1")
        ci.close()
    finally:
        srv.stop()


class Relay:
    """A TCP relay to a real server that drops both sides after ``limit``
    bytes of response (a proxy that loses the connection)."""

    def __init__(self, target_port: int, limit: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.target_port, self.limit = target_port, limit
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        client, _ = self.listener.accept()
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        with client, upstream:
            client.settimeout(10)
            upstream.settimeout(10)
            upstream.sendall(client.recv(65536))
            passed = 0
            while passed < self.limit:
                data = upstream.recv(min(65536, self.limit - passed))
                if not data:
                    break
                client.sendall(data)
                passed += len(data)

    def close(self) -> None:
        self.thread.join(10)
        self.listener.close()


def test_a_proxy_that_drops_the_connection(server):
    relay = Relay(server.server.port, 150)  # the head and a little of the stream
    try:
        ci = RemoteCodeInterpreter(relay.url)
        with pytest.raises(ConnectionLostError) as info:
            ci.run_code("import time\nfor i in range(5):\n    print(i, flush=True)\n    time.sleep(0.1)")
        assert info.value.may_be_running
        ci.close()
    finally:
        relay.close()


class HostileServer:
    """Answers every request with ``answer(sock)`` (a function that writes)."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.url = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            with sock:
                sock.settimeout(10)
                try:
                    sock.recv(65536)
                    self.answer(sock, self.stop)
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.listener.close()


STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"


def _chunk(data: bytes) -> bytes:
    return b"%X\r\n%s\r\n" % (len(data), data)


def _endless(sock, stop) -> None:
    sock.sendall(STREAM_HEAD)
    line = _chunk(b'{"type": "stdout", "text": "more\\n"}\n')
    while not stop.is_set():
        sock.sendall(line * 100)
        time.sleep(0.01)


def _slow(sock, stop) -> None:
    stop.wait(20)


def _huge(sock, stop) -> None:
    sock.sendall(STREAM_HEAD)
    piece = _chunk(b"x" * 65536)
    while not stop.is_set():
        sock.sendall(piece)


HOSTILE = {
    "garbage": (lambda sock, stop: sock.sendall(b"hello there\r\n\r\n"), RemoteProtocolError, "not HTTP"),
    "huge-head": (lambda sock, stop: sock.sendall(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000),
                  RemoteProtocolError, "head exceeds"),
    "bad-chunk": (lambda sock, stop: sock.sendall(STREAM_HEAD + b"zz\r\n"), RemoteProtocolError, "chunk size"),
    "deep-json": (lambda sock, stop: sock.sendall(STREAM_HEAD + _chunk(b"[" * 100000 + b"\n")),
                  RemoteProtocolError, "nests"),
    "not-an-event": (lambda sock, stop: sock.sendall(STREAM_HEAD + _chunk(b"[1, 2]\n")), RemoteProtocolError,
                     "'type'"),
    "bad-field": (lambda sock, stop: sock.sendall(STREAM_HEAD + _chunk(b'{"type": "stdout", "text": 7}\n')),
                  RemoteProtocolError, "'text'"),
    "huge-event": (_huge, RemoteProtocolError, "an event of more than"),
    "endless-stream": (_endless, ConnectionLostError, "io_timeout"),
    "silent": (_slow, ConnectionLostError, "io_timeout"),
    "cut-short": (lambda sock, stop: sock.sendall(STREAM_HEAD + _chunk(b'{"type": "stdout", "text": "a\\n"}\n')),
                  ConnectionLostError, "closed"),
    "ends-without-final": (lambda sock, stop: sock.sendall(STREAM_HEAD + b"0\r\n\r\n"), ConnectionLostError,
                           "without saying"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_server_gets_a_clear_error_and_bounded_reads(name):
    answer, error, words = HOSTILE[name]
    hostile = HostileServer(answer)
    try:
        ci = RemoteCodeInterpreter(hostile.url, io_timeout=1, max_event=1024 * 1024)
        started = time.monotonic()
        with pytest.raises(error, match=words) as info:
            ci.run_code("1", timeout=1)
        assert time.monotonic() - started < 20
        assert info.value.result is not None
        if name == "endless-stream":
            assert info.value.result.stdout.startswith("more\n")
        ci.close()
        ci = RemoteCodeInterpreter(hostile.url, io_timeout=1, max_event=1024 * 1024)
        with pytest.raises((RemoteProtocolError, ConnectionLostError, RemoteServerError)):
            ci.list_contexts()  # plain calls are bounded too
        ci.close()
    finally:
        hostile.close()


# -- the asyncio twin ---------------------------------------------------------------------


def test_the_async_twin(server):
    async def main():
        async with AsyncRemoteCodeInterpreter(server.url) as ci:
            lines = []

            async def on_stdout(message):
                lines.append(message.output)

            contexts = [await ci.create_context() for _ in range(3)]
            results = await asyncio.gather(*(
                ci.run_code("import time\ntime.sleep(0.3)\nprint(%d)" % i, context=ctx, on_stdout=on_stdout)
                for i, ctx in enumerate(contexts)))
            assert [r.stdout for r in results] == ["0\n", "1\n", "2\n"] and sorted(lines) == ["0\n", "1\n", "2\n"]

            async def answer(prompt):
                return "async " + prompt

            assert (await ci.run_code("print(input('hi'))", on_input=answer)).stdout == "async hi\n"
            await ci.run_code("kept = 1", context=contexts[0])
            task = asyncio.ensure_future(ci.run_code("import time\ntime.sleep(30)", context=contexts[0]))
            await asyncio.sleep(0.5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await ci.run_code("print(kept)", context=contexts[0])).stdout == "1\n"
            with pytest.raises(InterpTimeoutError):
                await ci.run_code("import time\ntime.sleep(5)", timeout=0.3)
            assert await ci.complete("kep", context=contexts[0]) == ["kept"]
            await ci.delete_context(contexts[2])
            assert len(await ci.list_contexts()) == 2
        assert _raw(server.url, "GET", "/contexts")[1] == []  # close deleted what it created

    asyncio.run(main())


def test_the_async_twin_against_a_hostile_server():
    hostile = HostileServer(HOSTILE["deep-json"][0])
    try:
        async def main():
            ci = AsyncRemoteCodeInterpreter(hostile.url, io_timeout=1)
            with pytest.raises(RemoteProtocolError, match="nests"):
                await ci.run_code("1")
            await ci.close()
        asyncio.run(main())
    finally:
        hostile.close()


def test_round_trip_is_measured(server, capsys):
    """Remote round trip beside local, in the same run (printed, not asserted)."""
    from interp import CodeInterpreter

    with CodeInterpreter() as local, RemoteCodeInterpreter(server.url) as remote:
        timings = {}
        for name, ci in (("local", local), ("remote", remote)):
            ci.run_code("1")
            started = time.perf_counter()
            for _ in range(100):
                ci.run_code("1")
            timings[name] = (time.perf_counter() - started) / 100
    with capsys.disabled():
        print("\nround trip: local %.2f ms, remote %.2f ms (%.1fx)" % (
            timings["local"] * 1e3, timings["remote"] * 1e3, timings["remote"] / timings["local"]))
    assert os.getpid()


def test_a_non_ascii_token_goes_as_utf8_from_both_twins(tmp_path):
    """Both twins write their heads with the shared HTTP/1.1 writer; a token
    is sent as its UTF-8 bytes, which the server compares."""
    token = "tökén-秘密"
    server = ThreadServer(str(tmp_path), token=token)
    try:
        with RemoteCodeInterpreter(server.url, token=token) as ci:
            assert ci.run_code("print(6 * 7)").stdout == "42\n"
            ci.fs.upload_file(b"abc", "t.txt")  # the file transfers' heads too
            assert ci.fs.download_file("t.txt") == b"abc"

        async def main() -> str:
            async with AsyncRemoteCodeInterpreter(server.url, token=token) as aci:
                return (await aci.run_code("print(7)")).stdout
        assert asyncio.run(main()) == "7\n"
        with RemoteCodeInterpreter(server.url, token="tokén-秘密") as wrong:
            with pytest.raises(RemoteServerError) as caught:
                wrong.run_code("1")
            assert caught.value.status == 401
    finally:
        server.close()
