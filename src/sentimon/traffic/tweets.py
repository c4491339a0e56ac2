"""Real tweets for `sentimon traffic --scenario normal`: the bundled model's 840 held-out
test tweets with their human ratings turned into labels.

They are the texts the bundled model's reference profile describes, so normal traffic looks
like the reference in every respect the drift alerts test, wording included (a generated
corpus can match the label mix, confidence and length, but not the words: the model's
sentence embedding tells templated text from tweets at once). Their labels are human
ratings, so feedback from the generator measures the model's real accuracy.

From the VADER tweets (C.J. Hutto, MIT License, in the vaderSentiment 3.3.2 sdist): the
same stratified split the model was built with (`sentimon.model.build.dataset`). The file is
`data/tweets.jsonl`, one {"text", "label"} per line, with the license in `data/NOTICE`;
`python -m sentimon.traffic.tweets` rewrites it from the pinned sdist, and a test checks it
is current.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path

TWEETS_FILE = Path(__file__).parent / "data" / "tweets.jsonl"


@cache
def load_tweets() -> tuple[tuple[str, str], ...]:
    """(text, label) of each packaged tweet, in file order."""
    with TWEETS_FILE.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return tuple((str(row["text"]), str(row["label"])) for row in rows)


def tweets_jsonl(tweets: Sequence[tuple[str, str]]) -> str:
    return "".join(
        json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n"
        for text, label in tweets
    )


def held_out_tweets(cache_dir: Path) -> list[tuple[str, str]]:
    """The held-out test tweets from the pinned sdist (downloaded into `cache_dir`)."""
    from sentimon.model.build.pipeline import EVAL_DOMAIN, load_splits
    from sentimon.model.labels import SENTIMENT_LABELS

    test = load_splits(cache_dir)[EVAL_DOMAIN].test
    return [(e.text, SENTIMENT_LABELS[e.label]) for e in sorted(test, key=lambda e: e.id)]


def main() -> None:
    cache_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".cache/build")
    TWEETS_FILE.write_text(tweets_jsonl(held_out_tweets(cache_dir)), encoding="utf-8")
    sys.stdout.write(f"wrote {TWEETS_FILE}\n")


if __name__ == "__main__":
    main()
