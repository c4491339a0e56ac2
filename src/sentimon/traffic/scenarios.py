"""What `sentimon traffic` sends: a list of requests per scenario, reproducible from a seed.

- normal: real tweets (the bundled model's held-out test tweets, `sentimon.traffic.tweets`),
  each once per pass in a seeded order, mostly POST /predict, some /predict/batch and the
  tutorial's /analyze-sentiment/. They are what the bundled model's reference profile was
  measured on, so no drift alert fires on them.
- bad-input: generated tweet-like texts (`sentimon.traffic.corpus`), with a share of
  malformed requests (invalid JSON, empty or missing
  text, wrong types, text over the limit, wrong content type, empty batches), as in the
  classic demo where 70% of requests are bad. Each gets a 4xx; none may get a 5xx.
- drift: a shifted label mix (mostly negative), longer texts and a share of non-English
  posts: what the drift metrics and alerts are for.
- burst: big batches sent by many clients at once, to fill the queue (expect 429s).

With a feedback share F, each generated text of a prediction request gets, with probability F
(drawn from its own seeded stream, so the requests themselves do not change with F), the
label to send back to `POST /feedback` once it is answered: a tweet's human rating, or the
sentiment the corpus wrote a generated text with (see `CorpusText.sentiment`). Malformed
requests and the drift scenario's non-English
posts, whose sentiment the generator does not know, get none.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from sentimon.traffic.corpus import generate_corpus, iter_corpus
from sentimon.traffic.load import Request
from sentimon.traffic.tweets import load_tweets

SCENARIOS = ("normal", "bad-input", "drift", "burst")

NON_ENGLISH = (
    "el servicio fue terrible y nadie respondió",
    "me encanta este lugar, volveré pronto",
    "der Zug hatte wieder zwei Stunden Verspätung",
    "das Essen war wirklich ausgezeichnet",
    "le film était beaucoup trop long",
    "merci pour la livraison rapide, parfait",
    "o aplicativo travou de novo hoje",
    "questo telefono è fantastico",
    "de vergadering is verplaatst naar vrijdag",
    "la batería dura todo el día",
)


@dataclass(frozen=True, slots=True)
class ScenarioOptions:
    seed: int = 0
    bad_share: float = 0.7
    """bad-input: the share of malformed requests."""
    max_text_chars: int = 2000
    """bad-input: the server's limit; over-long texts are made one character longer."""
    batch_items: int = 64
    """burst: texts per batch request (the server's default limit)."""
    size: int = 2000
    """How many requests to generate before cycling."""
    feedback_share: float = 0.0
    """The share of answered texts whose known label is sent back as feedback."""


def build_requests(scenario: str, options: ScenarioOptions) -> list[Request]:
    """The requests of `scenario`, in the order they are sent (cycled if the run is longer)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    if not 0 <= options.bad_share <= 1:
        raise ValueError(f"bad_share must be between 0 and 1, got {options.bad_share}")
    if not 0 <= options.feedback_share <= 1:
        raise ValueError(f"feedback_share must be between 0 and 1, got {options.feedback_share}")
    if not 1 <= options.batch_items <= options.size:
        raise ValueError(
            f"batch_items must be between 1 and size ({options.size}), got {options.batch_items}"
        )
    rng = random.Random(options.seed)
    if scenario == "normal":
        requests = _normal(rng, options)
    elif scenario == "bad-input":
        requests = _bad_input(rng, options)
    elif scenario == "drift":
        requests = _drift(rng, options)
    else:
        requests = _burst(rng, options)
    return _choose_feedback(requests, options.feedback_share, options.seed)


Labelled = tuple[str, str | None]
"""A text and the sentiment it was generated with (None: not known)."""


def predict(text: str, label: str | None = None) -> Request:
    return Request("POST", "/predict", _json({"text": text}), feedback=(label,) if label else ())


def _choose_feedback(requests: list[Request], share: float, seed: int) -> list[Request]:
    """Keep each known label with probability `share`, from a stream of its own; a request
    left with no label to send gets an empty `feedback` (share 0: every request)."""
    rng = random.Random(f"sentimon-traffic-feedback:{seed}")
    chosen = []
    for request in requests:
        labels: tuple[str | None, ...] = ()
        if share > 0 and any(label is not None for label in request.feedback):
            labels = tuple(
                label if label is not None and rng.random() < share else None
                for label in request.feedback
            )
        if not any(label is not None for label in labels):
            labels = ()
        chosen.append(dataclasses.replace(request, feedback=labels))
    return chosen


def _json(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def _mixed(rng: random.Random, texts: Iterator[Labelled], size: int) -> list[Request]:
    """`size` requests: 80% /predict, 10% /analyze-sentiment/, 10% /predict/batch of 2-8
    texts, each text the next one of `texts`, so that none is sent twice in a cycle."""
    requests = []
    for _ in range(size):
        roll = rng.random()
        if roll < 0.8:
            requests.append(predict(*next(texts)))
        elif roll < 0.9:
            text, label = next(texts)
            requests.append(
                Request("POST", "/analyze-sentiment/", _json({"text": text}), feedback=(label,))
            )
        else:
            requests.append(_batch([next(texts) for _ in range(rng.randint(2, 8))]))
    return requests


def _batch(texts: list[Labelled]) -> Request:
    body = _json({"texts": [text for text, _ in texts]})
    return Request("POST", "/predict/batch", body, feedback=tuple(label for _, label in texts))


def _labelled(options: ScenarioOptions) -> list[Labelled]:
    return [(c.text, c.sentiment) for c in generate_corpus(options.size, seed=options.seed)]


def _normal(rng: random.Random, options: ScenarioOptions) -> list[Request]:
    return _mixed(rng, _passes(rng, load_tweets()), options.size)


def _passes(rng: random.Random, texts: Sequence[Labelled]) -> Iterator[Labelled]:
    """`texts` over and over, each pass in a new seeded order."""
    while True:
        yield from rng.sample(texts, len(texts))


def _generated(rng: random.Random, options: ScenarioOptions) -> list[Request]:
    texts = ((c.text, c.sentiment) for c in iter_corpus(seed=options.seed))
    return _mixed(rng, texts, options.size)


def _bad_input(rng: random.Random, options: ScenarioOptions) -> list[Request]:
    good = _generated(rng, options)
    malformed = _malformed(options.max_text_chars)
    return [
        rng.choice(malformed)(rng) if rng.random() < options.bad_share else request
        for request in good
    ]


def _malformed(max_text_chars: int) -> list[Callable[[random.Random], Request]]:
    too_long = "a" * (max_text_chars + 1)
    return [
        lambda _: Request("POST", "/predict", b'{"text": "unterminated'),
        lambda _: Request("POST", "/predict", _json({"text": ""})),
        lambda _: Request("POST", "/predict", _json({"text": "   "})),
        lambda _: Request("POST", "/predict", _json({"message": "wrong field"})),
        lambda r: Request("POST", "/predict", _json({"text": r.randint(0, 999)})),
        lambda _: Request("POST", "/predict", _json({"text": too_long})),
        lambda _: Request("POST", "/predict", b"text=hello", content_type="text/plain"),
        lambda _: Request("POST", "/predict/batch", _json({"texts": []})),
        lambda _: Request("POST", "/predict/batch", _json({"texts": ["ok", ""]})),
        lambda _: Request("POST", "/analyze-sentiment/", b"[1, 2, 3]"),
    ]


def _drift(rng: random.Random, options: ScenarioOptions) -> list[Request]:
    corpus = iter_corpus(seed=options.seed, min_words=28, max_words=60, weights=(0.1, 0.7, 0.2))
    texts = (
        (rng.choice(NON_ENGLISH), None) if rng.random() < 0.25 else (item.text, item.sentiment)
        for item in corpus
    )
    return _mixed(rng, texts, options.size)


def _burst(rng: random.Random, options: ScenarioOptions) -> list[Request]:
    texts = _labelled(options)
    return [
        _batch(rng.sample(texts, options.batch_items))
        for _ in range(max(1, options.size // options.batch_items))
    ]
