from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_models import build_tiny_roberta

CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "build"


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random 2-layer RoBERTa with cardiffnlp's generic labels (LABEL_0..2)."""
    return build_tiny_roberta(
        tmp_path_factory.mktemp("roberta"), {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    )


@pytest.fixture(scope="session")
def tiny_emotions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random RoBERTa whose labels are emotions, not sentiments."""
    return build_tiny_roberta(
        tmp_path_factory.mktemp("emotions"),
        {0: "Anger", 1: "Joy", 2: "Optimism", 3: "Sadness"},
        seed=1,
    )
