"""The database: which one (SQLite file by default, PostgreSQL by URL), its connections, and
its schema brought up to date by Alembic.

SQLite runs in WAL mode with `synchronous=FULL`: a commit is on disk before the API answers
2xx, so an acknowledged feedback survives a killed process and a power cut alike.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_FILE = "sentimon.db"
# Any number, the same in every replica: concurrent starts migrate one at a time.
_MIGRATION_LOCK = 0x53454E54  # "SENT"


def database_url(
    database_url: str | None, data_dir: Path, password_file: Path | None = None
) -> URL:
    """`database_url` when set (with the password in `password_file`, if given), else the
    SQLite file in `data_dir`. A bare `postgresql://` URL gets the psycopg (3) driver, the one
    sentimon installs."""
    if not database_url:
        return make_url(f"sqlite:///{data_dir.expanduser() / SQLITE_FILE}")
    url = make_url(database_url)
    if url.drivername in {"postgresql", "postgres"}:
        url = url.set(drivername="postgresql+psycopg")
    if password_file is not None:
        password = password_file.expanduser().read_text(encoding="utf-8")
        url = url.set(password=password.removesuffix("\n").removesuffix("\r"))
    return url


def describe(url: URL) -> str:
    """The URL without its password, for logs and errors."""
    return url.render_as_string(hide_password=True)


def make_engine(url: URL, *, connect_timeout_s: float = 5.0) -> Engine:
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": connect_timeout_s}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = max(1, round(connect_timeout_s))
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=FULL",
        "foreign_keys=ON",
        "busy_timeout=10000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply Alembic migrations up to `revision`; replicas starting together on PostgreSQL
    take turns (an advisory lock held for the migration's transaction)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        _lock_for_migration(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _lock_for_migration(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
