"""The ONNX files the ONNX backend serves: exported from the PyTorch model once, optionally
quantized to int8, cached per model and revision.

Two layouts: padded (inputs `input_ids` and `attention_mask`, one text a row) and packed
(`sentimon.model.packing`: texts end to end in rows, each attending only to itself). Both
return each text's logits and its sentence embedding (the final hidden state of its first
token). Loading the PyTorch weights, exporting and quantizing peak at several times the
model's size (RoBERTa-base: 2.1 GB to quantize), and memory a Python process has used is
rarely given back, so the server never does it itself: a child process does.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentimon.model.base import ModelInfo
from sentimon.model.hf_files import read_model_files
from sentimon.model.int8 import RECIPE, Int8Recipe, quantize_int8
from sentimon.model.packing import (
    ROBERTA_FAMILY,
    Packed,
    pack,
    position_offset,
    supports_packing,
)

if TYPE_CHECKING:
    from sentimon.model.transformers_backend import TransformersModel

log = logging.getLogger(__name__)

# Bumped when the fp32 export changes (4: eager attention, 5: the sentence embedding as a
# second output); int8 files carry their recipe, packed files their layout.
EXPORT_VERSION = "5"
EMBEDDING_OUTPUT = "embedding"
"""The graph's second output: the final hidden state of each text's first token."""
PADDED_INPUTS = ("input_ids", "attention_mask")
PACKED_INPUTS = ("input_ids", "position_ids", "segments", "firsts")


def cache_folder(cache_dir: Path, info: ModelInfo) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{info.name}-{info.revision}")
    return cache_dir / f"{safe}-onnx{EXPORT_VERSION}"


def model_file(folder: Path, recipe: Int8Recipe | None, packed: bool = False) -> Path:
    """The graph inside a cache folder: fp32 (`recipe` None) or int8 by `recipe`, padded or
    packed, e.g. `model.onnx`, `model.packed.int8-5.onnx`."""
    layout = ".packed" if packed else ""
    return folder / (f"model{layout}.{recipe.cache_key}.onnx" if recipe else f"model{layout}.onnx")


def export_onnx(model: TransformersModel, path: Path, packed: bool = False) -> None:
    """Export the classifier with dynamic axes, padded or packed (written atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        staging = Path(tmp) / path.name
        if packed:
            texts = ["a short example", "another one", "and a third, longer than the rest"]
            config = model.torch_model.config
            example = pack(model.tokenize(texts), model.encoder.pad_id, position_offset(config), 16)
            export_packed(model.torch_model, example, staging)
        else:
            _export_padded(model, staging)
        os.replace(staging, path)


def _export_padded(model: TransformersModel, path: Path) -> None:
    import torch

    example = model.encoder.pad(model.tokenize(["a short example", "another one"]))
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
        _trace(
            classifier,
            tuple(torch.from_numpy(a) for a in example),
            path,
            PADDED_INPUTS,
            {name: {0: "batch", 1: "sequence"} for name in PADDED_INPUTS},
            "batch",
        )
    finally:
        del classifier.forward  # the class's forward again


def export_packed(classifier: Any, example: Packed, path: Path) -> None:
    """A transformers classifier over packed rows (traced on `example`): the block-diagonal
    mask is built in the graph from `segments`, the base model runs with explicit position
    ids, and the head reads each text's first token (through BERT's pooler)."""
    import torch

    config = classifier.config
    if not supports_packing(config):
        raise ValueError(f"no packed layout for model type {config.model_type!r}")
    roberta = config.model_type in ROBERTA_FAMILY
    lowest = torch.finfo(torch.float32).min

    class PackedClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.classifier = classifier

        def forward(
            self, input_ids: Any, position_ids: Any, segments: Any, firsts: Any
        ) -> tuple[Any, Any]:
            same = (segments[:, :, None] == segments[:, None, :]) & (segments[:, None, :] > 0)
            mask = torch.where(same, 0.0, lowest)[:, None]
            hidden = self.classifier.base_model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=position_ids,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            first = hidden.reshape(-1, hidden.shape[-1])[firsts]
            if roberta:
                logits = self.classifier.classifier(first[:, None])
            else:
                logits = self.classifier.classifier(self.classifier.bert.pooler(first[:, None]))
            return logits, first

    rows = {0: "rows", 1: "width"}
    _trace(
        PackedClassifier().eval(),
        tuple(torch.from_numpy(a) for a in example.feeds().values()),
        path,
        PACKED_INPUTS,
        {"input_ids": rows, "position_ids": rows, "segments": rows, "firsts": {0: "texts"}},
        "texts",
    )


def _trace(
    module: Any,
    inputs: tuple[Any, ...],
    path: Path,
    names: tuple[str, ...],
    axes: dict[str, dict[int, str]],
    texts_axis: str,
) -> None:
    import torch

    # The TorchScript exporter is deprecated but needs no extra packages; its tracer warnings
    # about Python control flow do not apply to these encoder graphs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            inputs,
            str(path),
            input_names=list(names),
            output_names=["logits", EMBEDDING_OUTPUT],
            dynamic_axes={**axes, "logits": {0: texts_axis}, EMBEDDING_OUTPUT: {0: texts_axis}},
            opset_version=17,
            dynamo=False,
        )


def prepare(
    path_or_id: str,
    revision: str | None,
    max_tokens: int,
    recipe: Int8Recipe | None,
    folder: Path,
    packed: bool = False,
) -> None:
    """Write what `folder` lacks: the fp32 export in the layout asked for and, with a recipe,
    its int8 copy."""
    fp32 = model_file(folder, None, packed)
    if not fp32.exists():
        from sentimon.model.transformers_backend import TransformersModel

        # Eager attention exports as plain MatMul and Softmax nodes; the default (SDPA) adds
        # a guard for fully masked rows that ONNX Runtime runs op by op: 2-6% slower here.
        source = TransformersModel.load(
            path_or_id, revision=revision, max_tokens=max_tokens, attn_implementation="eager"
        )
        export_onnx(source, fp32, packed)
    if recipe is not None and not model_file(folder, recipe, packed).exists():
        quantize_int8(fp32, model_file(folder, recipe, packed), recipe)


def prepare_all(
    path_or_id: str, revision: str | None, max_tokens: int, cache_dir: Path
) -> list[Path]:
    """The fp32 export and its int8 copy (the same on every CPU), padded and (where the model
    supports it) packed, in the cache folder the server reads: so a read-only image serves on
    any CPU, with packing on or off, without writing (`sentimon model prepare`)."""
    files = read_model_files(path_or_id, backend="onnx", revision=revision, max_tokens=max_tokens)
    folder = cache_folder(cache_dir, files.info)
    layouts = [False, True] if supports_packing(files.config) else [False]
    written = []
    for packed in layouts:
        prepare_in_child(path_or_id, revision, max_tokens, RECIPE, folder, packed)
        written += [model_file(folder, None, packed), model_file(folder, RECIPE, packed)]
    return written


def prepare_in_child(
    path_or_id: str,
    revision: str | None,
    max_tokens: int,
    recipe: Int8Recipe | None,
    folder: Path,
    packed: bool = False,
) -> None:
    """`prepare` in a child process (see the module's docstring for why)."""
    layout = "packed" if packed else "padded"
    log.info(
        "preparing the ONNX model (%s export%s) in a child process",
        layout,
        f" and int8 recipe {recipe.id} quantization" if recipe else "",
        extra={"event": "onnx_prepare", "path": str(folder), "layout": layout},
    )
    started = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(
        target=prepare,
        args=(path_or_id, revision, max_tokens, recipe, folder, packed),
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
        extra={"event": "onnx_prepared", "path": str(folder), "layout": layout},
    )
