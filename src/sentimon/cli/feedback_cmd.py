"""`sentimon feedback export`: every prediction that has feedback, as CSV or JSON lines, the
data set to retrain on; `sentimon feedback stats`: how often the model was right by it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from sentimon.cli._settings import flag, settings_from
from sentimon.store.stats import UNKNOWN, FeedbackScores

app = typer.Typer(
    help="Feedback on predictions: export it to retrain on, or see how often the model was right.",
    no_args_is_help=True,
)

SINCE_HELP = (
    "Only feedback given since then: an ISO-8601 date or time (UTC unless it has an offset), "
    "or a duration back from now such as 30m, 12h, 7d or 2w."
)


class Format(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


@app.command("export")
def export(
    format_: Annotated[
        Format,
        typer.Option(
            "--format",
            help="csv: a probability_<label> column per label; jsonl: one object per line, "
            "with a probabilities object.",
        ),
    ] = Format.csv,
    since: Annotated[str | None, typer.Option(help=SINCE_HELP, show_default=False)] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write to this file (replaced once the export is complete); default stdout.",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[str | None, flag("database_url", "--database-url")] = None,
    data_dir: Annotated[Path | None, flag("data_dir", "--data-dir")] = None,
) -> None:
    """Write every prediction that has feedback, oldest feedback first: id, times, endpoint,
    model, predicted and right label, every label's probability, tokens, text hash, and the
    text when the API stored it."""
    from sentimon.store import export as queries

    console = Console(stderr=True)
    moment = _since(since)
    with _database(database_url, data_dir, console) as (connection, where):
        if connection is None:
            console.print(f"no feedback yet ({escape(where)} has no prediction log)")
            return
        labels = queries.labels(connection, moment) if format_ is Format.csv else []
        try:
            with _destination(output) as out, closing(queries.rows(connection, moment)) as records:
                if format_ is Format.csv:
                    n = queries.write_csv(records, labels, out)
                else:
                    n = queries.write_jsonl(records, out)
        except queries.NewLabel as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from None
    if n == 0:
        console.print(_none_yet(since))
    elif output is not None:
        console.print(f"{n} predictions with feedback written to {output}")


@app.command("stats")
def stats(
    since: Annotated[str | None, typer.Option(help=SINCE_HELP, show_default=False)] = None,
    database_url: Annotated[str | None, flag("database_url", "--database-url")] = None,
    data_dir: Annotated[Path | None, flag("data_dir", "--data-dir")] = None,
) -> None:
    """Agreement of the stored feedback with the predictions, with its Wilson interval, and
    precision, recall and F1 per class. Feedback is a sample people chose to send, not all
    traffic: read it with its n and interval."""
    from sentimon.store import export as queries
    from sentimon.store.stats import scores

    console = Console()
    moment = _since(since)
    with _database(database_url, data_dir, Console(stderr=True)) as (connection, where):
        if connection is None:
            console.print(f"no feedback yet ({escape(where)} has no prediction log)")
            return
        counts = queries.feedback_counts(connection, moment)
        models = queries.model_counts(connection, moment) if counts else []
    if not counts:
        console.print(_none_yet(since))
        return
    result = scores(counts)
    unlabelled = sum(n for (_, actual), n in counts.items() if actual == UNKNOWN)
    title = f"feedback in {where}" + (f" since {moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "")
    console.print(_summary_table(result, unlabelled, models, title))
    console.print(_class_table(result))


def _summary_table(
    result: FeedbackScores, unlabelled: int, models: list[tuple[str, str, int]], title: str
) -> Table:
    table = Table(title=escape(title))
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("feedback (n)", str(result.n))
    table.add_row("agreement", f"{_percent(result.agreement)} ({result.correct} right)")
    table.add_row(
        "agreement 95% interval (Wilson)",
        f"{_percent(result.lower95)} to {_percent(result.upper95)}",
    )
    table.add_row("agreement 99% upper bound (one-sided)", _percent(result.upper99_one_sided))
    table.add_row("macro-F1", _number(result.macro_f1))
    table.add_row("wrong, right label not given", str(unlabelled))
    table.add_section()
    for model, revision, n in models:
        table.add_row(escape(f"model {model} ({revision})"), str(n))
    return table


def _class_table(result: FeedbackScores) -> Table:
    table = Table(
        title="per class",
        caption="precision: right / predicted; recall: right / actual",
    )
    table.add_column("label")
    for name in ("predicted", "actual", "right", "precision", "recall", "F1"):
        table.add_column(name, justify="right")
    for label, c in result.classes.items():
        table.add_row(
            escape(label),
            str(c.predicted),
            str(c.actual),
            str(c.true_positives),
            _number(c.precision),
            _number(c.recall),
            _number(c.f1),
        )
    return table


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _since(since: str | None) -> datetime | None:
    from sentimon.store.export import parse_since

    if since is None:
        return None
    try:
        return parse_since(since, datetime.now(UTC))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None


def _none_yet(since: str | None) -> str:
    return "no feedback yet" if since is None else f"no feedback since {since}"


@contextmanager
def _database(
    database_url: str | None, data_dir: Path | None, console: Console
) -> Iterator[tuple[Connection | None, str]]:
    """A connection to the prediction log, reading one snapshot where it can (None when the
    database has no tables yet), and its description; a database that cannot be read ends
    the command with exit code 1."""
    from sentimon.store import engine as db
    from sentimon.store.export import has_schema, snapshot

    settings = settings_from(database_url=database_url, data_dir=data_dir)
    url = db.database_url(settings.database_url, settings.data_dir, settings.database_password_file)
    where = db.describe(url)
    file = url.database if url.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not Path(file).exists():
        console.print(
            f"[red]cannot read feedback from {escape(where)}: no such file[/red] (the API "
            "creates it at its first start: are --data-dir and --database-url the API's?)"
        )
        raise typer.Exit(1)
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            connection = snapshot(connection)
            yield (connection if has_schema(connection) else None), where
    except SQLAlchemyError as exc:
        reason = next(iter(str(getattr(exc, "orig", exc)).strip().splitlines()), "")
        console.print(
            f"[red]cannot read feedback from {escape(where)}: {type(exc).__name__}: "
            f"{escape(reason)}[/red]"
        )
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


@contextmanager
def _destination(output: Path | None) -> Iterator[IO[str]]:
    """stdout, or a file written beside `output` and moved over it once complete."""
    if output is None:
        try:
            yield sys.stdout
            sys.stdout.flush()
        except BrokenPipeError:  # `| head`: the reader has all it wanted
            with suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None
        return
    partial = output.with_name(output.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
