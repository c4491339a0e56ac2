"""The image's Dockerfile: what it must do (lock, CPU torch, ONNX cache built in, non-root,
0.0.0.0, exec form, healthcheck, labels), and hadolint and trivy finding nothing in it (while
finding what they should in a Dockerfile that runs as root)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
BIN = Path(sys.executable).parent


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _runtime_stage() -> list[tuple[str, str]]:
    instructions = _instructions(DOCKERFILE.read_text())
    starts = [i for i, (k, _) in enumerate(instructions) if k == "FROM"]
    return instructions[starts[-1] :]


def test_the_image_installs_the_lock_with_the_pinned_cpu_torch() -> None:
    text = DOCKERFILE.read_text()
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert (
        'install "torch==2.13.0" ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"}' in text
    )
    assert (
        'install "torch==2.13.0" ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"}' in setup
    )
    assert "COPY requirements/lock.txt requirements/lock.txt" in text
    assert "install --no-deps -r requirements/lock.txt" in text
    assert "pip check" in text
    assert "sentimon model prepare --cache-dir /opt/sentimon-cache" in text


def test_the_runtime_runs_as_a_numeric_non_root_user_listening_on_all_interfaces() -> None:
    runtime = _runtime_stage()
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users == ["10001:10001"]
    env = " ".join(args for keyword, args in runtime if keyword == "ENV")
    for setting in (
        "SENTIMON_HOST=0.0.0.0",
        "SENTIMON_CACHE_DIR=/opt/sentimon-cache",
        "SENTIMON_DATA_DIR=/data",
        "HF_HUB_OFFLINE=1",
        "PYTHONDONTWRITEBYTECODE=1",
    ):
        assert setting in env, setting
    [entrypoint] = [args for keyword, args in runtime if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["sentimon", "serve"]  # exec form: uvicorn is PID 1
    [healthcheck] = [args for keyword, args in runtime if keyword == "HEALTHCHECK"]
    # Exec form, no shell; the probe's default is this server's /readyz.
    assert healthcheck.split(" CMD ", 1)[1] == '["python", "-m", "sentimon.probe"]'
    labels = " ".join(args for keyword, args in runtime if keyword == "LABEL")
    for key in ("title", "description", "version", "revision", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels, key


def test_the_build_context_is_only_what_the_image_needs() -> None:
    lines = (ROOT / ".dockerignore").read_text().split("\n")
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"
    assert set(rules[1:]) >= {"!pyproject.toml", "!README.md", "!requirements/lock.txt", "!src/"}
    copied = {
        args.split()[0]
        for keyword, args in _instructions(DOCKERFILE.read_text())
        if keyword == "COPY" and not args.startswith("--from")
    }
    allowed = {rule.removeprefix("!").rstrip("/") for rule in rules if rule.startswith("!")}
    assert {c.rstrip("/") for c in copied} <= allowed


def _hadolint(path: Path) -> list[dict[str, str]]:
    result = subprocess.run(
        [BIN / "hadolint", "--format", "json", str(path)], capture_output=True, text=True
    )
    findings: list[dict[str, str]] = json.loads(result.stdout or "[]")
    return findings


def _trivy(path: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            BIN / "trivy", "config", "--skip-check-update", "--skip-version-check",
            "--cache-dir", str(cache), "--exit-code", "1", "--severity", "HIGH,CRITICAL",
            "--format", "json", "--quiet", str(path),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    assert _hadolint(DOCKERFILE) == []
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM debian:latest\nRUN apt-get update && apt-get install -y curl\n")
    assert {f["code"] for f in _hadolint(sloppy)} >= {"DL3007", "DL3008"}


@pytest.mark.slow
def test_trivy_finds_no_high_or_critical_misconfiguration(tmp_path: Path) -> None:
    clean = _trivy(DOCKERFILE, tmp_path / "cache")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    as_root = tmp_path / "root" / "Dockerfile"
    as_root.parent.mkdir()
    as_root.write_text(re.sub(r"^USER .*$", "", DOCKERFILE.read_text(), flags=re.M))
    flagged = _trivy(as_root, tmp_path / "cache")
    assert flagged.returncode == 1
    ids = {
        m["ID"]
        for result in json.loads(flagged.stdout)["Results"]
        for m in result.get("Misconfigurations", [])
    }
    assert "DS-0002" in ids or "DS002" in ids, ids  # "image user should not be root"
