"""Start, watch and stop the servers under test, each a subprocess on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def text_body(text: str) -> bytes:
    """`{"text": ...}`: the request body of sentimon's and the tutorial's /predict."""
    return json.dumps({"text": text}).encode()


@dataclass(frozen=True, slots=True)
class ServerSpec:
    name: str
    """Short id used in tables and file names."""
    label: str
    """What it is, for people."""
    argv: list[str]
    env: dict[str, str]
    ready_path: str
    health_path: str
    predict_path: str
    metrics_path: str | None
    body: Callable[[str], bytes] = text_body
    """The JSON request body that asks `predict_path` for one text's sentiment."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Server:
    """A running server: its port, CPU seconds used so far and peak memory."""

    def __init__(self, spec: ServerSpec, log_dir: Path, startup_timeout_s: float) -> None:
        self.spec = spec
        self.port = free_port()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{spec.name}.log"
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
        argv = [a.replace("{port}", str(self.port)) for a in spec.argv]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self._wait_ready(startup_timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        url = f"http://{HOST}:{self.port}{self.spec.ready_path}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.spec.name} exited with {self.process.returncode} while starting; "
                    f"log: {self.log_path}\n{self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(
            f"{self.spec.name} not ready after {timeout_s:.0f} s; log: {self.log_path}"
        )

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and its live child processes (MLServer
        infers in a worker process), all threads."""
        return sum(_cpu_ticks(pid) for pid in process_tree(self.process.pid)) / CLOCK_TICKS

    def peak_rss_bytes(self) -> int:
        """Peak resident memory (VmHWM) of the server plus that of each live child."""
        return sum(_status_bytes(pid, "VmHWM") for pid in process_tree(self.process.pid))

    def rss_bytes(self) -> int:
        """Resident memory now, summed over the process tree."""
        return sum(_status_bytes(pid, "VmRSS") for pid in process_tree(self.process.pid))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])


def sentimon_spec(
    name: str,
    label: str,
    model: str,
    cache_dir: Path,
    threads: int,
    *extra: str,
    data_dir: Path | None = None,
) -> ServerSpec:
    """`sentimon serve` with `extra` flags; `data_dir` holds its prediction log (the store
    is on by default: pass `--no-store` in `extra` for none)."""
    sentimon = str(Path(sys.executable).with_name("sentimon"))
    env = {
        "SENTIMON_CACHE_DIR": str(cache_dir),
        "SENTIMON_NUM_THREADS": str(threads),
        # The closed-loop rows measure capacity by keeping more requests in flight than the
        # server can answer within its latency target, which the admission bound would refuse
        # (and the peers have none): off here, as for every server in the table. Overload is
        # measured with it on (tests/integration/test_overload.py).
        "SENTIMON_MAX_QUEUE_WAIT_MS": "0",
    }
    if data_dir is not None:
        env["SENTIMON_DATA_DIR"] = str(data_dir)
    return ServerSpec(
        name=name,
        label=label,
        argv=[sentimon, "serve", "--host", HOST, "--port", "{port}", "--model", model, *extra],
        env=env,
        ready_path="/readyz",
        health_path="/healthz",
        predict_path="/predict",
        metrics_path="/metrics",
    )


def baseline_spec(model: str, threads: int) -> ServerSpec:
    return ServerSpec(
        name="tutorial",
        label="tutorial-style FastAPI + transformers pipeline",
        argv=[
            sys.executable,
            "-m",
            "uvicorn",
            "bench.baseline_app:app",
            "--host",
            HOST,
            "--port",
            "{port}",
        ],
        env={"BENCH_MODEL": model, "OMP_NUM_THREADS": str(threads)},
        ready_path="/health",
        health_path="/health",
        predict_path="/predict",
        metrics_path=None,
    )


def process_tree(root: int, proc: Path = Path("/proc")) -> list[int]:
    """`root` and its live descendants, read from `proc`/PID/stat."""
    children: dict[int, list[int]] = {}
    for stat in proc.glob("[0-9]*/stat"):
        fields = _stat_fields(stat)
        if fields:
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _stat_fields(stat: Path) -> list[str]:
    """The fields of a /proc/PID/stat after the command name (state, ppid, ...; utime and
    stime are 11 and 12); none if the process ended while we looked."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _cpu_ticks(pid: int) -> int:
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return int(fields[11]) + int(fields[12]) if fields else 0


def _status_bytes(pid: int, field: str) -> int:
    """A memory field of /proc/PID/status (`VmHWM`, `VmRSS`) in bytes; 0 once it has ended."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0
