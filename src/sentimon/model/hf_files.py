"""What a Hugging Face model folder or hub id says about itself, without loading its weights.

Tokenizer, config, labels, name, revision and input limit: all a backend needs besides the
weights. The ONNX backend runs on this alone once its export is cached, so a restart does not
load the PyTorch weights. (transformers still imports torch when it is installed.)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoTokenizer
from transformers.utils import logging as hf_logging

from sentimon.model.base import ModelInfo
from sentimon.model.encoding import TextEncoder
from sentimon.model.labels import normalize_labels

# Some tokenizers report a huge sentinel as their maximum; positions cap the real one.
_UNBOUNDED = 100_000


@dataclass(frozen=True, slots=True)
class ModelFiles:
    encoder: TextEncoder
    info: ModelInfo
    config: Any


def read_model_files(
    path_or_id: str,
    *,
    backend: str,
    name: str | None = None,
    revision: str | None = None,
    max_tokens: int = 512,
) -> ModelFiles:
    """Tokenizer and config of `path_or_id`. Raises whatever transformers raises on failure."""
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    kwargs: dict[str, Any] = {"revision": revision} if revision else {}
    tokenizer = AutoTokenizer.from_pretrained(path_or_id, **kwargs)
    config = AutoConfig.from_pretrained(path_or_id, **kwargs)
    folder = Path(path_or_id)
    if folder.is_dir():
        resolved_revision = revision or folder_revision(folder)
    else:
        resolved_revision = revision or getattr(config, "_commit_hash", None) or "main"
    limit = min(max_tokens, model_max_tokens(config, tokenizer))
    info = ModelInfo(
        name=name or model_name(path_or_id, folder),
        revision=resolved_revision,
        backend=backend,
        labels=normalize_labels(config.id2label),
        max_tokens=limit,
        source=path_or_id,
    )
    return ModelFiles(TextEncoder(tokenizer, limit), info, config)


def model_max_tokens(config: Any, tokenizer: Any) -> int:
    """The longest input the model takes: the tokenizer's limit or the position table's."""
    limits = [int(tokenizer.model_max_length)]
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        # RoBERTa offsets positions by padding_idx + 1.
        offset = 2 if getattr(config, "model_type", "") in {"roberta", "xlm-roberta"} else 0
        limits.append(int(positions) - offset)
    return min((n for n in limits if 0 < n < _UNBOUNDED), default=512)


def model_name(path_or_id: str, folder: Path) -> str:
    card = folder / "sentimon.json"
    if card.is_file():
        return str(json.loads(card.read_text())["name"])
    return folder.name if folder.is_dir() else path_or_id


def folder_revision(folder: Path) -> str:
    """The bundled model's recorded revision, else a hash of config and weight sizes."""
    card = folder / "sentimon.json"
    if card.is_file():
        return str(json.loads(card.read_text())["revision"])
    digest = hashlib.sha256((folder / "config.json").read_bytes())
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return "local-" + digest.hexdigest()[:12]
