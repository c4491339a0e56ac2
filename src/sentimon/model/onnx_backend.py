"""ONNX Runtime backend: the loaded transformers model exported once, optionally int8, cached.

At first start a child process exports the model (and quantizes it), so the server never
holds the memory that takes (RoBERTa-base: the server peaks at 714 MB instead of 2.9 GB).
The files are cached under `cache_dir/<name>-<revision>/`, so a restart reads only the
tokenizer and config, not the PyTorch weights.

The int8 copy follows the recipe `sentimon.model.int8.recipe_for` picks for this CPU (8-bit
weights where int8 products are summed in 32 bits, 7-bit weights where a 16-bit pair sum
would clip them); the recipe and the CPU class it was chosen for name the cached file, so a
cache built on one class of CPU is never served on another. The dynamic part scales
activations per call, so a text's probabilities can move slightly with the batch it lands in
(fp32 does not).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import re
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from sentimon.model.base import Int8Info, ModelInfo
from sentimon.model.cpu import CpuInt8, detect_int8
from sentimon.model.cpu_quota import available_cpus
from sentimon.model.encoding import EncodedClassifier, TextEncoder
from sentimon.model.hf_files import read_model_files
from sentimon.model.int8 import RECIPES, Int8Recipe, quantize_int8, recipe_for

if TYPE_CHECKING:
    from sentimon.model.transformers_backend import TransformersModel

log = logging.getLogger(__name__)

Precision = Literal["int8", "fp32"]

# Bumped when the fp32 export changes (4: eager attention, 5: the sentence embedding as a
# second output); int8 files carry their recipe.
EXPORT_VERSION = "5"
EMBEDDING_OUTPUT = "embedding"
"""The graph's second output: the final hidden state of each row's first token."""


def cache_folder(cache_dir: Path, info: ModelInfo) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{info.name}-{info.revision}")
    return cache_dir / f"{safe}-onnx{EXPORT_VERSION}"


def model_file(folder: Path, recipe: Int8Recipe | None) -> Path:
    """The graph inside a cache folder: fp32 (`recipe` None) or int8 by `recipe`, e.g.
    `model.int8-4-w7-no-vnni.onnx`."""
    return folder / (f"model.{recipe.cache_key}.onnx" if recipe else "model.onnx")


def export_onnx(model: TransformersModel, path: Path) -> None:
    """Export the classifier with dynamic batch and sequence axes (written atomically)."""
    import torch

    example = model.encoder.pad(model.tokenize(["a short example", "another one"]))
    inputs = tuple(torch.from_numpy(a) for a in example)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        staging = Path(tmp) / path.name
        # The TorchScript exporter is deprecated but needs no extra packages; its tracer
        # warnings about Python control flow do not apply to these encoder graphs.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _export(torch, model, inputs, staging)
        os.replace(staging, path)


def _export(torch: Any, model: TransformersModel, inputs: tuple[Any, ...], path: Path) -> None:
    classifier = model.torch_model
    original = classifier.forward

    def with_embedding(input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
        """The classifier, also returning the sentence embedding its head reads. Set on
        the module itself (not a wrapper around it), so the graph's node names stay the
        module's own."""
        out = original(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True
        )
        return out.logits, out.hidden_states[-1][:, 0]

    classifier.forward = with_embedding
    try:
        _trace(torch, classifier, inputs, path)
    finally:
        del classifier.forward  # the class's forward again


def _trace(torch: Any, classifier: Any, inputs: tuple[Any, ...], path: Path) -> None:
    torch.onnx.export(
        classifier,
        inputs,
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["logits", EMBEDDING_OUTPUT],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch"},
            EMBEDDING_OUTPUT: {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )


def prepare(
    path_or_id: str, revision: str | None, max_tokens: int, recipe: Int8Recipe | None, folder: Path
) -> None:
    """Write what `folder` lacks: the fp32 export and, with a recipe, its int8 copy."""
    fp32 = model_file(folder, None)
    if not fp32.exists():
        from sentimon.model.transformers_backend import TransformersModel

        # Eager attention exports as plain MatMul and Softmax nodes; the default (SDPA) adds
        # a guard for fully masked rows that ONNX Runtime runs op by op: 2-6% slower here.
        source = TransformersModel.load(
            path_or_id, revision=revision, max_tokens=max_tokens, attn_implementation="eager"
        )
        export_onnx(source, fp32)
    if recipe is not None and not model_file(folder, recipe).exists():
        quantize_int8(fp32, model_file(folder, recipe), recipe)


def prepare_all(
    path_or_id: str, revision: str | None, max_tokens: int, cache_dir: Path
) -> list[Path]:
    """The fp32 export and the int8 copy for every CPU class, in the cache folder the server
    reads: so a read-only image serves on any CPU without writing (`sentimon model prepare`)."""
    info = read_model_files(
        path_or_id, backend="onnx", revision=revision, max_tokens=max_tokens
    ).info
    folder = cache_folder(cache_dir, info)
    for recipe in RECIPES.values():
        _prepare_in_child(path_or_id, revision, max_tokens, recipe, folder)
    return [model_file(folder, None), *(model_file(folder, r) for r in RECIPES.values())]


def _prepare_in_child(
    path_or_id: str, revision: str | None, max_tokens: int, recipe: Int8Recipe | None, folder: Path
) -> None:
    """`prepare` in a child process: loading the PyTorch weights, exporting and quantizing
    peak at several times the model's size (RoBERTa-base: 2.1 GB to quantize), and memory a
    Python process has used is rarely given back, so the server itself never does it."""
    log.info(
        "preparing the ONNX model (export%s) in a child process",
        f" and int8 recipe {recipe.id} quantization" if recipe else "",
        extra={"event": "onnx_prepare", "path": str(folder)},
    )
    started = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(
        target=prepare,
        args=(path_or_id, revision, max_tokens, recipe, folder),
        name="sentimon-onnx-prepare",
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(
            f"preparing the ONNX model failed (child exit code {child.exitcode}); "
            "its error is in the log above"
        )
    log.info(
        "ONNX model prepared in %.1f s",
        time.perf_counter() - started,
        extra={"event": "onnx_prepared", "path": str(folder)},
    )


class OnnxModel(EncodedClassifier):
    backend = "onnx"

    def __init__(self, session: Any, encoder: TextEncoder, info: ModelInfo) -> None:
        self._session = session
        self.encoder = encoder
        self._info = info

    @classmethod
    def load(
        cls,
        path_or_id: str,
        *,
        revision: str | None = None,
        max_tokens: int = 512,
        precision: Precision = "int8",
        cache_dir: Path,
        threads: int = 0,
        cpu: CpuInt8 | None = None,
    ) -> OnnxModel:
        """`cpu` (tests): the int8 kernel to choose the recipe for, else this machine's."""
        import onnxruntime as ort

        files = read_model_files(
            path_or_id, backend=f"onnx-{precision}", revision=revision, max_tokens=max_tokens
        )
        info = files.info
        recipe = None
        if precision == "int8":
            cpu = cpu or detect_int8()
            recipe = recipe_for(cpu)
            int8 = Int8Info(
                recipe.id, recipe.weight_bits, recipe.cpu_class, cpu.kernel, recipe.description
            )
            info = dataclasses.replace(info, int8=int8)
            log.info(
                "int8 recipe %s (%d-bit weights) for this CPU: %s",
                recipe.id,
                recipe.weight_bits,
                cpu.explain(),
                extra={
                    "event": "int8_recipe",
                    "int8_recipe": recipe.id,
                    "cpu_class": cpu.cpu_class,
                    "int8_kernel": cpu.kernel,
                },
            )
        folder = cache_folder(cache_dir, info)
        path = model_file(folder, recipe)
        if not path.exists():
            _prepare_in_child(path_or_id, revision, max_tokens, recipe, folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or available_cpus().count
        options.inter_op_num_threads = 1
        # No spinning: spinning worker threads steal the CPU the event loop needs between
        # calls. Measured with 16 clients, spinning served 11-25% fewer requests/s (bundled
        # and RoBERTa-base), and at 15 req/s it used 0.72 cores instead of 0.11.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return cls(session, files.encoder, info)

    @property
    def info(self) -> ModelInfo:
        return self._info

    def forward(
        self, ids: Sequence[Sequence[int]], embeddings: bool
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
        input_ids, mask = self.encoder.pad(ids)
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if not embeddings:
            (logits,) = self._session.run(["logits"], feeds)
            return np.asarray(logits, dtype=np.float32), None
        logits, pooled = self._session.run(["logits", EMBEDDING_OUTPUT], feeds)
        return np.asarray(logits, dtype=np.float32), np.asarray(pooled, dtype=np.float32)
