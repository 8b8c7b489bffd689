"""TLS (issue 21): ``serve --tls-cert FILE --tls-key FILE`` and the remote
twins over https://, verified against the system's CAs or ``ssl_context``,
with a certificate made in the test. tests/test_remote.py runs its servers
over https as well."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time

import pytest
from helpers import wait_until
from remote_helpers import ROOT, ThreadServer, make_certificate

from interp import AsyncRemoteCodeInterpreter, RemoteCodeInterpreter, ServerUnreachableError
from interp.errors import ConnectionLostError, RemoteProtocolError, RemoteServerError


@pytest.fixture
def certificate(tmp_path):
    return make_certificate(str(tmp_path))


@pytest.fixture
def server(tmp_path, certificate):
    srv = ThreadServer(str(tmp_path), certificate)
    yield srv
    srv.close()


def _https(server, certificate) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", server.server.port, timeout=30,
                                       context=ssl.create_default_context(cafile=certificate[0]))


def test_both_twins_with_a_private_ca(server, certificate):
    context = ssl.create_default_context(cafile=certificate[0])
    with RemoteCodeInterpreter(server.url, ssl_context=context) as ci:
        lines = []
        ci.run_code("x = 41")
        result = ci.run_code("for i in range(3):\n    print(i)\nx + 1", on_stdout=lambda m: lines.append(m.output))
        assert lines == ["0\n", "1\n", "2\n"] and result.text == "42"
        ctx = ci.create_context()
        assert ci.run_code("print(input('? '))", context=ctx, on_input=lambda prompt: "typed").stdout == "typed\n"
        big = ci.run_code("print('y' * 3_000_000)").stdout  # many TLS records, in pieces
        assert len(big) == 3_000_001

    async def main():
        async with AsyncRemoteCodeInterpreter(server.url, ssl_context=context) as aci:
            assert (await aci.run_code("print(x)")).stdout == "41\n"
    asyncio.run(main())


def test_verification_is_on_by_default(server):
    with RemoteCodeInterpreter(server.url) as ci:  # a self-signed certificate no system CA signed
        with pytest.raises(ServerUnreachableError, match="CERTIFICATE_VERIFY_FAILED"):
            ci.run_code("1")

    async def main():
        aci = AsyncRemoteCodeInterpreter(server.url)
        with pytest.raises(ServerUnreachableError, match="CERTIFICATE_VERIFY_FAILED"):
            await aci.run_code("1")
        await aci.close()
    asyncio.run(main())


def test_the_host_name_is_checked(tmp_path):
    other = make_certificate(str(tmp_path), "DNS:elsewhere.invalid")  # trusted, but not for 127.0.0.1
    srv = ThreadServer(str(tmp_path), other)
    try:
        with RemoteCodeInterpreter(srv.url, ssl_context=ssl.create_default_context(cafile=other[0])) as ci:
            with pytest.raises(ServerUnreachableError, match="match"):
                ci.run_code("1")
    finally:
        srv.close()


def test_options_that_do_not_go_together():
    with pytest.raises(ValueError, match="https"):
        RemoteCodeInterpreter("http://127.0.0.1:1", ssl_context=ssl.create_default_context())
    with pytest.raises(TypeError, match="SSLContext"):
        RemoteCodeInterpreter("https://127.0.0.1:1", ssl_context="yes")  # type: ignore[arg-type]


def test_plain_http_to_an_https_server_fails_cleanly_and_harms_nobody(server, certificate):
    with RemoteCodeInterpreter(server.url.replace("https", "http"), io_timeout=3) as plain:
        with pytest.raises((RemoteProtocolError, ConnectionLostError)):
            plain.run_code("1")
    with RemoteCodeInterpreter(server.url, ssl_context=ssl.create_default_context(cafile=certificate[0])) as ci:
        assert ci.run_code("print('fine')").stdout == "fine\n"


def test_clients_that_never_finish_the_handshake_hold_no_one_up(tmp_path, certificate):
    srv = ThreadServer(str(tmp_path), certificate, header_timeout=1)
    idle = [socket.create_connection(("127.0.0.1", srv.server.port), timeout=10) for _ in range(30)]
    try:
        idle[0].sendall(b"\x16\x03\x01\x00")  # the start of a ClientHello, then silence
        context = ssl.create_default_context(cafile=certificate[0])
        with RemoteCodeInterpreter(srv.url, ssl_context=context) as ci:
            assert ci.run_code("print('served')").stdout == "served\n"
        for sock in idle[:5]:  # each is closed once its head deadline passed
            sock.settimeout(15)
            assert sock.recv(100) == b""
    finally:
        for sock in idle:
            sock.close()
        srv.close()


def test_a_client_leaving_mid_stream_stops_its_run(server, certificate):
    context = ssl.create_default_context(cafile=certificate[0])
    with RemoteCodeInterpreter(server.url, ssl_context=context) as ci:
        ctx = ci.create_context()
        conn = _https(server, certificate)
        code = "import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.05)\n"
        conn.request("POST", "/contexts/%s/execute" % ctx.id, body=json.dumps({"code": code}),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert json.loads(response.readline())["type"] == "stdout"
        conn.close()
        started = time.monotonic()
        # the run was stopped: the context answers again well before the 30 s it would take
        assert ci.run_code("print('next')", context=ctx, timeout=60).stdout == "next\n"
        assert time.monotonic() - started < 20


def test_mcp_over_tls(server, certificate):
    conn = _https(server, certificate)
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "run_code", "arguments": {"code": "print(6 * 7)"}}}
    conn.request("POST", "/mcp", body=json.dumps(call), headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25", "Origin": "https://127.0.0.1:%d" % server.server.port})
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    assert response.status == 200 and body["id"] == 7
    assert body["result"]["structuredContent"]["stdout"] == "42\n"


def _serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "interp", "serve", "--port", "0", *args], cwd=ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def test_serve_command_line(tmp_path, certificate):
    cert, key = certificate
    other_key = tmp_path / "other.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-out", str(other_key)], check=True, capture_output=True, timeout=60)
    for args, words in ((["--tls-cert", cert], "go together"),
                        (["--tls-cert", cert, "--tls-key", str(tmp_path / "missing.pem")], "cannot read"),
                        (["--tls-cert", cert, "--tls-key", str(other_key)], "not a matching")):
        proc = _serve(*args)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and words in proc.stderr, proc.stderr
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "interp", "serve", "--port", "0", "--quiet",
                                 "--tls-cert", cert, "--tls-key", key], cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out)
    try:
        assert wait_until(lambda: "listening on https://127.0.0.1:" in log.read_text(), 20), log.read_text()
        port = int(log.read_text().split("https://127.0.0.1:")[1].split()[0])
        url = "https://127.0.0.1:%d" % port
        with RemoteCodeInterpreter(url, ssl_context=ssl.create_default_context(cafile=cert)) as ci:
            assert ci.run_code("print('over tls')").stdout == "over tls\n"
        time.sleep(0.3)  # the server sees the client's connection end
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
    assert "Traceback" not in log.read_text()
    assert "has no effect" not in log.read_text()  # asyncio's warning for each TLS client that closed


def _tls_socket(server, certificate, rcvbuf: int = 0) -> ssl.SSLSocket:
    raw = socket.socket()
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(30)
    raw.connect(("127.0.0.1", server.server.port))
    return ssl.create_default_context(cafile=certificate[0]).wrap_socket(raw, server_hostname="127.0.0.1")


def _post(path: str, body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (path.encode(), len(data))) + data


def test_a_tls_client_that_stops_reading_cannot_hold_its_run(tmp_path, certificate):
    srv = ThreadServer(str(tmp_path), certificate, io_timeout=1)
    context = ssl.create_default_context(cafile=certificate[0])
    marker = tmp_path / "stopped"
    code = ("import sys\ntry:\n    while True:\n        sys.stdout.write('x' * 9999 + '\\n')\n"
            "except KeyboardInterrupt:\n    open(%r, 'w').close()\n    raise" % str(marker))
    try:
        with RemoteCodeInterpreter(srv.url, ssl_context=context) as ci:
            ctx = ci.create_context()
            sock = _tls_socket(srv, certificate, rcvbuf=4096)
            try:  # no timeout: only the client's failure to read can stop this run
                sock.sendall(_post("/contexts/%s/execute" % ctx.id, {"code": code, "timeout": 0}))
                assert wait_until(marker.exists, 40), "the run went on although its TLS client read nothing"
                assert ci.run_code("print('next')", context=ctx).stdout == "next\n"
            finally:
                sock.close()
    finally:
        srv.close()


def test_pipelined_tls_requests_are_answered_in_order(server, certificate):
    sock = _tls_socket(server, certificate)
    try:
        sock.sendall(b"".join(_post("/execute", {"code": "print(%d)" % i}) for i in range(20)))
        received = b""
        while received.count(b'"type": "end"') < 20:
            piece = sock.recv(65536)
            assert piece, received[-200:]
            received += piece
    finally:
        sock.close()
    numbers = [json.loads(line)["text"] for line in received.decode().splitlines()
               if line.startswith('{"type": "stdout"')]
    assert numbers == ["%d\n" % i for i in range(20)]


def test_uploads_over_tls_keep_their_connection_and_a_refusal_ends_one(tmp_path, certificate):
    """Uploads of many chunks over TLS go whole on one kept-alive connection
    (records the server sends unasked are no answer), and one past the
    server's limit ends with its 413, for both twins."""
    root = tmp_path / "root"
    root.mkdir()
    srv = ThreadServer(str(root), certificate, max_upload=3 << 20)
    context = ssl.create_default_context(cafile=certificate[0])
    data = os.urandom((2 << 20) + 12345)
    try:
        with RemoteCodeInterpreter(srv.url, ssl_context=context) as ci:
            for name in ("a", "b", "c"):
                ci.fs.upload_file(data, name)
            assert len(ci._pool._idle) == 1
            with pytest.raises(RemoteServerError) as caught:
                ci.fs.upload_file(data * 2, "too-big")
            assert caught.value.status == 413

        async def main():
            async with AsyncRemoteCodeInterpreter(srv.url, ssl_context=context) as aci:
                for name in ("d", "e"):
                    await aci.fs.upload_file(data, name)
                assert len(aci._pool._idle) == 1
                with pytest.raises(RemoteServerError) as caught:
                    await aci.fs.upload_file(data * 2, "too-big")
                assert caught.value.status == 413
        asyncio.run(main())
        assert sorted(os.listdir(root)) == ["a", "b", "c", "d", "e"]
        assert (root / "e").read_bytes() == data
    finally:
        srv.close()
