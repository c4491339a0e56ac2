"""Deterministic stand-ins for a model, for tests that exercise everything but the weights."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence

from sentimon.model.base import ModelInfo, Prediction

LABELS = ("negative", "neutral", "positive")
_POSITIVE = ("love", "great", "good", "happy")
_NEGATIVE = ("hate", "awful", "bad", "sad")


def fake_prediction(text: str) -> Prediction:
    """Keyword label; the other probabilities vary with the text, so results are traceable."""
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


class FakeModel:
    """Keyword classifier; records every call's texts."""

    def __init__(self, name: str = "fake-model") -> None:
        self.calls: list[list[str]] = []
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

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        self.calls.append(list(texts))
        return [fake_prediction(t) for t in texts]


class FailingModel(FakeModel):
    """Passes warm-up, then fails every call whose texts include `boom`."""

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if any("boom" in t for t in texts):
            raise RuntimeError("the model broke")
        return super().predict(texts)


class BlockingModel(FakeModel):
    """Passes warm-up, then blocks each call until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.started = threading.Event()
        self._warm = False

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if self._warm:
            self.started.set()
            self.release.wait(timeout=10)
        self._warm = True
        return super().predict(texts)
