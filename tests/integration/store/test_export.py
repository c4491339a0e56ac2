"""`sentimon feedback export` and `stats` on a real database (SQLite and PostgreSQL): the exact
rows, their order and quoting, `--since`, and the figures `stats.py` computes."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from sentimon.cli.main import app
from sentimon.store import export
from sentimon.store.stats import UNKNOWN, scores
from tests.integration.store.helpers import engine_for, feedback_row, insert_rows, row

BASE = datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=UTC)
TEXT = 'he said "no", then, well...\nleft 😡'


def prediction(
    prediction_id: str,
    label: str,
    probabilities: dict[str, float],
    *,
    model: str = "m",
    revision: str = "r1",
    endpoint: str = "/predict",
    tokens: int = 5,
    text: str | None = None,
    at: datetime = BASE,
) -> dict[str, Any]:
    return {
        **row(prediction_id),
        "created_at": at,
        "model": model,
        "revision": revision,
        "endpoint": endpoint,
        "label": label,
        "score": probabilities[label],
        "probabilities": probabilities,
        "tokens": tokens,
        "text_sha256": prediction_id[0] * 64,
        "text": text,
    }


THREE = {"negative": 0.1, "neutral": 0.2, "positive": 0.7}
PREDICTIONS = [
    prediction("a1", "positive", THREE, at=BASE - timedelta(minutes=1)),
    prediction(
        "a2",
        "negative",
        {"negative": 0.8, "neutral": 0.15, "positive": 0.05},
        endpoint="/analyze-sentiment/",
        tokens=12,
        text=TEXT,
    ),
    prediction("a3", "neutral", {"negative": 0.3, "neutral": 0.4, "positive": 0.3}, revision="r2"),
    prediction(
        "b1:0",
        "LABEL_1",
        {"LABEL_0": 0.25, "LABEL_1": 0.75},
        model="other",
        revision="x",
        endpoint="/predict/batch",
        tokens=4,
    ),
    prediction("nofeedback", "positive", THREE),
]
FEEDBACK = [
    # Inserted out of time order: the export orders by feedback time.
    feedback_row("b1:0", "LABEL_1", "LABEL_1", BASE + timedelta(days=2)),
    feedback_row("a1", "positive", "positive", BASE + timedelta(hours=1)),
    feedback_row("a3", "neutral", None, BASE + timedelta(days=1), source="sentimon-traffic"),
    feedback_row("a2", "negative", "neutral", BASE + timedelta(hours=2), source="reviewer"),
]
HEADER = (
    "request_id,predicted_at,feedback_at,endpoint,model,model_revision,predicted,label,correct,"
    "source,probability_LABEL_0,probability_LABEL_1,probability_negative,probability_neutral,"
    "probability_positive,tokens,text_sha256,text"
)
CSV_ROWS = {
    "a1": "a1,2026-11-01T09:59:00.123456Z,2026-11-01T11:00:00.123456Z,/predict,m,r1,positive,"
    f"positive,true,,,,0.1,0.2,0.7,5,{'a' * 64},",
    "a2": "a2,2026-11-01T10:00:00.123456Z,2026-11-01T12:00:00.123456Z,/analyze-sentiment/,m,r1,"
    f"negative,neutral,false,reviewer,,,0.8,0.15,0.05,12,{'a' * 64},"
    '"he said ""no"", then, well...\nleft 😡"',
    "a3": "a3,2026-11-01T10:00:00.123456Z,2026-11-02T10:00:00.123456Z,/predict,m,r2,neutral,,"
    f"false,sentimon-traffic,,,0.3,0.4,0.3,5,{'a' * 64},",
    "b1:0": "b1:0,2026-11-01T10:00:00.123456Z,2026-11-03T10:00:00.123456Z,/predict/batch,other,"
    f"x,LABEL_1,LABEL_1,true,,0.25,0.75,,,,4,{'b' * 64},",
}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def stored(engine: Engine, database_url: str) -> str:
    insert_rows(engine, PREDICTIONS, FEEDBACK)
    return database_url


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, ["feedback", *args], env={"COLUMNS": "200"})


def stdout(result: Result) -> str:
    """stdout as written (`Result.stdout` turns CRLF into LF)."""
    return result.stdout_bytes.decode()


def csv_text(*ids: str) -> str:
    return "\r\n".join([HEADER, *(CSV_ROWS[i] for i in ids)]) + "\r\n"


def test_csv_has_one_row_per_prediction_with_feedback_in_feedback_order(stored: str) -> None:
    result = invoke("export", "--database-url", stored)
    assert result.exit_code == 0, result.output
    assert stdout(result) == csv_text("a1", "a2", "a3", "b1:0")
    assert result.stderr == ""
    parsed = list(csv.DictReader(io.StringIO(stdout(result), newline="")))
    assert parsed[1]["text"] == TEXT and parsed[2]["label"] == ""


def test_jsonl_has_an_object_per_line_with_the_probabilities(stored: str) -> None:
    result = invoke("export", "--format", "jsonl", "--database-url", stored)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    records = [json.loads(line) for line in lines]
    assert [r["request_id"] for r in records] == ["a1", "a2", "a3", "b1:0"]
    assert records[1] == {
        "request_id": "a2",
        "predicted_at": "2026-11-01T10:00:00.123456Z",
        "feedback_at": "2026-11-01T12:00:00.123456Z",
        "endpoint": "/analyze-sentiment/",
        "model": "m",
        "model_revision": "r1",
        "predicted": "negative",
        "label": "neutral",
        "correct": False,
        "source": "reviewer",
        "probabilities": {"negative": 0.8, "neutral": 0.15, "positive": 0.05},
        "tokens": 12,
        "text_sha256": "a" * 64,
        "text": TEXT,
    }
    assert list(records[1]) == [*export.HEAD, "probabilities", *export.TAIL]
    assert (records[2]["label"], records[2]["correct"], records[2]["text"]) == (None, False, None)
    assert records[3]["probabilities"] == {"LABEL_0": 0.25, "LABEL_1": 0.75}


ONLY_B = (
    "request_id,predicted_at,feedback_at,endpoint,model,model_revision,predicted,label,correct,"
    "source,probability_LABEL_0,probability_LABEL_1,tokens,text_sha256,text\r\n"
    "b1:0,2026-11-01T10:00:00.123456Z,2026-11-03T10:00:00.123456Z,/predict/batch,other,x,"
    f"LABEL_1,LABEL_1,true,,0.25,0.75,4,{'b' * 64},\r\n"
)
NOTHING = ",".join([*export.HEAD, *export.TAIL]) + "\r\n"


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("2026-11-01T11:30:00Z", csv_text("a2", "a3", "b1:0")),
        ("2026-11-02", csv_text("a3", "b1:0")),
        ("2026-11-02T12:00:00+02:00", csv_text("a3", "b1:0")),  # a3 at 10:00:00.123456 UTC
        ("2026-11-02T12:00:01+02:00", ONLY_B),  # the columns are the exported rows' labels
        ("2030-01-01", NOTHING),
    ],
)
def test_since_filters_on_the_feedback_time(stored: str, since: str, expected: str) -> None:
    result = invoke("export", "--since", since, "--database-url", stored)
    assert result.exit_code == 0, result.output
    assert stdout(result) == expected
    assert result.stderr == ("" if expected != NOTHING else f"no feedback since {since}\n")


def test_a_duration_counts_back_from_now(engine: Engine, database_url: str) -> None:
    now = datetime.now(UTC)
    insert_rows(
        engine,
        [prediction("old", "positive", THREE), prediction("new", "positive", THREE)],
        [
            feedback_row("old", "positive", "negative", now - timedelta(days=8)),
            feedback_row("new", "positive", "positive", now - timedelta(days=6)),
        ],
    )
    result = invoke("export", "--format", "jsonl", "--since", "7d", "--database-url", database_url)
    assert [json.loads(line)["request_id"] for line in result.stdout.splitlines()] == ["new"]
    result = invoke("stats", "--since", "1w", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert table_rows(result.stdout)["feedback (n)"] == "1"


def test_output_goes_to_a_file_once_complete(stored: str, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "feedback.csv"
    target.write_text("old")
    result = invoke("export", "--output", str(target), "--database-url", stored)
    assert result.exit_code == 0, result.output
    assert target.read_bytes().decode() == csv_text("a1", "a2", "a3", "b1:0")
    assert (
        result.stdout == ""
        and result.stderr == f"4 predictions with feedback written to {target}\n"
    )
    assert [p.name for p in target.parent.iterdir()] == ["feedback.csv"]


def test_rows_stream_in_chunks_in_a_stable_order(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "CHUNK", 7)
    ids = [f"p{i:03d}" for i in range(60)]
    insert_rows(
        engine,
        [prediction(i, "positive", THREE) for i in ids],
        # Two at each feedback time: the id breaks the tie.
        [
            feedback_row(i, "positive", "positive", BASE + timedelta(seconds=n // 2))
            for n, i in enumerate(reversed(ids))
        ],
    )
    with engine.connect() as connection:
        records = export.rows(connection)
        assert isinstance(records, Iterator)
        got = [r["request_id"] for r in records]
    expected = [i for pair in zip(ids[-2::-2], ids[::-2], strict=True) for i in pair]
    assert got == expected and len(got) == 60


def table_rows(output: str) -> dict[str, str]:
    return {
        name.strip(): value.strip()
        for name, value in re.findall(r"^│ (.+?) │ (.+?) │$", output, flags=re.MULTILINE)
    }


def class_rows(output: str) -> dict[str, list[str]]:
    """The per-class table's rows: label -> the other cells."""
    per_class = output.split("per class", 1)[1]
    found = re.findall(r"^│ (\w+) +│(.+)│$", per_class, flags=re.MULTILINE)
    return {label: [cell.strip() for cell in cells.split("│")] for label, cells in found}


CONFUSION = {
    ("positive", "positive"): 8,
    ("positive", "negative"): 2,
    ("negative", "negative"): 5,
    ("negative", UNKNOWN): 1,
    ("neutral", "positive"): 4,
}


def test_stats_match_stats_py_on_the_counts_the_database_groups(
    engine: Engine, database_url: str
) -> None:
    predictions, feedback = [], []
    for (predicted, actual), n in CONFUSION.items():
        for k in range(n):
            prediction_id = f"{predicted}-{actual}-{k}"
            revision = "r2" if k == 0 else "r1"
            predictions.append(prediction(prediction_id, predicted, THREE, revision=revision))
            feedback.append(
                feedback_row(prediction_id, predicted, None if actual == UNKNOWN else actual, BASE)
            )
    insert_rows(engine, predictions, feedback)
    result = invoke("stats", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    expected = scores(CONFUSION)
    summary = table_rows(result.stdout)
    assert summary["feedback (n)"] == "20"
    assert summary["agreement"] == "65.0% (13 right)"
    assert summary["agreement 95% interval (Wilson)"] == "43.3% to 81.9%"
    assert summary["agreement 99% upper bound (one-sided)"] == "84.0%"
    assert summary["macro-F1"] == "0.499"
    assert summary["wrong, right label not given"] == "1"
    assert summary["model m (r1)"] == "15" and summary["model m (r2)"] == "5"
    assert expected.lower95 is not None and expected.upper95 is not None
    assert f"{expected.lower95:.1%} to {expected.upper95:.1%}" == "43.3% to 81.9%"
    classes = class_rows(result.stdout)
    assert classes == {
        "negative": ["6", "7", "5", "0.833", "0.714", "0.769"],
        "neutral": ["4", "0", "0", "0.000", "-", "0.000"],
        "positive": ["10", "12", "8", "0.800", "0.667", "0.727"],
    }
    for label, c in expected.classes.items():
        assert classes[label][:3] == [str(c.predicted), str(c.actual), str(c.true_positives)]
        assert classes[label][3] == f"{c.precision:.3f}"


def test_stats_since_and_the_queries_behind_it(stored: str, engine: Engine) -> None:
    with engine.connect() as connection:
        assert export.feedback_counts(connection) == {
            ("positive", "positive"): 1,
            ("negative", "neutral"): 1,
            ("neutral", UNKNOWN): 1,
            ("LABEL_1", "LABEL_1"): 1,
        }
        since = datetime(2026, 11, 2, tzinfo=UTC)
        assert export.feedback_counts(connection, since) == {
            ("neutral", UNKNOWN): 1,
            ("LABEL_1", "LABEL_1"): 1,
        }
        assert export.model_counts(connection) == [
            ("m", "r1", 2),
            ("m", "r2", 1),
            ("other", "x", 1),
        ]
        assert export.labels(connection, since) == [
            "LABEL_0",
            "LABEL_1",
            "negative",
            "neutral",
            "positive",
        ]
    result = invoke("stats", "--since", "2026-11-02", "--database-url", stored)
    assert result.exit_code == 0, result.output
    assert "feedback in " in result.stdout and " since 2026-11-02 00:00:00 UTC" in result.stdout
    assert table_rows(result.stdout)["agreement"] == "50.0% (1 right)"


def test_no_feedback_yet(engine: Engine, database_url: str) -> None:
    insert_rows(engine, [prediction("p", "positive", THREE)], [])
    stats = invoke("stats", "--database-url", database_url)
    assert (stats.exit_code, stats.stdout) == (0, "no feedback yet\n")
    exported = invoke("export", "--database-url", database_url)
    assert exported.exit_code == 0
    assert stdout(exported) == NOTHING
    assert exported.stderr == "no feedback yet\n"


def test_a_database_without_the_schema_has_no_feedback_yet(database_url: str) -> None:
    engine = engine_for(database_url, migrate=False)
    with engine.connect():  # SQLite: the file exists, empty
        pass
    engine.dispose()
    result = invoke("stats", "--database-url", database_url)
    assert result.exit_code == 0
    assert re.fullmatch(r"no feedback yet \(.+ has no prediction log\)\n", result.stdout)


@pytest.mark.usefixtures("stored")
def test_a_label_that_came_in_during_the_export_is_refused(engine: Engine) -> None:
    with engine.connect() as connection, closing(export.rows(connection)) as records:
        with pytest.raises(export.NewLabel, match=r"^prediction 'b1:0' has labels the export"):
            export.write_csv(records, ["negative", "neutral", "positive"], io.StringIO())


def test_an_export_reads_one_snapshot_where_the_database_can(engine: Engine) -> None:
    with engine.connect() as connection:
        read = export.snapshot(connection)
        level = read.get_isolation_level()
        if connection.dialect.name == "postgresql":
            assert level == "REPEATABLE READ"
        else:
            assert read is connection
