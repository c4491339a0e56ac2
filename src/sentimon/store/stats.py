"""Feedback statistics from confusion-matrix counts: agreement with its Wilson interval, and
per-class precision, recall and F1. The same arithmetic the Prometheus recording rules do
over `sentiment_feedback_total`, so a test can check one against the other.

Feedback is sparse and biased (people report the answers that surprised them), so this is
"feedback agreement", not accuracy on all traffic: always read it with its n and interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

Z95 = 1.959964
"""Two-sided 95% normal quantile."""
Z99_ONE_SIDED = 2.326348
"""One-sided 99% normal quantile (the low-accuracy alert's upper bound)."""
UNKNOWN = "unknown"
"""The actual label of feedback that only said "wrong"."""


@dataclass(frozen=True, slots=True)
class ClassScores:
    predicted: int
    """Feedback on predictions of this class."""
    actual: int
    """Feedback whose right label is this class."""
    true_positives: int
    precision: float | None
    recall: float | None
    f1: float | None
    """None when the class has neither predictions nor actual labels in the feedback."""


@dataclass(frozen=True, slots=True)
class FeedbackScores:
    n: int
    correct: int
    agreement: float | None
    lower95: float | None
    upper95: float | None
    upper99_one_sided: float | None
    classes: dict[str, ClassScores]
    macro_f1: float | None
    """Mean F1 over the classes that have an F1."""


def wilson(k: float, n: float, z: float) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials (n > 0)."""
    if n <= 0:
        raise ValueError("n must be positive")
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return centre - half, centre + half


def scores(counts: Mapping[tuple[str, str], int]) -> FeedbackScores:
    """Scores from feedback counts keyed by (predicted, actual); actual may be `unknown`."""
    n = sum(counts.values())
    correct = sum(v for (predicted, actual), v in counts.items() if predicted == actual)
    labels = sorted({p for p, _ in counts} | {a for _, a in counts if a != UNKNOWN})
    classes = {}
    for label in labels:
        predicted = sum(v for (p, _), v in counts.items() if p == label)
        actual = sum(v for (_, a), v in counts.items() if a == label)
        tp = counts.get((label, label), 0)
        classes[label] = ClassScores(
            predicted=predicted,
            actual=actual,
            true_positives=tp,
            precision=tp / predicted if predicted else None,
            recall=tp / actual if actual else None,
            f1=2 * tp / (predicted + actual) if predicted + actual else None,
        )
    f1s = [c.f1 for c in classes.values() if c.f1 is not None]
    if not n:
        return FeedbackScores(0, 0, None, None, None, None, classes, None)
    lower95, upper95 = wilson(correct, n, Z95)
    return FeedbackScores(
        n=n,
        correct=correct,
        agreement=correct / n,
        lower95=lower95,
        upper95=upper95,
        upper99_one_sided=wilson(correct, n, Z99_ONE_SIDED)[1],
        classes=classes,
        macro_f1=sum(f1s) / len(f1s) if f1s else None,
    )
