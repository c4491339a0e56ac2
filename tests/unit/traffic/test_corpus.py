from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest

from sentimon.traffic.corpus import SENTIMENT_WEIGHTS, SENTIMENTS, generate_corpus, iter_corpus


def test_same_seed_same_corpus_other_seed_other_corpus() -> None:
    assert generate_corpus(50, seed=3) == generate_corpus(50, seed=3)
    assert generate_corpus(50, seed=3) != generate_corpus(50, seed=4)


def test_lengths_stay_within_bounds_and_vary() -> None:
    corpus = generate_corpus(500, min_words=4, max_words=20)
    # Emoji, hashtags and links come on top of the words.
    words = [len(item.text.split()) for item in corpus]
    assert min(words) >= 4
    assert max(words) <= 20 + 3
    assert len(set(words)) > 10


def test_sentiment_mix_follows_the_weights() -> None:
    counts = Counter(item.sentiment for item in generate_corpus(3000, seed=1))
    for sentiment, weight in zip(SENTIMENTS, SENTIMENT_WEIGHTS, strict=True):
        assert counts[sentiment] / 3000 == pytest.approx(weight, abs=0.03)


def test_default_lengths_are_mostly_short_and_at_most_40_words() -> None:
    words = [len(item.text.split()) for item in generate_corpus(2000, seed=2)]
    assert max(words) <= 40 + 3
    assert sum(w <= 5 for w in words) / len(words) > 0.05
    assert sum(w > 30 for w in words) / len(words) < 0.2


def test_some_texts_are_mild_or_mixed() -> None:
    texts = [item.text for item in generate_corpus(1000, seed=3)]
    assert sum(" but " in t for t in texts) > 50
    assert sum("i guess" in t or "not bad" in t or "could be better" in t for t in texts) > 20


def test_the_stream_continues_the_list() -> None:
    assert list(itertools.islice(iter_corpus(seed=3), 50)) == generate_corpus(50, seed=3)
    with pytest.raises(ValueError, match="need 1 <= min_words"):
        iter_corpus(min_words=0)


def test_weights_can_shift_the_mix() -> None:
    corpus = generate_corpus(200, weights=(0.0, 1.0, 0.0))
    assert {item.sentiment for item in corpus} == {"negative"}


def test_texts_are_mostly_distinct() -> None:
    texts = [item.text for item in generate_corpus(1000)]
    assert len(set(texts)) > 950


def test_empty_corpus() -> None:
    assert generate_corpus(0) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": -1}, "size must be >= 0, got -1"),
        ({"size": 1, "min_words": 0}, "need 1 <= min_words <= max_words, got 0, 40"),
        ({"size": 1, "min_words": 9, "max_words": 8}, "need 1 <= min_words <= max_words, got 9, 8"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        generate_corpus(**kwargs)
    assert str(excinfo.value) == message
