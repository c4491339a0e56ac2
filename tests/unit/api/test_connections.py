"""The connection guard's pieces that need no server (tests/integration/test_connections.py
drives a real one)."""

from __future__ import annotations

import json
from typing import get_args

from sentimon.api.connections import CloseReason, ConnectionLimits, error_bytes
from sentimon.config import Settings
from sentimon.metrics.definitions import CONNECTION_CLOSE_REASONS


def test_every_close_reason_is_a_metric_label() -> None:
    assert get_args(CloseReason) == CONNECTION_CLOSE_REASONS


def test_a_refusal_is_a_whole_close_response_with_the_api_error_body() -> None:
    raw = error_bytes(503, "too_many_connections", "too many", retry_after_s=1)
    head, body = raw.split(b"\r\n\r\n")
    assert head.decode().split("\r\n") == [
        "HTTP/1.1 503 Service Unavailable",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        "retry-after: 1",
    ]
    assert json.loads(body) == {"error": "too many", "error_type": "too_many_connections"}


def test_the_default_keepalive_outlasts_a_load_balancers_idle_timeout() -> None:
    # AWS ALB closes idle connections after 60 s, nginx's upstream keepalive after 60 s: a
    # server that closes first races the proxy's next request on that connection.
    assert Settings().keepalive_timeout_s > 60
    assert ConnectionLimits().keepalive_timeout_s == Settings().keepalive_timeout_s
