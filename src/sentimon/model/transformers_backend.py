"""PyTorch/transformers backend: any sequence-classification model, local or from the hub."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from transformers import AutoModelForSequenceClassification

from sentimon.model.base import ModelInfo
from sentimon.model.encoding import EncodedClassifier
from sentimon.model.hf_files import ModelFiles, read_model_files


class TransformersModel(EncodedClassifier):
    """A Hugging Face sequence classifier run with PyTorch in fp32, without gradients."""

    backend = "transformers"

    def __init__(self, model: Any, files: ModelFiles) -> None:
        self._model = model.eval()
        self.encoder = files.encoder
        self._info = files.info

    @classmethod
    def load(
        cls,
        path_or_id: str,
        *,
        name: str | None = None,
        revision: str | None = None,
        max_tokens: int = 512,
        attn_implementation: str | None = None,
    ) -> TransformersModel:
        """Load from a folder or hub id. Raises whatever transformers raises on failure.
        `attn_implementation` picks transformers' attention code (default: its own choice)."""
        files = read_model_files(
            path_or_id, backend=cls.backend, name=name, revision=revision, max_tokens=max_tokens
        )
        kwargs: dict[str, Any] = {"revision": revision} if revision else {}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        model = AutoModelForSequenceClassification.from_pretrained(
            path_or_id, dtype=torch.float32, **kwargs
        )
        return cls(model, files)

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def torch_model(self) -> Any:
        return self._model

    def forward(
        self, ids: Sequence[Sequence[int]], embeddings: bool
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
        """Rows are right-padded to the longest one. The hidden states come from the same
        pass (transformers keeps them anyway; asking only returns them)."""
        input_ids, mask = self.encoder.pad(ids)
        with torch.inference_mode():
            out = self._model(
                input_ids=torch.from_numpy(input_ids),
                attention_mask=torch.from_numpy(mask),
                output_hidden_states=embeddings,
            )
        pooled = out.hidden_states[-1][:, 0].float().numpy() if embeddings else None
        return out.logits.float().numpy(), pooled
