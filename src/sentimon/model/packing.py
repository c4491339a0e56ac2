"""Sequence packing: several texts in one row of a model call, each attending only to itself.

A packed call carries texts end to end in rows of about `ROW_TOKENS` tokens, each with its
own position ids and its text number in the row (`segments`), from which the graph builds a
block-diagonal attention mask; `firsts` says where each text's first token is, whose final
hidden state the classifier head reads. So a call has almost no padding and needs no sorting
by length, instead
of the several padded calls sorting by length cuts it into. In fp32 a text's logits are the
padded graph's to within 1.1e-6 (`make bench-packing`).

Supported for the BERT and RoBERTa families (their position ids and classifier heads are
known here); other models are served padded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

ROW_TOKENS = 64
"""A packed row's length (longer when one text is): rows of 64 were as fast as any length
tried (48 to 512) at 2 to 32 texts a call, and longer rows slowed large calls down
(`make bench-packing`)."""
BERT_FAMILY = frozenset({"bert"})
ROBERTA_FAMILY = frozenset({"roberta", "xlm-roberta", "camembert"})
"""Models whose position ids start after the padding id (RoBERTa's layout); BERT's start at 0."""

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Packed:
    """The feeds of one packed call."""

    input_ids: IntArray
    position_ids: IntArray
    segments: IntArray
    """Each token's text number within its row, from 1; 0 for padding at a row's end."""
    firsts: IntArray
    """Per text, in input order: its first token's index in the flattened rows."""

    def feeds(self) -> dict[str, IntArray]:
        return {
            "input_ids": self.input_ids,
            "position_ids": self.position_ids,
            "segments": self.segments,
            "firsts": self.firsts,
        }

    @property
    def tokens(self) -> int:
        """Tokens the call computes, padding included."""
        return self.input_ids.size


def supports_packing(config: Any) -> bool:
    """Whether a model of this config can be exported packed."""
    model_type = getattr(config, "model_type", "")
    return model_type in BERT_FAMILY or model_type in ROBERTA_FAMILY


def position_offset(config: Any) -> int:
    """Where a text's position ids start: after the padding id in RoBERTa's layout, else 0."""
    return int(config.pad_token_id) + 1 if config.model_type in ROBERTA_FAMILY else 0


def plan_rows(lengths: Sequence[int], row_tokens: int = ROW_TOKENS) -> list[list[int]]:
    """Texts (by index) into rows of at most `row_tokens` tokens (or the longest text's length,
    if more): as many rows as the tokens need, longest texts first, each into the emptiest row
    it fits in (so rows fill evenly and the call's width stays near the mean); a text that
    fits in none opens a row of its own."""
    if not lengths:
        return []
    width = max(row_tokens, max(lengths))
    rows: list[list[int]] = [[] for _ in range(math.ceil(sum(lengths) / width))]
    filled = [0] * len(rows)
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        n = lengths[i]
        best = -1
        for r, used in enumerate(filled):
            if used + n <= width and (best < 0 or used < filled[best]):
                best = r
        if best < 0:
            rows.append([])
            filled.append(0)
            best = len(rows) - 1
        rows[best].append(i)
        filled[best] += n
    return rows


def packed_tokens(lengths: Sequence[int], row_tokens: int = ROW_TOKENS) -> int:
    """Tokens a packed call of texts this long computes, padding included (`Packed.tokens`)."""
    rows = plan_rows(lengths, row_tokens)
    return len(rows) * max(sum(lengths[i] for i in row) for row in rows) if rows else 0


def pack(
    ids: Sequence[Sequence[int]], pad_id: int, offset: int, row_tokens: int = ROW_TOKENS
) -> Packed:
    """One packed call for `ids` (token ids per text, special tokens included); `offset`:
    where position ids start (`position_offset`)."""
    lengths = [len(row) for row in ids]
    rows = plan_rows(lengths, row_tokens)
    width = max(sum(lengths[i] for i in row) for row in rows)
    shape = (len(rows), width)
    input_ids = np.full(shape, pad_id, dtype=np.int64)
    positions = np.zeros(shape, dtype=np.int64)
    segments = np.zeros(shape, dtype=np.int64)
    firsts = np.zeros(len(ids), dtype=np.int64)
    counting = np.arange(offset, offset + width, dtype=np.int64)
    for r, members in enumerate(rows):
        at = 0
        for number, i in enumerate(members, start=1):
            n = lengths[i]
            input_ids[r, at : at + n] = ids[i]
            positions[r, at : at + n] = counting[:n]
            segments[r, at : at + n] = number
            firsts[i] = r * width + at
            at += n
    return Packed(input_ids, positions, segments, firsts)
