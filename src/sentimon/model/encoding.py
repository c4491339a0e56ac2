"""Text → token ids (preprocessed, truncated) and padded arrays, shared by every backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from sentimon.model.base import ModelInfo, Prediction, to_prediction
from sentimon.model.preprocess import preprocess

IntArray = npt.NDArray[np.int64]


class TextEncoder:
    def __init__(self, tokenizer: Any, max_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        pad_id = tokenizer.pad_token_id
        self.pad_id = int(pad_id if pad_id is not None else 0)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text (special tokens included, no padding)."""
        encoded = self.tokenizer(
            [preprocess(t) for t in texts], truncation=True, max_length=self.max_tokens
        )
        return [list(ids) for ids in encoded["input_ids"]]

    def pad(self, ids: Sequence[Sequence[int]]) -> tuple[IntArray, IntArray]:
        """Right-pad rows to the longest: (input_ids, attention_mask)."""
        width = max(len(row) for row in ids)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return input_ids, mask


class EncodedClassifier(ABC):
    """Shared by the backends: tokenization through `encoder`, `predict` from `infer`."""

    encoder: TextEncoder

    @property
    @abstractmethod
    def info(self) -> ModelInfo: ...

    @abstractmethod
    def forward(
        self, ids: Sequence[Sequence[int]], embeddings: bool
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
        """Logits per row and, when `embeddings`, each row's final hidden state of its first
        token (the sentence embedding the classifier head reads); rows are padded here."""

    def infer(self, ids: Sequence[Sequence[int]]) -> list[list[float]]:
        if not ids:
            return []
        logits, _ = self.forward(ids, embeddings=False)
        return softmax(logits)

    def infer_with_embeddings(
        self, ids: Sequence[Sequence[int]]
    ) -> tuple[list[list[float]], npt.NDArray[np.float32]]:
        if not ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        logits, pooled = self.forward(ids, embeddings=True)
        assert pooled is not None
        return softmax(logits), pooled

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return self.encoder.tokenize(texts)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        ids = self.tokenize(texts)
        labels = self.info.labels
        return [
            to_prediction(labels, p, len(row)) for p, row in zip(self.infer(ids), ids, strict=True)
        ]


def softmax(logits: npt.NDArray[np.float32]) -> list[list[float]]:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs: list[list[float]] = (shifted / shifted.sum(axis=-1, keepdims=True)).tolist()
    return probs
