"""Rows and stores for the store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, func, insert, select

from sentimon.metrics.store import StoreMetrics, build_store_metrics
from sentimon.store.engine import database_url, make_engine, upgrade
from sentimon.store.tables import feedback, predictions


def engine_for(url: str, migrate: bool = True) -> Engine:
    engine = make_engine(database_url(url, Path("/unused")))
    if migrate:
        upgrade(engine)
    return engine


def store_metrics() -> tuple[StoreMetrics, CollectorRegistry]:
    registry = CollectorRegistry()
    return build_store_metrics(registry), registry


def row(
    prediction_id: str, label: str = "positive", age: timedelta = timedelta(0)
) -> dict[str, Any]:
    probabilities = {"negative": 0.1, "neutral": 0.2, "positive": 0.7}
    return {
        "id": prediction_id,
        "created_at": datetime.now(UTC) - age,
        "request_id": prediction_id.split(":")[0],
        "endpoint": "/predict",
        "model": "m",
        "revision": "r",
        "label": label,
        "score": probabilities[label],
        "probabilities": probabilities,
        "tokens": 5,
        "text_sha256": "0" * 64,
        "text": None,
    }


def feedback_row(
    prediction_id: str,
    predicted: str,
    actual: str | None,
    created_at: datetime,
    source: str | None = None,
) -> dict[str, Any]:
    """Feedback as the store keeps it: `actual` None for "wrong" without the right label."""
    return {
        "prediction_id": prediction_id,
        "created_at": created_at,
        "predicted": predicted,
        "actual": actual,
        "correct": actual == predicted,
        "source": source,
    }


def insert_rows(
    engine: Engine, prediction_rows: list[dict[str, Any]], feedback_rows: list[dict[str, Any]]
) -> None:
    with engine.begin() as connection:
        if prediction_rows:
            connection.execute(insert(predictions), prediction_rows)
        if feedback_rows:
            connection.execute(insert(feedback), feedback_rows)


def count(engine: Engine, table: Any = predictions) -> int:
    with engine.connect() as connection:
        n: int = connection.execute(select(func.count()).select_from(table)).scalar_one()
        return n


def ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(select(predictions.c.id).order_by(predictions.c.id)).scalars()
        )


__all__ = [
    "count",
    "engine_for",
    "feedback",
    "feedback_row",
    "ids",
    "insert_rows",
    "predictions",
    "row",
    "store_metrics",
]
