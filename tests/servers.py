"""`sentimon serve` as a real process for tests: started on a free loopback port with the test
environment (offline, the ONNX export shared by every server of the run, data in the test's
folder), waited for until ready, and stopped by its pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.servers import free_port


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    """Its stdout and stderr together."""

    def stop(self) -> int:
        """SIGTERM, then its exit status: 0, or -SIGTERM, which uvicorn re-raises once it has
        shut down cleanly."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def start_server(
    tmp: Path,
    *args: str,
    ready: str = "/readyz",
    env: dict[str, str] | None = None,
    stdout: int | None = None,
) -> ServerProcess:
    """Serve with `args` until `ready` answers 200 (use /healthz for a server without its
    model); fail the test if it exits or is not ready in 120 s. `stdout`: where its stdout
    goes instead of the log (subprocess.PIPE: a pipe the test may never read)."""
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
    child_env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        SENTIMON_CACHE_DIR=str(tmp.parent / "sentimon-cache"),
        SENTIMON_DATA_DIR=str(tmp / "data"),
        **(env or {}),
    )
    log = tmp / "server.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "sentimon", "serve", "--port", str(port), *args],
            stdout=out if stdout is None else stdout,
            stderr=subprocess.STDOUT if stdout is None else out,
            env=child_env,
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.url}{ready}", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"server not ready in 120 s: {log.read_text()[-2000:]}")
