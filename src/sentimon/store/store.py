"""The prediction log and feedback as the service uses them: rows out of every answer, and
the feedback operation with its waits, errors and metrics."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from sentimon.config import Settings
from sentimon.errors import (
    FeedbackConflict,
    InvalidFeedback,
    PredictionExpired,
    ServiceError,
    StoreUnavailable,
    UnknownPrediction,
)
from sentimon.ids import made_at
from sentimon.metrics.store import UNKNOWN_ACTUAL, StoreMetrics
from sentimon.model.base import ModelInfo, Prediction
from sentimon.store import feedback as operations
from sentimon.store.engine import database_url, describe, make_engine, upgrade
from sentimon.store.health import StoreHealth
from sentimon.store.retention import apply_retention, oldest_kept
from sentimon.store.writer import PredictionWriter, Row, WriterLimits

log = logging.getLogger("sentimon.store")
T = TypeVar("T")


class Logged(NamedTuple):
    """An answered text as the event loop queues it for the prediction log."""

    id: str
    at: float
    request_id: str
    endpoint: str
    model: str
    revision: str
    prediction: Prediction
    text: str


def _logged_id(item: Logged) -> str:
    return item.id


# A prediction this young may still be queued on another replica: look once more.
_IN_FLIGHT = timedelta(seconds=10)
_RETRY_AFTER = {"Retry-After": "5"}


class PredictionStore:
    def __init__(self, settings: Settings, metrics: StoreMetrics) -> None:
        url = database_url(
            settings.database_url, settings.data_dir, settings.database_password_file
        )
        self.database = describe(url)
        self.engine = make_engine(url)
        self.health = StoreHealth(metrics, self.database)
        self._metrics = metrics
        self._store_text = settings.store_text
        self._retention = timedelta(days=settings.retention_days)
        self._max_rows = settings.retention_max_rows
        self._flush_s = settings.store_flush_ms / 1000
        self.writer: PredictionWriter[Logged] = PredictionWriter(
            self.engine,
            metrics,
            self.health,
            WriterLimits(
                queue_size=settings.store_queue_size,
                batch_size=settings.store_batch_size,
                flush_interval_s=self._flush_s,
            ),
            key=_logged_id,
            to_row=self._row,
            prepare=lambda: upgrade(self.engine),
            housekeeping=self.apply_retention,
            housekeeping_interval_s=settings.retention_interval_s,
        )

    def start(self) -> None:
        log.info(
            "prediction log and feedback in %s",
            self.database,
            extra={"event": "store_start", "database": self.database},
        )
        self.writer.start()

    def close(self) -> None:
        self.writer.close()
        self.engine.dispose()

    def log_predictions(
        self,
        ids: Sequence[str],
        request_id: str,
        endpoint: str,
        model: ModelInfo,
        texts: Sequence[str],
        predictions: Sequence[Prediction],
    ) -> None:
        """Queue one row per answered text; never blocks, never raises for the database.
        Called on the event loop, so it only packs what the row needs."""
        now = time.time()
        self.writer.submit(
            [
                Logged(i, now, request_id, endpoint, model.name, model.revision, p, text)
                for i, text, p in zip(ids, texts, predictions, strict=True)
            ]
        )

    def _row(self, item: Logged) -> Row:
        """A prediction-log row, made on the writer's thread."""
        p = item.prediction
        return {
            "id": item.id,
            "created_at": datetime.fromtimestamp(item.at, UTC),
            "request_id": item.request_id,
            "endpoint": item.endpoint,
            "model": item.model,
            "revision": item.revision,
            "label": p.label,
            "score": p.score,
            "probabilities": p.probabilities,
            "tokens": p.tokens,
            "text_sha256": hashlib.sha256(item.text.encode()).hexdigest(),
            "text": item.text if self._store_text else None,
        }

    def apply_retention(self) -> None:
        deleted = apply_retention(self.engine, self._retention, self._max_rows, datetime.now(UTC))
        for rule, n in deleted.items():
            self._metrics.rows_deleted.labels(rule=rule).inc(n)
        if any(deleted.values()):
            log.info(
                "retention deleted %d predictions older than %s and %d beyond %d rows",
                deleted["age"],
                self._retention,
                deleted["rows"],
                self._max_rows,
                extra={
                    "event": "store_retention",
                    **{f"deleted_{k}": v for k, v in deleted.items()},
                },
            )

    async def record_feedback(
        self,
        prediction_id: str,
        *,
        label: str | None,
        correct: bool | None,
        source: str | None,
    ) -> operations.FeedbackResult:
        """Store feedback (committed when this returns) or raise the ServiceError to answer."""
        outcome = "invalid"
        try:
            result = await self._record(prediction_id, label, correct, source)
            outcome = result.outcome
        except UnknownPrediction:
            outcome = "unknown_request_id"
            raise
        except PredictionExpired:
            outcome = "prediction_expired"
            raise
        except StoreUnavailable:
            outcome = "store_unavailable"
            raise
        finally:
            self._metrics.feedback_requests.labels(outcome=outcome).inc()
        if result.outcome == "created":
            self._count(result)
        elif result.outcome == "conflict":
            raise FeedbackConflict(
                f"request id {prediction_id!r} already has different feedback "
                f"({_describe(result.feedback)}); the first feedback stands"
            )
        return result

    def count_invalid(self) -> None:
        """A feedback request refused before it reached the store."""
        self._metrics.feedback_requests.labels(outcome="invalid").inc()

    async def read(self, prediction_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A stored prediction and its feedback, or the ServiceError to answer."""
        prediction, stored = await self._call(operations.read_feedback, prediction_id)
        return dict(prediction), None if stored is None else dict(stored)

    async def _record(
        self, prediction_id: str, label: str | None, correct: bool | None, source: str | None
    ) -> operations.FeedbackResult:
        try:
            return await self._call(
                operations.record_feedback,
                prediction_id,
                label=label,
                correct=correct,
                source=source,
                now=datetime.now(UTC),
            )
        except (operations.InconsistentFeedback, operations.UnknownLabel) as exc:
            raise InvalidFeedback(str(exc)) from exc

    async def _call(self, operation: Callable[..., T], prediction_id: str, **kwargs: Any) -> T:
        """`operation(engine, prediction_id, **kwargs)` on a worker thread, once the id's row
        has left this replica's write queue; a missing row becomes 404 or 410, a database
        error 503."""
        if self.writer.is_pending(prediction_id):
            await asyncio.to_thread(self.writer.wait_written, prediction_id, 10 * self._flush_s)
        made = made_at(prediction_id)
        for attempt in range(2):
            try:
                result = await asyncio.to_thread(operation, self.engine, prediction_id, **kwargs)
            except operations.PredictionNotFound:
                young = made is not None and datetime.now(UTC) - made < _IN_FLIGHT
                if attempt == 0 and young:
                    # Made seconds ago: its row may still be queued on another replica.
                    await asyncio.sleep(2 * self._flush_s)
                    continue
                raise await self._not_found(prediction_id, made) from None
            except SQLAlchemyError as exc:
                raise self._unavailable(exc) from exc
            self.health.mark_up()
            return result
        raise AssertionError("unreachable")

    async def _not_found(self, prediction_id: str, made: datetime | None) -> ServiceError:
        if made is not None:
            try:
                oldest = await asyncio.to_thread(oldest_kept, self.engine)
            except SQLAlchemyError as exc:
                return self._unavailable(exc)
            if made < datetime.now(UTC) - self._retention or (
                oldest is not None and made < _utc(oldest)
            ):
                return PredictionExpired(
                    f"the prediction {prediction_id!r} was made {made:%Y-%m-%d %H:%M} UTC and "
                    "is no longer stored (retention: "
                    f"{_days(self._retention)} days or {self._max_rows:,} predictions)"
                )
        return UnknownPrediction(f"no prediction has the request id {prediction_id!r}")

    def _unavailable(self, exc: SQLAlchemyError) -> StoreUnavailable:
        self.health.mark_down(exc, "read or write feedback")
        return StoreUnavailable(
            f"feedback cannot be stored now: the database ({self.database}) is unavailable; "
            "nothing was recorded, try again later",
            headers=_RETRY_AFTER,
        )

    def _count(self, result: operations.FeedbackResult) -> None:
        prediction, stored = result.prediction, result.feedback
        self._metrics.feedback.labels(
            predicted=prediction["label"],
            actual=stored["actual"] or UNKNOWN_ACTUAL,
            correct="true" if stored["correct"] else "false",
        ).inc()
        delay = (_utc(stored["created_at"]) - _utc(prediction["created_at"])).total_seconds()
        self._metrics.feedback_delay.observe(max(0.0, delay))


def _describe(stored: Mapping[str, Any]) -> str:
    if stored["actual"] is None:
        return "wrong, with no label"
    return f"label {stored['actual']!r}, {'correct' if stored['correct'] else 'wrong'}"


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _days(period: timedelta) -> str:
    return f"{period.total_seconds() / 86400:g}"
