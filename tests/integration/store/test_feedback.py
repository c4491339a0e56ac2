"""The feedback operation on a real database: first write wins, every case answered, and many
clients at once leave exactly one row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert

from sentimon.store.feedback import (
    InconsistentFeedback,
    PredictionNotFound,
    UnknownLabel,
    read_feedback,
    record_feedback,
)
from tests.integration.store.helpers import count, engine_for, feedback, predictions, row


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = engine_for(database_url)
    with engine.begin() as connection:
        connection.execute(insert(predictions), [row("p1", "positive"), row("p2", "negative")])
    yield engine
    engine.dispose()


def give(
    engine: Engine, prediction_id: str = "p1", **kwargs: object
) -> tuple[str, dict[str, object]]:
    args = {"label": None, "correct": None, "source": None, **kwargs}
    result = record_feedback(engine, prediction_id, now=datetime.now(UTC), **args)  # type: ignore[arg-type]
    return result.outcome, dict(result.feedback)


def test_a_label_is_stored_with_whether_it_was_right(engine: Engine) -> None:
    outcome, stored = give(engine, label="neutral", source="reviewer")
    assert outcome == "created"
    assert (stored["predicted"], stored["actual"], stored["correct"], stored["source"]) == (
        "positive",
        "neutral",
        False,
        "reviewer",
    )
    prediction, again = read_feedback(engine, "p1")
    assert prediction["label"] == "positive" and prediction["probabilities"]["positive"] == 0.7
    assert again is not None and again["actual"] == "neutral" and again["correct"] is False
    assert again["created_at"].tzinfo is not None


@pytest.mark.parametrize(
    ("kwargs", "actual", "correct"),
    [
        ({"correct": True}, "positive", True),
        ({"correct": False}, None, False),
        ({"label": "positive"}, "positive", True),
        ({"label": "positive", "correct": True}, "positive", True),
        ({"label": "negative", "correct": False}, "negative", False),
    ],
)
def test_each_way_of_saying_it(
    engine: Engine, kwargs: dict[str, object], actual: str | None, correct: bool
) -> None:
    outcome, stored = give(engine, "p1", **kwargs)
    assert outcome == "created"
    assert (stored["actual"], stored["correct"]) == (actual, correct)


def test_the_same_feedback_again_is_a_duplicate_and_different_is_a_conflict(
    engine: Engine,
) -> None:
    assert give(engine, correct=True)[0] == "created"
    outcome, stored = give(engine, label="positive")  # says the same
    assert outcome == "duplicate" and stored["actual"] == "positive"
    outcome, stored = give(engine, label="negative")
    assert outcome == "conflict" and stored["actual"] == "positive"  # the first stands
    assert count(engine, feedback) == 1


def test_refusals(engine: Engine) -> None:
    with pytest.raises(PredictionNotFound):
        give(engine, "nope", correct=True)
    with pytest.raises(
        UnknownLabel,
        match="^label 'joy' is not one of the model's labels: negative, neutral, positive$",
    ):
        give(engine, label="joy")
    with pytest.raises(
        InconsistentFeedback,
        match="^label 'negative' is not the predicted label 'positive', so correct cannot be true$",
    ):
        give(engine, label="negative", correct=True)
    with pytest.raises(
        InconsistentFeedback, match="is the predicted label 'positive', so correct cannot be false$"
    ):
        give(engine, label="positive", correct=False)
    assert count(engine, feedback) == 0


def test_deleting_a_prediction_deletes_its_feedback(engine: Engine) -> None:
    give(engine, correct=True)
    with engine.begin() as connection:
        connection.execute(predictions.delete().where(predictions.c.id == "p1"))
    assert count(engine, feedback) == 0


def test_many_clients_at_once_leave_one_row(engine: Engine) -> None:
    """16 threads send the same feedback and 16 a different one for one prediction: one
    insert wins, every other call is a duplicate of the winner or a conflict with it."""
    payloads = [{"label": "neutral"}] * 16 + [{"label": "negative"}] * 16

    def send(kwargs: dict[str, object]) -> tuple[str, object]:
        outcome, stored = give(engine, "p2", **kwargs)
        return outcome, stored["actual"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(send, payloads))
    outcomes = Counter(outcome for outcome, _ in results)
    winner = {actual for _, actual in results}
    assert len(winner) == 1  # everyone sees the same stored feedback
    assert outcomes["created"] == 1
    assert outcomes["duplicate"] == 15 and outcomes["conflict"] == 16
    assert count(engine, feedback) == 1
