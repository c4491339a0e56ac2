"""POST /feedback and GET /feedback/{id} through the app, on SQLite and PostgreSQL: every
outcome with its exact status and body, the ids batch items get, and the metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import update

from sentimon.app import create_app
from sentimon.config import Settings
from sentimon.ids import new_id
from sentimon.store.tables import predictions
from tests.fakes import FakeModel
from tests.postgres import remove, start_postgres


@pytest.fixture
def store_settings(settings: Settings, database_url: str) -> Settings:
    # A long flush interval: feedback right after a prediction must wait for its row.
    return settings.model_copy(update={"database_url": database_url, "store_flush_ms": 2000})


@pytest.fixture
def api(
    store_settings: Settings, fake_model: FakeModel, registry: CollectorRegistry
) -> Iterator[TestClient]:
    with TestClient(create_app(store_settings, model=fake_model, registry=registry)) as c:
        yield c


def predict(api: TestClient, text: str = "I love it", request_id: str | None = None) -> str:
    headers = {"X-Request-ID": request_id} if request_id else {}
    response = api.post("/predict", json={"text": text}, headers=headers)
    assert response.status_code == 200
    rid: str = response.json()["request_id"]
    return rid


def feedback(api: TestClient, **body: Any) -> tuple[int, dict[str, Any]]:
    response = api.post("/feedback", json=body)
    return response.status_code, response.json()


def without_time(body: dict[str, Any]) -> dict[str, Any]:
    assert datetime.fromisoformat(body.pop("created_at")).tzinfo is not None
    return body


def test_feedback_is_created_then_a_duplicate_then_a_conflict(api: TestClient) -> None:
    rid = predict(api, "I love it")
    status, body = feedback(api, request_id=rid, label="neutral", source="ui")
    assert status == 201
    assert without_time(body) == {
        "request_id": rid,
        "predicted": "positive",
        "label": "neutral",
        "correct": False,
        "source": "ui",
        "duplicate": False,
    }
    status, body = feedback(api, request_id=rid, label="neutral", correct=False)
    assert status == 200 and body["duplicate"] is True and body["label"] == "neutral"
    assert feedback(api, request_id=rid, correct=True) == (
        409,
        {
            "error": f"request id {rid!r} already has different feedback (label 'neutral', "
            "wrong); the first feedback stands",
            "error_type": "feedback_conflict",
        },
    )


def test_feedback_sent_at_once_waits_for_its_prediction_to_be_written(api: TestClient) -> None:
    started = time.perf_counter()
    rid = predict(api, "what a sad day")
    assert feedback(api, request_id=rid, correct=True)[0] == 201
    assert time.perf_counter() - started < 1.5  # not the 2 s flush interval


def test_each_batch_item_has_its_own_id(api: TestClient) -> None:
    response = api.post(
        "/predict/batch", json={"texts": ["love", "hate", "meh"]}, headers={"X-Request-ID": "b7"}
    )
    body = response.json()
    assert body["request_id"] == "b7"
    assert [p["request_id"] for p in body["predictions"]] == ["b7:0", "b7:1", "b7:2"]
    assert feedback(api, request_id="b7:1", label="negative")[0] == 201
    record = api.get("/feedback/b7:1").json()
    assert record["prediction"]["label"] == "negative"
    assert record["prediction"]["endpoint"] == "/predict/batch"
    assert record["feedback"]["correct"] is True
    assert api.get("/feedback/b7:2").json()["feedback"] is None
    assert feedback(api, request_id="b7", correct=True)[0] == 404  # the request is not a text


def test_get_returns_the_stored_prediction(api: TestClient) -> None:
    rid = predict(api, "good stuff", request_id="my-id-1")
    answer = api.post("/feedback", json={"request_id": rid, "correct": True})
    assert answer.status_code == 201
    record = api.get(f"/feedback/{rid}").json()
    prediction = without_time(record["prediction"])
    assert prediction.pop("probabilities").keys() == {"negative", "neutral", "positive"}
    assert prediction == {
        "label": "positive",
        "score": pytest.approx(prediction["score"]),
        "model": "fake-model",
        "model_revision": "test-1",
        "endpoint": "/predict",
        "tokens": 4,
    }
    assert without_time(record["feedback"]) == {
        "request_id": "my-id-1",
        "predicted": "positive",
        "label": "positive",
        "correct": True,
        "source": None,
        "duplicate": False,
    }


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            {"request_id": "nope", "correct": True},
            404,
            ("no prediction has the request id 'nope'", "unknown_request_id"),
        ),
        (
            {"request_id": "RID"},
            422,
            (
                'feedback needs "label" (the right label), "correct" (true or false), or both',
                "invalid_feedback",
            ),
        ),
        (
            {"request_id": "RID", "label": "joy"},
            422,
            (
                "label 'joy' is not one of the model's labels: negative, neutral, positive",
                "invalid_feedback",
            ),
        ),
        (
            {"request_id": "RID", "label": "negative", "correct": True},
            422,
            (
                "label 'negative' is not the predicted label 'positive', so correct cannot be true",
                "invalid_feedback",
            ),
        ),
        (
            {"request_id": "RID", "correct": "yes"},
            422,
            ("correct: Input should be a valid boolean", "invalid_type"),
        ),
        ({"correct": True}, 422, ("request_id: Field required", "missing_field")),
    ],
)
def test_refusals_have_exact_bodies(
    api: TestClient, body: dict[str, Any], status: int, error: tuple[str, str]
) -> None:
    rid = predict(api, "love")
    sent = {k: rid if v == "RID" else v for k, v in body.items()}
    assert feedback(api, **sent) == (status, {"error": error[0], "error_type": error[1]})


def test_a_prediction_past_the_retention_is_gone_not_unknown(api: TestClient) -> None:
    old = new_id(now_ms=int((time.time() - 40 * 86400) * 1000))
    made = datetime.fromtimestamp(int(old[:12], 16) / 1000, UTC)
    assert feedback(api, request_id=old, correct=True) == (
        410,
        {
            "error": f"the prediction {old!r} was made {made:%Y-%m-%d %H:%M} UTC and is no "
            "longer stored (retention: 30 days or 5,000,000 predictions)",
            "error_type": "prediction_expired",
        },
    )
    # An id of ours younger than the retention, but older than every row kept (deleted by
    # the row limit), is gone too.
    rid = predict(api, "love")
    assert feedback(api, request_id=rid, correct=True)[0] == 201
    store = api.app.state.service.store  # type: ignore[attr-defined]
    with store.engine.begin() as connection:
        connection.execute(
            update(predictions).values(created_at=datetime.now(UTC) - timedelta(hours=1))
        )
        connection.execute(predictions.delete().where(predictions.c.id != rid))
    earlier = new_id(now_ms=int((time.time() - 2 * 3600) * 1000))
    assert feedback(api, request_id=earlier, correct=True)[0] == 410


def test_feedback_moves_the_confusion_matrix_once(
    api: TestClient, registry: CollectorRegistry
) -> None:
    def cell(predicted: str, actual: str, correct: str) -> float | None:
        return registry.get_sample_value(
            "sentiment_feedback_total",
            {"predicted": predicted, "actual": actual, "correct": correct},
        )

    assert cell("positive", "unknown", "false") == 0  # every cell exists before feedback
    right, wrong, vague = predict(api, "love"), predict(api, "love it"), predict(api, "hate")
    feedback(api, request_id=right, correct=True)
    feedback(api, request_id=right, correct=True)  # a duplicate moves nothing
    feedback(api, request_id=wrong, label="neutral")
    feedback(api, request_id=wrong, label="negative")  # a conflict moves nothing
    feedback(api, request_id=vague, correct=False)
    feedback(api, request_id="nope", correct=True)
    assert cell("positive", "positive", "true") == 1
    assert cell("positive", "neutral", "false") == 1
    assert cell("negative", "unknown", "false") == 1
    outcomes = {
        outcome: registry.get_sample_value(
            "sentiment_feedback_requests_total", {"outcome": outcome}
        )
        for outcome in ("created", "duplicate", "conflict", "unknown_request_id", "invalid")
    }
    assert outcomes == {
        "created": 3,
        "duplicate": 1,
        "conflict": 1,
        "unknown_request_id": 1,
        "invalid": 0,
    }
    assert registry.get_sample_value("sentiment_feedback_delay_seconds_count") == 3
    assert registry.get_sample_value("sentiment_feedback_delay_seconds_bucket", {"le": "10.0"}) == 3
    assert (
        registry.get_sample_value(
            "sentiment_errors_total",
            {"error_type": "feedback_conflict", "endpoint": "/feedback"},
        )
        == 1
    )


def test_with_the_store_off_feedback_says_so_and_predictions_still_work(
    settings: Settings, fake_model: FakeModel
) -> None:
    off = settings.model_copy(update={"store": False})
    with TestClient(create_app(off, model=fake_model)) as c:
        rid = predict(c, "love")
        assert c.get("/readyz").json() == {"status": "ready", "model": "fake-model"}
        assert feedback(c, request_id=rid, correct=True) == (
            503,
            {
                "error": "feedback needs the prediction log, which is off (SENTIMON_STORE=false)",
                "error_type": "store_disabled",
            },
        )
        assert c.get(f"/feedback/{rid}").status_code == 503
        # No store, no store metrics: an absent series, not a misleading 0.
        exported = c.get("/metrics").text
        assert "sentiment_store_" not in exported and "sentiment_feedback" not in exported


@pytest.mark.slow
def test_a_database_down_at_start_and_mid_run_never_stops_predictions(
    settings: Settings, fake_model: FakeModel, registry: CollectorRegistry
) -> None:
    server = start_postgres()
    try:
        url = server.create_database()
        server.stop()
        down = settings.model_copy(update={"database_url": url})
        with TestClient(create_app(down, model=fake_model, registry=registry)) as c:
            rid = predict(c, "love")
            ready = c.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["degraded"]["store"].startswith(
                f"cannot prepare the database in postgresql+psycopg://sentimon@127.0.0.1:"
                f"{server.port}/"
            )
            assert feedback(c, request_id=rid, correct=True) == (
                503,
                {
                    "error": "feedback cannot be stored now: the database "
                    f"(postgresql+psycopg://sentimon@127.0.0.1:{server.port}/"
                    f"{url.rsplit('/', 1)[1]}) is unavailable; nothing was recorded, try "
                    "again later",
                    "error_type": "store_unavailable",
                },
            )
            assert registry.get_sample_value("sentiment_store_up") == 0
            server.start()
            deadline = time.monotonic() + 20
            while feedback(c, request_id=rid, correct=True)[0] != 201:
                assert time.monotonic() < deadline, "feedback never recovered"
                time.sleep(0.2)
            assert "degraded" not in c.get("/readyz").json()
            server.stop()  # and down again, mid-run
            assert predict(c, "still fine") != rid
            assert feedback(c, request_id=rid, correct=True)[0] == 503
            server.start()
    finally:
        remove(server)


def test_retention_runs_in_the_background(
    store_settings: Settings, fake_model: FakeModel, registry: CollectorRegistry
) -> None:
    settings = store_settings.model_copy(
        update={"retention_max_rows": 2, "retention_interval_s": 1, "store_flush_ms": 20}
    )
    with TestClient(create_app(settings, model=fake_model, registry=registry)) as c:
        rids = [predict(c, f"love {i}") for i in range(5)]
        deadline = time.monotonic() + 15
        while registry.get_sample_value("sentiment_store_deleted_total", {"rule": "rows"}) != 3:
            assert time.monotonic() < deadline, "retention never ran"
            time.sleep(0.1)
        assert c.get(f"/feedback/{rids[-1]}").status_code == 200
        assert c.get(f"/feedback/{rids[0]}").json()["error_type"] == "prediction_expired"
