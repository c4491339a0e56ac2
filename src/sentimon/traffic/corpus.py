"""A seeded corpus of tweet-like texts with mixed sentiment and varied length.

Used by the benchmark and the traffic generator, so both send the same kind of text: short
and long posts, mentions, links, hashtags, emoji and typos. Texts are generated, not sampled
from a dataset, so the corpus needs no download and any size is reproducible from its seed.

By default the corpus is shaped like the human-rated tweets the bundled model's reference
profile was measured on (`sentimon/bundled_model/reference_profile.json`), so that the model's
predictions on it (label mix, confidence, input length) match that profile and the drift
alerts stay quiet on `sentimon traffic --scenario normal`:

- sentiment: about 43% positive, 25% negative and 32% neutral by construction;
- tone: like real posts, not every text is emphatic. A positive or negative text is *strong*
  ("is amazing", "never again"), *mild* ("was fine i guess", "is a bit slow") or *mixed*: it
  opens with a mild remark of the other sentiment and turns ("the hotel was fine but my
  flight was awful"; what follows "but" is what it means). A neutral text states a fact
  ("starts at 8pm"), mostly with an undecided remark ("time will tell");
- length: 1 to 40 words, most of them 5 to 25 (a Beta(1.55, 2.25) draw), which for the
  bundled model's and RoBERTa's tokenizers is about 4 to 48 tokens, special tokens included.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

SUBJECTS = (
    "this phone",
    "the new update",
    "my flight",
    "the coffee here",
    "this movie",
    "the game last night",
    "customer service",
    "the hotel",
    "my order",
    "the concert",
    "this album",
    "the traffic today",
    "the new menu",
    "their app",
    "the weather",
    "my internet",
    "the battery",
    "the season finale",
    "the delivery",
    "this book",
    "the meeting",
    "the keynote",
    "the train",
    "my new laptop",
)
POSITIVE = (
    "is amazing",
    "made my day",
    "was so good",
    "exceeded every expectation",
    "is the best thing ever",
    "works perfectly",
    "was worth the wait",
    "totally nailed it",
    "is pure joy",
    "was fantastic",
    "gets better every time",
    "is super fast now",
    "was lovely",
    "is a masterpiece",
)
NEGATIVE = (
    "is terrible",
    "ruined my morning",
    "was a complete waste of money",
    "keeps crashing",
    "is the worst",
    "was so disappointing",
    "broke after two days",
    "is painfully slow",
    "made me so angry",
    "was awful",
    "never arrived",
    "is a total mess",
    "let me down again",
)
NEUTRAL = (
    "arrives on tuesday",
    "is available in three colours",
    "starts at 8pm",
    "was announced today",
    "is on the second floor",
    "has a new version",
    "comes out next week",
    "is about two hours long",
    "opens at nine",
    "was moved to friday",
    "uses the same charger",
    "is in the other building",
    "is listed on the website",
    "was on the news",
    "is open until six",
    "takes about an hour",
    "is at the station",
)
OPENERS = ("", "", "", "honestly", "ok so", "just saying", "fyi", "update:")
SENTIMENT_OPENERS = {"positive": ("wow", "lol"), "negative": ("ugh", "smh"), "neutral": ()}
POSITIVE_TAILS = (
    "love it",
    "so happy",
    "highly recommend",
    "thank you!!",
    "can't wait to go back",
    "best decision this year",
    "10/10",
    "great job team",
)
NEGATIVE_TAILS = (
    "never again",
    "so frustrated",
    "do not buy",
    "what a joke",
    "still waiting for a refund",
    "really annoyed",
    "0/10",
    "fix it please",
)
NEUTRAL_TAILS = (
    "details below",
    "more info soon",
    "see the link",
    "anyone know more?",
    "noted",
    "via the newsletter",
    "will check later",
    "thread",
)
FILLERS = (
    "and",
    "but",
    "also",
    "because",
    "so",
    "then",
    "anyway",
    "btw",
    "tbh",
    "like",
    "really",
    "i think",
    "to be fair",
    "as usual",
    "for the record",
    "at least",
)
DETAILS = (
    "after waiting forty minutes in line",
    "on my way home from work",
    "with my two kids",
    "during the lunch break",
    "for the third time this month",
    "right before the weekend",
    "while it was raining",
    "in front of everyone",
    "at the downtown location",
    "on the first try",
    "after the latest patch",
    "with the family on sunday",
)
MILD_POSITIVE = (
    "was alright",
    "is not bad at all",
    "is better than i expected",
    "was fine",
    "was decent",
    "was okay",
    "is not too bad",
    "was surprisingly okay",
    "was fine i guess",
    "is holding up well",
    "is pretty decent",
    "is okay i guess",
)
MILD_NEGATIVE = (
    "is slow",
    "was boring",
    "is overpriced",
    "was a letdown",
    "feels cheap",
    "was too long",
    "is kind of slow",
    "is not what i expected",
    "was pretty bland",
    "is confusing",
    "was forgettable",
    "is kind of buggy",
    "could be better",
)
MILD_POSITIVE_TAILS = ("not bad", "pretty okay", "solid enough", "fine by me", "pretty decent")
MILD_NEGATIVE_TAILS = (
    "not impressed",
    "not great",
    "a bit disappointing",
    "could be better",
    "oh well",
)
HEDGES = (
    "could go either way",
    "mixed feelings",
    "hard to say",
    "time will tell",
    "kind of expected",
    "not sure yet",
    "we will see",
    "guess we will find out",
    "eh",
)
EMOJI = {
    "positive": ("😍", "🎉", "😊", "👍", "❤️"),
    "negative": ("😡", "😤", "👎", "💔", "🙄"),
    "neutral": ("🤔", "📅", "ℹ️", "👀"),
}
EMOJI_SHARE = 0.5
"""The share of texts that end with an emoji of their sentiment."""
HASHTAGS = ("#mondaymood", "#tech", "#travel", "#foodie", "#music", "#news")
SENTIMENT_HASHTAGS = {"positive": ("#win",), "negative": ("#fail",), "neutral": ()}
SENTIMENTS = ("positive", "negative", "neutral")
SENTIMENT_WEIGHTS = (0.47, 0.28, 0.25)
TONE_WEIGHTS: Mapping[str, Mapping[str, float]] = {
    "positive": {"strong": 0.1, "mild": 0.8, "mixed": 0.1},
    "negative": {"strong": 0.7, "mild": 0.1, "mixed": 0.2},
    "neutral": {"plain": 0.0, "hedged": 1.0},
}
"""Per sentiment, the share of each tone (see the module docstring)."""
SENTIMENT_BLOCK = 50
"""Sentiments, tones and lengths are drawn stratified in blocks of this many (see `_deal`)."""
TONE_BLOCK = 10
LENGTH_BLOCK = 100
LENGTH_SHAPE = (1.52, 2.27)
"""The Beta distribution's parameters: a text's length is min_words + (max_words - min_words)
times a draw, rounded."""
PHRASES = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}
TAILS = {"positive": POSITIVE_TAILS, "negative": NEGATIVE_TAILS, "neutral": NEUTRAL_TAILS}
MILD_PHRASES = {"positive": MILD_POSITIVE, "negative": MILD_NEGATIVE}
MILD_TAILS = {"positive": MILD_POSITIVE_TAILS, "negative": MILD_NEGATIVE_TAILS}
OPPOSITE = {"positive": "negative", "negative": "positive"}
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CorpusText:
    text: str
    sentiment: str
    """The sentiment the text was built from: "positive", "negative" or "neutral", drawn first
    (with the corpus weights); every sentiment-bearing phrase, tail, emoji and opener of the
    text then comes from that sentiment's lists (a mixed text's opening remark from the other
    sentiment's mild list), the rest (subjects, fillers, details, mentions, most hashtags,
    links) from shared lists meant to be neutral. It is the generator's intent, not a human
    rating: it is what `sentimon traffic --feedback-share` reports as the right label, and a
    detail such as "after waiting forty minutes in line" can still tilt a text another way
    for a reader or a model."""


def generate_corpus(
    size: int,
    *,
    seed: int = 0,
    min_words: int = 1,
    max_words: int = 40,
    weights: Sequence[float] = SENTIMENT_WEIGHTS,
) -> list[CorpusText]:
    """`size` texts, reproducible from `seed`, each `min_words` to `max_words` words long
    (a text too short for a sentence is a whole tail such as "so frustrated", up to 3 words).

    Lengths follow a skewed distribution like real posts: most are short, some run long.
    """
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    texts = iter_corpus(seed=seed, min_words=min_words, max_words=max_words, weights=weights)
    return list(itertools.islice(texts, size))


def iter_corpus(
    *,
    seed: int = 0,
    min_words: int = 1,
    max_words: int = 40,
    weights: Sequence[float] = SENTIMENT_WEIGHTS,
) -> Iterator[CorpusText]:
    """The same texts as `generate_corpus`, without an end: its first n texts are
    `generate_corpus(n)`'s with the same arguments."""
    if not 1 <= min_words <= max_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    return _texts(random.Random(seed), min_words, max_words, tuple(weights))


def _texts(
    rng: random.Random, min_words: int, max_words: int, weights: Sequence[float]
) -> Iterator[CorpusText]:
    sentiments = _deal(rng, SENTIMENTS, weights, SENTIMENT_BLOCK)
    tones = {
        sentiment: _deal(rng, tuple(shares), tuple(shares.values()), TONE_BLOCK)
        for sentiment, shares in TONE_WEIGHTS.items()
    }
    lengths = range(min_words, max_words + 1)
    targets = _deal(rng, lengths, _length_weights(len(lengths)), LENGTH_BLOCK)
    for sentiment in sentiments:
        yield CorpusText(_compose(rng, sentiment, next(tones[sentiment]), next(targets)), sentiment)


def _length_weights(count: int) -> list[float]:
    """The probability of each of `count` consecutive lengths: the first plus (count - 1)
    times a Beta(*LENGTH_SHAPE) draw, rounded (the density summed on a fine grid)."""
    a, b = LENGTH_SHAPE
    weights = [0.0] * count
    steps = 100 * count
    for i in range(steps):
        x = (i + 0.5) / steps
        weights[round((count - 1) * x)] += x ** (a - 1) * (1 - x) ** (b - 1)
    return weights


def _deal(
    rng: random.Random, values: Sequence[T], weights: Sequence[float], block: int
) -> Iterator[T]:
    """`values` drawn with `weights`, stratified: each block of `block` draws uses one uniform
    from each of [0, 1/block), [1/block, 2/block), ..., in shuffled order. The draws have
    exactly the distribution of independent ones, but every block holds each value's share to
    within one draw, so any stretch of the corpus has the designed mix rather than drifting
    from it by chance (a traffic cycle's few thousand texts would, enough to move a drift
    test)."""
    if len(weights) != len(values) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"need {len(values)} weights >= 0, not all 0, got {list(weights)}")
    total = sum(weights)
    bounds = list(itertools.accumulate(w / total for w in weights))
    while True:
        points = [(i + rng.random()) / block for i in range(block)]
        rng.shuffle(points)
        for point in points:
            yield values[min(bisect.bisect_right(bounds, point), len(values) - 1)]


def _compose(rng: random.Random, sentiment: str, tone: str, target_words: int) -> str:
    phrases: Sequence[str]
    tails: Sequence[str]
    if sentiment == "neutral":
        phrases, tails = NEUTRAL, HEDGES if tone == "hedged" else NEUTRAL_TAILS
    elif tone == "mild":
        phrases, tails = MILD_PHRASES[sentiment], MILD_TAILS[sentiment]
    else:
        phrases, tails = PHRASES[sentiment], TAILS[sentiment]
    core = f"{rng.choice(SUBJECTS)} {rng.choice(phrases)}".split()
    if tone == "mixed":
        turn = f"{rng.choice(SUBJECTS)} {rng.choice(MILD_PHRASES[OPPOSITE[sentiment]])} but"
        if len(turn.split()) + len(core) <= target_words:
            core = turn.split() + core
    if target_words <= 3 or (target_words < len(core) and rng.random() < 0.5):
        core = rng.choice(tails).split()  # too short for a sentence: "love it", "noted"
    words: list[str] = []
    opener = rng.choice(OPENERS + SENTIMENT_OPENERS[sentiment])
    if opener and len(core) + len(opener.split()) <= target_words:
        words += opener.split()
    if rng.random() < 0.25 and len(words) + len(core) < target_words:
        words.append(f"@user{rng.randrange(1000)}")
    words += core
    while len(words) < target_words:
        roll = rng.random()
        if roll < 0.35:
            words += rng.choice(DETAILS).split()
        elif roll < 0.6:
            words += f"{rng.choice(FILLERS)} {rng.choice(tails)}".split()
        elif roll < 0.8:
            words += f"{rng.choice(FILLERS)} {rng.choice(SUBJECTS)}".split()
            words += rng.choice(phrases).split()
        else:
            words += rng.choice(tails).split()
    words = words[: max(target_words, len(core))]
    if rng.random() < 0.1 and len(words) > 3:
        i = rng.randrange(len(words))
        words[i] = words[i] + words[i][-1] * rng.randint(1, 3)  # "sooo", "gooood"
    text = " ".join(words)
    if rng.random() < EMOJI_SHARE:
        text += " " + rng.choice(EMOJI[sentiment])
    if rng.random() < 0.2:
        text += " " + rng.choice(HASHTAGS + SENTIMENT_HASHTAGS[sentiment])
    if rng.random() < 0.15:
        text += f" https://t.co/{rng.getrandbits(40):010x}"
    return text
