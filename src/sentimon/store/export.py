"""Feedback out of the store: every prediction that has feedback as a data set to retrain on,
streamed in feedback order, and the counts the agreement figures are computed from.

`since` filters on when the feedback was given, so `--since` exports what came in since the
last export. Rows come back in a stable order (feedback time, then id), read from the
database in chunks: an export never holds the whole data set in memory.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Generator, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from sqlalchemy import Connection, Select, func, inspect, select, true

from sentimon.store.stats import UNKNOWN
from sentimon.store.tables import feedback, predictions

CHUNK = 1_000
"""Rows fetched from the database at a time."""

HEAD = (
    "request_id",
    "predicted_at",
    "feedback_at",
    "endpoint",
    "model",
    "model_revision",
    "predicted",
    "label",
    "correct",
    "source",
)
"""The columns before the probabilities; `label` is empty when feedback only said wrong."""
TAIL = ("tokens", "text_sha256", "text")
"""The columns after them; `text` is empty unless the API stored texts."""
PROBABILITY = "probability_"
"""The CSV column prefix of each label's probability (JSONL: a `probabilities` object)."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+)([smhdw])")


def parse_since(value: str, now: datetime) -> datetime:
    """A moment in UTC from an ISO-8601 date or time (UTC unless it gives an offset) or a
    duration back from `now` (`30m`, `12h`, `7d`, `2w`)."""
    duration = _DURATION.fullmatch(value.strip())
    if duration:
        return now - timedelta(seconds=int(duration[1]) * _UNITS[duration[2]])
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an ISO-8601 date or time (2026-12-01, 2026-12-01T06:00Z) "
            "nor a duration (30m, 12h, 7d, 2w)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def has_schema(connection: Connection) -> bool:
    """Whether the database has the prediction log's tables (the API creates them)."""
    return inspect(connection).has_table(feedback.name)


def snapshot(connection: Connection) -> Connection:
    """`connection` reading one snapshot across statements where the database offers it
    (PostgreSQL), so the labels and the rows of an export agree. SQLite reads each statement
    from its own snapshot; `write_csv` refuses a row whose labels came in between."""
    if connection.dialect.name == "postgresql":
        return connection.execution_options(isolation_level="REPEATABLE READ")
    return connection


def labels(connection: Connection, since: datetime | None = None) -> list[str]:
    """Every label that has a probability in the exported rows, sorted: the CSV columns."""
    joined = feedback.join(predictions, feedback.c.prediction_id == predictions.c.id)
    if connection.dialect.name == "postgresql":
        # A set-returning function in the select list: a row per key.
        query = select(func.json_object_keys(predictions.c.probabilities)).select_from(joined)
    elif connection.dialect.name == "sqlite":
        each = func.json_each(predictions.c.probabilities).table_valued("key")
        query = select(each.c.key).select_from(joined.join(each, true()))
    else:
        raise ValueError(f"unsupported database {connection.dialect.name!r}")
    return sorted(connection.execute(_since(query.distinct(), since)).scalars())


def rows(
    connection: Connection, since: datetime | None = None
) -> Generator[dict[str, Any], None, None]:
    """Each prediction that has feedback, as an export record (times as ISO-8601 UTC); close
    the iterator when leaving it early."""
    query = (
        select(
            predictions.c.id,
            predictions.c.created_at,
            feedback.c.created_at.label("feedback_at"),
            predictions.c.endpoint,
            predictions.c.model,
            predictions.c.revision,
            feedback.c.predicted,
            feedback.c.actual,
            feedback.c.correct,
            feedback.c.source,
            predictions.c.probabilities,
            predictions.c.tokens,
            predictions.c.text_sha256,
            predictions.c.text,
        )
        .select_from(feedback.join(predictions, feedback.c.prediction_id == predictions.c.id))
        .order_by(feedback.c.created_at, feedback.c.prediction_id)
    )
    result = connection.execution_options(yield_per=CHUNK).execute(_since(query, since))
    with result:  # closes the cursor (a server-side one on PostgreSQL) if left early
        for row in result.mappings():
            yield {
                "request_id": row["id"],
                "predicted_at": _iso(row["created_at"]),
                "feedback_at": _iso(row["feedback_at"]),
                "endpoint": row["endpoint"],
                "model": row["model"],
                "model_revision": row["revision"],
                "predicted": row["predicted"],
                "label": row["actual"],
                "correct": bool(row["correct"]),
                "source": row["source"],
                "probabilities": dict(sorted(row["probabilities"].items())),
                "tokens": row["tokens"],
                "text_sha256": row["text_sha256"],
                "text": row["text"],
            }


class NewLabel(ValueError):
    """A row has a label the CSV header has no column for: it came in during the export."""


def write_csv(records: Iterable[Mapping[str, Any]], labels: list[str], out: IO[str]) -> int:
    """One CSV row per record (RFC 4180 quoting), a column per label; returns the rows."""
    writer = csv.writer(out)
    writer.writerow([*HEAD, *(PROBABILITY + label for label in labels), *TAIL])
    columns = set(labels)
    n = 0
    for record in records:
        probabilities = record["probabilities"]
        if not probabilities.keys() <= columns:
            new = ", ".join(sorted(probabilities.keys() - columns))
            raise NewLabel(
                f"prediction {record['request_id']!r} has labels the export started without "
                f"({new}): feedback on a new model came in meanwhile; export again"
            )
        writer.writerow(
            [
                *(_cell(record[name]) for name in HEAD),
                *(_cell(probabilities.get(label)) for label in labels),
                *(_cell(record[name]) for name in TAIL),
            ]
        )
        n += 1
    return n


def write_jsonl(records: Iterable[Mapping[str, Any]], out: IO[str]) -> int:
    """One JSON object per line, keys in the CSV's order; returns the lines."""
    n = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        n += 1
    return n


def feedback_counts(
    connection: Connection, since: datetime | None = None
) -> dict[tuple[str, str], int]:
    """Feedback counted by (predicted, actual), `unknown` for "wrong" without a label: the
    input of `stats.scores`, grouped by the database."""
    query = select(feedback.c.predicted, feedback.c.actual, func.count()).group_by(
        feedback.c.predicted, feedback.c.actual
    )
    counts: Counter[tuple[str, str]] = Counter()
    for predicted, actual, n in connection.execute(_since(query, since)):
        counts[(predicted, UNKNOWN if actual is None else actual)] += n
    return dict(counts)


def model_counts(
    connection: Connection, since: datetime | None = None
) -> list[tuple[str, str, int]]:
    """Feedback counted by the model and revision that made the prediction, most first."""
    n = func.count().label("n")
    query = (
        select(predictions.c.model, predictions.c.revision, n)
        .select_from(feedback.join(predictions, feedback.c.prediction_id == predictions.c.id))
        .group_by(predictions.c.model, predictions.c.revision)
        .order_by(n.desc(), predictions.c.model, predictions.c.revision)
    )
    return [(m, r, k) for m, r, k in connection.execute(_since(query, since))]


def _since(query: Select[Any], since: datetime | None) -> Select[Any]:
    # Stored times are UTC; SQLite keeps them without a zone, so compare in UTC.
    return query if since is None else query.where(feedback.c.created_at >= since.astimezone(UTC))


def _iso(moment: datetime) -> str:
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
