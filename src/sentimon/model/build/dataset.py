"""Rated texts → labelled examples, and the fixed stratified train/validation/test split."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sentimon.model.labels import SENTIMENT_LABELS
from sentimon.model.preprocess import preprocess

POSITIVE_AT = 0.5
NEGATIVE_AT = -0.5
LABEL_RULE = (
    f"mean human rating (-4..+4) >= {POSITIVE_AT} is positive, "
    f"<= {NEGATIVE_AT} is negative, anything between is neutral"
)


@dataclass(frozen=True, slots=True)
class Example:
    domain: str
    id: str
    rating: float
    text: str
    label: int


@dataclass(frozen=True)
class Split:
    train: list[Example]
    validation: list[Example]
    test: list[Example]


def label_for(rating: float) -> int:
    """Class id (index into SENTIMENT_LABELS) of a mean rating."""
    if rating >= POSITIVE_AT:
        return SENTIMENT_LABELS.index("positive")
    if rating <= NEGATIVE_AT:
        return SENTIMENT_LABELS.index("negative")
    return SENTIMENT_LABELS.index("neutral")


def parse_ground_truth(domain: str, content: str) -> list[Example]:
    """Parse a `*_GroundTruth.txt` file: tab-separated id, mean rating, text."""
    examples = []
    for lineno, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3:
            raise ValueError(f"{domain} line {lineno}: expected 3 tab-separated fields")
        id_, rating_text, text = parts
        rating = float(rating_text)
        examples.append(Example(domain, id_.strip(), rating, preprocess(text), label_for(rating)))
    return examples


def stratified_split(
    examples: Sequence[Example], test: float, validation: float, seed: int
) -> Split:
    """Split per label with a seeded shuffle, so each part keeps the label mix."""
    by_label: dict[int, list[Example]] = defaultdict(list)
    for ex in examples:
        by_label[ex.label].append(ex)
    rng = random.Random(seed)
    parts: tuple[list[Example], list[Example], list[Example]] = ([], [], [])
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda e: e.id)
        rng.shuffle(group)
        n_test = round(len(group) * test)
        n_val = round(len(group) * validation)
        parts[2].extend(group[:n_test])
        parts[1].extend(group[n_test : n_test + n_val])
        parts[0].extend(group[n_test + n_val :])
    for part in parts:
        part.sort(key=lambda e: (e.domain, e.id))
    return Split(train=parts[0], validation=parts[1], test=parts[2])


def split_domains(
    ratings: dict[str, str], test: float, validation: float, seed: int
) -> dict[str, Split]:
    """Split every domain on its own with the same seed."""
    return {
        domain: stratified_split(parse_ground_truth(domain, content), test, validation, seed)
        for domain, content in ratings.items()
    }


def label_counts(examples: Iterable[Example]) -> dict[str, int]:
    counts = dict.fromkeys(SENTIMENT_LABELS, 0)
    for ex in examples:
        counts[SENTIMENT_LABELS[ex.label]] += 1
    return counts
