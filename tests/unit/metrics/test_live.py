"""The Watch view's arithmetic: snapshots read from a registry, windows between them, and
Prometheus's histogram_quantile."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from sentimon.metrics.live import (
    Histogram as Buckets,
)
from sentimon.metrics.live import (
    LiveHistory,
    feedback_agreement,
    histogram_quantile,
    read_snapshot,
    window,
)

LABELS = ("negative", "neutral", "positive")


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        # 10 observations in (0, 0.1], 10 in (0.1, 0.2]: the rank falls inside a bucket.
        (0.5, 0.1),
        (0.25, 0.05),
        (0.95, 0.19),
        (0.75, 0.15),
    ],
)
def test_quantile_interpolates_linearly_in_the_bucket_of_its_rank(
    q: float, expected: float
) -> None:
    h = Buckets({"0.1": 10, "0.2": 20, "0.5": 20, "+Inf": 20})
    assert histogram_quantile(q, h) == pytest.approx(expected)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound_and_none_without_data() -> None:
    assert histogram_quantile(0.95, Buckets({"0.1": 1, "0.2": 1, "+Inf": 10})) == 0.2
    assert histogram_quantile(0.5, Buckets({"0.1": 0, "+Inf": 0})) is None


def test_snapshot_sums_over_labels_and_leaves_out_the_watch_views_own_requests() -> None:
    registry = CollectorRegistry()
    requests = Counter("http_requests", "", ["handler", "method", "status"], registry=registry)
    requests.labels("/predict", "POST", "200").inc(5)
    requests.labels("/predict", "POST", "422").inc(2)
    requests.labels("/feedback", "POST", "503").inc()
    requests.labels("/live", "GET", "200").inc(40)
    predictions = Counter("sentiment_predictions", "", ["sentiment", "endpoint"], registry=registry)
    predictions.labels("positive", "/predict").inc(3)
    predictions.labels("positive", "/predict/batch").inc(4)
    duration = Histogram(
        "sentiment_prediction_duration_seconds",
        "",
        ["endpoint"],
        buckets=(0.1, 1),
        registry=registry,
    )
    duration.labels("/predict").observe(0.05)
    duration.labels("/predict/batch").observe(0.5)
    feedback = Counter(
        "sentiment_feedback", "", ["predicted", "actual", "correct"], registry=registry
    )
    feedback.labels("positive", "positive", "true").inc(3)
    feedback.labels("positive", "unknown", "false").inc()

    s = read_snapshot(registry, now=100.0)
    assert s.requests == {"2xx": 5, "4xx": 2, "5xx": 1}
    assert s.predictions == {"positive": 7}
    assert s.duration.buckets == {"0.1": 1, "1.0": 2, "+Inf": 2}
    assert s.duration.sum == pytest.approx(0.55)
    assert feedback_agreement(s.feedback) == (4, 3)


def test_a_window_is_the_difference_of_two_snapshots() -> None:
    registry = CollectorRegistry()
    requests = Counter("http_requests", "", ["handler", "method", "status"], registry=registry)
    predictions = Counter("sentiment_predictions", "", ["sentiment", "endpoint"], registry=registry)
    confidence = Histogram(
        "sentiment_prediction_confidence", "", ["sentiment"], buckets=(0.5, 1), registry=registry
    )
    requests.labels("/predict", "POST", "200").inc(100)
    first = read_snapshot(registry, now=10.0)
    requests.labels("/predict", "POST", "200").inc(18)
    requests.labels("/predict", "POST", "500").inc(2)
    predictions.labels("negative", "/predict").inc(6)
    predictions.labels("positive", "/predict").inc(12)
    confidence.labels("negative").observe(0.4)
    confidence.labels("positive").observe(0.8)
    second = read_snapshot(registry, now=15.0)

    w = window(first, second, LABELS)
    assert w.requests_per_s == pytest.approx(4.0)
    assert w.error_ratio == pytest.approx(0.1)
    assert w.rejected_ratio == 0.0
    assert w.predictions_per_s == pytest.approx(3.6)
    assert w.label_shares == pytest.approx({"negative": 1 / 3, "neutral": 0.0, "positive": 2 / 3})
    assert w.mean_confidence == pytest.approx(0.6)
    assert w.p50_s is None  # no prediction latency was observed

    idle = window(second, read_snapshot(registry, now=20.0), LABELS)
    assert (idle.requests_per_s, idle.error_ratio, idle.label_shares) == (0.0, None, None)


def test_history_keeps_fifteen_minutes_and_finds_the_last_minute() -> None:
    history = LiveHistory(CollectorRegistry(), interval_s=5)
    assert history.snapshots.maxlen == 181
    for t in range(0, 1000, 5):
        history.snapshots.append(read_snapshot(history.registry, now=float(t)))
    assert history.snapshots[0].t == 995 - 900
    now = read_snapshot(history.registry, now=1000.0)
    last = history.since(60, LABELS, now)
    assert last is not None and (last.start, last.end) == (940.0, 1000.0)
    assert len(history.windows(LABELS)) == 180
