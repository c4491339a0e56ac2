"""`sentimon traffic --scenario normal` looks like the bundled model's reference profile to the
drift alerts, and `--scenario drift` does not, on the bundled model as served (ONNX int8).

The alerts test a 5-minute window fleet-wide: at 10 req/s about 3000 texts. A chi-square
grows with the number of texts, so each statistic of a whole normal request cycle (about
2900 texts) is scaled to 3000 texts and must stay under half its critical value at
alpha 1e-4 (the text test: the first 3000 texts, as they are). A generated corpus passed
every test but the text one (chi-square 2831 against a critical value of 73): templated
wording is far from tweets in the model's sentence embedding, so normal traffic sends tweets.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from sentimon.config import Settings
from sentimon.drift.reference import (
    CONFIDENCE_HISTOGRAM,
    TOKENS_HISTOGRAM,
    ReferenceProfile,
    load_profile,
)
from sentimon.drift.stats import (
    chi2_isf,
    chi_square,
    residual_z,
    text_critical_values,
    text_drift_chi2,
)
from sentimon.drift.text import embedding_kind
from sentimon.model.base import Prediction, SentimentModel, to_prediction
from sentimon.model.loader import load_model
from sentimon.traffic.load import Request
from sentimon.traffic.scenarios import ScenarioOptions, build_requests
from sentimon.traffic.tweets import TWEETS_FILE, held_out_tweets, tweets_jsonl
from tests.integration.conftest import CACHE_DIR, bundled_profile_for_this_cpu

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
def profile(tmp_path_factory: pytest.TempPathFactory) -> ReferenceProfile:
    return load_profile(bundled_profile_for_this_cpu(tmp_path_factory.mktemp("profile")))


@dataclass
class Served:
    predictions: list[Prediction] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)
    """The generator's label of each text (None: unknown)."""
    embeddings: list[np.ndarray] = field(default_factory=list)


def served(model: SentimentModel, requests: Sequence[Request], limit: int | None = None) -> Served:
    """The predictions and embeddings of every text the requests send (the first `limit`).
    Each request is one model call, as the server batches at the generator's rate: a single
    text alone, a batch request's texts together."""
    out = Served()
    for request in requests:
        if limit is not None and len(out.predictions) >= limit:
            break
        body = json.loads(request.body)
        texts = body["texts"] if request.path == "/predict/batch" else [body["text"]]
        ids = model.tokenize(texts)
        probs, embeddings = model.infer_with_embeddings(ids)
        out.predictions += [
            to_prediction(model.info.labels, p, len(row)) for p, row in zip(probs, ids, strict=True)
        ]
        out.embeddings += list(embeddings)
        out.labels += list(request.feedback) if request.feedback else [None] * len(texts)
    out.predictions, out.labels = out.predictions[:limit], out.labels[:limit]
    out.embeddings = out.embeddings[:limit]
    return out


def text_statistics(
    model: SentimentModel, profile: ReferenceProfile, embeddings: Sequence[np.ndarray]
) -> dict[str, tuple[float, float]]:
    """The text test's chi-square and |residual z| on these texts, with critical values."""
    basis = profile.text[embedding_kind(model.info)]
    z, residual = basis.scorer().score(np.array(embeddings))
    n = len(z)
    chi2_critical, z_critical = text_critical_values(ALPHA, basis.components)
    rz = residual_z(float(residual.mean()), n, basis.residual_mean, basis.residual_sd, basis.n)
    return {
        "text": (text_drift_chi2(z.mean(axis=0).tolist(), n, basis.n), chi2_critical),
        "text residual": (abs(rz), z_critical),
    }


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
    run = served(model, requests)
    predictions, labels = run.predictions, run.labels
    found = statistics(profile, predictions, WINDOW)
    found |= text_statistics(model, profile, run.embeddings[:WINDOW])
    assert found["label mix"][1] == pytest.approx(18.42, abs=0.01)
    over = {name: value for name, value in found.items() if value[0] >= value[1] / 2}
    assert not over, f"chi-square at {WINDOW} texts vs critical value: {found}"
    # The labels are the tweets' human ratings: the model's accuracy on them is the card's.
    known = [(p.label, label) for p, label in zip(predictions, labels, strict=True) if label]
    assert len(known) == len(predictions)
    accuracy = sum(p == label for p, label in known) / len(known)
    assert accuracy == pytest.approx(0.845, abs=0.02)


def test_drift_traffic_is_far_over_the_thresholds(
    model: SentimentModel, profile: ReferenceProfile
) -> None:
    """500 texts, the fewest an alert fires on."""
    run = served(model, build_requests("drift", ScenarioOptions(seed=0)), limit=500)
    predictions = run.predictions
    assert len(predictions) == 500
    found = statistics(profile, predictions, 500) | text_statistics(model, profile, run.embeddings)
    assert all(value > critical for value, critical in found.values()), found
    for name in ("label mix", TOKENS_HISTOGRAM, "text"):
        value, critical = found[name]
        assert value > 5 * critical, (name, found)


def test_the_packaged_tweets_are_the_held_out_split() -> None:
    """`python -m sentimon.traffic.tweets` rewrites the file when this fails."""
    assert TWEETS_FILE.read_text(encoding="utf-8") == tweets_jsonl(held_out_tweets(CACHE_DIR))
