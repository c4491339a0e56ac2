"""SQL that differs between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, RowMapping, Table


def insert_or_skip(table: Table, key: Column[Any], dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING `key`: a row comes back for each row this
    statement inserted, none for one that was already there (SQLite >= 3.35, PostgreSQL)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing().returning(key)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing().returning(key)
    raise ValueError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")


def as_dict(row: RowMapping) -> dict[str, Any]:
    """A row as a plain dict; times in UTC (SQLite hands them back without a zone)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        out[str(key)] = value
    return out
