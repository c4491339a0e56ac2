"""Normalise a model's label names to lower case, with the usual LABEL_n aliases resolved."""

from __future__ import annotations

import re
from collections.abc import Mapping

SENTIMENT_LABELS = ("negative", "neutral", "positive")

_GENERIC = re.compile(r"^label_(\d+)$")
_ALIASES = {"neg": "negative", "neu": "neutral", "pos": "positive"}


def normalize_labels(id2label: Mapping[int, str]) -> tuple[str, ...]:
    """Return the label of each class id, in id order, normalised.

    Names are stripped and lower-cased. Generic names (`LABEL_0`...) are mapped to
    negative/neutral/positive for 3 classes and negative/positive for 2, as the
    cardiffnlp and SST-2 models use them; other label sets (emotions, stars) are kept.
    """
    if not id2label:
        raise ValueError("the model config has no id2label mapping")
    ids = sorted(int(i) for i in id2label)
    if ids != list(range(len(ids))):
        raise ValueError(f"class ids must be 0..{len(ids) - 1}, got {ids}")
    names = [str(id2label[i]).strip().lower() for i in ids]
    if all(_GENERIC.match(n) for n in names):
        if len(names) == 3:
            names = list(SENTIMENT_LABELS)
        elif len(names) == 2:
            names = ["negative", "positive"]
    names = [_ALIASES.get(n, n) for n in names]
    if len(set(names)) != len(names):
        raise ValueError(f"labels are not distinct after normalisation: {names}")
    if any(not n for n in names):
        raise ValueError("a label is empty")
    return tuple(names)
