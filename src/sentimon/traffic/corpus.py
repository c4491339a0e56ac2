"""A seeded corpus of tweet-like texts with mixed sentiment and varied length.

Used by the benchmark and the traffic generator, so both send the same kind of text: short
and long posts, mentions, links, hashtags, emoji and typos, about 40% positive, 30% negative
and 30% neutral by construction. Texts are generated, not sampled from a dataset, so the
corpus needs no download and any size is reproducible from its seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

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
)
OPENERS = ("", "", "", "honestly", "ok so", "lol", "wow", "ugh", "just saying", "fyi", "update:")
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
EMOJI = {
    "positive": ("😍", "🎉", "😊", "👍", "❤️"),
    "negative": ("😡", "😤", "👎", "💔", "🙄"),
    "neutral": ("🤔", "📅", "ℹ️", "👀"),
}
HASHTAGS = ("#mondaymood", "#tech", "#travel", "#foodie", "#music", "#fail", "#win", "#news")
SENTIMENTS = ("positive", "negative", "neutral")
SENTIMENT_WEIGHTS = (0.4, 0.3, 0.3)
PHRASES = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}
TAILS = {"positive": POSITIVE_TAILS, "negative": NEGATIVE_TAILS, "neutral": NEUTRAL_TAILS}


@dataclass(frozen=True, slots=True)
class CorpusText:
    text: str
    sentiment: str
    """The sentiment the text was built from: "positive", "negative" or "neutral", drawn first
    (with the corpus weights); every sentiment-bearing phrase, tail and emoji of the text then
    comes from that sentiment's lists, the rest (subjects, fillers, details, mentions,
    hashtags, links) from shared lists meant to be neutral. It is the generator's intent, not
    a human rating: it is what `sentimon traffic --feedback-share` reports as the right
    label, and a detail such as "after waiting forty minutes in line" can still tilt a text
    another way for a reader or a model."""


def generate_corpus(
    size: int,
    *,
    seed: int = 0,
    min_words: int = 3,
    max_words: int = 45,
    weights: Sequence[float] = SENTIMENT_WEIGHTS,
) -> list[CorpusText]:
    """`size` texts, reproducible from `seed`, each `min_words` to `max_words` words long.

    Lengths follow a skewed distribution like real posts: most are short, some run long.
    For the bundled model's and RoBERTa's tokenizers that is about 5 to 60 tokens.
    """
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    if not 1 <= min_words <= max_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    rng = random.Random(seed)
    corpus = []
    for _ in range(size):
        sentiment = rng.choices(SENTIMENTS, weights=weights)[0]
        target = min(max_words, max(min_words, round(rng.lognormvariate(2.85, 0.5))))
        corpus.append(CorpusText(_compose(rng, sentiment, target), sentiment))
    return corpus


def _compose(rng: random.Random, sentiment: str, target_words: int) -> str:
    words: list[str] = []
    opener = rng.choice(OPENERS)
    if opener:
        words.append(opener)
    if rng.random() < 0.25:
        words.append(f"@user{rng.randrange(1000)}")
    words += f"{rng.choice(SUBJECTS)} {rng.choice(PHRASES[sentiment])}".split()
    while len(words) < target_words:
        roll = rng.random()
        if roll < 0.35:
            words += rng.choice(DETAILS).split()
        elif roll < 0.6:
            words += f"{rng.choice(FILLERS)} {rng.choice(TAILS[sentiment])}".split()
        elif roll < 0.8:
            words += f"{rng.choice(FILLERS)} {rng.choice(SUBJECTS)}".split()
            words += rng.choice(PHRASES[sentiment]).split()
        else:
            words += rng.choice(TAILS[sentiment]).split()
    words = words[:target_words]
    if rng.random() < 0.1 and len(words) > 3:
        i = rng.randrange(len(words))
        words[i] = words[i] + words[i][-1] * rng.randint(1, 3)  # "sooo", "gooood"
    text = " ".join(words)
    if rng.random() < 0.3:
        text += " " + rng.choice(EMOJI[sentiment])
    if rng.random() < 0.2:
        text += " " + rng.choice(HASHTAGS)
    if rng.random() < 0.15:
        text += f" https://t.co/{rng.getrandbits(40):010x}"
    return text
