"""Feedback on answered predictions, sent in the background while a load runs.

`sentimon traffic --feedback-share F` sends, for the texts its scenario chose (see
`Request.feedback`), the label the corpus wrote each one with back to `POST /feedback`, so a
run exercises the whole loop: prediction log, feedback store, agreement metrics and alerts.

Feedback goes out from a queue on connections of its own: a prediction client never waits
for it, and its requests are not samples, so the latency and throughput figures of a run
count predictions only, measured as they would be without it. The server does the extra work
of course, as it would with real users sending feedback.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sentimon.traffic.http import Connection, HttpError, Response
from sentimon.traffic.load import FAILED, Request

SOURCE = "sentimon-traffic"
"""The `source` of every feedback the traffic generator sends."""
CONNECTIONS = 4
MAX_PENDING = 10_000
"""Texts waiting for their feedback to be sent; beyond it feedback is dropped (and counted)."""


@dataclass(slots=True)
class FeedbackCounts:
    statuses: Counter[int] = field(default_factory=Counter)
    """The HTTP status of each feedback sent (FAILED: the connection failed)."""
    skipped: int = 0
    """Chosen texts whose answer did not name their id, or whose model lacks their label."""
    dropped: int = 0
    """Chosen texts not sent: the backlog was full, or still waiting when the run ended."""

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    @property
    def created(self) -> int:
        return self.statuses[201]

    @property
    def duplicate(self) -> int:
        return self.statuses[200]

    @property
    def conflict(self) -> int:
        return self.statuses[409]

    @property
    def errors(self) -> dict[int, int]:
        """Every other outcome, by status."""
        return {s: n for s, n in sorted(self.statuses.items()) if s not in (200, 201, 409)}


def feedback_bodies(request: Request, answer: bytes) -> tuple[list[bytes], int]:
    """The `POST /feedback` bodies for an answered prediction request, and how many of its
    chosen texts get none (the answer lacks their id, or the model lacks their label)."""
    wanted = [(i, label) for i, label in enumerate(request.feedback) if label is not None]
    items = _items(answer)
    bodies = []
    for i, label in wanted:
        item = items[i] if i < len(items) else {}
        request_id, labels = item.get("request_id"), item.get("probabilities")
        if isinstance(request_id, str) and isinstance(labels, dict) and label in labels:
            payload = {"request_id": request_id, "label": label, "source": SOURCE}
            bodies.append(json.dumps(payload).encode())
    return bodies, len(wanted) - len(bodies)


def _items(answer: bytes) -> list[dict[str, Any]]:
    """The answered items: a batch's `predictions`, or the single answer itself."""
    try:
        data = json.loads(answer)
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    items = data.get("predictions", [data])
    if not isinstance(items, list):
        return []
    return [item if isinstance(item, dict) else {} for item in items]


class FeedbackSender:
    """Sends feedback for answered predictions from a queue, on `connections` connections.

    `submit` is an `OnResponse` for `open_loop` and `closed_loop`: it only queues. `start`
    and `close` run in the load's event loop.
    """

    def __init__(
        self,
        host: str,
        port: int,
        path: str = "/feedback",
        *,
        timeout_s: float = 10.0,
        connections: int = CONNECTIONS,
        max_pending: int = MAX_PENDING,
        on_status: Callable[[int], None] | None = None,
    ) -> None:
        if connections < 1:
            raise ValueError(f"connections must be >= 1, got {connections}")
        self.counts = FeedbackCounts()
        self._host, self._port, self._path = host, port, path
        self._timeout_s = timeout_s
        self._connections = connections
        self._max_pending = max_pending
        self._on_status = on_status
        self._queue: asyncio.Queue[tuple[Request, bytes]] = asyncio.Queue()
        self._pending = 0
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._workers:
            self._workers = [asyncio.create_task(self._work()) for _ in range(self._connections)]

    def submit(self, request: Request, response: Response) -> None:
        """Queue the feedback for an answered request (2xx) that has some; never blocks."""
        if not request.feedback or not 200 <= response.status < 300:
            return
        chosen = sum(label is not None for label in request.feedback)
        if self._pending + chosen > self._max_pending:
            self.counts.dropped += chosen
            return
        self._pending += chosen
        self._queue.put_nowait((request, response.body))

    async def close(self, grace_s: float) -> FeedbackCounts:
        """Wait up to `grace_s` seconds for the backlog, then stop; what is left is dropped."""
        if self._workers:
            try:
                await asyncio.wait_for(self._queue.join(), grace_s)
            except TimeoutError:
                pass
            for worker in self._workers:
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            self._workers = []
        self.counts.dropped += self._pending
        self._pending = 0
        return self.counts

    async def _work(self) -> None:
        connection = Connection(self._host, self._port, timeout_s=self._timeout_s)
        try:
            while True:
                request, answer = await self._queue.get()
                bodies, skipped = feedback_bodies(request, answer)
                self.counts.skipped += skipped
                self._pending -= skipped
                for body in bodies:
                    try:
                        status = (await connection.request("POST", self._path, body)).status
                    except HttpError:
                        status = FAILED
                    self._pending -= 1
                    self.counts.statuses[status] += 1
                    if self._on_status is not None:
                        self._on_status(status)
                self._queue.task_done()
        finally:
            await connection.close()
