"""Metrics of the prediction log and of feedback: every one a counter, histogram or plain
gauge, so replicas add up (accuracy and F1 are computed by recording rules from the
confusion-matrix counter, never per replica)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Why a prediction row was not written (closed set).
DROP_REASONS = ("queue_full", "duplicate_id", "db_error", "shutdown")
# What became of a POST /feedback (closed set).
FEEDBACK_OUTCOMES = (
    "created",
    "duplicate",
    "conflict",
    "unknown_request_id",
    "prediction_expired",
    "invalid",
    "store_unavailable",
)
UNKNOWN_ACTUAL = "unknown"
"""`actual` of feedback that says a prediction was wrong without giving the right label."""
# Prediction to feedback: 10 s to 7 days.
FEEDBACK_DELAY_BUCKETS = (10, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 2 * 86400, 7 * 86400)
WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class StoreMetrics:
    rows_written: Counter
    rows_dropped: Counter
    queue_depth: Gauge
    write_seconds: Histogram
    up: Gauge
    rows_deleted: Counter
    feedback: Counter
    feedback_requests: Counter
    feedback_delay: Histogram

    def init_label_series(self, labels: Iterable[str]) -> None:
        """Every confusion-matrix cell and outcome exists at 0 before the first feedback."""
        labels = tuple(labels)
        for predicted in labels:
            for actual in (*labels, UNKNOWN_ACTUAL):
                correct = "true" if actual == predicted else "false"
                self.feedback.labels(predicted=predicted, actual=actual, correct=correct)


def build_store_metrics(registry: CollectorRegistry) -> StoreMetrics:
    m = StoreMetrics(
        rows_written=Counter(
            "sentiment_store_writes_total",
            "Prediction rows committed to the database.",
            registry=registry,
        ),
        rows_dropped=Counter(
            "sentiment_store_dropped_total",
            "Prediction rows not written, by reason (the answer went out regardless).",
            ["reason"],
            registry=registry,
        ),
        queue_depth=Gauge(
            "sentiment_store_queue_depth",
            "Prediction rows waiting to be written.",
            registry=registry,
        ),
        write_seconds=Histogram(
            "sentiment_store_write_seconds",
            "Time to insert and commit one batch of prediction rows.",
            buckets=WRITE_BUCKETS,
            registry=registry,
        ),
        up=Gauge(
            "sentiment_store_up",
            "1 when the last database operation succeeded, else 0.",
            registry=registry,
        ),
        rows_deleted=Counter(
            "sentiment_store_deleted_total",
            "Prediction rows (with their feedback) deleted by retention, by rule.",
            ["rule"],
            registry=registry,
        ),
        feedback=Counter(
            "sentiment_feedback_total",
            "Feedback recorded, by predicted and actual label (a confusion matrix); "
            'actual="unknown" when only "wrong" was said; correct="true" on the diagonal.',
            ["predicted", "actual", "correct"],
            registry=registry,
        ),
        feedback_requests=Counter(
            "sentiment_feedback_requests_total",
            "POST /feedback requests, by outcome.",
            ["outcome"],
            registry=registry,
        ),
        feedback_delay=Histogram(
            "sentiment_feedback_delay_seconds",
            "Time from a prediction to its (first) feedback.",
            buckets=FEEDBACK_DELAY_BUCKETS,
            registry=registry,
        ),
    )
    for reason in DROP_REASONS:
        m.rows_dropped.labels(reason=reason)
    for outcome in FEEDBACK_OUTCOMES:
        m.feedback_requests.labels(outcome=outcome)
    for rule in ("age", "rows"):
        m.rows_deleted.labels(rule=rule)
    return m
