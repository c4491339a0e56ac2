"""Child processes of the native stack: find the binary, start it, wait until ready, stop it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class StackError(RuntimeError):
    """Something the operator has to fix; the message says what."""


@dataclass(frozen=True, slots=True)
class Binary:
    name: str
    """What the part is called in messages."""
    candidates: tuple[str, ...]
    """Executable names to look for on PATH, Debian's first."""
    apt_package: str


PROMETHEUS = Binary("Prometheus", ("prometheus",), "prometheus")
ALERTMANAGER = Binary(
    "Alertmanager", ("prometheus-alertmanager", "alertmanager"), "prometheus-alertmanager"
)
NODE_EXPORTER = Binary(
    "node-exporter", ("prometheus-node-exporter", "node_exporter"), "prometheus-node-exporter"
)


def find_binary(binary: Binary) -> str:
    for candidate in binary.candidates:
        path = shutil.which(candidate)
        if path:
            return path
    raise StackError(
        f"{binary.name} is not installed (looked for {', '.join(binary.candidates)} on PATH); "
        f"install it with: apt-get install --no-install-recommends {binary.apt_package}"
    )


class ManagedProcess:
    """One child process with its output in a log file; `stop()` is safe to call twice."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        ready_url: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.ready_url = ready_url
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not the children
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running():
                raise StackError(
                    f"{self.name} exited with status {self.process.returncode} while starting; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise StackError(
            f"{self.name} was not ready at {self.ready_url} after {timeout_s:.0f} s; "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = 15.0) -> int | None:
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
