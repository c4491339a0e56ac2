from __future__ import annotations

import json
from collections import Counter

import pytest

from sentimon.traffic.corpus import generate_corpus
from sentimon.traffic.load import Request
from sentimon.traffic.scenarios import NON_ENGLISH, SCENARIOS, ScenarioOptions, build_requests
from sentimon.traffic.tweets import load_tweets


def texts_of(request: Request) -> list[str]:
    body = json.loads(request.body)
    return body["texts"] if request.path == "/predict/batch" else [body["text"]]


def well_formed(request: Request, max_text_chars: int = 2000) -> bool:
    """Would the API accept this request (2xx)?"""
    if request.content_type != "application/json":
        return False
    try:
        body = json.loads(request.body)
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    texts = body.get("texts") if request.path == "/predict/batch" else [body.get("text")]
    return (
        isinstance(texts, list)
        and len(texts) > 0
        and all(isinstance(t, str) and t.strip() and len(t) <= max_text_chars for t in texts)
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_is_reproducible_from_its_seed(scenario: str) -> None:
    options = ScenarioOptions(seed=5, size=300)
    assert build_requests(scenario, options) == build_requests(scenario, options)
    assert build_requests(scenario, options) != build_requests(
        scenario, ScenarioOptions(seed=6, size=300)
    )


def test_normal_is_valid_and_mostly_single_predictions() -> None:
    requests = build_requests("normal", ScenarioOptions(size=1000))
    assert all(well_formed(r) for r in requests)
    paths = Counter(r.path for r in requests)
    assert paths["/predict"] / 1000 == pytest.approx(0.8, abs=0.05)
    assert paths["/analyze-sentiment/"] > 50 and paths["/predict/batch"] > 50


def test_normal_sends_every_tweet_once_per_pass_in_a_new_order() -> None:
    requests = build_requests("normal", ScenarioOptions(seed=3, size=1500))
    texts = [text for r in requests for text in texts_of(r)]
    tweets = [text for text, _ in load_tweets()]
    assert 1.2 * len(requests) < len(texts) < 1.6 * len(requests)
    first, second = texts[: len(tweets)], texts[len(tweets) : 2 * len(tweets)]
    assert sorted(first) == sorted(tweets) == sorted(second)
    assert first != second and first != tweets


def test_bad_input_sends_the_generated_corpus_in_order() -> None:
    requests = build_requests("bad-input", ScenarioOptions(seed=3, size=500, bad_share=0.0))
    texts = [text for r in requests for text in texts_of(r)]
    assert texts == [c.text for c in generate_corpus(len(texts), seed=3)]


@pytest.mark.parametrize("share", [0.0, 0.3, 0.7, 1.0])
def test_bad_input_sends_the_requested_share_of_malformed_requests(share: float) -> None:
    requests = build_requests("bad-input", ScenarioOptions(size=1000, bad_share=share))
    bad = sum(not well_formed(r) for r in requests) / len(requests)
    assert bad == pytest.approx(share, abs=0.04)


def test_bad_input_covers_each_kind_of_malformed_request() -> None:
    requests = build_requests("bad-input", ScenarioOptions(size=1000, bad_share=1.0))
    kinds = {(r.path, r.content_type, r.body[:20]) for r in requests}
    assert len(kinds) >= 9
    assert any(len(r.body) > 2000 for r in requests)  # over the text limit


def test_drift_shifts_the_mix_towards_negative_longer_and_foreign_text() -> None:
    options = ScenarioOptions(size=1000)
    normal = build_requests("normal", options)
    drift = build_requests("drift", options)
    assert all(well_formed(r) for r in drift)
    texts = [json.loads(r.body)["text"] for r in drift if r.path == "/predict"]
    foreign = sum(t in NON_ENGLISH for t in texts) / len(texts)
    assert foreign == pytest.approx(0.25, abs=0.05)
    english = [t for t in texts if t not in NON_ENGLISH]
    usual = [json.loads(r.body)["text"] for r in normal if r.path == "/predict"]
    assert sum(map(len, english)) / len(english) > 1.5 * sum(map(len, usual)) / len(usual)


def test_burst_is_full_batches() -> None:
    requests = build_requests("burst", ScenarioOptions(size=640, batch_items=64))
    assert len(requests) == 10
    assert all(r.path == "/predict/batch" and well_formed(r) for r in requests)
    assert {len(json.loads(r.body)["texts"]) for r in requests} == {64}


@pytest.mark.parametrize(
    ("scenario", "options", "message"),
    [
        (
            "chaos",
            ScenarioOptions(),
            "unknown scenario 'chaos'; choose from normal, bad-input, drift, burst",
        ),
        ("bad-input", ScenarioOptions(bad_share=1.5), "bad_share must be between 0 and 1, got 1.5"),
        (
            "burst",
            ScenarioOptions(size=10, batch_items=64),
            "batch_items must be between 1 and size (10), got 64",
        ),
    ],
)
def test_bad_options_are_refused(scenario: str, options: ScenarioOptions, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        build_requests(scenario, options)
    assert str(excinfo.value) == message
