"""`sentimon predict "some text"` or `sentimon predict --file F --output out.csv`: classify
texts locally, without a server, and print a table or write every result to a file."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from sentimon.cli._settings import flag, settings_from
from sentimon.model.base import Prediction

OUTPUT_SUFFIXES = (".csv", ".jsonl")


def predict(
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts to classify (or --file).", show_default=False)
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            exists=True,
            dir_okay=False,
            help="Classify the texts of a .txt (one per line), .csv or .jsonl file.",
        ),
    ] = None,
    text_column: Annotated[str, typer.Option(help="The text column of a .csv or .jsonl.")] = (
        "text"
    ),
    output: Annotated[
        Path | None,
        typer.Option(
            help="Write every result here, as .csv or .jsonl (text, label, score and each "
            "label's probability), instead of printing a table.",
        ),
    ] = None,
    model: Annotated[str | None, flag("model", "--model")] = None,
    max_tokens: Annotated[int | None, flag("max_tokens", "--max-tokens")] = None,
) -> None:
    """Classify texts with the configured model, without a server."""
    from sentimon.cli._texts import TextFileError, read_texts
    from sentimon.drift.profiling import CHUNK, predict_all
    from sentimon.errors import ModelLoadError
    from sentimon.model.loader import load_model

    console = Console()
    if bool(texts) == (file is not None):
        fail(console, "give texts as arguments or --file, not both or neither")
    if output is not None and output.suffix.lower() not in OUTPUT_SUFFIXES:
        fail(console, f"--output must end in .csv or .jsonl, got {output.name}")
    if file is not None:
        try:
            texts = read_texts(file, text_column).texts
        except TextFileError as exc:
            fail(console, str(exc))
    assert texts is not None
    blank = [i for i, t in enumerate(texts) if not t.strip()]
    if blank:
        fail(console, f"text {blank[0] + 1} is empty")
    settings = settings_from(model=model, max_tokens=max_tokens)
    try:
        loaded = load_model(settings)
    except ModelLoadError as exc:
        fail(console, str(exc))
    with Progress(
        TextColumn("classifying"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=len(texts) <= CHUNK,
    ) as bar:
        task = bar.add_task("classifying", total=len(texts))
        predictions = predict_all(
            loaded, texts, lambda done, total: bar.update(task, completed=done, total=total)
        )
    labels = loaded.info.labels
    if output is not None:
        write_results(output, labels, texts, predictions)
        counts = Counter(p.label for p in predictions)
        mix = ", ".join(f"{label} {counts[label]}" for label in labels)
        console.print(f"{len(predictions)} texts classified ({mix}) → [bold]{output}[/bold]")
        return
    table = Table(title=f"{loaded.info.name} ({loaded.info.revision}, {loaded.info.backend})")
    table.add_column("text", overflow="fold", max_width=60)
    table.add_column("label", style="bold")
    table.add_column("score", justify="right")
    for label in labels:
        table.add_column(label, justify="right")
    for text, p in zip(texts, predictions, strict=True):
        table.add_row(
            text, p.label, f"{p.score:.3f}", *(f"{p.probabilities[label]:.3f}" for label in labels)
        )
    console.print(table)


def fail(console: Console, message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def write_results(
    path: Path, labels: Sequence[str], texts: Sequence[str], predictions: Sequence[Prediction]
) -> None:
    """One row per text: text, label, score and each label's probability."""
    rows = [
        {
            "text": text,
            "label": p.label,
            "score": round(p.score, 6),
            **{label: round(p.probabilities[label], 6) for label in labels},
        }
        for text, p in zip(texts, predictions, strict=True)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "label", "score", *labels])
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
        )
