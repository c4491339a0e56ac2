"""Deterministic stand-ins for a model, for tests that exercise everything but the weights."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from sentimon.model.base import ModelInfo, Prediction

LABELS = ("negative", "neutral", "positive")
_POSITIVE = ("love", "great", "good", "happy")
_NEGATIVE = ("hate", "awful", "bad", "sad")


def fake_prediction(text: str) -> Prediction:
    """Keyword label; the other probabilities vary with the text, so results are traceable."""
    text = " ".join(text.split())
    lowered = text.lower()
    if any(w in lowered for w in _POSITIVE):
        top = 2
    elif any(w in lowered for w in _NEGATIVE):
        top = 0
    else:
        top = 1
    spread = (zlib.crc32(text.encode("utf-8", "surrogatepass")) % 1000) / 10_000  # 0..0.1
    probs = [0.1 - spread / 2, 0.1 - spread / 2, 0.1 - spread / 2]
    probs[top] = 0.8 + spread * 1.5
    total = sum(probs)
    probs = [p / total for p in probs]
    return Prediction(
        label=LABELS[top],
        score=probs[top],
        probabilities=dict(zip(LABELS, probs, strict=True)),
        tokens=len(text.split()) + 2,
    )


EMBEDDING_SIZE = 48


def fake_embedding(text: str) -> npt.NDArray[np.float32]:
    """The mean of a fixed random vector per word: texts sharing words sit close together."""
    words = text.lower().split() or [""]
    rows = [
        np.random.default_rng(zlib.crc32(w.encode("utf-8", "surrogatepass"))).normal(
            size=EMBEDDING_SIZE
        )
        for w in words
    ]
    embedding: npt.NDArray[np.float32] = np.mean(rows, axis=0).astype(np.float32)
    return embedding


class FakeModel:
    """Keyword classifier with a reversible word-level tokenizer; records what it is asked.

    `tokenize` gives one id per word plus two special ids, so a text's token count is its word
    count + 2; `infer` decodes the ids and returns `fake_prediction`'s probabilities.
    """

    def __init__(self, name: str = "fake-model") -> None:
        self.calls: list[list[str]] = []
        self.infer_calls: list[int] = []
        self.texts_seen: list[list[str]] = []
        self.embedded: list[int] = []
        """Rows per `infer_with_embeddings` call."""
        self.threads: set[str] = set()
        self._vocab: dict[str, int] = {}
        self._words: dict[int, str] = {}
        self._info = ModelInfo(
            name=name,
            revision="test-1",
            backend="fake",
            labels=LABELS,
            max_tokens=128,
            source="tests",
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        self.threads.add(threading.current_thread().name)
        rows = []
        for text in texts:
            ids = [self._vocab.setdefault(w, len(self._vocab) + 3) for w in text.split()]
            for word, i in zip(text.split(), ids, strict=True):
                self._words[i] = word
            rows.append([1, *ids, 2])
        return rows

    def decode(self, row: Sequence[int]) -> str:
        return " ".join(self._words[i] for i in row[1:-1])

    def infer(self, ids: Sequence[Sequence[int]]) -> list[list[float]]:
        self.threads.add(threading.current_thread().name)
        texts = [self.decode(row) for row in ids]
        self.infer_calls.append(len(ids))
        self.texts_seen.append(texts)
        return [[fake_prediction(t).probabilities[lab] for lab in LABELS] for t in texts]

    def infer_with_embeddings(
        self, ids: Sequence[Sequence[int]]
    ) -> tuple[list[list[float]], npt.NDArray[np.float32]]:
        probs = self.infer(ids)
        self.embedded.append(len(ids))
        return probs, np.array([fake_embedding(self.decode(row)) for row in ids], np.float32)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        self.calls.append(list(texts))
        self.infer(self.tokenize(texts))
        return [fake_prediction(t) for t in texts]


class FailingModel(FakeModel):
    """Fails every call whose texts include `boom`."""

    def infer(self, ids: Sequence[Sequence[int]]) -> list[list[float]]:
        if any("boom" in self.decode(row) for row in ids):
            raise RuntimeError("the model broke")
        return super().infer(ids)


class BlockingModel(FakeModel):
    """Blocks each call (but warm-up's) until `release` is set; `started` tells it is blocked."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.started = threading.Event()

    def infer(self, ids: Sequence[Sequence[int]]) -> list[list[float]]:
        if not any(self.decode(row).startswith("warm-up") for row in ids):
            self.started.set()
            self.release.wait(timeout=10)
        return super().infer(ids)
