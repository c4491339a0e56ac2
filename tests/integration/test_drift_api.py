"""Drift metrics on the API: the reference as gauges, the label-free estimate as counters,
/info and the start-up log saying what is measured, or why nothing is."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from sentimon.app import create_app
from sentimon.config import Settings
from sentimon.drift.profiling import Texts, build_profile
from sentimon.drift.reference import ReferenceProfile, load_profile
from sentimon.drift.stats import chi2_isf
from tests.fakes import LABELS, FakeModel, fake_embedding, fake_prediction

TEXTS = [
    *(f"i love this {i}" for i in range(160)),
    *(f"what a bad day {i}" for i in range(100)),
    *(f"the bus is at {i}" for i in range(60)),
]
NO_PROFILE = {
    "available": False,
    # The fake model's source, "tests", is a folder without a profile.
    "reason": "no reference profile at tests/reference_profile.json: build one with "
    "`sentimon model profile --texts FILE`",
    "profile": None,
    "reference": None,
    "calibration": None,
    "reference_accuracy": None,
    "skipped": [],
    "text": None,
}
# The fake model is right on all but the "bus" texts, whose truth is positive.
TRUTH = ["positive"] * 160 + ["negative"] * 100 + ["positive"] * 60


@pytest.fixture
def profile_path(tmp_path: Path) -> Path:
    calibration = Texts(TEXTS[::2], TRUTH[::2], "every other text")
    profile = build_profile(FakeModel(), Texts(TEXTS, TRUTH, "the test texts"), calibration)
    path = tmp_path / "profile.json"
    profile.write(path)
    return path


@pytest.fixture
def drift_client(
    settings: Settings, profile_path: Path, registry: CollectorRegistry
) -> Iterator[TestClient]:
    settings = settings.model_copy(update={"reference_profile": profile_path})
    with TestClient(create_app(settings, model=FakeModel(), registry=registry)) as client:
        yield client


def test_info_says_what_drift_is_measured_against(
    drift_client: TestClient, profile_path: Path
) -> None:
    drift = drift_client.get("/info").json()["drift"]
    profile = load_profile(profile_path)
    assert drift == {
        "available": True,
        "reason": None,
        "profile": str(profile_path),
        "reference": profile.summary(),
        "calibration": "temperature",
        "reference_accuracy": pytest.approx(65 / 80),
        "skipped": [],
        "text": {
            "available": True,
            "reason": None,
            "embedding": "fp32",
            "components": 32,
            "basis": "directions fitted on every other text (160), scaled on the test texts (320)",
        },
    }


@pytest.mark.usefixtures("drift_client")
def test_the_reference_is_exported_as_gauges(
    registry: CollectorRegistry, profile_path: Path
) -> None:
    profile = load_profile(profile_path)
    value = registry.get_sample_value
    for label in LABELS:
        assert value("sentiment_reference_share", {"sentiment": label}) == pytest.approx(
            profile.label_shares[label]
        )
    assert value("sentiment_reference_accuracy") == pytest.approx(65 / 80)
    for histogram in ("sentiment_prediction_confidence", "sentiment_input_tokens"):
        for b in profile.bins(histogram):
            labels = {"histogram": histogram, "lower": b.lower, "upper": b.le}
            assert value("sentiment_reference_bucket_share", labels) == b.share
    # Three labels predicted in the reference: two degrees of freedom.
    assert (
        value("sentiment_drift_critical_value", {"statistic": "label_mix", "severity": "critical"})
        == round(chi2_isf(1e-4, 2), 4)
        == 18.4207
    )
    assert (
        value(
            "sentiment_reference_info",
            {"model": "fake-model", "revision": "test-1", "calibration": "temperature"},
        )
        == 1
    )


def _calibrated(profile: ReferenceProfile, texts: list[str]) -> np.ndarray:
    probs = np.array([[fake_prediction(t).probabilities[label] for label in LABELS] for t in texts])
    assert profile.calibration is not None
    return profile.calibration.apply(probs)


def test_each_text_adds_its_calibrated_probabilities_to_the_estimate(
    drift_client: TestClient, registry: CollectorRegistry, profile_path: Path
) -> None:
    value = registry.get_sample_value
    for label in LABELS:  # every child exists before traffic
        assert value("sentiment_estimated_correct_total", {"sentiment": label}) == 0
        assert value("sentiment_estimated_class_total", {"sentiment": label}) == 0
    texts = ["i love it", "bad news", "the train", "great stuff"]
    assert drift_client.post("/predict", json={"text": texts[0]}).status_code == 200
    assert drift_client.post("/predict/batch", json={"texts": texts[1:]}).status_code == 200
    calibrated = _calibrated(load_profile(profile_path), texts)
    for i, label in enumerate(LABELS):
        predicted_here = [
            row[i]
            for t, row in zip(texts, calibrated, strict=True)
            if fake_prediction(t).label == label
        ]
        assert value("sentiment_estimated_correct_total", {"sentiment": label}) == pytest.approx(
            math.fsum(predicted_here)
        )
        assert value("sentiment_estimated_class_total", {"sentiment": label}) == pytest.approx(
            float(calibrated[:, i].sum())
        )


def _drift_series(registry: CollectorRegistry) -> list[str]:
    return [
        m.name
        for m in registry.collect()
        if m.name.startswith(
            ("sentiment_reference", "sentiment_estimated", "sentiment_drift", "sentiment_text")
        )
    ]


def test_without_a_profile_no_drift_series_exist_and_info_says_why(
    client: TestClient, registry: CollectorRegistry
) -> None:
    assert _drift_series(registry) == []
    assert client.get("/info").json()["drift"] == NO_PROFILE


def test_drift_can_be_switched_off(
    settings: Settings, profile_path: Path, registry: CollectorRegistry
) -> None:
    settings = settings.model_copy(update={"reference_profile": profile_path, "drift": False})
    with TestClient(create_app(settings, model=FakeModel(), registry=registry)) as client:
        assert client.post("/predict", json={"text": "i love it"}).status_code == 200
        assert (
            client.get("/info").json()["drift"]["reason"] == "drift is off (SENTIMON_DRIFT=false)"
        )
    assert _drift_series(registry) == []


def test_a_stale_profile_is_refused_at_start_with_the_reason_in_the_log(
    settings: Settings,
    tmp_path: Path,
    registry: CollectorRegistry,
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    profile = build_profile(FakeModel(), Texts(TEXTS))
    path = tmp_path / "other.json"
    profile.write(path)
    settings = settings.model_copy(update={"reference_profile": path})
    model = FakeModel()
    model._info = dataclasses.replace(model.info, revision="test-2")
    with TestClient(create_app(settings, model=model, registry=registry)) as client:
        reason = client.get("/info").json()["drift"]["reason"]
    assert reason == (
        f"the reference profile {path} was built for fake-model revision test-1, but "
        "revision test-2 is serving: rebuild it with `sentimon model profile`"
    )
    assert _drift_series(registry) == []
    [event] = [line for line in log_lines() if line.get("event") == "drift_off"]
    assert event["reason"] == reason
    assert event["level"] == "warning"


def test_an_unlabelled_profile_has_no_accuracy_and_says_so(
    settings: Settings, tmp_path: Path, registry: CollectorRegistry
) -> None:
    profile = build_profile(FakeModel(), Texts(TEXTS))
    path = tmp_path / "unlabelled.json"
    profile.write(path)
    settings = settings.model_copy(update={"reference_profile": path})
    with TestClient(create_app(settings, model=FakeModel(), registry=registry)) as client:
        drift = client.get("/info").json()["drift"]
        assert client.post("/predict", json={"text": "i love it"}).status_code == 200
    assert drift["calibration"] == "none"
    assert drift["reference_accuracy"] is None
    assert drift["skipped"] == [
        "accuracy, confusion matrix and label-shift estimate: the texts have no labels",
        "calibration (the accuracy estimate uses raw probabilities): no labelled texts to "
        "fit it on",
    ]
    assert registry.get_sample_value("sentiment_reference_accuracy") is None
    # Raw probabilities feed the estimate when there is no calibration.
    assert registry.get_sample_value(
        "sentiment_estimated_correct_total", {"sentiment": "positive"}
    ) == pytest.approx(fake_prediction("i love it").score)


def test_each_text_adds_its_embedding_scores_to_the_text_drift_sums(
    drift_client: TestClient, registry: CollectorRegistry, profile_path: Path
) -> None:
    value = registry.get_sample_value
    assert value("sentiment_text_drift_texts_total") == 0  # the warm-up text is not counted
    texts = ["i love it", "bad news", "the train", "great stuff"]
    assert drift_client.post("/predict", json={"text": texts[0]}).status_code == 200
    assert drift_client.post("/predict/batch", json={"texts": texts[1:]}).status_code == 200
    basis = load_profile(profile_path).text["fp32"]
    z, residual = basis.scorer().score(np.array([fake_embedding(t) for t in texts]))
    assert value("sentiment_text_drift_texts_total") == 4
    assert value("sentiment_text_drift_residual_total") == pytest.approx(residual.sum(), rel=1e-5)
    for j in range(basis.components):
        up = value(
            "sentiment_text_drift_component_total", {"component": f"{j:02d}", "part": "positive"}
        )
        down = value(
            "sentiment_text_drift_component_total", {"component": f"{j:02d}", "part": "negative"}
        )
        assert up is not None and down is not None and min(up, down) >= 0
        assert up - down == pytest.approx(z[:, j].sum(), abs=1e-5)  # float32 sums
    assert value("sentiment_reference_text_n") == 320
    assert value("sentiment_reference_text_components") == 32
    assert value("sentiment_reference_text_residual_sd") == pytest.approx(basis.residual_sd)
    critical = {"statistic": "text", "severity": "critical"}
    assert value("sentiment_drift_critical_value", critical) == round(chi2_isf(1e-4 / 2, 32), 4)


def _text_series(registry: CollectorRegistry) -> list[str]:
    return [m.name for m in registry.collect() if m.name.startswith("sentiment_text_drift")]


def test_a_basis_for_other_arithmetic_is_not_used_and_info_says_why(
    settings: Settings,
    profile_path: Path,
    registry: CollectorRegistry,
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    profile = load_profile(profile_path)
    other = dataclasses.replace(profile, text={"int8-4-vnni": profile.text["fp32"]})
    other.write(profile_path)
    settings = settings.model_copy(update={"reference_profile": profile_path})
    with TestClient(create_app(settings, model=FakeModel(), registry=registry)) as client:
        drift = client.get("/info").json()["drift"]
        assert client.post("/predict", json={"text": "i love it"}).status_code == 200
    reason = (
        "the reference profile has no text-embedding basis for fp32 embeddings (it has: "
        "int8-4-vnni); an embedding computed with other arithmetic sits apart enough to raise "
        "false alarms. Build one where this model serves: `sentimon model profile --texts "
        "FILE` (the bundled model: `sentimon model refresh-profile`)"
    )
    assert drift["available"] is True
    assert drift["text"] == {
        "available": False,
        "reason": reason,
        "embedding": "fp32",
        "components": None,
        "basis": None,
    }
    assert _text_series(registry) == []
    assert registry.get_sample_value("sentiment_estimated_correct_total", {"sentiment": "positive"})
    [event] = [line for line in log_lines() if line.get("event") == "text_drift_off"]
    assert event["reason"] == reason


def test_text_drift_can_be_switched_off_alone(
    settings: Settings, profile_path: Path, registry: CollectorRegistry
) -> None:
    settings = settings.model_copy(update={"reference_profile": profile_path, "text_drift": False})
    with TestClient(create_app(settings, model=FakeModel(), registry=registry)) as client:
        text = client.get("/info").json()["drift"]["text"]
    assert text["reason"] == "text drift is off (SENTIMON_TEXT_DRIFT=false)"
    assert _text_series(registry) == []
    assert registry.get_sample_value("sentiment_reference_accuracy") == pytest.approx(65 / 80)
