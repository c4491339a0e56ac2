"""The interface every inference backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Prediction:
    """One text's result: the top label, its probability, and every label's probability."""

    label: str
    score: float
    probabilities: dict[str, float]
    tokens: int
    """Tokens the model saw for this text, after truncation (special tokens included)."""


@dataclass(frozen=True, slots=True)
class Int8Info:
    """Which int8 recipe serves, and on which int8 kernel (`sentimon.model.cpu`)."""

    recipe: str
    """`5` (`sentimon.model.int8.RECIPE`, the same on every CPU)."""
    weight_bits: int
    cpu_class: str
    """`vnni` or `no-vnni`: whether this CPU's int8 kernel sums products in 32 bits."""
    kernel: str
    """ONNX Runtime's int8 kernel on this CPU: `avx512-vnni`, `avx2`, ..."""
    description: str


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What is being served; shown by `GET /info` and the `sentiment_model_info` metric."""

    name: str
    revision: str
    backend: str
    labels: tuple[str, ...]
    max_tokens: int
    source: str
    int8: Int8Info | None = None
    """Set when the ONNX backend serves int8."""
    packed: bool = False
    """The backend packs a call's texts end to end into rows (`sentimon.model.packing`), so
    the batcher cuts a batch into packed calls of a few texts instead of padded ones sorted
    by length."""


class SentimentModel(Protocol):
    """A loaded classifier. Every method blocks; the service calls them on its worker thread."""

    @property
    def info(self) -> ModelInfo: ...

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, preprocessed and truncated, special tokens included."""
        ...

    def infer(self, ids: Sequence[Sequence[int]]) -> list[list[float]]:
        """Label probabilities (in `info.labels` order) per row; the backend pads the rows."""
        ...

    def infer_with_embeddings(
        self, ids: Sequence[Sequence[int]]
    ) -> tuple[list[list[float]], npt.NDArray[np.float32]]:
        """`infer`, and from the same forward pass each row's sentence embedding: the final
        hidden state of its first token, which the classifier head reads (rows x hidden)."""
        ...

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """`tokenize` then `infer`, for callers without a batcher (CLI, evaluation)."""
        ...


def to_prediction(labels: tuple[str, ...], probs: Sequence[float], tokens: int) -> Prediction:
    best = max(range(len(probs)), key=probs.__getitem__)
    return Prediction(
        label=labels[best],
        score=float(probs[best]),
        probabilities={label: float(p) for label, p in zip(labels, probs, strict=True)},
        tokens=tokens,
    )
