"""PyTorch/transformers backend: any sequence-classification model, local or from the hub."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

from sentimon.model.base import ModelInfo
from sentimon.model.encoding import EncodedClassifier, TextEncoder, softmax
from sentimon.model.labels import normalize_labels

# Some tokenizers report a huge sentinel as their maximum; positions cap the real one.
_UNBOUNDED = 100_000


class TransformersModel(EncodedClassifier):
    """A Hugging Face sequence classifier run with PyTorch in fp32, without gradients."""

    backend = "transformers"

    def __init__(
        self, model: Any, tokenizer: Any, *, name: str, revision: str, source: str, max_tokens: int
    ) -> None:
        self._model = model.eval()
        self._labels = normalize_labels(model.config.id2label)
        self._max_tokens = min(max_tokens, _model_max_tokens(model, tokenizer))
        self.encoder = TextEncoder(tokenizer, self._max_tokens)
        self._info = ModelInfo(
            name=name,
            revision=revision,
            backend=self.backend,
            labels=self._labels,
            max_tokens=self._max_tokens,
            source=source,
        )

    @classmethod
    def load(
        cls,
        path_or_id: str,
        *,
        name: str | None = None,
        revision: str | None = None,
        max_tokens: int = 512,
    ) -> TransformersModel:
        """Load from a folder or hub id. Raises whatever transformers raises on failure."""
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        kwargs: dict[str, Any] = {"revision": revision} if revision else {}
        tokenizer = AutoTokenizer.from_pretrained(path_or_id, **kwargs)
        model = AutoModelForSequenceClassification.from_pretrained(
            path_or_id, dtype=torch.float32, **kwargs
        )
        folder = Path(path_or_id)
        if folder.is_dir():
            resolved_revision = revision or _folder_revision(folder)
        else:
            resolved_revision = revision or getattr(model.config, "_commit_hash", None) or "main"
        return cls(
            model,
            tokenizer,
            name=name or _model_name(path_or_id, folder),
            revision=resolved_revision,
            source=path_or_id,
            max_tokens=max_tokens,
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def torch_model(self) -> Any:
        return self._model

    def infer(self, ids: Sequence[Sequence[int]]) -> list[list[float]]:
        """Label probabilities per row; rows are right-padded to the longest one."""
        if not ids:
            return []
        input_ids, mask = self.encoder.pad(ids)
        with torch.inference_mode():
            logits = self._model(
                input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(mask)
            ).logits
        return softmax(logits.float().numpy())


def _model_max_tokens(model: Any, tokenizer: Any) -> int:
    """The longest input the model takes: the tokenizer's limit or the position table's."""
    limits = [int(tokenizer.model_max_length)]
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions:
        # RoBERTa offsets positions by padding_idx + 1.
        offset = 2 if getattr(model.config, "model_type", "") in {"roberta", "xlm-roberta"} else 0
        limits.append(int(positions) - offset)
    return min((n for n in limits if 0 < n < _UNBOUNDED), default=512)


def _model_name(path_or_id: str, folder: Path) -> str:
    card = folder / "sentimon.json"
    if card.is_file():
        return str(json.loads(card.read_text())["name"])
    return folder.name if folder.is_dir() else path_or_id


def _folder_revision(folder: Path) -> str:
    """The bundled model's recorded revision, else a hash of config and weight sizes."""
    card = folder / "sentimon.json"
    if card.is_file():
        return str(json.loads(card.read_text())["revision"])
    digest = hashlib.sha256((folder / "config.json").read_bytes())
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return "local-" + digest.hexdigest()[:12]
