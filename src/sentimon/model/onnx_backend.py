"""ONNX Runtime backend: the loaded transformers model exported once, optionally int8, cached.

At first start a child process exports the model (and quantizes it), so the server never
holds the memory that takes (RoBERTa-base: the server peaks at 714 MB instead of 2.9 GB).
The files are cached under `cache_dir/<name>-<revision>/` (`sentimon.model.onnx_export`), so
a restart reads only the tokenizer and config, not the PyTorch weights.

The int8 copy follows `sentimon.model.int8.RECIPE`: activations scaled per token and 7-bit
weights, so the same file computes the same integers on every CPU, and the texts batched
with a text do not set its int8 scales.

With packing (the default, for BERT- and RoBERTa-family models) a call's texts are packed
end to end into rows (`sentimon.model.packing`), so a call carries almost no padding.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from sentimon.model.base import Int8Info, ModelInfo
from sentimon.model.cpu import CpuInt8, detect_int8
from sentimon.model.cpu_quota import available_cpus
from sentimon.model.encoding import EncodedClassifier, TextEncoder
from sentimon.model.hf_files import read_model_files
from sentimon.model.int8 import RECIPE
from sentimon.model.onnx_export import (
    EMBEDDING_OUTPUT,
    cache_folder,
    model_file,
    prepare_in_child,
)
from sentimon.model.packing import pack, position_offset, supports_packing

log = logging.getLogger(__name__)

Precision = Literal["int8", "fp32"]


class OnnxModel(EncodedClassifier):
    backend = "onnx"

    def __init__(
        self, session: Any, encoder: TextEncoder, info: ModelInfo, offset: int = 0
    ) -> None:
        """`session` runs the layout `info.packed` names; `offset`: where a packed text's
        position ids start (`sentimon.model.packing.position_offset`)."""
        self._session = session
        self.encoder = encoder
        self._info = info
        self._offset = offset

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
        packing: bool = True,
        cpu: CpuInt8 | None = None,
    ) -> OnnxModel:
        """`packing`: serve the packed layout where the model supports it; `cpu` (tests): the
        int8 kernel to choose the recipe for, else this machine's."""
        import onnxruntime as ort

        files = read_model_files(
            path_or_id, backend=f"onnx-{precision}", revision=revision, max_tokens=max_tokens
        )
        packed = packing and supports_packing(files.config)
        info = dataclasses.replace(files.info, packed=packed)
        recipe = None
        if precision == "int8":
            cpu = cpu or detect_int8()
            recipe = RECIPE
            int8 = Int8Info(
                recipe.id, recipe.weight_bits, cpu.cpu_class, cpu.kernel, recipe.description
            )
            info = dataclasses.replace(info, int8=int8)
            log.info(
                "int8 recipe %s (%d-bit weights, the same integers on every CPU); here %s",
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
        path = model_file(folder, recipe, packed)
        if not path.exists():
            prepare_in_child(path_or_id, revision, max_tokens, recipe, folder, packed)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or available_cpus().count
        options.inter_op_num_threads = 1
        # No spinning: spinning worker threads steal the CPU the event loop needs between
        # calls. Measured with 16 clients, spinning served 11-25% fewer requests/s (bundled
        # and RoBERTa-base), and at 15 req/s it used 0.72 cores instead of 0.11.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        offset = position_offset(files.config) if packed else 0
        return cls(session, files.encoder, info, offset)

    @property
    def info(self) -> ModelInfo:
        return self._info

    def forward(
        self, ids: Sequence[Sequence[int]], embeddings: bool
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
        feeds: dict[str, Any]
        if self._info.packed:
            feeds = pack(ids, self.encoder.pad_id, self._offset).feeds()
        else:
            input_ids, mask = self.encoder.pad(ids)
            feeds = {"input_ids": input_ids, "attention_mask": mask}
        if not embeddings:
            (logits,) = self._session.run(["logits"], feeds)
            return np.asarray(logits, dtype=np.float32), None
        logits, pooled = self._session.run(["logits", EMBEDDING_OUTPUT], feeds)
        return np.asarray(logits, dtype=np.float32), np.asarray(pooled, dtype=np.float32)
