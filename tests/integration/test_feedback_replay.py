"""The whole feedback loop, measured: the bundled model's 840 held-out tweets replayed through
the HTTP API, each answer followed by feedback with the tweet's human label. In a real
Prometheus the fleet-wide 1h agreement rule must then equal, exactly, the accuracy of the
answers the server gave, and that must be within half a point of the model card's."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import pytest

from sentimon.config import BUNDLED_MODEL_DIR
from sentimon.model.build.pipeline import load_splits
from sentimon.model.labels import SENTIMENT_LABELS
from tests.integration.conftest import CACHE_DIR
from tests.integration.test_stack import get_json, start_stack, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.network]

AGREEMENT = "job:sentiment_feedback_agreement:ratio1h"


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = get_json(
        f"{prometheus}/api/v1/query?query={urllib.parse.quote(expr)}"
    )["data"]["result"]
    return result


def scalar(prometheus: str, expr: str) -> float | None:
    result = query(prometheus, expr)
    return float(result[0]["value"][1]) if result else None


async def replay(api: str, texts: list[str], truth: list[str], clients: int = 4) -> list[str]:
    """Each text to /predict, then its human label to /feedback; the labels served. A 429
    (the admission bound, on a busy test machine) is retried after its Retry-After."""
    served: list[str] = [""] * len(texts)
    todo = list(range(len(texts)))

    async def client() -> None:
        async with httpx.AsyncClient(base_url=api, timeout=30) as http:
            while todo:
                i = todo.pop()
                response = await http.post("/predict", json={"text": texts[i]})
                while response.status_code == 429:
                    await asyncio.sleep(float(response.headers["retry-after"]))
                    response = await http.post("/predict", json={"text": texts[i]})
                answer = response.json()
                served[i] = answer["label"]
                body = {"request_id": answer["request_id"], "label": truth[i]}
                assert (await http.post("/feedback", json=body)).status_code == 201

    await asyncio.gather(*(client() for _ in range(clients)))
    return served


def test_the_agreement_rule_is_the_accuracy_the_server_gave(tmp_path: Path) -> None:
    tweets = load_splits(CACHE_DIR)["tweets"].test
    texts = [t.text for t in tweets]
    truth = [SENTIMENT_LABELS[t.label] for t in tweets]
    stack = start_stack(tmp_path, "--data-dir", str(tmp_path / "api-data"))
    try:
        prometheus = stack.urls["prometheus"]
        # Every cell of the confusion matrix scraped at 0 before the first feedback.
        wait_for(
            "the feedback counters in Prometheus",
            lambda: scalar(prometheus, "count(sentiment_feedback_total == 0)") == 12,
        )
        served = asyncio.run(replay(stack.urls["api"], texts, truth))
        accuracy = sum(s == t for s, t in zip(served, truth, strict=True)) / len(truth)

        def settled() -> float | None:
            if scalar(prometheus, "sum(sentiment_feedback_total)") != len(truth):
                return None
            time.sleep(2.5)  # a rule evaluation after the scrape that saw them all
            return scalar(prometheus, AGREEMENT)

        agreement = wait_for("the agreement rule over every feedback", settled)
        assert agreement == pytest.approx(accuracy, rel=1e-12, abs=1e-12)
        assert scalar(prometheus, "job:sentiment_feedback_correct:increase1h") is not None
        # The replay's accuracy is the card's, for this backend (the same integers on any CPU).
        card = json.loads((BUNDLED_MODEL_DIR / "sentimon.json").read_text())
        expected = card["int8"]["measured"]["test"]["accuracy"]
        assert abs(accuracy - expected) <= 0.005, (accuracy, expected)
    finally:
        stack.stop()
