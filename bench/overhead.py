"""What sentimon's middleware stack costs per request, measured in process.

GET /healthz through the whole app (HTTP metrics, request id and in-progress gauge, body
limit, error handlers) against the same routes in a bare FastAPI app, both driven directly
over ASGI so no server or client overhead is in either number.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from sentimon.app import create_app
from sentimon.config import Settings

SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/healthz",
    "raw_path": b"/healthz",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"127.0.0.1")],
    "client": ("127.0.0.1", 40000),
    "server": ("127.0.0.1", 8000),
}


def measure_middleware_cost(requests: int = 5000) -> dict[str, float]:
    app = create_app(Settings(), registry=CollectorRegistry())
    bare = FastAPI()
    bare.router.routes.extend(app.router.routes)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"/healthz answered {message['status']}")

    async def per_request_us(target: Any) -> float:
        for _ in range(200):
            await target(dict(SCOPE), receive, send)
        start = time.perf_counter()
        for _ in range(requests):
            await target(dict(SCOPE), receive, send)
        return (time.perf_counter() - start) / requests * 1e6

    async def both() -> tuple[float, float]:
        # Interleave and keep the best of three, so a noisy moment does not decide.
        full, plain = [], []
        for _ in range(3):
            full.append(await per_request_us(app))
            plain.append(await per_request_us(bare))
        return min(full), min(plain)

    with_us, without_us = asyncio.run(both())
    return {"with_us": with_us, "without_us": without_us, "cost_us": with_us - without_us}
