"""`sentimon model build`: rebuild the bundled model from its pinned inputs;
`sentimon model int8`: re-measure its int8 section after a recipe change;
`sentimon model profile`: the reference profile drift is measured against, for any model;
`sentimon model prepare`: fill the ONNX cache ahead of time (the image does it at build)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from sentimon.cli._settings import flag, settings_from

app = typer.Typer(
    help="Build the bundled model; build any model's reference profile.", no_args_is_help=True
)


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
    """Re-measure the int8 backend on the held-out tweets, on this CPU, and rewrite its
    figures in the card (the same integers serve on every CPU)."""
    from sentimon.model.build.pipeline import refresh_int8

    result = refresh_int8(model_dir, cache_dir)
    served = result["served"]
    Console().print(
        f"recipe {result['recipe_version']}, on {result['measured_on']}: "
        f"same label as fp32 {result['same_label_as_fp32']:.1%} (served: "
        f"{served['same_label_mean']:.1%} on average, {served['same_label_min']:.1%} at "
        f"worst), accuracy {result['test']['accuracy']:.3f}"
    )


@app.command("profile")
def profile(
    texts: Annotated[
        Path,
        typer.Option(
            "--texts",
            exists=True,
            dir_okay=False,
            help="Texts like those the model will serve: .txt (one per line), .csv or .jsonl.",
        ),
    ],
    text_column: Annotated[str, typer.Option(help="The text column (CSV, JSONL).")] = "text",
    label_column: Annotated[
        str | None,
        typer.Option(help="The right label's column, if the texts are labelled."),
    ] = None,
    calibration_texts: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Labelled texts to fit the calibration on (same columns); default: a third "
            "of --texts when it is labelled.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write it; default: reference_profile.json in the model folder."
        ),
    ] = None,
    model: Annotated[str | None, flag("model", "--model")] = None,
    model_revision: Annotated[str | None, flag("model_revision", "--model-revision")] = None,
    backend: Annotated[str | None, flag("backend", "--backend")] = None,
    max_tokens: Annotated[int | None, flag("max_tokens", "--max-tokens")] = None,
) -> None:
    """Build the reference profile that drift and the label-free accuracy estimate are
    measured against, for the configured model, from texts like those it will serve."""
    from sentimon.cli._texts import TextFileError, read_texts
    from sentimon.drift.profiling import build_profile, hold_out
    from sentimon.drift.reference import PROFILE_FILE
    from sentimon.errors import ModelLoadError
    from sentimon.model.loader import load_model

    console = Console()
    settings = settings_from(
        model=model, model_revision=model_revision, backend=backend, max_tokens=max_tokens
    )
    try:
        reference = read_texts(texts, text_column, label_column)
        calibration = (
            read_texts(calibration_texts, text_column, label_column or "label")
            if calibration_texts
            else None
        )
    except TextFileError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if calibration is None and reference.labels is not None:
        calibration, reference = hold_out(reference)
    try:
        loaded = load_model(settings)
    except ModelLoadError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    folder = Path(loaded.info.source).expanduser()
    target = out or (folder / PROFILE_FILE if folder.is_dir() else None)
    if target is None:
        console.print(
            f"[red]error:[/red] {loaded.info.source} is a hub model: say where the profile "
            "goes with --out (and serve with SENTIMON_REFERENCE_PROFILE set to it)"
        )
        raise typer.Exit(2)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=console,
    ) as bar:
        task = bar.add_task("classifying", total=len(reference.texts))
        try:
            built = build_profile(
                loaded,
                reference,
                calibration,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
    built.write(target)
    console.print(f"[bold]{target}[/bold]: {built.summary()}")
    for line in built.skipped:
        console.print(f"skipped {line}")
    if built.calibration_check:
        c = built.calibration_check
        console.print(
            f"calibration on the {c.n} profile texts: ECE {c.ece_before:.3f} -> {c.ece_after:.3f}"
        )


@app.command("refresh-profile")
def refresh_profile(
    model_dir: Annotated[
        Path, typer.Option(help="A built model folder (its profile, sentimon.json and card).")
    ] = Path("src/sentimon/bundled_model"),
    cache_dir: Annotated[
        Path, typer.Option(help="Where the pinned packages are downloaded and unpacked.")
    ] = Path(".cache/build"),
) -> None:
    """Rebuild a built model's reference profile on its own splits (the test tweets; the
    calibration fitted on the validation tweets), without retraining."""
    from sentimon.model.build.pipeline import refresh_profile as refresh

    profile = refresh(model_dir, cache_dir)
    Console().print(f"{profile.path or model_dir}: {profile.summary()}")


@app.command("prepare")
def prepare(
    model: Annotated[str | None, flag("model", "--model")] = None,
    model_revision: Annotated[str | None, flag("model_revision", "--model-revision")] = None,
    cache_dir: Annotated[Path | None, flag("cache_dir", "--cache-dir")] = None,
    max_tokens: Annotated[int | None, flag("max_tokens", "--max-tokens")] = None,
) -> None:
    """Export the model to ONNX and quantize it for every CPU class (VNNI and not) into the
    cache, so `sentimon serve` starts without writing: what the image runs at build time."""
    from sentimon.model.onnx_export import prepare_all

    settings = settings_from(
        model=model, model_revision=model_revision, cache_dir=cache_dir, max_tokens=max_tokens
    )
    files = prepare_all(
        settings.model_path_or_id,
        settings.model_revision,
        settings.max_tokens,
        settings.cache_dir.expanduser(),
    )
    console = Console()
    for path in files:
        console.print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
