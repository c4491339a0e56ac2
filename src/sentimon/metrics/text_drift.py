"""Text-drift counters: what each text's sentence embedding adds, summed for the fleet.

Per whitened component j of the reference basis, the sums of max(z_j, 0) and max(-z_j, 0)
(a counter only goes up, so the signed sum is their difference), the sum of the residual
norms and the number of texts. The recording rules turn increases of these into the
component means and the residual mean over a window, across every replica.

The sums are kept in numpy arrays and read at scrape time: a batch adds its rows in a few
vector operations on the inference worker thread, without a counter call per component.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from sentimon.drift.text import Scorer, TextBasis


class TextDriftSums(Collector):
    def __init__(self, scorer: Scorer) -> None:
        self._scorer = scorer
        self._names = [f"{j:02d}" for j in range(scorer.components)]
        self._lock = threading.Lock()
        self._texts = 0
        self._positive = np.zeros(scorer.components)
        self._negative = np.zeros(scorer.components)
        self._residual = 0.0

    def add(self, embeddings: npt.NDArray[np.float32]) -> None:
        """Add a batch's embeddings (rows x hidden); called on the inference worker."""
        if len(embeddings) == 0:
            return
        z, residual = self._scorer.score(embeddings)
        positive = np.maximum(z, 0.0).sum(axis=0)
        negative = np.maximum(-z, 0.0).sum(axis=0)
        total = float(residual.sum())
        with self._lock:
            self._texts += len(z)
            self._positive += positive
            self._negative += negative
            self._residual += total

    def collect(self) -> Iterator[CounterMetricFamily]:
        with self._lock:
            texts = self._texts
            positive = self._positive.tolist()
            negative = self._negative.tolist()
            residual = self._residual
        count = CounterMetricFamily(
            "sentiment_text_drift_texts",
            "Texts whose sentence embedding was scored against the reference basis.",
        )
        count.add_metric([], texts)
        yield count
        components = CounterMetricFamily(
            "sentiment_text_drift_component",
            "Per whitened principal component of the reference basis, the sum over texts of "
            "its positive part (part=positive) and of its negative part (part=negative).",
            labels=["component", "part"],
        )
        for name, up, down in zip(self._names, positive, negative, strict=True):
            components.add_metric([name, "positive"], up)
            components.add_metric([name, "negative"], down)
        yield components
        total = CounterMetricFamily(
            "sentiment_text_drift_residual",
            "Sum over texts of the norm of the embedding left outside the reference basis.",
        )
        total.add_metric([], residual)
        yield total


def register_text_drift(registry: CollectorRegistry, basis: TextBasis) -> TextDriftSums:
    """The reference basis as gauges, and the sums' collector, registered in `registry`."""
    for name, doc, value in (
        (
            "sentiment_reference_text_n",
            "Texts the reference text basis was scaled on (its mean's own noise is 1/n).",
            basis.n,
        ),
        (
            "sentiment_reference_text_components",
            "Principal components of the reference text basis.",
            basis.components,
        ),
        (
            "sentiment_reference_text_residual_mean",
            "Mean residual norm of the reference texts outside the basis.",
            basis.residual_mean,
        ),
        (
            "sentiment_reference_text_residual_sd",
            "Standard deviation of the reference texts' residual norm.",
            basis.residual_sd,
        ),
    ):
        Gauge(name, doc, registry=registry).set(value)
    sums = TextDriftSums(basis.scorer())
    registry.register(sums)
    return sums
