"""`python -m bench.packing` (`make bench-packing`): sequence packing, measured before merging.

Packing puts several texts in one row of the model call, each attending only to itself (a
block-diagonal mask) with its own position ids, so a call carries no padding and a batch is
one call instead of the several the server cuts it into (`plan_calls`: sorted by length, at
most 1.25x padding). This exports a packed copy of each model's classifier (inputs: token ids,
position ids, each token's text number in its row, and where each text's first token is),
checks in fp32 that it gives the padded graph's logits, quantizes it with the recipe the
server uses on this CPU, and times both int8 graphs on the same batches of tweets: one thread
(what each of the server's two inference workers has on two cores), batch sizes as the server
forms them, every batch run by each variant in turn, so a change in the machine's speed falls
on all of them alike. It also times the padded graph alone on batches of equal-length texts
(no padding, no cuts), both workers at once: the most the served path could reach, against
the int8 matrix-multiply peak `make bench` measures.

Writes bench/results/packing.json and packing.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.int8_recipes import cpu_session
from bench.peak import measure_peaks
from bench.roberta import build_roberta_base, matmul_flops_per_token
from sentimon.batching.batcher import BatchLimits, plan_calls
from sentimon.config import BUNDLED_MODEL_DIR

log = logging.getLogger("bench.packing")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ROW_TOKENS = 64
"""A packed row's length (longer when one text is): rows of 64 were as fast as any length
tried (48 to 512) at every batch size, and longer rows slowed large batches down."""
BATCH_SIZES = (2, 4, 8, 16, 32)
ROBERTA_FAMILY = frozenset({"roberta", "xlm-roberta", "camembert"})
"""Models whose position ids start after the padding id (RoBERTa's layout); BERT's start at 0."""

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Packed:
    input_ids: IntArray
    position_ids: IntArray
    segments: IntArray
    """Each token's text number within its row, from 1; 0 for padding at a row's end."""
    firsts: IntArray
    """Per text, in input order: its first token's index in the flattened rows."""

    def feeds(self) -> dict[str, IntArray]:
        return {
            "input_ids": self.input_ids,
            "position_ids": self.position_ids,
            "segments": self.segments,
            "firsts": self.firsts,
        }


def plan_rows(lengths: Sequence[int], row_tokens: int) -> list[list[int]]:
    """Texts (by index) into rows of at most `row_tokens` tokens (or the longest text's length,
    if more): as many rows as the tokens need, longest texts first, each into the emptiest row
    it fits in (so rows fill evenly and the call's width stays near the mean); a text that
    fits in none opens a row of its own."""
    if not lengths:
        return []
    width = max(row_tokens, max(lengths))
    count = math.ceil(sum(lengths) / width)
    rows: list[list[int]] = [[] for _ in range(count)]
    filled = [0] * count
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        fits = [r for r in range(len(rows)) if filled[r] + lengths[i] <= width]
        if fits:
            r = min(fits, key=filled.__getitem__)
        else:
            rows.append([])
            filled.append(0)
            r = len(rows) - 1
        rows[r].append(i)
        filled[r] += lengths[i]
    return rows


def pack(
    ids: Sequence[Sequence[int]], row_tokens: int, pad_id: int, position_offset: int
) -> Packed:
    """The feeds of one packed call for `ids` (token ids per text, special tokens included)."""
    rows = plan_rows([len(row) for row in ids], row_tokens)
    width = max(sum(len(ids[i]) for i in row) for row in rows)
    shape = (len(rows), width)
    input_ids = np.full(shape, pad_id, dtype=np.int64)
    positions = np.zeros(shape, dtype=np.int64)
    segments = np.zeros(shape, dtype=np.int64)
    firsts = np.zeros(len(ids), dtype=np.int64)
    for r, members in enumerate(rows):
        at = 0
        for number, i in enumerate(members, start=1):
            n = len(ids[i])
            input_ids[r, at : at + n] = ids[i]
            positions[r, at : at + n] = np.arange(position_offset, position_offset + n)
            segments[r, at : at + n] = number
            firsts[i] = r * width + at
            at += n
    return Packed(input_ids, positions, segments, firsts)


def position_offset(config: Any) -> int:
    """Where a text's position ids start: after the padding id in RoBERTa's layout, else 0."""
    return int(config.pad_token_id) + 1 if config.model_type in ROBERTA_FAMILY else 0


def export_packed(classifier: Any, example: Packed, path: Path) -> None:
    """The classifier as a packed graph: logits and first-token embeddings per text."""
    import torch

    model_type = classifier.config.model_type
    if model_type != "bert" and model_type not in ROBERTA_FAMILY:
        raise ValueError(f"no packed head for model type {model_type!r}")

    class PackedClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.classifier = classifier

        def forward(self, input_ids: Any, position_ids: Any, segments: Any, firsts: Any) -> Any:
            same = (segments[:, :, None] == segments[:, None, :]) & (segments[:, None, :] > 0)
            mask = torch.where(same, 0.0, torch.finfo(torch.float32).min)[:, None]
            hidden = self.classifier.base_model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=position_ids,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            first = hidden.reshape(-1, hidden.shape[-1])[firsts]
            if model_type == "bert":
                logits = self.classifier.classifier(self.classifier.bert.pooler(first[:, None]))
            else:
                logits = self.classifier.classifier(first[:, None])
            return logits, first

    names = ["input_ids", "position_ids", "segments", "firsts"]
    rows = {0: "rows", 1: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            PackedClassifier().eval(),
            tuple(torch.from_numpy(a) for a in example.feeds().values()),
            str(path),
            input_names=names,
            output_names=["logits", "embedding"],
            dynamic_axes={
                "input_ids": rows,
                "position_ids": rows,
                "segments": rows,
                "firsts": {0: "texts"},
                "logits": {0: "texts"},
                "embedding": {0: "texts"},
            },
            opset_version=17,
            dynamo=False,
        )


@dataclass(frozen=True, slots=True)
class BatchRow:
    texts: int
    padded_tokens_per_s: float
    packed_tokens_per_s: float
    padded_calls: float
    """Model calls per batch on the padded path (the packed path makes one)."""

    @property
    def gain(self) -> float:
        return self.packed_tokens_per_s / self.padded_tokens_per_s


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
    """The padded int8 graph on equal-length texts (8 a call), two one-thread workers."""
    ceiling_share: float
    """`ceiling_tokens_per_s`'s matrix-multiply work over the int8 peak."""


def measure_model(
    name: str, path: Path, work: Path, texts: Sequence[str], int8_peak_gops: float
) -> ModelResult:
    from sentimon.model.cpu import detect_int8
    from sentimon.model.int8 import quantize_int8, recipe_for
    from sentimon.model.onnx_backend import cache_folder, model_file
    from sentimon.model.onnx_backend import prepare as prepare_padded
    from sentimon.model.transformers_backend import TransformersModel

    torch_model = TransformersModel.load(str(path), max_tokens=512, attn_implementation="eager")
    encoder, config = torch_model.encoder, torch_model.torch_model.config
    ids = encoder.tokenize(list(texts))
    offset = position_offset(config)
    recipe = recipe_for(detect_int8())
    padded_dir = cache_folder(work / "onnx", torch_model.info)
    prepare_padded(str(path), None, 512, recipe, padded_dir)
    packed_dir = work / "packed" / padded_dir.name
    packed_dir.mkdir(parents=True, exist_ok=True)
    packed_fp32, packed_int8 = packed_dir / "model.onnx", model_file(packed_dir, recipe)
    if not packed_fp32.exists():
        with tempfile.TemporaryDirectory(dir=packed_dir) as tmp:
            staging = Path(tmp) / packed_fp32.name
            export_packed(torch_model.torch_model, pack(ids[:7], ROW_TOKENS, 0, offset), staging)
            staging.replace(packed_fp32)
    if not packed_int8.exists():
        quantize_int8(packed_fp32, packed_int8, recipe)
    del torch_model

    difference = _logit_difference(
        cpu_session(model_file(padded_dir, None), 2), cpu_session(packed_fp32, 2), ids[:256],
        encoder, offset,
    )  # fmt: skip
    padded, packed = cpu_session(model_file(padded_dir, recipe), 1), cpu_session(packed_int8, 1)
    rng = random.Random(0)
    batches = []
    for size in BATCH_SIZES:
        sample = [rng.sample(ids, size) for _ in range(max(30, 600 // size))]
        batches.append(_time_batches(sample, padded, packed, encoder.pad, encoder.pad_id, offset))
        log.info("%s: %d texts a batch: packed %.2fx", name, size, batches[-1].gain)
    mean = statistics.fmean(len(row) for row in ids)
    ceiling = _ceiling(model_file(padded_dir, recipe), round(mean))
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


def _logit_difference(
    padded: Any, packed: Any, ids: Sequence[Sequence[int]], encoder: Any, offset: int
) -> float:
    worst = 0.0
    for start in range(0, len(ids), 32):
        chunk = ids[start : start + 32]
        input_ids, mask = encoder.pad(chunk)
        (expected,) = padded.run(["logits"], {"input_ids": input_ids, "attention_mask": mask})
        feeds = pack(chunk, ROW_TOKENS, encoder.pad_id, offset).feeds()
        (got,) = packed.run(["logits"], feeds)
        worst = max(worst, float(np.abs(np.asarray(got) - np.asarray(expected)).max()))
    return worst


def _time_batches(
    batches: Sequence[Sequence[Sequence[int]]],
    padded: Any,
    packed: Any,
    pad: Callable[[Sequence[Sequence[int]]], tuple[IntArray, IntArray]],
    pad_id: int,
    offset: int,
) -> BatchRow:
    limits = BatchLimits()
    spent = {"padded": 0.0, "packed": 0.0}
    calls = 0

    def run_padded(batch: Sequence[Sequence[int]]) -> None:
        nonlocal calls
        for call in plan_calls([len(row) for row in batch], limits):
            input_ids, mask = pad([batch[i] for i in call])
            padded.run(["logits"], {"input_ids": input_ids, "attention_mask": mask})
            calls += 1

    def run_packed(batch: Sequence[Sequence[int]]) -> None:
        packed.run(["logits"], pack(batch, ROW_TOKENS, pad_id, offset).feeds())

    variants = [("padded", run_padded), ("packed", run_packed)]
    for i, batch in enumerate(batches):
        for key, variant in variants[i % 2 :] + variants[: i % 2]:
            started = time.perf_counter()
            variant(batch)
            spent[key] += time.perf_counter() - started
    tokens = sum(len(row) for batch in batches for row in batch)
    return BatchRow(
        texts=len(batches[0]),
        padded_tokens_per_s=tokens / spent["padded"],
        packed_tokens_per_s=tokens / spent["packed"],
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
        "# Sequence packing, measured",
        "",
        f"{machine['cpu']}, {machine['cores']} cores, int8 recipe "
        f"{machine['int8_recipe']['recipe']}; commit {machine['commit']}, {machine['date']}. "
        f"Int8 matrix-multiply peak {results['int8_peak_gops']:,.0f} GOP/s (2 threads). "
        "Written by `python -m bench.packing`; compare within this run only.",
        "",
        f"Useful tokens/s of the int8 graph, one thread, the same batches of tweets for both: "
        f"padded as the server runs them (`plan_calls`, cut where padding would pass 1.25x) "
        f"and packed into rows of {ROW_TOKENS} tokens, one call a batch.",
        "",
    ]
    for model in results["models"]:
        lines += [
            f"**{model['model']}** ({model['layers']} layers, hidden {model['hidden']}; "
            f"{model['mean_tokens']:.1f} tokens a text on average). fp32 logits, packed vs "
            f"padded: at most {model['max_logit_difference']:.1e} apart.",
            "",
            "| texts a batch | padded tokens/s | calls a batch | packed tokens/s "
            "| packed vs padded |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in model["batches"]:
            gain = row["packed_tokens_per_s"] / row["padded_tokens_per_s"]
            lines.append(
                f"| {row['texts']} | {row['padded_tokens_per_s']:,.0f} | "
                f"{row['padded_calls']:.1f} | {row['packed_tokens_per_s']:,.0f} | {gain:.2f}x |"
            )
        lines += [
            "",
            f"The graph alone on equal-length texts (8 of {model['mean_tokens']:.0f} tokens a "
            f"call, no padding, two one-thread workers at once): "
            f"{model['ceiling_tokens_per_s']:,.0f} tokens/s, {model['ceiling_share']:.0%} of "
            "the int8 peak.",
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
        "models": [asdict(m) for m in models],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "packing.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = render_markdown(results)
    (args.out / "packing.md").write_text(markdown)
    sys.stdout.write(markdown)


if __name__ == "__main__":
    main()
