"""What sentimon's middleware stack costs per request, measured in process.

GET /healthz through the whole app (HTTP metrics, request id and in-progress gauge, body
limit, error handlers) against the same routes in a bare FastAPI app, both driven directly
over ASGI so no server or client overhead is in either number. Likewise the connection guard
against uvicorn's own protocol, and a `/metrics` body against prometheus_client's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest

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

    return asyncio.run(_interleaved(lambda: per_request_us(app), lambda: per_request_us(bare)))


def measure_scrape_cost(scrapes: int = 200) -> dict[str, float]:
    """The body of `GET /metrics` for a new app's registry (every series present from the
    start, process collectors included): sentimon's renderer (`metrics.exposition`) against
    prometheus_client's `generate_latest`, on the same registry. Both run on the event loop
    in the server, so this is time no request is answered."""
    app = create_app(Settings(), registry=CollectorRegistry())
    registry = app.state.metrics.registry
    exposition = app.state.exposition

    def per_scrape_us(render: Callable[[], bytes]) -> float:
        for _ in range(20):
            render()
        start = time.perf_counter()
        for _ in range(scrapes):
            render()
        return (time.perf_counter() - start) / scrapes * 1e6

    async def ours() -> float:
        return per_scrape_us(exposition.render)

    async def library() -> float:
        return per_scrape_us(lambda: generate_latest(registry))

    costs = asyncio.run(_interleaved(ours, library))
    samples = sum(len(m.samples) for m in registry.collect())
    return {**costs, "samples": samples}


async def _interleaved(
    with_it: Callable[[], Awaitable[float]], without_it: Callable[[], Awaitable[float]]
) -> dict[str, float]:
    """Each measured three times, interleaved, keeping the best: a noisy moment does not
    decide."""
    with_us, without_us = [], []
    for _ in range(3):
        with_us.append(await with_it())
        without_us.append(await without_it())
    best_with, best_without = min(with_us), min(without_us)
    return {"with_us": best_with, "without_us": best_without, "cost_us": best_with - best_without}


class _Transport(asyncio.Transport):
    """Enough of a socket transport for uvicorn's protocol: it keeps nothing it is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def measure_connection_guard_cost(requests: int = 5000) -> dict[str, float]:
    """What api/connections.py adds per request: keep-alive requests on one connection through
    the guarded protocol against uvicorn's plain httptools protocol, to a trivial ASGI app,
    with a transport that writes nowhere (so no socket or client cost is in either number)."""
    from uvicorn import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    from sentimon.api.connections import ConnectionLimits, guarded_protocol
    from sentimon.metrics.definitions import build_metrics

    async def app(_scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    guarded = guarded_protocol(
        ConnectionLimits(), build_metrics(CollectorRegistry(), process_collectors=False)
    )

    async def per_request_us(protocol_class: type[HttpToolsProtocol]) -> float:
        config = Config(app, http=protocol_class, lifespan="off", log_config=None)
        config.load()
        protocol = protocol_class(
            config=config,
            server_state=ServerState(),
            app_state={},
            _loop=asyncio.get_running_loop(),
        )
        protocol.connection_made(_Transport())

        async def one() -> None:
            protocol.data_received(request)
            while not protocol.cycle.response_complete:
                await asyncio.sleep(0)

        for _ in range(200):
            await one()
        start = time.perf_counter()
        for _ in range(requests):
            await one()
        elapsed = time.perf_counter() - start
        protocol.connection_lost(None)
        return elapsed / requests * 1e6

    return asyncio.run(
        _interleaved(lambda: per_request_us(guarded), lambda: per_request_us(HttpToolsProtocol))
    )
