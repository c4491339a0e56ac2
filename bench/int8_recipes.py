"""`python -m bench.int8_recipes`: the int8 options for this machine's CPU, measured on it.

For each option: labels on the bundled model's 840 held-out tweets against fp32 (in batches of
64 in stored order, and batched as the server does over 20 random arrival orders), and speed
on the RoBERTa-base-shaped model (batch 32 x 32 tokens, 2 threads, rounds interleaved so
every option sees the same machine, median), relative to the first option. Options:

- recipe 4 with 8-bit weights (what CPUs with VNNI got before recipe 5; clipped by the 16-bit
  pair sums of CPUs without),
- recipe 4-w7: the same with 7-bit weights (what CPUs without VNNI got),
- recipe 4's 8-bit integers with the weights stored as uint8 (offset by 128), which ONNX
  Runtime multiplies in its u8 x u8 kernels: never clipped, slower,
- fp32.

Writes bench/results/int8-recipes-<cpu class>.json and prints a table; the model card's
trade-off table for that CPU class (`sentimon.model.build.int8_trade_off`) is copied from it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.roberta import build_roberta_base
from sentimon.config import BUNDLED_MODEL_DIR
from sentimon.model.build.fidelity import evaluate, evaluate_served, same_label_share
from sentimon.model.build.int8_trade_off import RecipeResult
from sentimon.model.build.pipeline import load_splits
from sentimon.model.cpu import CpuInt8, describe_cpu, detect_int8, read_cpuinfo
from sentimon.model.hf_files import read_model_files
from sentimon.model.int8 import RECIPE_4, RECIPE_4_W7, Int8Recipe, quantize_int8
from sentimon.model.onnx_backend import OnnxModel
from sentimon.model.onnx_export import model_file, prepare

ROOT = Path(__file__).resolve().parent.parent
Build = Callable[[Path, Path], None]


def as_uint8_weights(model: Any) -> None:
    """Store every int8 weight of an int8 graph as uint8 with zero point 128: the same
    integers, multiplied by ONNX Runtime's u8 x u8 kernels instead of u8 x s8."""
    from onnx import numpy_helper

    weights = {t.name: t for t in model.graph.initializer}

    def shift(name: str) -> None:
        values = numpy_helper.to_array(weights[name])
        if values.dtype != np.int8:
            raise ValueError(f"{name} is {values.dtype}, not int8")
        shifted = (values.astype(np.int16) + 128).astype(np.uint8)
        weights[name].CopyFrom(numpy_helper.from_array(shifted, name))

    for node in model.graph.node:
        if node.op_type == "MatMulInteger":
            shift(node.input[1])
            shift(node.input[3])  # its per-column zero points, 0 -> 128
        elif node.op_type == "MatMulIntegerToFloat":
            shift(node.input[1])
            columns = numpy_helper.to_array(weights[node.input[1]]).shape[1]
            zero = f"{node.input[1]}/zero_point"
            model.graph.initializer.append(
                numpy_helper.from_array(np.full(columns, 128, np.uint8), zero)
            )
            node.input.append(zero)


def _options(cpu: CpuInt8) -> dict[str, Build | None]:
    import onnx

    def recipe(chosen: Int8Recipe) -> Build:
        return lambda fp32, out: quantize_int8(fp32, out, chosen)

    def uint8(fp32: Path, out: Path) -> None:
        quantize_int8(fp32, out, RECIPE_4)
        model = onnx.load(str(out))
        as_uint8_weights(model)
        onnx.save(model, str(out))

    clipped = "" if cpu.exact_u8s8 else ", clipped by 16-bit pair sums here"
    return {
        f"8-bit weights (recipe 4{clipped})": recipe(RECIPE_4),
        "7-bit weights (recipe 4-w7)": recipe(RECIPE_4_W7),
        "8-bit weights stored as uint8 (recipe 4's integers, u8 x u8 kernels)": uint8,
        "fp32 (no quantization)": None,
    }


def _graphs(model_dir: Path, work: Path, options: dict[str, Build | None]) -> dict[str, Path]:
    prepare(str(model_dir), None, 512, None, work)
    fp32 = model_file(work, None)
    graphs = {}
    for i, (name, build) in enumerate(options.items()):
        graphs[name] = fp32 if build is None else work / f"option-{i}.onnx"
        if build is not None:
            build(fp32, graphs[name])
    return graphs


def cpu_session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session as the server opens one: `threads` threads, no spinning."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure_speed(graphs: dict[str, Path], threads: int, rounds: int) -> dict[str, float]:
    """Texts/s per option at batch 32 x 32 tokens, median over interleaved rounds."""
    rng = np.random.default_rng(0)
    ids = rng.integers(4, 50_000, size=(32, 32)).astype(np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    sessions = {name: cpu_session(path, threads) for name, path in graphs.items()}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for session in sessions.values():
        session.run(None, feed)
    for _ in range(rounds):
        for name, session in sessions.items():
            started = time.perf_counter()
            session.run(None, feed)
            times[name].append(time.perf_counter() - started)
    return {name: len(ids) / statistics.median(t) for name, t in times.items()}


def measure_labels(graphs: dict[str, Path], cache_dir: Path, threads: int) -> dict[str, Any]:
    """Agreement with fp32 (PyTorch, as the card's) and accuracy change, per option."""
    from sentimon.model.transformers_backend import TransformersModel

    tweets = load_splits(cache_dir)["tweets"].test
    fp32, fp32_predictions = evaluate(TransformersModel.load(str(BUNDLED_MODEL_DIR)), tweets)
    files = read_model_files(str(BUNDLED_MODEL_DIR), backend="onnx", max_tokens=128)
    results = {}
    for name, path in graphs.items():
        model = OnnxModel(cpu_session(path, threads), files.encoder, files.info)
        scores, predictions = evaluate(model, tweets)
        served = evaluate_served(model, tweets, fp32_predictions)
        results[name] = {
            "same_label_as_fp32": same_label_share(predictions, fp32_predictions),
            "accuracy_change": scores.accuracy - fp32.accuracy,
            "served_same_label": served["same_label_mean"],
            "served_accuracy_change": served["accuracy_change_mean"],
        }
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.int8_recipes", description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds per option")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    cpu = detect_int8()
    machine = describe_cpu(read_cpuinfo()) or f"a CPU with int8 kernel {cpu.kernel}"
    work = ROOT / ".cache" / "bench" / "int8-recipes"
    options = _options(cpu)
    roberta = build_roberta_base(ROOT / ".cache" / "bench" / "roberta-base-shaped")
    speed = measure_speed(_graphs(roberta, work / "roberta", options), args.threads, args.rounds)
    bundled = _graphs(BUNDLED_MODEL_DIR, work / "bundled", options)
    labels = measure_labels(bundled, ROOT / ".cache" / "build", args.threads)
    first = next(iter(speed.values()))
    rows = [
        RecipeResult(
            recipe=name,
            same_label_as_fp32=round(labels[name]["same_label_as_fp32"], 4),
            accuracy_change=round(labels[name]["accuracy_change"], 4),
            served_same_label=round(labels[name]["served_same_label"], 4),
            served_accuracy_change=round(labels[name]["served_accuracy_change"], 4),
            relative_speed=round(speed[name] / first, 2),
        )
        for name in options
    ]
    report = {
        "cpu_class": cpu.cpu_class,
        "measured_on": machine,
        "int8_kernel": cpu.kernel,
        "texts_per_second": {name: round(v, 1) for name, v in speed.items()},
        "rows": [asdict(row) for row in rows],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"int8-recipes-{cpu.cpu_class}.json").write_text(json.dumps(report, indent=1))
    lines = [
        f"{machine}: int8 kernel {cpu.kernel} (CPU class {cpu.cpu_class})",
        "| option | same label | accuracy | served same label | served accuracy | speed |",
    ]
    for row in rows:
        lines.append(
            f"| {row.recipe} | {row.same_label_as_fp32:.2%} | {row.accuracy_change:+.4f} | "
            f"{row.served_same_label:.2%} | {row.served_accuracy_change:+.4f} | "
            f"{row.relative_speed:.2f}x ({speed[row.recipe]:.1f} texts/s) |"
        )
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
