"""GET /live: this replica's recent numbers agree with /metrics, and absent parts say why."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from sentimon.app import create_app
from sentimon.config import Settings
from sentimon.drift.profiling import Texts, build_profile
from tests.fakes import LABELS, FakeModel

REFERENCE = [
    *(f"i love this {i}" for i in range(160)),
    *(f"what a bad day {i}" for i in range(100)),
    *(f"the bus is at {i}" for i in range(60)),
]


@pytest.fixture
def live_settings(settings: Settings, tmp_path: Path) -> Settings:
    profile = build_profile(FakeModel(), Texts(REFERENCE, None, "the test texts"), None)
    path = tmp_path / "profile.json"
    profile.write(path)
    return settings.model_copy(
        update={
            "reference_profile": path,
            "max_batch_items": 64,
            "max_body_bytes": 100_000,
            "max_queue_size": 256,
            "max_queue_wait_ms": 70.0,
            "live_interval_s": 0.5,
            "prometheus_url": "http://127.0.0.1:9090",
            "grafana_url": "http://127.0.0.1:3000",
        }
    )


@pytest.fixture
def live_client(live_settings: Settings, registry: CollectorRegistry) -> Iterator[TestClient]:
    with TestClient(create_app(live_settings, model=FakeModel(), registry=registry)) as client:
        yield client


def _metrics(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
    }


def _wait_for_samples(client: TestClient, count: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get("/live").json()
        if len(body["series"]) >= count:
            return body
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} samples in 10 s")


def test_totals_match_metrics_exactly(live_client: TestClient) -> None:
    texts = ["i love it", "so bad", "a bus", "great", "awful"]
    for text in texts:
        assert live_client.post("/predict", json={"text": text}).status_code == 200
    assert live_client.post("/predict/batch", json={"texts": texts * 2}).status_code == 200
    assert live_client.post("/predict", json={"text": " "}).status_code == 422
    rid = live_client.post("/predict", json={"text": "good"}).json()["request_id"]
    feedback = live_client.post("/feedback", json={"request_id": rid, "correct": True})
    assert feedback.status_code == 201

    body = live_client.get("/live").json()
    metrics = _metrics(live_client)
    http = {k: v for k, v in metrics.items() if k[0] == "http_requests_total"}
    counted = {k: v for k, v in http.items() if ("handler", "/live") not in k[1]}
    assert body["totals"]["requests"] == sum(counted.values())
    rejected = sum(v for k, v in counted.items() if dict(k[1])["status"].startswith("4"))
    assert body["totals"]["rejected"] == rejected == 1
    assert body["totals"]["errors"] == 0
    for label in LABELS:
        by_label = sum(
            v
            for (name, labels), v in metrics.items()
            if name == "sentiment_predictions_total" and ("sentiment", label) in labels
        )
        assert body["totals"]["predictions"][label] == by_label
    assert sum(body["totals"]["predictions"].values()) == 16
    assert body["feedback"] == {
        "available": True,
        "reason": None,
        "n": 1,
        "right": 1,
        "agreement": 1.0,
    }


def test_series_rates_and_latency_come_from_consecutive_samples(live_client: TestClient) -> None:
    _wait_for_samples(live_client, 1)
    live_client.post("/predict/batch", json={"texts": ["i love it"] * 10})
    body = _wait_for_samples(live_client, 3)
    assert body["interval_s"] == 0.5
    assert body["labels"] == list(LABELS)
    busy = [p for p in body["series"] if p["predictions_per_s"] > 0]
    assert len(busy) == 1
    [point] = busy
    seconds = point["end"] - point["start"]
    assert point["predictions_per_s"] == pytest.approx(10 / seconds)
    assert point["label_shares"] == {"negative": 0.0, "neutral": 0.0, "positive": 1.0}
    assert 0 < point["p50_ms"] <= point["p95_ms"] <= 10_000  # exact values: unit tests
    assert point["error_ratio"] == 0.0
    assert 0.33 < point["mean_confidence"] <= 1
    idle = [p for p in body["series"] if p["requests_per_s"] == 0]
    assert idle and all(p["p50_ms"] is None and p["label_shares"] is None for p in idle)
    assert body["last_minute"]["predictions_per_s"] > 0


def test_drift_tests_need_500_predictions_then_flag_a_one_sided_mix(
    live_client: TestClient,
) -> None:
    shares = live_client.get("/live").json()["reference_label_shares"]
    assert shares == {"negative": 0.3125, "neutral": 0.1875, "positive": 0.5}
    live_client.post("/predict/batch", json={"texts": ["i love it"] * 10})
    drift = live_client.get("/live").json()["drift"]
    assert drift["available"] is True
    assert drift["min_n"] == 500
    assert [(t["statistic"], t["n"], t["status"]) for t in drift["tests"]] == [
        ("label_mix", 10, "too few"),
        ("confidence", 10, "too few"),
    ]
    for _ in range(8):
        answer = live_client.post("/predict/batch", json={"texts": ["i love it"] * 64})
        assert answer.status_code == 200
    drift = live_client.get("/live").json()["drift"]
    label_mix = drift["tests"][0]
    assert (label_mix["n"], label_mix["status"]) == (522, "drifting")
    # 522 positives against shares 0.3125/0.1875/0.5: (522 - 261)^2/261 + 163.125 + 97.875.
    assert label_mix["chi2"] == pytest.approx(522.0)
    assert label_mix["critical_value"] == pytest.approx(18.4207, abs=1e-4)


def test_links_are_those_set_and_absent_parts_say_why(
    settings: Settings, registry: CollectorRegistry
) -> None:
    settings = settings.model_copy(update={"store": False})
    with TestClient(create_app(settings, model=FakeModel(), registry=registry)) as client:
        body = client.get("/live").json()
    assert body["links"] == {}
    assert body["drift"] == {
        "available": False,
        "reason": "no reference profile at tests/reference_profile.json: build one with "
        "`sentimon model profile --texts FILE`",
        "window_s": None,
        "min_n": None,
        "tests": [],
    }
    assert body["reference_label_shares"] is None
    assert body["feedback"] == {
        "available": False,
        "reason": "the store is off (SENTIMON_STORE=false)",
        "n": 0,
        "right": 0,
        "agreement": None,
    }


def test_links_come_from_settings(live_client: TestClient) -> None:
    assert live_client.get("/live").json()["links"] == {
        "prometheus": "http://127.0.0.1:9090",
        "grafana": "http://127.0.0.1:3000",
    }


@pytest.mark.parametrize("value", ["ftp://x", "127.0.0.1:9090", "http://"])
def test_link_settings_must_be_http_addresses(value: str) -> None:
    with pytest.raises(ValueError, match="must be an http:// or https:// address"):
        Settings(prometheus_url=value)
