"""The image for real: built with podman from a locally made Debian base with the repo's
Dockerfile, then run the way the README says, on a read-only root filesystem as the non-root
user with every capability dropped. Slow (the first build downloads the lock's packages);
`make test-container` runs it. scripts/containers.sh installs and configures podman."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.servers import free_port
from tests.container.conftest import checked as _checked
from tests.container.conftest import run as _run

pytestmark = [pytest.mark.slow, pytest.mark.container]


@pytest.fixture
def container(image: str) -> Iterator[tuple[str, str]]:
    name = f"sentimon-test-{os.getpid()}-{time.monotonic_ns()}"
    port = free_port()
    _checked(
        "podman", "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
        "-v", f"{name}:/data", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--cpus", "1", "-p", f"127.0.0.1:{port}:8000", image,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"not ready in 120 s:\n{_run('podman', 'logs', name).stderr[-3000:]}")
        yield name, url
    finally:
        _run("podman", "rm", "-f", "-t", "0", name)
        _run("podman", "volume", "rm", "-f", name)


def _inspect(name: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(_checked("podman", "inspect", name))
    return data[0]


def test_it_serves_as_non_root_on_a_read_only_root_within_its_cpu_limit(
    container: tuple[str, str],
) -> None:
    name, url = container
    state = _inspect(name)
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    assert _checked("podman", "exec", name, "id", "-u").strip() == "10001"
    # The package laid over the dependencies' venv is whole.
    pip_check = _checked("podman", "exec", name, "python", "-m", "pip", "check")
    assert pip_check.strip() == "No broken requirements found."
    answer = httpx.post(f"{url}/predict", json={"text": "I love this so much"}).json()
    assert answer["label"] == "positive"
    feedback = httpx.post(
        f"{url}/feedback", json={"request_id": answer["request_id"], "correct": True}
    )
    assert feedback.status_code == 201, feedback.text
    logs = _run("podman", "logs", name)
    lines = [
        json.loads(line)
        for line in (logs.stdout + logs.stderr).splitlines()
        if line.startswith("{")
    ]
    threads = [line for line in lines if line.get("event") == "threads"]
    assert [(t["threads"], t["source"]) for t in threads] == [(1, "cgroup quota 1")]
    # Served from the cache built into the image: no export at start.
    assert not [line for line in lines if line.get("event") == "onnx_prepare"]
    # The image's own HEALTHCHECK passes (podman runs it from systemd timers, absent here).
    assert _run("podman", "healthcheck", "run", name).returncode == 0


def test_sigterm_drains_the_request_in_flight_and_exits_0(container: tuple[str, str]) -> None:
    name, url = container
    texts = ["a long enough tweet about the weather, my commute and the day I had " * 3] * 64
    answer: dict[str, Any] = {}

    def call() -> None:
        response = httpx.post(f"{url}/predict/batch", json={"texts": texts}, timeout=60)
        answer.update(status=response.status_code, n=len(response.json()["predictions"]))

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.2)
    _checked("podman", "stop", "-t", "30", name)
    caller.join(timeout=60)
    assert answer == {"status": 200, "n": 64}
    assert _inspect(name)["State"]["ExitCode"] == 0
