"""The label-free estimate's counters: the sums CBPE needs, the same on both code paths."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentimon.drift.calibration import Calibration
from sentimon.drift.counters import DriftCounters
from sentimon.drift.reference import load_profile
from sentimon.metrics.drift import build_drift_metrics
from tests.fakes import LABELS, fake_prediction
from tests.unit.drift.test_reference import BUNDLED

TEXTS = ["i love it", "bad news", "the train", "great", "so sad today"]


def _counters(calibration: Calibration | None) -> tuple[DriftCounters, CollectorRegistry]:
    registry = CollectorRegistry()
    profile = load_profile(BUNDLED / "reference_profile.json")
    metrics = build_drift_metrics(registry, profile)
    return DriftCounters(LABELS, calibration, metrics), registry


def _sums(registry: CollectorRegistry) -> list[float]:
    return [
        registry.get_sample_value(name, {"sentiment": label}) or 0.0
        for name in ("sentiment_estimated_correct_total", "sentiment_estimated_class_total")
        for label in LABELS
    ]


@pytest.mark.parametrize("temperature", [None, 0.7, 1.6])
def test_small_requests_add_what_a_large_batch_adds(temperature: float | None) -> None:
    calibration = (
        Calibration(
            method="temperature",
            temperature=temperature,
            isotonic=None,
            labels=LABELS,
            ece_before=None,
            ece_after=None,
            n=1,
            fitted_on="test",
        )
        if temperature
        else None
    )
    small, small_registry = _counters(calibration)
    large, large_registry = _counters(calibration)
    predictions = [fake_prediction(t) for t in TEXTS]
    for p in predictions * 2:
        small.observe([p])  # the plain-Python path
    large.observe(predictions * 2)  # ten texts: the numpy path
    assert _sums(small_registry) == pytest.approx(_sums(large_registry), abs=1e-12)
    # And both are the CBPE sums of the calibrated probabilities.
    probs = np.array([[p.probabilities[label] for label in LABELS] for p in predictions * 2])
    calibrated = calibration.apply(probs) if calibration else probs
    assert _sums(large_registry)[3:] == pytest.approx(calibrated.sum(axis=0).tolist())
    top = [row[LABELS.index(p.label)] for p, row in zip(predictions * 2, calibrated, strict=True)]
    assert sum(_sums(large_registry)[:3]) == pytest.approx(sum(top))


def test_an_empty_request_adds_nothing() -> None:
    counters, registry = _counters(None)
    counters.observe([])
    assert _sums(registry) == [0.0] * 6
