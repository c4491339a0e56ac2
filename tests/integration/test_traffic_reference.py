"""`sentimon traffic --scenario normal` looks like the bundled model's reference profile to the
drift alerts, and `--scenario drift` does not, on the bundled model as served (ONNX int8).

The alerts test a 5-minute window fleet-wide: at 10 req/s about 3000 texts. A chi-square
grows with the number of texts, so each statistic of a whole normal request cycle (about
2900 texts) is scaled to 3000 texts and must stay under half its critical value at
alpha 1e-4: random noise stays well under the threshold and so does what is left of the
difference between a synthetic corpus and the human-rated tweets the profile was measured on.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Sequence

import pytest

from sentimon.config import BUNDLED_MODEL_DIR, Settings
from sentimon.drift.reference import (
    CONFIDENCE_HISTOGRAM,
    PROFILE_FILE,
    TOKENS_HISTOGRAM,
    ReferenceProfile,
    load_profile,
)
from sentimon.drift.stats import chi2_isf, chi_square
from sentimon.model.base import Prediction, SentimentModel
from sentimon.model.loader import load_model
from sentimon.traffic.load import Request
from sentimon.traffic.scenarios import ScenarioOptions, build_requests

pytestmark = pytest.mark.slow

ALPHA = 1e-4
WINDOW = 3000
"""Texts in a 5-minute window at the generator's default 10 req/s."""


@pytest.fixture(scope="module")
def model() -> SentimentModel:
    loaded = load_model(Settings())
    assert loaded.info.backend == "onnx-int8"
    return loaded


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    return load_profile(BUNDLED_MODEL_DIR / PROFILE_FILE)


def served(
    model: SentimentModel, requests: Sequence[Request], limit: int | None = None
) -> tuple[list[Prediction], list[str | None]]:
    """The predictions for every text the requests send (the first `limit`), and the
    generator's label of each (None: unknown). Each request is one model call, as the server
    batches at the generator's rate: a single text alone, a batch request's texts together."""
    predictions: list[Prediction] = []
    labels: list[str | None] = []
    for request in requests:
        if limit is not None and len(predictions) >= limit:
            break
        body = json.loads(request.body)
        texts = body["texts"] if request.path == "/predict/batch" else [body["text"]]
        predictions += model.predict(texts)
        labels += list(request.feedback) if request.feedback else [None] * len(texts)
    return predictions[:limit], labels[:limit]


def statistics(
    profile: ReferenceProfile, predictions: Sequence[Prediction], n: int
) -> dict[str, tuple[float, float]]:
    """Each drift alert's chi-square on `predictions`, scaled to `n` texts, and its critical
    value: the label mix, and the two histograms on the profile's merged bins (`le`)."""
    count = len(predictions)
    labels = [sum(p.label == label for p in predictions) for label in profile.labels]
    label_test = chi_square(labels, [profile.label_shares[label] for label in profile.labels])
    out = {"label mix": (label_test.statistic * n / count, chi2_isf(ALPHA, label_test.df))}
    values = {
        CONFIDENCE_HISTOGRAM: [p.score for p in predictions],
        TOKENS_HISTOGRAM: [float(p.tokens) for p in predictions],
    }
    for name, observed in values.items():
        bins = profile.bins(name)
        edges = [float(b.le) for b in bins]
        counts = [0] * len(bins)
        for value in observed:
            counts[bisect_left(edges, value)] += 1  # the first bin whose le >= value
        test = chi_square(counts, [b.share for b in bins])
        out[name] = (test.statistic * n / count, chi2_isf(ALPHA, test.df))
    return out


def test_normal_traffic_stays_well_under_every_drift_threshold(
    model: SentimentModel, profile: ReferenceProfile
) -> None:
    requests = build_requests("normal", ScenarioOptions(seed=0, feedback_share=1.0))
    predictions, labels = served(model, requests)
    found = statistics(profile, predictions, WINDOW)
    assert found["label mix"][1] == pytest.approx(18.42, abs=0.01)
    over = {name: value for name, value in found.items() if value[0] >= value[1] / 2}
    assert not over, f"chi-square at {WINDOW} texts vs critical value: {found}"
    # The model mostly agrees with the sentiment each text was written with.
    known = [(p.label, label) for p, label in zip(predictions, labels, strict=True) if label]
    assert len(known) == len(predictions)
    accuracy = sum(p == label for p, label in known) / len(known)
    assert accuracy >= 0.8


def test_drift_traffic_is_far_over_the_thresholds(
    model: SentimentModel, profile: ReferenceProfile
) -> None:
    """500 texts, the fewest an alert fires on."""
    predictions, _ = served(model, build_requests("drift", ScenarioOptions(seed=0)), limit=500)
    assert len(predictions) == 500
    found = statistics(profile, predictions, 500)
    assert all(value > critical for value, critical in found.values()), found
    for name in ("label mix", TOKENS_HISTOGRAM):
        value, critical = found[name]
        assert value > 5 * critical, (name, found)
