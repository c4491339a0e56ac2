"""`sentimon up` as a user runs it: starts everything, prints the URLs, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_stack import free_ports

pytestmark = pytest.mark.slow


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_up_starts_the_stack_and_stops_it_on_sigterm(tmp_path: Path) -> None:
    api, prom, am, node, hook = free_ports(5)
    out = tmp_path / "out.txt"
    with out.open("w") as stdout:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sentimon",
                "up",
                "--port",
                str(api),
                "--prometheus-port",
                str(prom),
                "--alertmanager-port",
                str(am),
                "--node-exporter-port",
                str(node),
                "--webhook-port",
                str(hook),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200", "HF_HUB_OFFLINE": "1"},
        )
        try:
            deadline = time.monotonic() + 120
            while "sentimon is up" not in out.read_text() and time.monotonic() < deadline:
                assert process.poll() is None, out.read_text()
                time.sleep(0.3)
            text = out.read_text()
            assert "sentimon is up" in text, text
            for port in (api, prom, am, node, hook):
                assert f"http://127.0.0.1:{port}" in text
                assert listening(port), port
            assert (tmp_path / "data" / "logs" / "prometheus.log").exists()
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    assert process.returncode == 0, out.read_text()
    assert out.read_text().rstrip().endswith("stopped")
    assert not [p for p in (api, prom, am, node, hook) if listening(p)]


def test_up_names_the_package_of_a_missing_binary(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sentimon", "up", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(tmp_path), "COLUMNS": "300"},
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        "error: Prometheus is not installed (looked for prometheus on PATH); install it with: "
        "apt-get install --no-install-recommends prometheus"
    ) in result.stdout
