"""`python -m bench.packing` (`make bench-packing`): sequence packing and the int8 recipe it
needs, measured on the served graphs.

Packing puts several texts in one row of a model call, each attending only to itself
(`sentimon.model.packing`), so a batch is one call with almost no padding instead of the
several padded calls sorting by length cuts it into (`plan_calls`: at most 1.25x padding).
This exports each model's classifier in both layouts (`sentimon.model.onnx_export`), checks in
fp32 that the packed graph gives the padded graph's logits, and quantizes both by recipe 4
(as served before packing, with this CPU class's weights) and recipe 5 (every MatMul per
token, served now). It times the four int8 graphs on the same batches of tweets, batch sizes
as the server forms them, one thread (what each of the server's two inference workers has on
two cores), every batch run by each variant in turn, so a change in the machine's speed falls
on all of them alike; and it measures each option's labels on the bundled model's held-out
tweets as the model card reports them (`sentimon.model.build.fidelity`), for the card's
trade-off table. It also times the padded graph alone on batches of equal-length texts (no
padding, no cuts), both workers at once: the most the served path could reach, against the
int8 matrix-multiply peak `make bench` measures.

Writes bench/results/packing.json and packing.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.int8_recipes import cpu_session
from bench.peak import measure_peaks
from bench.roberta import build_roberta_base, matmul_flops_per_token
from sentimon.batching.batcher import BatchLimits, plan_calls
from sentimon.config import BUNDLED_MODEL_DIR
from sentimon.model.cpu import detect_int8
from sentimon.model.int8 import RECIPE, RECIPE_4, RECIPE_4_W7, Int8Recipe, quantize_int8
from sentimon.model.packing import ROW_TOKENS, pack, position_offset

log = logging.getLogger("bench.packing")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BATCH_SIZES = (2, 4, 8, 16, 32)
EIGHT_BIT_PER_TOKEN = Int8Recipe(
    "5-w8", 127, "all", "every MatMul per token, 8-bit weights (measured against)"
)


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    packed: bool
    recipe: Int8Recipe
    timed: bool
    """Timed as well as scored (the label-only options are not)."""


def variants() -> list[Variant]:
    """Recipe 4 as it served before on this CPU class (8-bit weights with VNNI), then the
    options the card's table compares, recipe 5 packed (served now) among them."""
    before = RECIPE_4 if detect_int8().exact_u8s8 else RECIPE_4_W7
    other = RECIPE_4_W7 if before is RECIPE_4 else RECIPE_4
    return [
        Variant(f"recipe {before.id}, padded calls (served before)", False, before, True),
        Variant(f"recipe {before.id}, packed calls", True, before, True),
        Variant(f"recipe {other.id}, packed calls", True, other, False),
        Variant("every MatMul per token, 8-bit weights, packed calls", True, EIGHT_BIT_PER_TOKEN,
                False),
        Variant(f"recipe {RECIPE.id}, packed calls (served)", True, RECIPE, True),
        Variant(f"recipe {RECIPE.id}, padded calls", False, RECIPE, True),
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class BatchRow:
    texts: int
    tokens_per_s: dict[str, float]
    """Useful tokens/s per timed variant."""
    padded_calls: float
    """Model calls per batch on the padded path (a packed batch is one)."""


@dataclass(frozen=True, slots=True)
class ModelResult:
    model: str
    layers: int
    hidden: int
    mean_tokens: float
    max_logit_difference: float
    """fp32, packed vs padded, over the same texts."""
    batches: list[BatchRow]
    ceiling_tokens_per_s: float
    """The padded int8 graph (recipe 5) on equal-length texts (8 a call), two one-thread
    workers."""
    ceiling_share: float
    """`ceiling_tokens_per_s`'s matrix-multiply work over the int8 peak."""


def graphs(path: Path, work: Path) -> tuple[Any, dict[tuple[bool, str], Path]]:
    """Both layouts' fp32 exports and every variant's int8 graph, cached under `work`: the
    model's files (its encoder and config) and {(packed, recipe id): graph}."""
    from sentimon.model.hf_files import read_model_files
    from sentimon.model.onnx_export import cache_folder, model_file, prepare

    files = read_model_files(str(path), backend="onnx", max_tokens=512)
    folder = cache_folder(work, files.info)
    found: dict[tuple[bool, str], Path] = {}
    for packed in (False, True):
        prepare(str(path), None, 512, None, folder, packed)
        found[packed, "fp32"] = model_file(folder, None, packed)
    for variant in variants():
        graph = model_file(folder, variant.recipe, variant.packed)
        if not graph.exists():
            quantize_int8(found[variant.packed, "fp32"], graph, variant.recipe)
        found[variant.packed, variant.recipe.id] = graph
    return files, found


def measure_model(
    name: str, path: Path, work: Path, texts: Sequence[str], int8_peak_gops: float
) -> ModelResult:
    files, found = graphs(path, work)
    encoder = files.encoder
    ids = encoder.tokenize(list(texts))
    offset = position_offset(files.config)
    difference = _logit_difference(
        cpu_session(found[False, "fp32"], 2), cpu_session(found[True, "fp32"], 2), ids[:256],
        encoder, offset,
    )  # fmt: skip
    timed = {
        v.name: (v.packed, cpu_session(found[v.packed, v.recipe.id], 1))
        for v in variants()
        if v.timed
    }
    rng = random.Random(0)
    batches = []
    for size in BATCH_SIZES:
        sample = [rng.sample(ids, size) for _ in range(max(30, 600 // size))]
        batches.append(_time_batches(sample, timed, encoder.pad, encoder.pad_id, offset))
        log.info("%s: %d texts a batch: %s", name, size, batches[-1].tokens_per_s)
    mean = statistics.fmean(len(row) for row in ids)
    ceiling = _ceiling(found[False, RECIPE.id], round(mean))
    raw = json.loads((path / "config.json").read_text())
    share = ceiling * matmul_flops_per_token(raw, mean) / (int8_peak_gops * 1e9)
    return ModelResult(
        model=name,
        layers=raw["num_hidden_layers"],
        hidden=raw["hidden_size"],
        mean_tokens=mean,
        max_logit_difference=difference,
        batches=batches,
        ceiling_tokens_per_s=ceiling,
        ceiling_share=share,
    )


def measure_labels(work: Path) -> dict[str, dict[str, Any]]:
    """Each variant's labels on the bundled model's held-out tweets, as the card reports them:
    in batches of 64 in stored order, and served (20 random arrival orders)."""
    from sentimon.model.build.fidelity import evaluate, evaluate_served, same_label_share
    from sentimon.model.build.pipeline import load_splits
    from sentimon.model.onnx_backend import OnnxModel
    from sentimon.model.transformers_backend import TransformersModel

    tweets = load_splits(ROOT / ".cache" / "build")["tweets"].test
    fp32, fp32_predictions = evaluate(TransformersModel.load(str(BUNDLED_MODEL_DIR)), tweets)
    files, found = graphs(BUNDLED_MODEL_DIR, work)
    results = {}
    for v in variants():
        info = dataclasses.replace(files.info, packed=v.packed)
        offset = position_offset(files.config) if v.packed else 0
        model = OnnxModel(cpu_session(found[v.packed, v.recipe.id], 2), files.encoder, info, offset)
        scores, predictions = evaluate(model, tweets)
        served = evaluate_served(model, tweets, fp32_predictions)
        results[v.name] = {
            "same_label_as_fp32": round(same_label_share(predictions, fp32_predictions), 4),
            "accuracy_change": round(scores.accuracy - fp32.accuracy, 4),
            "served_same_label": round(served["same_label_mean"], 4),
            "served_same_label_worst": round(served["same_label_min"], 4),
            "served_accuracy_change": round(served["accuracy_change_mean"], 4),
            "served_accuracy_change_worst": round(served["accuracy_change_worst"], 4),
        }
        log.info("labels, %s: %s", v.name, results[v.name])
    return results


def _logit_difference(
    padded: Any, packed: Any, ids: Sequence[Sequence[int]], encoder: Any, offset: int
) -> float:
    worst = 0.0
    for start in range(0, len(ids), 32):
        chunk = ids[start : start + 32]
        input_ids, mask = encoder.pad(chunk)
        (expected,) = padded.run(["logits"], {"input_ids": input_ids, "attention_mask": mask})
        (got,) = packed.run(["logits"], pack(chunk, encoder.pad_id, offset).feeds())
        worst = max(worst, float(np.abs(np.asarray(got) - np.asarray(expected)).max()))
    return worst


def _time_batches(
    batches: Sequence[Sequence[Sequence[int]]],
    sessions: dict[str, tuple[bool, Any]],
    pad: Callable[[Sequence[Sequence[int]]], tuple[Any, Any]],
    pad_id: int,
    offset: int,
) -> BatchRow:
    limits = BatchLimits()
    spent = dict.fromkeys(sessions, 0.0)
    calls = 0

    def run(packed: bool, session: Any, batch: Sequence[Sequence[int]]) -> int:
        if packed:
            session.run(["logits"], pack(batch, pad_id, offset).feeds())
            return 1
        cuts = plan_calls([len(row) for row in batch], limits)
        for call in cuts:
            input_ids, mask = pad([batch[i] for i in call])
            session.run(["logits"], {"input_ids": input_ids, "attention_mask": mask})
        return len(cuts)

    names = list(sessions)
    for i, batch in enumerate(batches):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            packed, session = sessions[name]
            started = time.perf_counter()
            made = run(packed, session, batch)
            spent[name] += time.perf_counter() - started
            if name == names[0]:
                calls += made
    tokens = sum(len(row) for batch in batches for row in batch)
    return BatchRow(
        texts=len(batches[0]),
        tokens_per_s={name: tokens / seconds for name, seconds in spent.items()},
        padded_calls=calls / len(batches),
    )


def _ceiling(path: Path, width: int, seconds: float = 3.0) -> float:
    """Tokens/s of two one-thread sessions running calls of 8 equal-length texts at once."""
    rng = np.random.default_rng(0)
    feeds = {
        "input_ids": rng.integers(5, 1000, (8, width)).astype(np.int64),
        "attention_mask": np.ones((8, width), dtype=np.int64),
    }
    counts = [0, 0]
    sessions = [cpu_session(path, 1), cpu_session(path, 1)]
    for session in sessions:
        session.run(["logits"], feeds)
    deadline = time.perf_counter() + seconds

    def work(k: int) -> None:
        while time.perf_counter() < deadline:
            sessions[k].run(["logits"], feeds)
            counts[k] += 1

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) * 8 * width / (time.perf_counter() - started)


def render_markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "# Sequence packing and its int8 recipe, measured",
        "",
        f"{machine['cpu']}, {machine['cores']} cores; commit {machine['commit']}, "
        f"{machine['date']}. Int8 matrix-multiply peak {results['int8_peak_gops']:,.0f} GOP/s "
        "(2 threads). Written by `python -m bench.packing`; compare within this run only.",
        "",
        "Labels of each int8 option on the bundled model's 840 held-out tweets: in batches of "
        "64 in stored order, and served (20 random arrival orders, batches of 8 to 32 texts "
        "made into calls as the server does), the mean over orders and the worst one. The bar: "
        "at least 98% of fp32's labels, accuracy within 0.5 point on average and within 1 "
        "point in the worst order.",
        "",
        "| option | same label | accuracy change | served same label | served accuracy change |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in results["labels"].items():
        lines.append(
            f"| {name} | {row['same_label_as_fp32']:.2%} | {row['accuracy_change'] * 100:+.2f} pt "
            f"| {row['served_same_label']:.2%} (worst {row['served_same_label_worst']:.2%}) | "
            f"{row['served_accuracy_change'] * 100:+.2f} pt "
            f"(worst {row['served_accuracy_change_worst'] * 100:+.2f} pt) |"
        )
    lines += [
        "",
        "Useful tokens/s of the int8 graphs, one thread, the same batches of tweets for all: "
        "padded as the server cuts them (`plan_calls`, sorted, cut where padding would pass "
        f"1.25x) or packed into rows of {ROW_TOKENS} tokens, one call a batch; relative to "
        "the first column.",
        "",
    ]
    for model in results["models"]:
        names = list(model["batches"][0]["tokens_per_s"])
        lines += [
            f"**{model['model']}** ({model['layers']} layers, hidden {model['hidden']}; "
            f"{model['mean_tokens']:.1f} tokens a text on average). fp32 logits, packed vs "
            f"padded: at most {model['max_logit_difference']:.1e} apart.",
            "",
            "| texts a batch | padded calls a batch | " + " | ".join(names) + " |",
            "| ---: | ---: |" + " ---: |" * len(names),
        ]
        for row in model["batches"]:
            speeds = row["tokens_per_s"]
            first = speeds[names[0]]
            cells = [f"{speeds[n]:,.0f} ({speeds[n] / first:.2f}x)" for n in names]
            lines.append(
                f"| {row['texts']} | {row['padded_calls']:.1f} | " + " | ".join(cells) + " |"
            )
        lines += [
            "",
            f"The padded recipe-{RECIPE.id} graph alone on equal-length texts (8 of "
            f"{model['mean_tokens']:.0f} tokens a call, no padding, two one-thread workers at "
            f"once): {model['ceiling_tokens_per_s']:,.0f} tokens/s, "
            f"{model['ceiling_share']:.0%} of the int8 peak.",
            "",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    from bench.__main__ import describe_machine
    from sentimon.traffic.tweets import load_tweets

    parser = argparse.ArgumentParser(prog="python -m bench.packing", description=__doc__)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    work = ROOT / ".cache" / "bench" / "packing"
    texts = [text for text, _ in load_tweets()][:2000]
    peak = measure_peaks(2).best("int8")
    models = [
        measure_model("bundled", BUNDLED_MODEL_DIR, work, texts, peak),
        measure_model(
            "roberta-base",
            build_roberta_base(ROOT / ".cache" / "bench" / "roberta-base-shaped"),
            work,
            texts,
            peak,
        ),
    ]
    results = {
        "machine": describe_machine(),
        "int8_peak_gops": peak,
        "row_tokens": ROW_TOKENS,
        "labels": measure_labels(work),
        "models": [asdict(m) for m in models],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "packing.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = render_markdown(results)
    (args.out / "packing.md").write_text(markdown)
    sys.stdout.write(markdown)


if __name__ == "__main__":
    main()
