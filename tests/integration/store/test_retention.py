"""Retention: predictions past the age limit go, then the oldest beyond the row limit, each
with its feedback; what stays is untouched."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert

from sentimon.store import retention
from sentimon.store.retention import apply_retention, oldest_kept
from tests.integration.store.helpers import count, engine_for, feedback, ids, predictions, row


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = engine_for(database_url)
    yield engine
    engine.dispose()


def add(engine: Engine, *rows: dict[str, object]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(predictions), list(rows))


def test_age_then_rows(engine: Engine) -> None:
    add(
        engine,
        row("old", age=timedelta(days=40)),
        *(row(f"r{i}", age=timedelta(hours=10 - i)) for i in range(6)),
    )
    with engine.begin() as connection:
        connection.execute(
            insert(feedback),
            [
                {
                    "prediction_id": pid,
                    "created_at": datetime.now(UTC),
                    "predicted": "positive",
                    "actual": "positive",
                    "correct": True,
                    "source": None,
                }
                for pid in ("old", "r0", "r5")
            ],
        )
    deleted = apply_retention(engine, timedelta(days=30), 4, datetime.now(UTC))
    assert deleted == {"age": 1, "rows": 2}
    assert ids(engine) == ["r2", "r3", "r4", "r5"]  # the newest 4
    assert count(engine, feedback) == 1  # only r5's feedback is left
    oldest = oldest_kept(engine)
    assert oldest is not None
    assert abs(oldest.replace(tzinfo=UTC) - (datetime.now(UTC) - timedelta(hours=8))) < timedelta(
        minutes=1
    )
    assert apply_retention(engine, timedelta(days=30), 4, datetime.now(UTC)) == {
        "age": 0,
        "rows": 0,
    }


def test_large_deletions_go_in_chunks(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "CHUNK", 3)
    add(engine, *(row(f"x{i:02d}", age=timedelta(days=60, minutes=i)) for i in range(10)))
    add(engine, row("new"))
    assert apply_retention(engine, timedelta(days=30), 100, datetime.now(UTC)) == {
        "age": 10,
        "rows": 0,
    }
    assert ids(engine) == ["new"]
    assert oldest_kept(engine) is not None


def test_an_empty_log_needs_nothing(engine: Engine) -> None:
    assert apply_retention(engine, timedelta(days=1), 1, datetime.now(UTC)) == {"age": 0, "rows": 0}
    assert oldest_kept(engine) is None
