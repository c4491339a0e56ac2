"""`sentimon feedback` without a database to read: the refusals and `--since` parsing (the
exports and figures themselves: tests/integration/store/test_export.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sentimon.cli.main import app
from sentimon.store.export import parse_since

runner = CliRunner()
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_the_commands_are_listed() -> None:
    result = runner.invoke(app, ["feedback", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "export" in result.output and "stats" in result.output
    assert "feedback" in runner.invoke(app, ["--help"]).output


@pytest.mark.parametrize("command", ["export", "stats"])
def test_an_unreachable_database_is_named_without_its_password(command: str) -> None:
    url = "postgresql://me:hunter2@127.0.0.1:1/nothing"
    result = runner.invoke(
        app, ["feedback", command, "--database-url", url], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        "cannot read feedback from postgresql+psycopg://me:***@127.0.0.1:1/nothing: "
        "OperationalError: "
    )
    assert "hunter2" not in result.output


@pytest.mark.parametrize("command", ["export", "stats"])
def test_a_missing_sqlite_file_is_not_created(command: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "nowhere"
    result = runner.invoke(
        app, ["feedback", command, "--data-dir", str(data_dir)], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 1
    assert result.stderr == (
        f"cannot read feedback from sqlite:///{data_dir}/sentimon.db: no such file (the API "
        "creates it at its first start: are --data-dir and --database-url the API's?)\n"
    )
    assert not data_dir.exists()


def test_a_bad_since_is_refused_with_the_forms_it_takes() -> None:
    result = runner.invoke(app, ["feedback", "stats", "--since", "yesterday"])
    assert result.exit_code == 2
    assert "'yesterday' is neither an ISO-8601 date or time" in result.output


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("45s", NOW - timedelta(seconds=45)),
        ("30m", NOW - timedelta(minutes=30)),
        ("12h", NOW - timedelta(hours=12)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(days=14)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T06:30", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
        ("2026-11-01T06:30:00Z", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
        ("2026-11-01T08:30:00+02:00", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
    ],
)
def test_since_takes_a_duration_or_an_iso_moment(value: str, moment: datetime) -> None:
    parsed = parse_since(value, NOW)
    assert parsed == moment
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", ["", "7", "7y", "-7d", "1.5d", "7 days", "2026-13-01"])
def test_since_refuses_anything_else(value: str) -> None:
    with pytest.raises(ValueError, match="is neither an ISO-8601 date or time"):
        parse_since(value, NOW)
