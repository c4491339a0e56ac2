"""The answer of `GET /live`: this replica's recent numbers, from its metrics history, its
reference profile and the settings' links (see `sentimon.metrics.live`)."""

from __future__ import annotations

from sentimon.drift.reference import CONFIDENCE_HISTOGRAM, ReferenceProfile
from sentimon.drift.stats import chi2_isf, chi_square
from sentimon.metrics.drift import ALPHAS
from sentimon.metrics.live import (
    NOW_WINDOW_S,
    LiveHistory,
    Window,
    feedback_agreement,
    read_snapshot,
)
from sentimon.schemas import (
    LiveDriftOut,
    LiveDriftTestOut,
    LiveFeedbackOut,
    LiveOut,
    LivePointOut,
    LiveTotalsOut,
)
from sentimon.service import SentimentService

DRIFT_WINDOW_S = 300.0
"""The alerts' window (`..._5m` rules)."""
DRIFT_MIN_N = 500
"""The alerts' gate: no drift verdict from fewer predictions."""


def live_view(service: SentimentService, history: LiveHistory) -> LiveOut:
    info = service.require_info()
    labels = list(info.labels)
    now = read_snapshot(history.registry)
    last_minute = history.since(NOW_WINDOW_S, labels, now)
    settings = service.settings
    links = {
        "prometheus": settings.prometheus_url,
        "alertmanager": settings.alertmanager_url,
        "grafana": settings.grafana_url,
    }
    reference = service.reference
    return LiveOut(
        model=info.name,
        model_revision=info.revision,
        backend=info.backend,
        labels=labels,
        started_at=history.started_at,
        now=now.t,
        interval_s=history.interval_s,
        last_minute=_point(last_minute) if last_minute else None,
        series=[_point(w) for w in history.windows(labels)],
        totals=LiveTotalsOut(
            requests=round(sum(now.requests.values())),
            errors=round(now.requests.get("5xx", 0.0)),
            rejected=round(now.requests.get("4xx", 0.0)),
            predictions={label: round(now.predictions.get(label, 0.0)) for label in labels},
        ),
        reference_label_shares=dict(reference.label_shares) if reference else None,
        drift=_drift(service, history.since(DRIFT_WINDOW_S, labels, now)),
        feedback=_feedback(service, now.feedback),
        links={name: url for name, url in links.items() if url},
    )


def _point(w: Window) -> LivePointOut:
    return LivePointOut(
        start=w.start,
        end=w.end,
        requests_per_s=w.requests_per_s,
        error_ratio=w.error_ratio,
        rejected_ratio=w.rejected_ratio,
        predictions_per_s=w.predictions_per_s,
        p50_ms=None if w.p50_s is None else 1000 * w.p50_s,
        p95_ms=None if w.p95_s is None else 1000 * w.p95_s,
        label_shares=w.label_shares,
        mean_confidence=w.mean_confidence,
    )


def _drift(service: SentimentService, w: Window | None) -> LiveDriftOut:
    reference = service.reference
    if reference is None:
        return LiveDriftOut(available=False, reason=service.drift_off or "no reference profile")
    if w is None:
        return LiveDriftOut(available=False, reason="waiting for a second sample")
    tests = [
        _test(
            "label_mix",
            [w.predictions[label] for label in reference.labels],
            [reference.label_shares[label] for label in reference.labels],
        ),
        _test("confidence", *_confidence_bins(reference, w)),
    ]
    return LiveDriftOut(
        available=True,
        window_s=w.end - w.start,
        min_n=DRIFT_MIN_N,
        tests=[t for t in tests if t is not None],
    )


def _confidence_bins(reference: ReferenceProfile, w: Window) -> tuple[list[float], list[float]]:
    buckets = w.confidence.buckets
    counts, shares = [], []
    for b in reference.bins(CONFIDENCE_HISTOGRAM):
        below = 0.0 if b.lower == "-Inf" else buckets.get(b.lower, 0.0)
        counts.append(buckets.get(b.le, 0.0) - below)
        shares.append(b.share)
    return counts, shares


def _test(statistic: str, counts: list[float], shares: list[float]) -> LiveDriftTestOut | None:
    if sum(1 for s in shares if s > 0) < 2:
        return None  # one populated bin: nothing to test (as the rules)
    result = chi_square(counts, shares)
    critical = chi2_isf(ALPHAS["critical"], result.df)
    n = round(result.n)
    if n < DRIFT_MIN_N:
        status = "too few"
    else:
        status = "drifting" if result.statistic > critical else "ok"
    return LiveDriftTestOut(
        statistic=statistic,
        n=n,
        chi2=result.statistic if n else None,
        critical_value=round(critical, 4),
        status=status,
    )


def _feedback(
    service: SentimentService, feedback: dict[tuple[str, str, str], float]
) -> LiveFeedbackOut:
    if service.store is None:
        return LiveFeedbackOut(available=False, reason="the store is off (SENTIMON_STORE=false)")
    n, right = feedback_agreement(feedback)
    return LiveFeedbackOut(available=True, n=n, right=right, agreement=right / n if n else None)
