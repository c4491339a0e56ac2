"""The feedback operation: idempotent, first write wins, committed before it returns.

A prediction gets one feedback. The same feedback again is a duplicate (the caller may
retry safely); a different one is a conflict and changes nothing. `{"correct": true}` and
`{"label": <the predicted label>}` say the same thing, and so are duplicates of each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, select

from sentimon.store.sql import as_dict, insert_or_skip
from sentimon.store.tables import feedback, predictions

Outcome = Literal["created", "duplicate", "conflict"]


class PredictionNotFound(LookupError):
    pass


class InconsistentFeedback(ValueError):
    """`label` and `correct` disagree about the stored prediction."""

    def __init__(self, predicted: str, label: str, correct: bool) -> None:
        super().__init__(
            f"label {label!r} {'is not' if correct else 'is'} the predicted label "
            f"{predicted!r}, so correct cannot be {str(correct).lower()}"
        )


class UnknownLabel(ValueError):
    """A label the model that made the prediction does not have."""

    def __init__(self, label: str, labels: list[str]) -> None:
        super().__init__(f"label {label!r} is not one of the model's labels: {', '.join(labels)}")


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    outcome: Outcome
    prediction: Mapping[str, Any]
    feedback: Mapping[str, Any]
    """The stored feedback: the new one, or the first one for a duplicate or conflict."""


def record_feedback(
    engine: Engine,
    prediction_id: str,
    *,
    label: str | None,
    correct: bool | None,
    source: str | None,
    now: datetime,
) -> FeedbackResult:
    """Store feedback on `prediction_id` (one of `label`, `correct` at least)."""
    with engine.begin() as connection:
        prediction = _prediction(connection, prediction_id)
        predicted = prediction["label"]
        labels = list(prediction["probabilities"])
        if label is not None and label not in labels:
            raise UnknownLabel(label, labels)
        if label is not None:
            is_correct = label == predicted
            if correct is not None and correct != is_correct:
                raise InconsistentFeedback(predicted, label, correct)
            actual: str | None = label
        elif correct is not None:
            is_correct, actual = correct, predicted if correct else None
        else:
            raise ValueError("feedback needs a label or correct")
        row = {
            "prediction_id": prediction_id,
            "created_at": now,
            "predicted": predicted,
            "actual": actual,
            "correct": is_correct,
            "source": source,
        }
        statement = insert_or_skip(feedback, feedback.c.prediction_id, connection.dialect.name)
        inserted = connection.execute(statement, row).first()
        if inserted is not None:
            return FeedbackResult("created", prediction, row)
        stored = _feedback(connection, prediction_id)
    same = (stored["actual"], stored["correct"]) == (actual, is_correct)
    return FeedbackResult("duplicate" if same else "conflict", prediction, stored)


def read_feedback(
    engine: Engine, prediction_id: str
) -> tuple[Mapping[str, Any], Mapping[str, Any] | None]:
    """A stored prediction and its feedback (None if it has none)."""
    with engine.connect() as connection:
        prediction = _prediction(connection, prediction_id)
        row = (
            connection.execute(select(feedback).where(feedback.c.prediction_id == prediction_id))
            .mappings()
            .first()
        )
        return prediction, None if row is None else as_dict(row)


def _prediction(connection: Connection, prediction_id: str) -> Mapping[str, Any]:
    row = (
        connection.execute(select(predictions).where(predictions.c.id == prediction_id))
        .mappings()
        .first()
    )
    if row is None:
        raise PredictionNotFound(prediction_id)
    return as_dict(row)


def _feedback(connection: Connection, prediction_id: str) -> Mapping[str, Any]:
    return as_dict(
        connection.execute(select(feedback).where(feedback.c.prediction_id == prediction_id))
        .mappings()
        .one()
    )
