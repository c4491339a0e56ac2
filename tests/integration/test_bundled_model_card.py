"""The committed model scores what its card says, on a test split rebuilt from the pinned sdist."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sentimon.config import BUNDLED_MODEL_DIR, Settings
from sentimon.drift.reference import load_profile
from sentimon.model.build.fidelity import evaluate
from sentimon.model.build.pipeline import ids_digest, load_splits
from sentimon.model.loader import load_model
from sentimon.model.transformers_backend import TransformersModel
from tests.integration.conftest import CACHE_DIR

pytestmark = [pytest.mark.slow, pytest.mark.network]

# Another CPU may round a few near-tie texts differently; 2 of 840 test tweets is 0.0024.
TOLERANCE = 0.0025


@pytest.fixture(scope="module")
def meta() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((BUNDLED_MODEL_DIR / "sentimon.json").read_text())
    return loaded


def test_the_held_out_tweets_are_the_ones_the_card_names(meta: dict[str, Any]) -> None:
    splits = load_splits(CACHE_DIR)
    for domain, split in splits.items():
        assert ids_digest(split.test) == meta["split"]["test_ids_sha256"][domain], domain
        assert len(split.test) == meta["split"]["counts"][domain]["test"]


def test_accuracy_on_held_out_tweets_matches_the_card(meta: dict[str, Any]) -> None:
    model = load_model(Settings(backend="transformers"))  # the card's numbers are fp32
    assert isinstance(model, TransformersModel)
    assert model.info.revision == meta["revision"]
    scores, _ = evaluate(model, load_splits(CACHE_DIR)["tweets"].test)
    card = meta["metrics"]["test"]["tweets"]
    assert scores.accuracy == pytest.approx(card["accuracy"], abs=TOLERANCE)
    assert scores.macro_f1 == pytest.approx(card["macro_f1"], abs=TOLERANCE)
    # Floors against regressions. The goal was 0.85 / 0.79; this model reaches 0.845 / 0.795
    # (4 tweets short on accuracy), the best recipe found on validation so far.
    assert scores.accuracy >= 0.84 and scores.macro_f1 >= 0.79


def test_the_card_states_what_the_model_is(meta: dict[str, Any]) -> None:
    card = (BUNDLED_MODEL_DIR / "README.md").read_text()
    assert "is **not** `cardiffnlp/twitter-roberta-base-sentiment-latest`" in card
    tweets = meta["metrics"]["test"]["tweets"]
    assert f"accuracy {tweets['accuracy']:.3f}, macro-F1 {tweets['macro_f1']:.3f}" in card
    for requirement in meta["sources"]:
        assert requirement in card
    profile = load_profile(BUNDLED_MODEL_DIR / "reference_profile.json")
    assert set(profile.label_shares) == {"negative", "neutral", "positive"}
    assert sum(profile.label_shares.values()) == pytest.approx(1.0, abs=1e-4)
    assert (profile.model, profile.revision) == (meta["name"], meta["revision"])
    # The drift reference is the card's model on the card's test tweets.
    assert profile.labelled is not None
    assert profile.labelled.accuracy == pytest.approx(tweets["accuracy"], abs=1e-4)
    assert profile.n == meta["split"]["counts"]["tweets"]["test"]
    calibration = meta["calibration"]
    assert profile.calibration is not None
    assert (
        profile.calibration.fitted_on
        == calibration["fitted_on"]
        == ("the validation tweets (420 texts)")
    )
    held_out = calibration["test_tweets"]
    assert (
        f"on the 840 held-out test tweets: {held_out['ece_before']:.3f} before, "
        f"{held_out['ece_after']:.3f} after" in card
    )
