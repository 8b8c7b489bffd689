"""The remote figures of issue 20, beside floors measured in the same run.

``remote``: a remote ``run_code('x=1')`` round trip over loopback keep-alive
against (the local round trip + a minimal asyncio HTTP echo answering a
request of the same size, driven by ``http.client``); then a soak: 1,000 idle
keep-alive connections and 50 concurrent streaming runs held by one server,
with the server's threads and RSS before, under load and after. The server
and the echo each run in their own process, as a deployment would.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from typing import List, Tuple

from interp import CodeInterpreter, RemoteCodeInterpreter

from .common import PYTHON, Figure, Results, Settings, Target, chunks, smaps_rollup, thread_count, timed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The floor's server: asyncio streams, HTTP/1.1 keep-alive, Content-Length
#: bodies, one small NDJSON answer per request: what an HTTP hop costs at least.
ECHO_SERVER = r"""
import asyncio, sys

ANSWER = b'{"type": "end", "execution_count": 1}\n'
HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n"
        % len(ANSWER))

async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            writer.write(HEAD + ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


class _Process:
    """A child process that prints the port it listens on."""

    def __init__(self, argv: List[str], pattern: str) -> None:
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=ROOT))
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        while True:
            line = self.proc.stdout.readline().decode(errors="replace")
            match = re.search(pattern, line)
            if match:
                self.port = int(match.group(1))
                break
            if not line or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("%s did not start: %r" % (argv, line))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


def _serve() -> _Process:
    return _Process([PYTHON, "-m", "interp", "serve", "--port", "0", "--quiet", "--max-connections", "2000"],
                    r"listening on http://127\.0\.0\.1:(\d+)")


def remote(results: Results, settings: Settings, peer) -> None:
    _round_trip(results, settings)
    _soak(results, settings)


def _round_trip(results: Results, settings: Settings) -> None:
    n = settings.count(1000, 200, minimum=10)
    echo_s: List[float] = []
    local_s: List[float] = []
    remote_s: List[float] = []
    echo = _Process([PYTHON, "-c", ECHO_SERVER], r"^(\d+)")
    server = _serve()
    body = json.dumps({"code": "x=1"}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", echo.port, timeout=30)

    def echo_once() -> None:
        conn.request("POST", "/contexts/default/execute", body=body, headers={"Content-Type": "application/json"})
        conn.getresponse().read()

    try:
        with CodeInterpreter() as ci, RemoteCodeInterpreter("http://127.0.0.1:%d" % server.port) as rci:
            for fn in (echo_once, lambda: ci.run_code("x=1"), lambda: rci.run_code("x=1")):
                timed(fn, min(50, n))  # warm: connections, contexts, caches
            for block in chunks(n, 10):
                echo_s += timed(echo_once, block)
                local_s += timed(lambda: ci.run_code("x=1"), block)
                remote_s += timed(lambda: rci.run_code("x=1"), block)
    finally:
        conn.close()
        server.close()
        echo.close()
    results.add_floor("floor.http_echo", "minimal asyncio HTTP echo, http.client keep-alive", "http-echo", echo_s)
    results.add_floor("floor.local_plus_http_echo", "local x=1 round trip + HTTP echo (the remote floor)",
                      "local+echo", [a + b for a, b in zip(local_s, echo_s)])
    results.add(Figure("remote.round_trip", "remote run_code('x=1') over loopback keep-alive", "s", remote_s,
                       "interp", floor="floor.local_plus_http_echo", targets=[Target("floor_ratio", 1.5, "<=1.5x")]))


def _soak(results: Results, settings: Settings) -> None:
    """The server's threads and RSS idle, holding idle connections and
    streaming runs, and after they are gone."""
    idle_count = settings.count(1000, 200, minimum=10)
    streams = settings.count(50, 10, minimum=2)
    server = _serve()
    pid = server.proc.pid
    held: List[socket.socket] = []
    try:
        with RemoteCodeInterpreter("http://127.0.0.1:%d" % server.port) as rci:
            rci.run_code("x=1")
            before = (thread_count(pid), smaps_rollup(pid)["rss"])
            for _ in range(idle_count):  # each has sent one request and keeps its connection
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
                held.append(sock)
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            for sock in held:
                sock.recv(65536)
            contexts = [rci.create_context() for _ in range(streams)]
            code = "import time\nfor i in range(40):\n    print(i)\n    time.sleep(0.05)\n"
            peak: List[Tuple[int, float]] = []
            errors: List[BaseException] = []

            def stream(ctx) -> None:
                try:
                    rci.run_code(code, context=ctx)
                except BaseException as exc:  # counted: the soak promises none
                    errors.append(exc)

            threads = [threading.Thread(target=stream, args=(ctx,)) for ctx in contexts]
            for thread in threads:
                thread.start()
            time.sleep(1.0)
            peak.append((thread_count(pid), smaps_rollup(pid)["rss"]))
            for thread in threads:
                thread.join(120)
            for sock in held:
                sock.close()
            held.clear()
            time.sleep(0.5)
            after = (thread_count(pid), smaps_rollup(pid)["rss"])
            for ctx in contexts:
                rci.delete_context(ctx)
    finally:
        for sock in held:
            sock.close()
        server.close()
    label = "%d idle conns + %d streams" % (idle_count, streams)
    results.add(Figure("remote.soak_threads", "server threads added, " + label, "count",
                       [float(peak[0][0] - before[0])], "interp", targets=[Target("value", 0, "no growth")]))
    results.add(Figure("remote.soak_rss", "server RSS added, " + label, "MiB", [peak[0][1] - before[1]], "interp"))
    results.add(Figure("remote.soak_rss_after", "server RSS added after the soak", "MiB", [after[1] - before[1]],
                       "interp"))
    if errors:
        results.errors.append("remote soak: %d of %d streaming runs failed: %r" % (len(errors), streams, errors[0]))
