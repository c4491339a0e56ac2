"""A fake sentimon API on loopback, in a thread of its own: answers the prediction endpoints
like the real one (every text `positive`, each with its own request id) and records what
`POST /feedback` receives."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

PROBABILITIES = {"negative": 0.1, "neutral": 0.2, "positive": 0.7}


@dataclass
class FakeApi:
    feedback_status: Callable[[int], int] = lambda _n: 201
    """The status of the n-th feedback received (from 0)."""
    feedback_delay_s: float = 0.0
    probabilities: dict[str, float] = field(default_factory=lambda: dict(PROBABILITIES))
    port: int = 0
    texts: dict[str, str] = field(default_factory=dict)
    """Every answered text by the request id it was given."""
    feedback: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                _, path, _ = line.decode().split(" ", 2)
                length = 0
                while (header := await reader.readline()) != b"\r\n":
                    name, _, value = header.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.paths.append(path)
                try:
                    status, answer = await self._answer(path, json.loads(body))
                except (ValueError, TypeError, KeyError):
                    status, answer = 422, {"error": "invalid", "error_type": "invalid_input"}
                payload = json.dumps(answer).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if path == "/feedback":
            n = len(self.feedback)
            self.feedback.append(body)
            await asyncio.sleep(self.feedback_delay_s)
            status = self.feedback_status(n)
            return status, {"error": "...", "error_type": "..."} if status >= 300 else body
        request_id = f"r{next(self._ids)}"
        if path == "/predict/batch":
            items = [self._item(f"{request_id}:{i}", t) for i, t in enumerate(body["texts"])]
            return 200, {"request_id": request_id, "predictions": items}
        if path in ("/predict", "/analyze-sentiment/"):
            return 200, self._item(request_id, body["text"])
        return 404, {"error": "not found", "error_type": "not_found"}

    def _item(self, request_id: str, text: str) -> dict[str, Any]:
        self.texts[request_id] = text
        label = max(self.probabilities, key=lambda k: self.probabilities[k])
        return {
            "label": label,
            "score": self.probabilities[label],
            "probabilities": self.probabilities,
            "request_id": request_id,
        }


@contextmanager
def serving(api: FakeApi) -> Iterator[FakeApi]:
    """`api` listening on a free loopback port, in a thread of its own, until the block ends."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(
        asyncio.start_server(api.handle, "127.0.0.1", 0), loop
    ).result(5)
    api.port = server.sockets[0].getsockname()[1]
    try:
        yield api
    finally:

        async def stop() -> None:
            server.close()
            handlers = asyncio.all_tasks() - {asyncio.current_task()}
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
