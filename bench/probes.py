"""Timing the health and metrics endpoints while a load runs."""

from __future__ import annotations

import asyncio
import time

from bench.servers import HOST, Server
from sentimon.traffic.http import Connection, HttpError


async def probe(
    server: Server, stop: asyncio.Event, interval_s: float = 0.2
) -> tuple[list[float], list[float]]:
    """Until `stop` is set, time the health and metrics endpoints every `interval_s`, one
    connection for both; milliseconds each, infinity for a failed answer."""
    connection = Connection(HOST, server.port, timeout_s=30)
    health: list[float] = []
    metrics: list[float] = []
    paths = [(server.spec.health_path, health)]
    if server.spec.metrics_path:
        paths.append((server.spec.metrics_path, metrics))
    try:
        while not stop.is_set():
            for path, out in paths:
                start = time.perf_counter()
                try:
                    response = await connection.request("GET", path)
                    ok = response.status == 200
                except HttpError:
                    ok = False
                out.append((time.perf_counter() - start) * 1000 if ok else float("inf"))
            try:
                await asyncio.wait_for(stop.wait(), interval_s)
            except TimeoutError:
                pass
    finally:
        await connection.close()
    return health, metrics
