"""The image for real: built with podman from a locally made Debian base with the repo's
Dockerfile, then run the way the README says, on a read-only root filesystem as the non-root
user with every capability dropped. Slow (the first build downloads the lock's packages);
`make test-container` runs it. scripts/containers.sh installs and configures podman."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.container]

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/sentimon-base:bookworm"
IMAGE = "localhost/sentimon:test"


def _run(*argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def _checked(*argv: str, timeout: float = 900) -> str:
    result = _run(*argv, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(argv)}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def image() -> str:
    _checked("bash", str(ROOT / "scripts" / "containers.sh"), "setup")
    _checked("bash", str(ROOT / "scripts" / "containers.sh"), "base")
    mounts = ["-v", "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro"]
    args = ["--build-arg", f"BASE_IMAGE={BASE}", "--build-arg", "PYTHON=/usr/bin/python3"]
    if os.environ.get("TORCH_INDEX_URL"):
        args += ["--build-arg", f"TORCH_INDEX_URL={os.environ['TORCH_INDEX_URL']}"]
    for folder in os.environ.get("PIP_FIND_LINKS", "").split():
        mounts += ["-v", f"{folder}:{folder}:ro"]
        args += ["--build-arg", f"TORCH_FIND_LINKS={folder}"]
    _checked(
        "podman", "build", "--format", "docker", "--network", "host", *mounts, *args,
        "-t", IMAGE, str(ROOT),
    )  # fmt: skip
    return IMAGE


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
    health = _inspect(name)["Config"].get("Healthcheck", {})
    assert "/readyz" in " ".join(health.get("Test", []))


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
