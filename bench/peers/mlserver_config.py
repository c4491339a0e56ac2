"""The files MLServer reads at start: settings.json, model-settings.json and a tokenizer copy.

Layout of the folder `mlserver start` is given: settings.json, sentiment/model-settings.json,
tokenizer/ (see write_tokenizer_copy) and metrics/ (MLServer's multiprocess metrics).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from bench.servers import HOST

MODEL_NAME = "sentiment"
MAX_BATCH_SIZE = 32
MAX_BATCH_TIME_S = 0.005
"""How long MLServer's adaptive batcher waits for more requests after the first one."""
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt", ".h5", ".msgpack")


def server_settings(grpc_port: int, metrics_port: int, metrics_dir: Path) -> dict[str, Any]:
    """settings.json. The HTTP port is not in it: MLSERVER_HTTP_PORT sets it at start.

    MLServer always serves gRPC, and serves Prometheus metrics on a port of their own, so
    both get a free loopback port. One inference worker process (MLServer's default) runs
    the model; the main process serves HTTP and batches.
    """
    return {
        "debug": False,
        "host": HOST,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "metrics_dir": str(metrics_dir),
        "parallel_workers": 1,
        "load_models_at_startup": True,
    }


def model_settings(model_path: Path, tokenizer_path: Path, threads: int) -> dict[str, Any]:
    """model-settings.json: the Hugging Face runtime, adaptive batching on, PyTorch, threads."""
    return {
        "name": MODEL_NAME,
        "implementation": "mlserver_runtime.AllScoresRuntime",
        "max_batch_size": MAX_BATCH_SIZE,
        "max_batch_time": MAX_BATCH_TIME_S,
        "parameters": {
            "extra": {
                "task": "text-classification",
                "pretrained_model": str(model_path),
                "pretrained_tokenizer": str(tokenizer_path),
                "framework": "pt",
                "intra_op_threads": threads,
            }
        },
    }


def legacy_tokenizer_json(tokenizer: dict[str, Any]) -> dict[str, Any]:
    """tokenizer.json with BPE merges as "a b" strings, the form tokenizers < 0.20 reads.

    Newer tokenizers write each merge as a pair ["a", "b"]; MLServer's pinned transformers
    4.41 comes with tokenizers 0.19, which fails on that. Byte-level BPE tokens hold no
    spaces (a space is "Ġ"), so the two forms tokenize the same.
    """
    model = tokenizer.get("model", {})
    merges = model.get("merges")
    if model.get("type") != "BPE" or not merges or isinstance(merges[0], str):
        return tokenizer
    legacy = [" ".join(pair) for pair in merges]
    return {**tokenizer, "model": {**model, "merges": legacy}}


def write_tokenizer_copy(model_path: Path, dest: Path) -> Path:
    """Copy the model folder's files but its weights into dest, tokenizer.json made legacy."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for source in sorted(model_path.iterdir()):
        if source.is_file() and not source.name.endswith(WEIGHT_SUFFIXES):
            shutil.copyfile(source, dest / source.name)
    tokenizer_json = dest / "tokenizer.json"
    if tokenizer_json.is_file():
        tokenizer = json.loads(tokenizer_json.read_text(encoding="utf-8"))
        tokenizer_json.write_text(
            json.dumps(legacy_tokenizer_json(tokenizer), ensure_ascii=False), encoding="utf-8"
        )
    return dest


def write_config(
    folder: Path, model_path: Path, threads: int, grpc_port: int, metrics_port: int
) -> Path:
    """Write MLServer's start folder (the one `mlserver start` is given); return it."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = write_tokenizer_copy(model_path, folder / "tokenizer")
    settings = server_settings(grpc_port, metrics_port, folder / "metrics")
    (folder / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    # In a folder named like the model, which MLServer expects (it warns otherwise).
    (folder / MODEL_NAME).mkdir(exist_ok=True)
    model = model_settings(model_path, tokenizer, threads)
    (folder / MODEL_NAME / "model-settings.json").write_text(json.dumps(model, indent=2) + "\n")
    return folder
