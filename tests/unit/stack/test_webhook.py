from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from sentimon.stack.webhook import WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    hook = WebhookReceiver(0, on_notification=seen.append)
    hook.start()
    yield hook, seen
    hook.stop()


def post(port: int, path: str, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_notifications_are_kept_and_passed_on(
    receiver: tuple[WebhookReceiver, list[dict[str, Any]]],
) -> None:
    hook, seen = receiver
    payload = {"receiver": "default", "status": "firing", "alerts": [{"labels": {}}]}
    assert post(hook.port, "/alerts", json.dumps(payload).encode()) == (200, {"status": "ok"})
    assert hook.received() == [payload] == seen
    with urllib.request.urlopen(f"http://127.0.0.1:{hook.port}/alerts", timeout=5) as response:
        assert json.load(response) == [payload]


def test_bad_requests_are_refused(receiver: tuple[WebhookReceiver, list[dict[str, Any]]]) -> None:
    hook, seen = receiver
    assert post(hook.port, "/alerts", b"{not json") == (400, {"error": "body is not JSON"})
    assert post(hook.port, "/elsewhere", b"{}") == (404, {"error": "bad request"})
    assert seen == []
