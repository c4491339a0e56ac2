from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_models import build_tiny_roberta

CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "build"


def bundled_profile_for_this_cpu(folder: Path) -> Path:
    """The bundled model's reference profile with a text basis for the int8 arithmetic this
    CPU serves. The packaged profile has bases for fp32 and for CPUs without VNNI; on any
    other CPU the basis is fitted here as `sentimon model refresh-profile` would (directions
    on the validation tweets, scaled on the test ones) and the profile written to `folder`."""
    import dataclasses

    from sentimon.config import BUNDLED_MODEL_DIR, Settings
    from sentimon.drift.profiling import classify
    from sentimon.drift.reference import PROFILE_FILE, load_profile
    from sentimon.drift.text import fit_basis
    from sentimon.model.build.pipeline import EVAL_DOMAIN, load_splits
    from sentimon.model.int8 import RECIPE
    from sentimon.model.loader import load_model

    packaged = BUNDLED_MODEL_DIR / PROFILE_FILE
    profile = load_profile(packaged)
    kind = f"int8-{RECIPE.id}"
    if kind in profile.text:
        return packaged
    model = load_model(Settings())
    tweets = load_splits(CACHE_DIR)[EVAL_DOMAIN]
    basis = fit_basis(
        classify(model, [e.text for e in tweets.validation])[1],
        classify(model, [e.text for e in tweets.test])[1],
        kind,
        "directions fitted on the validation tweets, scaled on the test tweets (by the tests)",
    )
    path = folder / PROFILE_FILE
    dataclasses.replace(profile, text={**profile.text, kind: basis}).write(path)
    return path


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
