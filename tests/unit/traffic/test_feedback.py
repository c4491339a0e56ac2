"""Feedback from the traffic generator: which texts get it, what is sent, what is counted,
and that prediction latency is measured without it."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from sentimon.traffic.corpus import generate_corpus
from sentimon.traffic.feedback import SOURCE, FeedbackSender, feedback_bodies
from sentimon.traffic.http import Response
from sentimon.traffic.load import FAILED, Request, closed_loop, open_loop
from sentimon.traffic.scenarios import NON_ENGLISH, SCENARIOS, ScenarioOptions, build_requests
from sentimon.traffic.tweets import load_tweets
from tests.unit.traffic.fake_api import FakeApi, serving


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with serving(FakeApi()) as running:
        yield running


def texts_of(request: Request) -> list[str]:
    body = json.loads(request.body)
    return body["texts"] if request.path == "/predict/batch" else [body["text"]]


def sentiments(options: ScenarioOptions, **corpus: Any) -> dict[str, str]:
    """Every corpus text `options` can send and the sentiment it was built from (a request
    sends at most 8 texts, each the corpus's next one)."""
    texts = generate_corpus(8 * options.size, seed=options.seed, **corpus)
    return {c.text: c.sentiment for c in texts}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_share_chooses_texts_without_changing_the_requests(scenario: str) -> None:
    plain = build_requests(scenario, ScenarioOptions(seed=2, size=600))
    assert all(r.feedback == () for r in plain)
    chosen = build_requests(scenario, ScenarioOptions(seed=2, size=600, feedback_share=0.4))
    assert [(r.method, r.path, r.body, r.content_type) for r in chosen] == [
        (r.method, r.path, r.body, r.content_type) for r in plain
    ]
    assert chosen == build_requests(scenario, ScenarioOptions(seed=2, size=600, feedback_share=0.4))
    assert chosen != build_requests(scenario, ScenarioOptions(seed=3, size=600, feedback_share=0.4))


@pytest.mark.parametrize("scenario", ["normal", "bad-input"])
def test_each_chosen_text_carries_its_label(scenario: str) -> None:
    """A tweet's human rating (normal), a generated text's sentiment (bad-input)."""
    options = ScenarioOptions(seed=4, size=1000, feedback_share=0.5, bad_share=0.0)
    known = dict(load_tweets()) if scenario == "normal" else sentiments(options)
    requests = build_requests(scenario, options)
    labels = [label for r in requests for label in r.feedback]
    texts = [text for r in requests if r.feedback for text in texts_of(r)]
    assert len(labels) == len(texts)
    chosen = [(t, label) for t, label in zip(texts, labels, strict=True) if label is not None]
    assert all(known[t] == label for t, label in chosen)
    every_text = sum(len(texts_of(r)) for r in requests)
    assert len(chosen) / every_text == pytest.approx(0.5, abs=0.04)
    assert {label for _, label in chosen} == {"positive", "negative", "neutral"}


def test_all_or_nothing() -> None:
    every = build_requests("burst", ScenarioOptions(size=640, feedback_share=1.0))
    assert all(r.feedback and None not in r.feedback for r in every)
    assert all(len(r.feedback) == len(texts_of(r)) for r in every)


def test_malformed_requests_and_foreign_posts_get_no_feedback() -> None:
    bad = build_requests("bad-input", ScenarioOptions(size=500, bad_share=1.0, feedback_share=1))
    assert all(r.feedback == () for r in bad)
    options = ScenarioOptions(size=500, feedback_share=1.0)
    drift = build_requests("drift", options)
    known = sentiments(options, min_words=28, max_words=60, weights=(0.1, 0.7, 0.2))
    assert all(r.feedback for r in drift if not set(texts_of(r)) <= set(NON_ENGLISH))
    assert any(r.feedback == () for r in drift)  # foreign posts only
    pairs = [
        pair for r in drift if r.feedback for pair in zip(texts_of(r), r.feedback, strict=True)
    ]
    assert any(text in NON_ENGLISH for text, _ in pairs)
    assert all((label is None) == (text in NON_ENGLISH) for text, label in pairs)
    assert all(known[text] == label for text, label in pairs if label is not None)


def test_a_share_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^feedback_share must be between 0 and 1, got 1.5$"):
        build_requests("normal", ScenarioOptions(feedback_share=1.5))


def answer(
    request_id: str, labels: tuple[str, ...] = ("negative", "positive")
) -> dict[str, object]:
    return {
        "label": labels[0],
        "probabilities": dict.fromkeys(labels, 0.5),
        "request_id": request_id,
    }


def test_feedback_bodies_for_single_and_batch_answers() -> None:
    single = Request("POST", "/predict", b"{}", feedback=("negative",))
    bodies, skipped = feedback_bodies(single, json.dumps(answer("r1")).encode())
    assert [json.loads(b) for b in bodies] == [
        {"request_id": "r1", "label": "negative", "source": SOURCE}
    ]
    assert skipped == 0
    batch = Request("POST", "/predict/batch", b"{}", feedback=("positive", None, "neutral"))
    items = [answer(f"b:{i}") for i in range(3)]
    bodies, skipped = feedback_bodies(
        batch, json.dumps({"request_id": "b", "predictions": items}).encode()
    )
    # Item 1 was not chosen; item 2's label is not one the model has.
    assert [json.loads(b) for b in bodies] == [
        {"request_id": "b:0", "label": "positive", "source": SOURCE}
    ]
    assert skipped == 1


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"predictions": 3}', b'{"x": 1}'])
def test_an_unreadable_answer_skips_its_feedback(body: bytes) -> None:
    request = Request("POST", "/predict/batch", b"{}", feedback=("positive", "negative"))
    assert feedback_bodies(request, body) == ([], 2)


async def test_open_loop_feedback_reaches_the_api_with_the_tweets_label(api: FakeApi) -> None:
    options = ScenarioOptions(seed=1, size=200, feedback_share=0.5)
    requests = build_requests("normal", options)
    sender = FeedbackSender("127.0.0.1", api.port)
    sender.start()
    result = await open_loop(
        "127.0.0.1", api.port, requests, rate=200, duration_s=0.5, on_response=sender.submit
    )
    counts = await sender.close(grace_s=5)
    sent = requests[:100]
    expected = sum(label is not None for r in sent for label in r.feedback)
    assert expected > 20
    assert counts.statuses == {201: expected}
    assert (counts.skipped, counts.dropped) == (0, 0)
    known = dict(load_tweets())
    assert len(api.feedback) == expected
    assert len({f["request_id"] for f in api.feedback}) == expected
    for item in api.feedback:
        assert item["source"] == SOURCE
        assert item["label"] == known[api.texts[item["request_id"]]]
    assert len(result.samples) == 100 and api.paths.count("/feedback") == expected


async def test_feedback_does_not_slow_predictions_or_count_as_samples(api: FakeApi) -> None:
    api.feedback_delay_s = 0.2
    requests = build_requests("normal", ScenarioOptions(size=100, feedback_share=1.0))
    sender = FeedbackSender("127.0.0.1", api.port, connections=2)
    sender.start()
    result = await closed_loop(
        "127.0.0.1",
        api.port,
        requests,
        concurrency=2,
        duration_s=5,
        max_requests=30,
        on_response=sender.submit,
    )
    summary = result.summary()
    # Each client sent its 15 predictions without waiting for any 200 ms feedback.
    assert summary.requests == 30 and summary.statuses == {200: 30}
    assert summary.max_s < 0.1
    counts = await sender.close(grace_s=0.5)
    assert 0 < counts.sent < counts.sent + counts.dropped
    assert counts.sent + counts.dropped == sum(len(r.feedback) for r in requests[:30])


async def test_outcomes_are_counted_by_status(api: FakeApi) -> None:
    plan = [201, 200, 409, 404, 503, 201]
    api.feedback_status = lambda n: plan[n]
    sender = FeedbackSender("127.0.0.1", api.port, connections=1)
    sender.start()
    request = Request("POST", "/predict/batch", b"{}", feedback=("positive",) * 6 + ("joy",))
    items = [answer(f"b:{i}") for i in range(7)]
    sender.submit(request, Response(200, json.dumps({"predictions": items}).encode(), {}))
    sender.submit(request, Response(429, b"{}", {}))  # not answered: no feedback
    counts = await sender.close(grace_s=5)
    assert counts.statuses == Counter({201: 2, 200: 1, 409: 1, 404: 1, 503: 1})
    assert (counts.created, counts.duplicate, counts.conflict) == (2, 1, 1)
    assert counts.errors == {404: 1, 503: 1}
    assert (counts.sent, counts.skipped, counts.dropped) == (6, 1, 0)


async def test_a_full_backlog_and_the_end_of_the_run_drop_feedback(api: FakeApi) -> None:
    api.feedback_delay_s = 1.0
    sender = FeedbackSender("127.0.0.1", api.port, connections=1, max_pending=2)
    sender.start()
    request = Request("POST", "/predict", b"{}", feedback=("positive",))
    for i in range(3):
        sender.submit(request, Response(200, json.dumps(answer(f"r{i}")).encode(), {}))
    await asyncio.sleep(0.1)
    counts = await sender.close(grace_s=0.1)
    assert (counts.sent, counts.dropped) == (0, 3)


async def test_an_unreachable_api_counts_failed_feedback() -> None:
    sender = FeedbackSender("127.0.0.1", 1, connections=1)
    sender.start()
    request = Request("POST", "/predict", b"{}", feedback=("positive",))
    sender.submit(request, Response(200, json.dumps(answer("r1")).encode(), {}))
    counts = await sender.close(grace_s=5)
    assert counts.statuses == {FAILED: 1} and counts.errors == {FAILED: 1}


def test_a_sender_needs_a_connection() -> None:
    with pytest.raises(ValueError, match="^connections must be >= 1, got 0$"):
        FeedbackSender("127.0.0.1", 1, connections=0)
