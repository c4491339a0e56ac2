"""Past capacity a prediction is refused by the connection as soon as its head arrives
(api/admission.py, api/connections.py): the app never sees it, the answer is the one the app
would give, the connection stays usable, and responses keep their order.

uvicorn runs in the test's event loop with the guarded protocol, as `sentimon serve` runs it,
over a model that blocks until released: with a queue of one text and that text in a model
call, every further prediction is past capacity. Raw sockets, to see the bytes on the wire.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client import CollectorRegistry

from sentimon.api.connections import ConnectionLimits, guarded_protocol
from sentimon.app import create_app
from sentimon.config import Settings
from tests.fakes import BlockingModel

BUSY = {
    "error": "server busy: 1 texts queued, limit 1; retry shortly",
    "error_type": "overloaded",
}


@dataclass
class Busy:
    port: int
    model: BlockingModel
    held: asyncio.Task[httpx.Response]
    """The prediction in the model call, holding the whole queue."""

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def metrics(self) -> str:
        async with httpx.AsyncClient() as http:
            return (await http.get(f"http://127.0.0.1:{self.port}/metrics")).text


@asynccontextmanager
async def _busy_server(registry: CollectorRegistry) -> AsyncIterator[Busy]:
    model = BlockingModel()
    settings = Settings(max_queue_size=1, request_timeout_s=10, store=False, drift=False)
    app = create_app(settings, model=model, registry=registry)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http=guarded_protocol(ConnectionLimits(), app.state.metrics, app.state.shedder),
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            held = asyncio.create_task(http.post("/predict", json={"text": "held"}))
            await asyncio.to_thread(model.started.wait, 5)
            busy = Busy(port, model, held)
            try:
                yield busy
            finally:
                model.release.set()
                assert (await held).status_code == 200
    finally:
        server.should_exit = True
        await serving


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], Any]:
    """The next final response (a 100 Continue before it is skipped)."""
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode()
    if head.startswith("HTTP/1.1 100 "):
        return await _response(reader)
    lines = head.rstrip("\r\n").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 5)
    return int(lines[0].split()[1]), headers, json.loads(body)


def _post(path: str, body: bytes, *headers: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "host: test", "content-type: application/json"]
    head += [f"content-length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


GET_HEALTH = b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n"


async def test_a_prediction_past_capacity_is_refused_unread_and_the_connection_kept(
    registry: CollectorRegistry,
) -> None:
    async with _busy_server(registry) as busy:
        reader, writer = await busy.open()
        # Not even JSON: nothing reads or checks the body of a refused prediction.
        writer.write(_post("/predict/batch", b"not json", "x-request-id: shed-1"))
        status, headers, body = await _response(reader)
        assert (status, body) == (429, BUSY)
        assert headers["retry-after"] == "1"
        assert headers["x-request-id"] == "shed-1"
        assert headers["content-type"] == "application/json"
        assert "connection" not in headers  # kept open
        # The same connection serves what comes next.
        writer.write(GET_HEALTH)
        assert (await _response(reader))[0] == 200
        # A body that arrives in pieces is skipped as it comes, then answered.
        request = _post("/predict", json.dumps({"text": "slow body"}).encode())
        writer.write(request[:-5])
        await asyncio.sleep(0.2)
        writer.write(request[-5:])
        status, headers, body = await _response(reader)
        assert (status, body) == (429, BUSY)
        assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])  # a new id
        writer.close()

        metrics = await busy.metrics()
        assert 'sentiment_errors_total{endpoint="/predict/batch",error_type="overloaded"} 1.0' in (
            metrics
        )
        assert 'sentiment_errors_total{endpoint="/predict",error_type="overloaded"} 1.0' in metrics
        assert (
            'http_requests_total{handler="/predict/batch",method="POST",status="429"} 1.0'
            in metrics
        )


async def test_pipelined_requests_are_answered_in_order(registry: CollectorRegistry) -> None:
    async with _busy_server(registry) as busy:
        reader, writer = await busy.open()
        refused = _post("/predict", json.dumps({"text": "a"}).encode())
        writer.write(GET_HEALTH + refused + GET_HEALTH + refused)
        statuses = [(await _response(reader))[0] for _ in range(4)]
        assert statuses == [200, 429, 200, 429]
        writer.close()


async def test_a_refusal_closes_the_connection_when_the_client_asked(
    registry: CollectorRegistry,
) -> None:
    async with _busy_server(registry) as busy:
        reader, writer = await busy.open()
        writer.write(_post("/predict", b'{"text": "a"}', "connection: close"))
        status, headers, _ = await _response(reader)
        assert (status, headers["connection"]) == (429, "close")
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        # Not a prediction: the app answers as usual.
        (_post("/feedback", b"not json"), (400, "invalid_json")),
        # Waiting for 100-continue: the connection may not answer ahead of the app, which
        # refuses it after reading the body, as the batcher does.
        (_post("/predict", b'{"text": "a"}', "expect: 100-continue"), (429, "overloaded")),
    ],
)
async def test_what_the_connection_does_not_refuse_the_app_answers(
    registry: CollectorRegistry, request_bytes: bytes, expected: tuple[int, str]
) -> None:
    async with _busy_server(registry) as busy:
        reader, writer = await busy.open()
        writer.write(request_bytes)
        status, _, body = await _response(reader)
        assert (status, body["error_type"]) == expected
        writer.close()


async def test_refusals_are_logged_first_at_once_then_counted_each_second(
    registry: CollectorRegistry, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    async with _busy_server(registry) as busy:
        reader, writer = await busy.open()
        for _ in range(5):
            writer.write(_post("/predict", b'{"text": "a"}'))
            assert (await _response(reader))[0] == 429
        await asyncio.sleep(1.2)
        writer.close()
    shed = [line for line in log_lines() if line.get("event") == "shed"]
    assert [line["count"] for line in shed] == [1, 4]
    assert shed[0]["message"] == (
        "POST /predict 429: server busy: 1 texts queued, limit 1; retry shortly"
    )
    assert shed[1]["message"] == (
        "4 more predictions refused with 429 in the last 1 s (/predict 4), the last: "
        "server busy: 1 texts queued, limit 1; retry shortly"
    )
    assert shed[1]["paths"] == {"/predict": 4}
