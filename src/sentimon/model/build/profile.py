"""The reference profile that drift detection compares live traffic against."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sentimon.model.base import Prediction

CONFIDENCE_EDGES = (1 / 3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
TOKEN_EDGES = (0, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512)


def histogram(values: Sequence[float], edges: Sequence[float]) -> list[float]:
    """Share of `values` in each [edges[i], edges[i+1]) bin; the last bin includes its right edge
    and anything beyond it."""
    counts = [0] * (len(edges) - 1)
    for v in values:
        i = len(edges) - 2
        for j in range(len(edges) - 1):
            if v < edges[j + 1]:
                i = j
                break
        counts[max(i, 0)] += 1
    total = max(len(values), 1)
    return [round(c / total, 6) for c in counts]


def quantiles(
    values: Sequence[float], qs: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95)
) -> dict[str, float]:
    ordered = sorted(values)
    return (
        {f"p{round(q * 100)}": ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in qs}
        if ordered
        else {}
    )


def reference_profile(
    labels: Sequence[str], predictions: Sequence[Prediction], description: str
) -> dict[str, Any]:
    """Label shares, confidence and input-length distributions of `predictions`."""
    n = len(predictions)
    confidences = [p.score for p in predictions]
    tokens = [float(p.tokens) for p in predictions]
    return {
        "description": description,
        "n": n,
        "label_shares": {
            lab: round(sum(p.label == lab for p in predictions) / max(n, 1), 6) for lab in labels
        },
        "confidence": {
            "edges": [round(e, 6) for e in CONFIDENCE_EDGES],
            "shares": histogram(confidences, CONFIDENCE_EDGES),
            "mean": round(sum(confidences) / max(n, 1), 6),
            "quantiles": {k: round(v, 6) for k, v in quantiles(confidences).items()},
        },
        "input_tokens": {
            "edges": list(TOKEN_EDGES),
            "shares": histogram(tokens, TOKEN_EDGES),
            "mean": round(sum(tokens) / max(n, 1), 3),
            "quantiles": quantiles(tokens),
        },
    }
