"""Retention: predictions (and their feedback, by cascade) older than the age limit go, then
the oldest beyond the row limit. Deleted in chunks, so a large first clean-up never holds
the database for long."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, select

from sentimon.store.tables import predictions

CHUNK = 5_000


def apply_retention(
    engine: Engine, max_age: timedelta, max_rows: int, now: datetime
) -> dict[str, int]:
    """Delete what the limits exclude; returns rows deleted per rule (`age`, `rows`)."""
    deleted = {"age": 0, "rows": 0}
    cutoff = now - max_age
    deleted["age"] = _delete_before(engine, cutoff, inclusive=False)
    with engine.connect() as connection:
        boundary = connection.execute(
            select(predictions.c.created_at)
            .order_by(predictions.c.created_at.desc())
            .offset(max_rows)
            .limit(1)
        ).scalar()
    if boundary is not None:
        deleted["rows"] = _delete_before(engine, boundary, inclusive=True)
    return deleted


def oldest_kept(engine: Engine) -> datetime | None:
    """When the oldest prediction still stored was made."""
    with engine.connect() as connection:
        value: datetime | None = connection.execute(
            select(func.min(predictions.c.created_at))
        ).scalar()
        return value


def _delete_before(engine: Engine, moment: datetime, *, inclusive: bool) -> int:
    created = predictions.c.created_at
    condition = created <= moment if inclusive else created < moment
    total = 0
    while True:
        with engine.begin() as connection:
            ids = select(predictions.c.id).where(condition).limit(CHUNK).scalar_subquery()
            n = connection.execute(delete(predictions).where(predictions.c.id.in_(ids))).rowcount
        total += n
        if n < CHUNK:
            return total
