"""`sentimon predict "some text"`: classify texts locally and print a table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sentimon.cli._settings import flag, settings_from


def predict(
    texts: Annotated[list[str], typer.Argument(help="Texts to classify.")],
    model: Annotated[str | None, flag("model", "--model")] = None,
    max_tokens: Annotated[int | None, flag("max_tokens", "--max-tokens")] = None,
) -> None:
    """Classify texts with the configured model, without a server."""
    from sentimon.errors import ModelLoadError
    from sentimon.model.loader import load_model

    settings = settings_from(model=model, max_tokens=max_tokens)
    console = Console()
    try:
        loaded = load_model(settings)
    except ModelLoadError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    blank = [i for i, t in enumerate(texts) if not t.strip()]
    if blank:
        console.print(f"[red]error:[/red] text {blank[0] + 1} is empty")
        raise typer.Exit(2)
    predictions = loaded.predict(texts)
    labels = loaded.info.labels
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
