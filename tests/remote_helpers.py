"""Real interp HTTP servers for the remote client's tests: in this process
(a thread; its workers are this process's children, so the engine tests'
process checks hold) or as ``python -m interp serve`` subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import shutil
import sys
import threading
from typing import List, Optional, Tuple

from interp import CodeInterpreter
from interp.server import InterpHTTPServer, make_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_certificate(directory: str, names: str = "DNS:localhost,IP:127.0.0.1") -> Tuple[str, str]:
    """A self-signed certificate for ``names`` (localhost and 127.0.0.1) made with the
    openssl command (the test is skipped without it): (cert file, key file).
    Trust it with ``ssl.create_default_context(cafile=cert)``, or as a
    system CA with the SSL_CERT_FILE environment variable."""
    import pytest
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=" + names], check=True, capture_output=True,
                   timeout=60)
    return cert, key


class ThreadServer:
    """An InterpHTTPServer on 127.0.0.1 (any port) served by a thread; with
    ``certificate`` (cert file, key file), over https."""

    def __init__(self, cwd: str, certificate: Optional[Tuple[str, str]] = None, **options) -> None:
        if certificate is not None:
            from interp.server.tls import server_context
            options["tls"] = server_context(*certificate)
        self.interpreter = CodeInterpreter(cwd=cwd)
        self.server: InterpHTTPServer = make_server(self.interpreter, "127.0.0.1", 0, log=False, **options)
        self.url = "%s://127.0.0.1:%d" % ("https" if certificate else "http", self.server.port)
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self._thread.join(10)
        self.server.server_close()
        self.interpreter.close()


class ProcessServer:
    """``python -m interp serve`` on 127.0.0.1 with a port chosen by the kernel."""

    def __init__(self, log_path: str, *args: str, cwd: Optional[str] = None) -> None:
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "interp", "serve", "--port", "0", "--quiet",
                                          *args], cwd=cwd or ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=dict(os.environ, PYTHONPATH=ROOT))
        self.port = 0
        from helpers import wait_until
        assert wait_until(self._started, 20), "server did not start: %s" % self.log()
        self.url = "http://127.0.0.1:%d" % self.port

    def log(self) -> str:
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def _started(self) -> bool:
        assert self.proc.poll() is None, self.log()
        for line in self.log().splitlines():
            if "listening on http://127.0.0.1:" in line:
                self.port = int(line.split(":")[-1].split()[0])
                return True
        return False

    def kill(self) -> None:
        """SIGKILL, as a crash would (its workers notice and exit)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(20)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def stop_all(servers: List[ProcessServer]) -> None:
    for server in servers:
        server.stop()
