"""`sentimon db upgrade`: bring the prediction log's schema up to date (the API does it at
start too; this is for doing it ahead of a deployment, or checking where a database is)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from sentimon.cli._settings import flag, settings_from

app = typer.Typer(help="The prediction log and feedback database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    database_url: Annotated[str | None, flag("database_url", "--database-url")] = None,
    data_dir: Annotated[Path | None, flag("data_dir", "--data-dir")] = None,
) -> None:
    """Apply every migration the database lacks and print its revision."""
    from sentimon.store import engine as db

    settings = settings_from(database_url=database_url, data_dir=data_dir)
    url = db.database_url(settings.database_url, settings.data_dir, settings.database_password_file)
    engine = db.make_engine(url)
    console = Console()
    try:
        before = db.current_revision(engine)
        db.upgrade(engine)
        after = db.current_revision(engine)
    except SQLAlchemyError as exc:
        console.print(
            f"[red]cannot upgrade {db.describe(url)}: {type(exc).__name__}: "
            f"{str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}[/red]"
        )
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    change = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    console.print(f"{db.describe(url)}: {change} revision {after}")
