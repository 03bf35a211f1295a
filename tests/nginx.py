"""nginx as a test target: started in a test's own directory on 127.0.0.1, its access log
the server's own count of what it received (and over which protocol)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import pytest

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format proto '$server_protocol $status $connection $request_uri';
    access_log {dir}/access.log proto;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 100000;
    http2_max_concurrent_streams {streams};
    server {{
        {listen}
        {tls}
        location /ok {{ return 200 "ok"; }}
        location /slow {{ return 200 "slow"; }}
        location /echo {{ client_max_body_size 10m; proxy_pass http://127.0.0.1:{port}/ok; }}
        location /missing {{ return 404 "no"; }}
    }}
}}
"""


def needs_nginx() -> str:
    """nginx's path; a skip where it is not installed, but never in CI (.ci/run installs it)."""
    if NGINX is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed; .ci/run installs nginx-light")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    return NGINX


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """One nginx serving /ok, speaking HTTP/2 (h2c, or over TLS with ``cert`` and ``key``)."""

    def __init__(
        self,
        directory: Path,
        *,
        http2: bool = True,
        cert: Path | None = None,
        key: Path | None = None,
        streams: int = 128,
    ) -> None:
        self.directory = directory
        self.port = _free_port()
        tls = f"ssl_certificate {cert}; ssl_certificate_key {key};" if cert and key else ""
        flags = (" ssl" if tls else "") + (" http2" if http2 else "")
        self.conf = directory / "nginx.conf"
        self.conf.write_text(
            CONF.format(
                dir=directory,
                listen=f"listen 127.0.0.1:{self.port}{flags};",
                tls=tls,
                port=self.port,
                streams=streams,
            )
        )
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        self.process = subprocess.Popen(
            [needs_nginx(), "-c", str(self.conf), "-p", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = (self.directory / "error.log").read_text(errors="replace")
                raise RuntimeError(f"nginx did not start: {error}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen within 30 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: the log is flushed
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log(self) -> list[Logged]:
        """Every request nginx logged (read it after the server stopped: nginx writes a line
        once the answer went out, so a client can hold the answer before its line exists)."""
        path = self.directory / "access.log"
        if not path.exists():
            return []
        rows = []
        for line in path.read_text().splitlines():
            protocol, status, connection, uri = line.split(" ", 3)
            rows.append(Logged(protocol, int(status), int(connection), uri))
        return rows


class Logged(NamedTuple):
    protocol: str  # "HTTP/2.0", "HTTP/1.1"
    status: int
    connection: int  # nginx's serial number of the connection
    uri: str
