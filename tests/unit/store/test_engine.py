"""Which database the store opens: the URL, the SQLite default, and a password from a file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from sentimon.config import Settings
from sentimon.store.engine import database_url, describe


def test_sqlite_in_the_data_dir_by_default(tmp_path: Path) -> None:
    assert str(database_url(None, tmp_path)) == f"sqlite:///{tmp_path}/sentimon.db"


def test_postgresql_gets_psycopg_and_the_password_from_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "postgres_password"
    secret.write_text("p@ss:w/rd\n")  # as `echo ... > file` writes it
    url = database_url("postgresql://sentimon@db:5432/sentimon", tmp_path, secret)
    assert url.drivername == "postgresql+psycopg"
    assert url.password == "p@ss:w/rd"
    assert (url.host, url.username, url.database) == ("db", "sentimon", "sentimon")
    assert describe(url) == "postgresql+psycopg://sentimon:***@db:5432/sentimon"


def test_a_missing_password_file_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no such file: .*nope"):
        Settings(database_password_file=tmp_path / "nope")
