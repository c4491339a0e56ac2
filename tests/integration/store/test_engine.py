"""The schema: migrations create exactly the tables the code uses, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL

from sentimon.store.engine import current_revision, database_url, make_engine, upgrade
from sentimon.store.tables import metadata


def test_migrations_build_the_schema_the_code_declares(database_url: str) -> None:
    engine = make_engine(database_url_of(database_url))
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == "0001"
    assert {"predictions", "feedback"} <= set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    upgrade(engine)  # a second start changes nothing
    assert current_revision(engine) == "0001"
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(database_url(None, tmp_path / "nested" / "data"))
    with engine.connect() as connection:
        pragmas = [
            connection.execute(text(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys")
        ]
    assert pragmas == ["wal", 2, 1]  # synchronous 2 is FULL
    assert (tmp_path / "nested" / "data" / "sentimon.db").exists()
    engine.dispose()


def test_urls_resolve_to_the_installed_drivers(tmp_path: Path) -> None:
    assert str(database_url(None, tmp_path)) == f"sqlite:///{tmp_path / 'sentimon.db'}"
    pg = database_url("postgresql://u:secret@db:5432/sentimon", tmp_path)
    assert pg.drivername == "postgresql+psycopg"
    assert pg.render_as_string(hide_password=True) == "postgresql+psycopg://u:***@db:5432/sentimon"


def database_url_of(url: str) -> URL:
    return database_url(url, Path("/unused"))


def test_db_upgrade_command_migrates_and_reports(database_url: str) -> None:
    from typer.testing import CliRunner

    from sentimon.cli.main import app

    runner = CliRunner()
    first = runner.invoke(
        app, ["db", "upgrade", "--database-url", database_url], env={"COLUMNS": "300"}
    )
    assert first.exit_code == 0, first.output
    assert first.output.strip().endswith(": upgraded from empty to revision 0001")
    again = runner.invoke(
        app, ["db", "upgrade", "--database-url", database_url], env={"COLUMNS": "300"}
    )
    assert again.output.strip().endswith(": already at revision 0001")


def test_db_upgrade_names_an_unreachable_database_without_its_password() -> None:
    from typer.testing import CliRunner

    from sentimon.cli.main import app

    url = "postgresql://me:hunter2@127.0.0.1:1/nothing"
    result = CliRunner().invoke(
        app, ["db", "upgrade", "--database-url", url], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 1
    assert result.output.startswith(
        "cannot upgrade postgresql+psycopg://me:***@127.0.0.1:1/nothing: OperationalError: "
    )
    assert "hunter2" not in result.output
