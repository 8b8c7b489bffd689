"""Scale-out (issue 15): three ``interp serve`` processes behind a real
HAProxy (deploy/haproxy.cfg) hashing the context id in the path, on
127.0.0.1. CI installs haproxy (.ci/run) and never skips these tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from urllib.request import Request, urlopen

import pytest

from helpers import wait_until
from interp import ContextNotFoundError, RemoteCodeInterpreter
from remote_helpers import ROOT, ProcessServer, stop_all

CONFIG = os.path.join(ROOT, "deploy", "haproxy.cfg")


def _haproxy() -> str:
    path = shutil.which("haproxy") or (os.path.exists("/usr/sbin/haproxy") and "/usr/sbin/haproxy") or ""
    if not path:
        if os.environ.get("CI"):
            pytest.fail("haproxy is not installed: .ci/run must install it (apt-get install haproxy)")
        pytest.skip("haproxy is not installed and this is not CI (apt-get install haproxy)")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HAProxy:
    """haproxy -db with deploy/haproxy.cfg in front of ``servers``."""

    def __init__(self, tmp_path, servers) -> None:
        self.port = _free_port()
        env = dict(os.environ, INTERP_PROXY_BIND="127.0.0.1:%d" % self.port)
        for number, server in enumerate(servers, 1):
            env["INTERP_SERVER_%d" % number] = "127.0.0.1:%d" % server.port
        self.log = tmp_path / "haproxy.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([_haproxy(), "-db", "-f", CONFIG], env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        self.url = "http://127.0.0.1:%d" % self.port
        assert wait_until(self._up, 20), self.log.read_text()

    def _up(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            with urlopen(self.url + "/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _metrics(url: str) -> dict:
    with urlopen(Request(url + "/metrics"), timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


@pytest.mark.limit(240)
def test_three_servers_behind_haproxy_keep_each_context_on_one_server(tmp_path):
    _haproxy()
    servers = [ProcessServer(str(tmp_path / ("serve-%d.log" % n))) for n in range(3)]
    proxy = None
    try:
        proxy = HAProxy(tmp_path, servers)
        with RemoteCodeInterpreter(proxy.url) as ci:
            contexts = [ci.create_context() for _ in range(60)]
            for ctx in contexts:
                ci.run_code("runs = 0\nname = %r" % ctx.id, context=ctx)
            for _ in range(20):
                for ctx in contexts:
                    ci.run_code("runs += 1", context=ctx)

            # each context lives on exactly one server, and they are spread over all three
            held = {}
            for server in servers:
                with RemoteCodeInterpreter(server.url, delete_on_close=False) as direct:
                    held[server.port] = {context.id for context in direct.list_contexts()}
            for ctx in contexts:
                assert sum(ctx.id in ids for ids in held.values()) == 1, ctx.id
            assert all(len(ids) >= 5 for ids in held.values()), {p: len(ids) for p, ids in held.items()}
            for ctx in contexts:
                assert ci.run_code("print(name, runs)", context=ctx).stdout == "%s 20\n" % ctx.id

            # metrics of each server count its contexts and runs
            for server in servers:
                values = _metrics(server.url)
                mine = len(held[server.port])
                assert values["interp_contexts"] == mine
                assert values['interp_runs_total{outcome="ok"}'] == mine * 22
                assert values["interp_run_duration_seconds_count"] == mine * 22
                assert values["interp_http_response_bytes_total"] > 0

            # one server dies: only its contexts fail, with ContextNotFoundError
            victim = servers[1]
            victim.kill()
            lost = held[victim.port]
            for ctx in contexts:
                if ctx.id in lost:
                    with pytest.raises(ContextNotFoundError):
                        ci.run_code("runs", context=ctx)
                else:
                    assert ci.run_code("print(name, runs)", context=ctx).stdout == "%s 20\n" % ctx.id
    finally:
        if proxy is not None:
            proxy.stop()
        stop_all(servers)
