"""Metrics of drift and of the label-free accuracy estimate: the reference as gauges and what
each prediction adds as counters. Every statistic (chi-square, p-value, PSI, estimated
accuracy and F1) is computed by recording rules over the whole fleet, never per replica: a
replica sees a fraction of the traffic and loses its window at a restart.

Registered only when the model has a usable reference profile; without one these series do
not exist (no zeros that would read as "no drift").
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from sentimon.drift.reference import CONFIDENCE_HISTOGRAM, TOKENS_HISTOGRAM, ReferenceProfile
from sentimon.drift.stats import chi2_isf, text_critical_values
from sentimon.drift.text import TextBasis
from sentimon.metrics.text_drift import TextDriftSums, register_text_drift

ALPHAS = {"critical": 1e-4, "info": 1e-3}
"""Significance of the drift alerts by severity: at a 15 s evaluation these give no false
label-mix alert in a simulated stationary month (critical) and about 0.1 a day (info)."""


@dataclass(frozen=True)
class DriftMetrics:
    estimated_correct: Counter
    estimated_class: Counter
    text: TextDriftSums | None = None
    """The text-drift sums, when the profile has a basis for the served embeddings."""


def build_drift_metrics(
    registry: CollectorRegistry, profile: ReferenceProfile, text: TextBasis | None = None
) -> DriftMetrics:
    """Register the drift metrics and set the reference gauges from `profile`; with `text`,
    the text-drift metrics in that basis too."""
    labels = profile.labels
    reference_info = Gauge(
        "sentiment_reference_info",
        "The reference profile drift is measured against (always 1).",
        ["model", "revision", "calibration"],
        registry=registry,
    )
    calibration = profile.calibration.method if profile.calibration else "none"
    reference_info.labels(
        model=profile.model, revision=profile.revision, calibration=calibration
    ).set(1)

    share = Gauge(
        "sentiment_reference_share",
        "Share of each top label in the reference profile.",
        ["sentiment"],
        registry=registry,
    )
    for label in labels:
        share.labels(sentiment=label).set(profile.label_shares[label])

    bucket_share = Gauge(
        "sentiment_reference_bucket_share",
        "Reference share of each merged bucket (lower, upper] of a histogram "
        "(sentiment_prediction_confidence summed over sentiment, sentiment_input_tokens).",
        ["histogram", "lower", "upper"],
        registry=registry,
    )
    critical = Gauge(
        "sentiment_drift_critical_value",
        "Value above which a drift test rejects the reference, by severity: a chi-square, "
        "or |z| for text_residual.",
        ["statistic", "severity"],
        registry=registry,
    )
    dfs = {"label_mix": sum(1 for label in labels if profile.label_shares[label] > 0) - 1}
    for histogram, statistic in (
        (CONFIDENCE_HISTOGRAM, "confidence"),
        (TOKENS_HISTOGRAM, "input_tokens"),
    ):
        bins = profile.bins(histogram)
        for b in bins:
            bucket_share.labels(histogram=histogram, lower=b.lower, upper=b.le).set(b.share)
        dfs[statistic] = sum(1 for b in bins if b.share > 0) - 1
    for statistic, df in dfs.items():
        if df < 1:
            continue  # one populated bin: nothing to test
        for severity, alpha in ALPHAS.items():
            critical.labels(statistic=statistic, severity=severity).set(
                round(chi2_isf(alpha, df), 4)
            )
    if text is not None:
        for severity, alpha in ALPHAS.items():
            chi2, z = text_critical_values(alpha, text.components)
            critical.labels(statistic="text", severity=severity).set(round(chi2, 4))
            critical.labels(statistic="text_residual", severity=severity).set(round(z, 4))

    if profile.labelled is not None:
        accuracy = Gauge(
            "sentiment_reference_accuracy",
            "Accuracy of the model on the reference profile's labelled texts.",
            registry=registry,
        )
        accuracy.set(profile.labelled.accuracy)
        weight = Gauge(
            "sentiment_reference_bbse_weight",
            "Black-box shift estimation: live accuracy under label shift is the sum over "
            "predicted labels of this weight times the label's live share.",
            ["sentiment"],
            registry=registry,
        )
        for label, w in profile.bbse_weights().items():
            weight.labels(sentiment=label).set(w)

    m = DriftMetrics(
        estimated_correct=Counter(
            "sentiment_estimated_correct_total",
            "Sum over texts predicted this label of the calibrated top probability "
            "(the expected number of them that are right).",
            ["sentiment"],
            registry=registry,
        ),
        estimated_class=Counter(
            "sentiment_estimated_class_total",
            "Sum over all texts of the calibrated probability of this label "
            "(the expected number of texts that truly are this label).",
            ["sentiment"],
            registry=registry,
        ),
        text=register_text_drift(registry, text) if text is not None else None,
    )
    for label in labels:
        m.estimated_correct.labels(sentiment=label)
        m.estimated_class.labels(sentiment=label)
    return m
