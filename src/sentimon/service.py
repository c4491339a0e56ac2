"""The application's state and the one operation routes call: classify validated texts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sentimon.batching.batcher import BatchLimits, MicroBatcher
from sentimon.config import Settings
from sentimon.drift.counters import DriftCounters
from sentimon.drift.reference import ProfileError, ReferenceProfile, find_profile
from sentimon.drift.text import TextBasis, embedding_kind
from sentimon.errors import InvalidFeedback, ModelNotReady, StoreDisabled
from sentimon.metrics.definitions import Metrics
from sentimon.metrics.drift import build_drift_metrics
from sentimon.metrics.text_drift import TextDriftSums
from sentimon.model.base import ModelInfo, Prediction, SentimentModel
from sentimon.model.workers import plan_inference
from sentimon.store.feedback import FeedbackResult
from sentimon.store.store import PredictionStore

log = logging.getLogger("sentimon.predictions")
drift_log = logging.getLogger("sentimon.drift")

_CALIBRATION_TEXT = (
    "warm-up: calibrating how long a call takes for one text of a typical post's length, and "
    "for a full batch of them #startup"
)
"""About as many tokens as a typical short post."""


@dataclass
class SentimentService:
    """Owns the model and its batcher once ready, and the prediction store; records prediction
    metrics, logs and rows."""

    settings: Settings
    metrics: Metrics
    store: PredictionStore | None = None
    model: SentimentModel | None = None
    batcher: MicroBatcher | None = None
    warmed_up: bool = False
    not_ready_reason: str = "model is loading"
    reference: ReferenceProfile | None = None
    """The reference drift is measured against; None when drift is off (see drift_off)."""
    drift_off: str | None = "model is loading"
    """Why there are no drift metrics, in words; None when they are exported."""
    drift: DriftCounters | None = None
    text_basis: TextBasis | None = None
    """The basis text drift is measured in; None when off (see text_drift_off)."""
    text_drift_off: str | None = "model is loading"
    text_sums: TextDriftSums | None = None

    @property
    def ready(self) -> bool:
        return self.warmed_up and self.batcher is not None and self.batcher.healthy

    @property
    def info(self) -> ModelInfo | None:
        return self.model.info if self.model is not None else None

    def require_info(self) -> ModelInfo:
        if self.model is None:
            raise ModelNotReady(
                f"model not ready: {self.not_ready_reason}", headers={"Retry-After": "5"}
            )
        return self.model.info

    def start(self, model: SentimentModel) -> None:
        """Start batching for `model`; call from the event loop."""
        info = model.info
        s = self.settings
        self.model = model
        self.batcher = MicroBatcher(
            model,
            self.metrics,
            limits=BatchLimits(
                max_batch_size=s.max_batch_size,
                max_batch_tokens=s.max_batch_tokens,
                max_wait_s=s.max_wait_ms / 1000,
            ),
            max_queue_size=s.max_queue_size,
            timeout_s=s.request_timeout_s,
            workers=plan_inference(s).workers,
            max_queue_wait_s=s.max_queue_wait_ms / 1000 if s.max_queue_wait_ms else None,
            nice=s.inference_nice,
        )
        self.batcher.start()
        self.metrics.init_model_series(info)
        self._start_drift(info)

    def _start_drift(self, info: ModelInfo) -> None:
        """Export drift metrics when the model has a usable reference profile; otherwise
        export none (never zeros) and keep the reason for /info and the log."""
        if self.drift is not None:
            return
        if not self.settings.drift:
            self.drift_off = "drift is off (SENTIMON_DRIFT=false)"
        else:
            try:
                self.reference = find_profile(info, self.settings.reference_profile)
            except ProfileError as exc:
                self.drift_off = str(exc)
        if self.reference is None:
            drift_log.warning(
                "no drift metrics: %s",
                self.drift_off,
                extra={"event": "drift_off", "reason": self.drift_off},
            )
            return
        self.text_basis, self.text_drift_off = self._text_basis(info, self.reference)
        metrics = build_drift_metrics(self.metrics.registry, self.reference, self.text_basis)
        self.drift = DriftCounters(info.labels, self.reference.calibration, metrics)
        self.text_sums = metrics.text
        self.drift_off = None
        if self.text_drift_off is not None:
            drift_log.warning(
                "no text drift: %s",
                self.text_drift_off,
                extra={"event": "text_drift_off", "reason": self.text_drift_off},
            )
        drift_log.info(
            "drift measured against the reference profile %s: %s",
            self.reference.path,
            self.reference.summary(),
            extra={"event": "drift_reference", "path": str(self.reference.path)},
        )

    def _text_basis(
        self, info: ModelInfo, reference: ReferenceProfile
    ) -> tuple[TextBasis | None, str | None]:
        """The profile's basis for the embeddings this model computes, or why there is none."""
        if not self.settings.text_drift:
            return None, "text drift is off (SENTIMON_TEXT_DRIFT=false)"
        kind = embedding_kind(info)
        basis = reference.text.get(kind)
        if basis is not None:
            return basis, None
        if not reference.text:
            return None, (
                "the reference profile has no text-embedding basis (see its `skipped`); "
                "build it again with `sentimon model profile` from enough texts"
            )
        have = ", ".join(sorted(reference.text))
        return None, (
            f"the reference profile has no text-embedding basis for {kind} embeddings "
            f"(it has: {have}); an embedding computed with other arithmetic sits apart "
            "enough to raise false alarms. Build one where this model serves: "
            "`sentimon model profile --texts FILE` (the bundled model: "
            "`sentimon model refresh-profile`)"
        )

    async def warm_up(self) -> None:
        """One real inference, then the admission estimate's calibration; only after they
        pass is the service ready."""
        if self.batcher is None:
            raise RuntimeError("warm_up() called before start()")
        await self.batcher.predict(["warm-up: the service is starting"])
        await self.batcher.calibrate(_CALIBRATION_TEXT)
        if self.text_sums is not None:
            self.batcher.embedding_sink = self.text_sums.add
        self.warmed_up = True
        self.metrics.model_loaded.set(1)

    def fail(self, reason: str) -> None:
        self.warmed_up = False
        self.not_ready_reason = reason
        self.metrics.model_loaded.set(0)

    async def stop(self) -> None:
        self.fail("shutting down")
        if self.batcher is not None:
            await self.batcher.close()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)

    @property
    def degraded(self) -> dict[str, str]:
        """What works only in part while the service still answers predictions."""
        problem = self.store.health.problem if self.store is not None else None
        return {"store": problem} if problem else {}

    async def classify(
        self, texts: Sequence[str], endpoint: str, ids: Sequence[str], request_id: str
    ) -> list[Prediction]:
        """Predictions for `texts`, in order; `ids` name them in the prediction log."""
        if not self.ready or self.batcher is None:
            raise ModelNotReady(
                f"model not ready: {self.not_ready_reason}", headers={"Retry-After": "5"}
            )
        started = time.perf_counter()
        predictions = await self.batcher.predict(texts)
        elapsed = time.perf_counter() - started
        self.metrics.prediction_duration.labels(endpoint=endpoint).observe(elapsed)
        for p in predictions:
            self.metrics.predictions.labels(sentiment=p.label, endpoint=endpoint).inc()
            self.metrics.confidence.labels(sentiment=p.label).observe(p.score)
        if self.drift is not None:
            self.drift.observe(predictions)
        self._log(texts, predictions, endpoint, elapsed)
        if self.store is not None and self.model is not None:
            self.store.log_predictions(
                ids, request_id, endpoint, self.model.info, texts, predictions
            )
        return predictions

    async def record_feedback(
        self, prediction_id: str, label: str | None, correct: bool | None, source: str | None
    ) -> FeedbackResult:
        store = self._require_store()
        if label is None and correct is None:
            store.count_invalid()
            raise InvalidFeedback(
                'feedback needs "label" (the right label), "correct" (true or false), or both'
            )
        return await store.record_feedback(
            prediction_id, label=label, correct=correct, source=source
        )

    async def read_feedback(
        self, prediction_id: str
    ) -> tuple[dict[str, object], dict[str, object] | None]:
        return await self._require_store().read(prediction_id)

    def _require_store(self) -> PredictionStore:
        if self.store is None:
            raise StoreDisabled(
                "feedback needs the prediction log, which is off (SENTIMON_STORE=false)"
            )
        return self.store

    def _log(
        self, texts: Sequence[str], predictions: Sequence[Prediction], endpoint: str, elapsed: float
    ) -> None:
        fields: dict[str, object] = {
            "event": "prediction",
            "endpoint": endpoint,
            "n_texts": len(texts),
            "duration_ms": round(elapsed * 1000, 2),
            "chars": [len(t) for t in texts] if len(texts) > 1 else len(texts[0]),
        }
        if len(predictions) == 1:
            fields.update(
                label=predictions[0].label,
                score=round(predictions[0].score, 4),
                tokens=predictions[0].tokens,
            )
        else:
            fields["labels"] = dict(Counter(p.label for p in predictions))
        if self.settings.log_input_text:
            fields["text" if len(texts) == 1 else "texts"] = (
                texts[0] if len(texts) == 1 else list(texts)
            )
        log.info("prediction", extra=fields)
