"""What the container tests share: podman set up, the local Debian base, sentimon's image
built from the repo's Dockerfile, the stand-in images for the Compose stack, and small
helpers to run commands."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/sentimon-base:bookworm"
IMAGE = "localhost/sentimon:test"
STANDINS = ("prometheus", "alertmanager", "node-exporter", "postgres")


def run(
    *argv: str, timeout: float = 900, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=env
    )


def checked(
    *argv: str, timeout: float = 900, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    result = run(*argv, timeout=timeout, cwd=cwd, env=env)
    assert result.returncode == 0, (
        f"{' '.join(argv)}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    )
    return result.stdout


def standin_image(name: str) -> str:
    return f"localhost/sentimon-standin-{name}:bookworm"


@functools.cache
def podman_ready() -> str:
    """podman installed and configured, and the local Debian base made (once per machine)."""
    checked("bash", str(ROOT / "scripts" / "containers.sh"), "setup")
    checked("bash", str(ROOT / "scripts" / "containers.sh"), "base")
    return BASE


def _build(*args: str) -> None:
    podman_ready()
    checked(
        "podman", "build", "--format", "docker", "--network", "host",
        "-v", "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro",
        "--build-arg", f"BASE_IMAGE={BASE}", *args,
    )  # fmt: skip


@pytest.fixture(scope="session")
def image() -> str:
    """The repo's Dockerfile on the Debian base (layers cached by podman between runs)."""
    args = ["--build-arg", "PYTHON=/usr/bin/python3"]
    if os.environ.get("TORCH_INDEX_URL"):
        args += ["--build-arg", f"TORCH_INDEX_URL={os.environ['TORCH_INDEX_URL']}"]
    for folder in os.environ.get("PIP_FIND_LINKS", "").split():
        args += ["-v", f"{folder}:{folder}:ro", "--build-arg", f"TORCH_FIND_LINKS={folder}"]
    _build(*args, "-t", IMAGE, str(ROOT))
    return IMAGE


@pytest.fixture(scope="session")
def standins() -> dict[str, str]:
    """Prometheus, Alertmanager, node-exporter and PostgreSQL from Debian's packages."""
    context = Path(__file__).parent / "standins"
    for name in STANDINS:
        _build("--target", name, "-t", standin_image(name), str(context))
    return {name: standin_image(name) for name in STANDINS}
