"""The interface every inference backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Prediction:
    """One text's result: the top label, its probability, and every label's probability."""

    label: str
    score: float
    probabilities: dict[str, float]
    tokens: int
    """Tokens the model saw for this text, after truncation (special tokens included)."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What is being served; shown by `GET /info` and the `sentiment_model_info` metric."""

    name: str
    revision: str
    backend: str
    labels: tuple[str, ...]
    max_tokens: int
    source: str


class SentimentModel(Protocol):
    """A loaded classifier. `predict` is blocking and is only called from the worker thread."""

    @property
    def info(self) -> ModelInfo: ...

    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...
