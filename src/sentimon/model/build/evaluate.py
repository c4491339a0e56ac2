"""Classification metrics, computed from labels alone (no external library)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Scores:
    n: int
    accuracy: float
    macro_f1: float
    f1: dict[str, float]
    confusion: list[list[int]]
    """confusion[true][predicted], rows and columns in label order."""

    def as_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "f1": self.f1,
            "confusion": self.confusion,
        }


def score(labels: Sequence[str], truth: Sequence[int], predicted: Sequence[int]) -> Scores:
    """Accuracy, macro-F1, per-class F1 and the confusion matrix of `predicted` vs `truth`."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
    if not truth:
        raise ValueError("nothing to score")
    k = len(labels)
    confusion = [[0] * k for _ in range(k)]
    for t, p in zip(truth, predicted, strict=True):
        confusion[t][p] += 1
    f1: dict[str, float] = {}
    for c, name in enumerate(labels):
        tp = confusion[c][c]
        fp = sum(confusion[r][c] for r in range(k)) - tp
        fn = sum(confusion[c]) - tp
        f1[name] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    accuracy = sum(confusion[c][c] for c in range(k)) / len(truth)
    return Scores(
        n=len(truth), accuracy=accuracy, macro_f1=sum(f1.values()) / k, f1=f1, confusion=confusion
    )
