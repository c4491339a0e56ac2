"""`python -m sentimon.probe`: the containers' healthcheck."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest


@pytest.fixture
def server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/readyz" else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _probe(*args: str, port: str = "8000") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentimon.probe", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"SENTIMON_PORT": port, "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_200_is_healthy_and_anything_else_is_not(server: str) -> None:
    assert _probe(f"{server}/readyz").returncode == 0
    answer = _probe(f"{server}/other")
    assert answer.returncode == 1
    assert answer.stderr == f"{server}/other: HTTP Error 503: Service Unavailable\n"


def test_without_a_url_it_probes_readyz_on_sentimon_port(server: str) -> None:
    assert _probe(port=server.rsplit(":", 1)[1]).returncode == 0


def test_nothing_listening_is_unhealthy_with_the_reason() -> None:
    answer = _probe("http://127.0.0.1:9/readyz")
    assert answer.returncode == 1
    assert answer.stderr.startswith("http://127.0.0.1:9/readyz: <urlopen error")
