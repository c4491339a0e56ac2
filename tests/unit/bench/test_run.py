"""The benchmark builds the peers' environments first and leaves out a peer it cannot build."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import run
from bench.run import BenchConfig


def test_a_peer_whose_environment_fails_is_left_out_and_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built: list[str] = []

    def ensure_env(peer: str, work_dir: Path) -> Path:
        if peer == "mlserver":
            raise RuntimeError("pip exited with 1")
        built.append(peer)
        return work_dir / peer / "python"

    monkeypatch.setattr(run, "ensure_env", ensure_env)
    ready, skipped = run._prepare_peers(
        BenchConfig(peers=("bentoml", "mlserver"), work_dir=tmp_path)
    )
    assert ready == ["bentoml"] == built
    assert skipped == {"mlserver": "its environment could not be built (RuntimeError)"}


def test_no_peers_builds_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def ensure_env(peer: str, _work_dir: Path) -> Path:
        raise AssertionError(f"{peer} should not be built")

    monkeypatch.setattr(run, "ensure_env", ensure_env)
    assert run._prepare_peers(BenchConfig(peers=(), work_dir=tmp_path)) == ([], {})
