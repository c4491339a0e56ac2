"""The API's contract, driven through the real app with a deterministic model."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from sentimon import __version__
from sentimon.app import create_app
from sentimon.config import Settings
from tests.fakes import BlockingModel, FailingModel, FakeModel, fake_prediction
from tests.integration.test_drift_api import NO_PROFILE

JSON = {"content-type": "application/json"}


def test_welcome_links_to_the_rest(client: TestClient) -> None:
    body = client.get("/").json()
    assert body["message"] == "Welcome to the sentimon sentiment analysis API"
    assert body["links"]["docs"] == "/docs" and body["links"]["metrics"] == "/metrics"


def test_predict_returns_label_probabilities_and_request_id(client: TestClient) -> None:
    response = client.post("/predict", json={"text": "I love this phone"})
    assert response.status_code == 200
    expected = fake_prediction("I love this phone")
    body = response.json()
    assert body == {
        "label": "positive",
        "score": pytest.approx(expected.score),
        "probabilities": pytest.approx(expected.probabilities),
        "request_id": response.headers["x-request-id"],
        "model": "fake-model",
        "model_revision": "test-1",
    }
    assert sum(body["probabilities"].values()) == pytest.approx(1.0)


def test_analyze_sentiment_keeps_the_tutorial_shape(client: TestClient) -> None:
    body = client.post("/analyze-sentiment/", json={"text": "what an awful day"}).json()
    assert set(body) == {"text", "sentiment", "confidence", "probabilities", "request_id"}
    assert body["text"] == "what an awful day" and body["sentiment"] == "negative"


def test_batch_keeps_order_and_matches_single_results(client: TestClient) -> None:
    texts = ["I love it", "I hate it", "it is a chair", "great", "sad news"]
    body = client.post("/predict/batch", json={"texts": texts}).json()
    assert [p["label"] for p in body["predictions"]] == [
        "positive",
        "negative",
        "neutral",
        "positive",
        "negative",
    ]
    for text, p in zip(texts, body["predictions"], strict=True):
        single = client.post("/predict", json={"text": text}).json()
        assert p["probabilities"] == single["probabilities"]


def test_a_callers_request_id_is_reused(client: TestClient) -> None:
    response = client.post("/predict", json={"text": "hi"}, headers={"X-Request-ID": "abc-1"})
    assert response.headers["x-request-id"] == "abc-1"
    assert response.json()["request_id"] == "abc-1"
    odd = client.post("/predict", json={"text": "hi"}, headers={"X-Request-ID": "no spaces ok"})
    assert odd.headers["x-request-id"] != "no spaces ok"
    assert len(odd.headers["x-request-id"]) == 32


def test_error_responses_carry_the_request_id(client: TestClient) -> None:
    response = client.post("/predict", json={"text": ""}, headers={"X-Request-ID": "e-1"})
    assert response.headers["x-request-id"] == "e-1"


def test_prediction_metrics_count_each_text(
    client: TestClient, registry: CollectorRegistry
) -> None:
    def count(sentiment: str, endpoint: str) -> float:
        value = registry.get_sample_value(
            "sentiment_predictions_total", {"sentiment": sentiment, "endpoint": endpoint}
        )
        assert value is not None
        return value

    before = count("positive", "/predict/batch")
    client.post("/predict/batch", json={"texts": ["love", "great", "hate"]})
    assert count("positive", "/predict/batch") == before + 2
    assert count("negative", "/predict/batch") == 1
    assert (
        registry.get_sample_value(
            "sentiment_prediction_duration_seconds_count", {"endpoint": "/predict/batch"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "sentiment_prediction_confidence_count", {"sentiment": "positive"}
        )
        == 2
    )
    assert (
        registry.get_sample_value(
            "http_requests_total", {"handler": "/predict/batch", "method": "POST", "status": "200"}
        )
        == 1
    )
    assert registry.get_sample_value("sentiment_model_loaded") == 1
    assert (
        registry.get_sample_value(
            "sentiment_model_info",
            {
                "model": "fake-model",
                "revision": "test-1",
                "backend": "fake",
                "int8_recipe": "none",
                "int8_kernel": "none",
            },
        )
        == 1
    )


def test_metrics_endpoint_serves_the_text_format(client: TestClient) -> None:
    client.post("/predict", json={"text": "fine"})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    for name in (
        "sentiment_predictions_total",
        "sentiment_prediction_duration_seconds_bucket",
        "sentiment_prediction_confidence_bucket",
        "sentiment_batch_size_bucket",
        "sentiment_model_loaded",
        "sentiment_errors_total",
        "sentiment_model_info",
        "sentiment_queue_depth",
        "sentiment_queue_wait_seconds_bucket",
        "sentiment_inference_seconds_bucket",
        "sentiment_input_tokens_bucket",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_size_bytes",
        "http_response_size_bytes",
        "http_requests_inprogress",
        "process_resident_memory_bytes",
    ):
        assert f"\n{name}" in text, name
    assert 'le="0.2"' in text and 'le="0.3"' in text
    assert "_created" not in text


def test_http_metrics_name_each_request_by_its_route(
    client: TestClient, registry: CollectorRegistry
) -> None:
    too_large = client.post("/predict", content=b"x" * 5000, headers=JSON)  # before routing
    assert too_large.status_code == 413
    assert client.get("/feedback/no-such-id").status_code == 404
    assert client.get("/no-such-path").status_code == 404
    assert client.get("/metrics").status_code == 200

    def total(handler: str, method: str, status: str) -> float | None:
        labels = {"handler": handler, "method": method, "status": status}
        return registry.get_sample_value("http_requests_total", labels)

    assert total("/predict", "POST", "413") == 1
    assert total("/feedback/{request_id}", "GET", "404") == 1
    assert total("none", "GET", "404") == 1
    handlers = {
        s.labels["handler"]
        for family in registry.collect()
        if family.name.startswith("http_")
        for s in family.samples
        if "handler" in s.labels
    }
    assert "/no-such-path" not in handlers and "/feedback/no-such-id" not in handlers
    assert registry.get_sample_value("http_request_size_bytes_sum", {"handler": "/predict"}) == 5000
    assert registry.get_sample_value(
        "http_response_size_bytes_sum", {"handler": "/predict"}
    ) == len(too_large.content)
    assert (
        registry.get_sample_value(
            "http_request_duration_seconds_count", {"handler": "/predict", "method": "POST"}
        )
        == 1
    )
    assert registry.get_sample_value("http_request_duration_highr_seconds_count") == 3
    # Scrapes are not counted (but are in progress while they run).
    assert total("/metrics", "GET", "200") is None
    assert (
        registry.get_sample_value(
            "http_requests_inprogress", {"handler": "/predict", "method": "POST"}
        )
        == 0
    )


def test_health_ready_and_info(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "model": "fake-model"}
    assert client.get("/info").json() == {
        "service": "sentimon",
        "version": __version__,
        "model": "fake-model",
        "model_revision": "test-1",
        "model_source": "tests",
        "backend": "fake",
        "labels": ["negative", "neutral", "positive"],
        "max_tokens": 128,
        "int8": None,
        "packed": False,
        "drift": NO_PROFILE,
        "limits": {
            "max_text_chars": 280,
            "max_batch_items": 8,
            "max_body_bytes": 4096,
            "max_queue_size": 16,
            "max_queue_wait_ms": 70.0,
            "request_timeout_s": 5.0,
        },
    }


def test_docs_and_openapi_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/predict",
        "/predict/batch",
        "/analyze-sentiment/",
        "/healthz",
        "/readyz",
        "/info",
        "/metrics",
    } <= set(paths)


def test_an_unloadable_model_leaves_the_service_up_but_not_ready(
    registry: CollectorRegistry,
) -> None:
    settings = Settings(model="/nonexistent/model", fail_on_model_error=False)
    with TestClient(create_app(settings, registry=registry)) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "not ready",
            "reason": "SENTIMON_MODEL='/nonexistent/model': no such folder",
        }
        response = client.post("/predict", json={"text": "hi"})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json() == {
            "error": "model not ready: SENTIMON_MODEL='/nonexistent/model': no such folder",
            "error_type": "model_not_ready",
        }
        assert client.get("/info").status_code == 503
        assert registry.get_sample_value("sentiment_model_loaded") == 0


def test_an_unloadable_model_stops_startup_by_default(registry: CollectorRegistry) -> None:
    app = create_app(Settings(model="./missing-folder"), registry=registry)
    with pytest.raises(Exception, match="SENTIMON_MODEL='./missing-folder': no such folder"):
        with TestClient(app):
            pass


def test_a_model_failure_is_a_500_with_a_clear_body_and_the_worker_survives(
    registry: CollectorRegistry, settings: Settings
) -> None:
    with TestClient(create_app(settings, model=FailingModel(), registry=registry)) as client:
        response = client.post("/predict", json={"text": "boom"})
        assert response.status_code == 500
        assert response.json() == {
            "error": "inference failed (RuntimeError)",
            "error_type": "inference_failed",
        }
        assert client.post("/predict", json={"text": "fine"}).status_code == 200


@asynccontextmanager
async def _serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (its lifespan run) and a client calling it in process."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        yield http


@asynccontextmanager
async def _saturated(
    registry: CollectorRegistry, max_queue_size: int
) -> AsyncIterator[tuple[httpx.AsyncClient, BlockingModel, asyncio.Future[list[httpx.Response]]]]:
    """The app with a model that blocks until released, and `max_queue_size` predictions
    (its whole queue) in flight: the next one is past capacity."""
    model = BlockingModel()
    settings = Settings(max_queue_size=max_queue_size, request_timeout_s=5)
    async with _serving(create_app(settings, model=model, registry=registry)) as http:
        busy = asyncio.gather(
            *(http.post("/predict", json={"text": f"t{i}"}) for i in range(max_queue_size))
        )
        await asyncio.to_thread(model.started.wait, 5)
        yield http, model, busy


async def test_overload_is_refused_fast_while_health_stays_quick(
    registry: CollectorRegistry,
) -> None:
    async with _saturated(registry, max_queue_size=2) as (http, model, busy):
        refused = await http.post("/predict", json={"text": "one too many"})
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.json() == {
            "error": "server busy: 2 texts queued, limit 2; retry shortly",
            "error_type": "overloaded",
        }
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/metrics")).status_code == 200
        model.release.set()
        assert [r.status_code for r in await busy] == [200, 200]


def test_logs_carry_request_id_and_omit_text_by_default(
    client: TestClient, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    client.post("/predict", json={"text": "secret love letter"}, headers={"X-Request-ID": "r-9"})
    lines = log_lines()
    [prediction] = [line for line in lines if line.get("event") == "prediction"]
    assert prediction["chars"] == len("secret love letter")
    assert prediction["label"] == "positive" and prediction["request_id"] == "r-9"
    assert "text" not in prediction
    [access] = [line for line in lines if line.get("event") == "request"]
    assert access["status"] == 200 and access["path"] == "/predict"
    assert access["request_id"] == "r-9"
    assert "secret" not in json.dumps(lines)


def test_logs_include_text_when_allowed(
    registry: CollectorRegistry, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    with TestClient(
        create_app(Settings(log_input_text=True), model=FakeModel(), registry=registry)
    ) as client:
        client.post("/predict", json={"text": "say it out loud"})
    [prediction] = [line for line in log_lines() if line.get("event") == "prediction"]
    assert prediction["text"] == "say it out loud"


def test_unexpected_errors_are_500_with_request_id_and_logged_with_traceback(
    settings: Settings,
    registry: CollectorRegistry,
    log_lines: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr("sentimon.api.routes.predict.check_text", broken)
    app = create_app(settings, model=FakeModel(), registry=registry)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/predict", json={"text": "hi"}, headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.json() == {
        "error": "Internal server error; quote request id boom-1",
        "error_type": "internal_error",
    }
    [error] = [line for line in log_lines() if line["level"] == "error"]
    assert error["request_id"] == "boom-1" and error["error"] == "KeyError"
    assert "surprise" in error["traceback"]
