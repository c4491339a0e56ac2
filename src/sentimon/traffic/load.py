"""Closed-loop and open-loop load against one HTTP server, with per-request samples.

Closed loop: N clients, each sends its next request as soon as the last one answered; the
server's speed sets the rate (throughput). Open loop: requests start on a fixed schedule
whatever the server does, and latency counts from the scheduled start, so a server that
falls behind shows it in the tail instead of silently slowing the client down (no
coordinated omission).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sentimon.traffic.http import Connection, HttpError, Response

DROPPED = -1
"""Status of an open-loop request never sent because too many were already in flight."""
FAILED = 0
"""Status of a request whose connection failed or timed out."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    content_type: str = "application/json"
    feedback: tuple[str | None, ...] = ()
    """For a prediction: the label to send back as feedback for each text it classifies, in
    order, once it is answered (None: not that text); empty: no feedback."""


@dataclass(frozen=True, slots=True)
class Sample:
    start_s: float
    """When the request started (open loop: was scheduled), seconds after the run began."""
    latency_s: float
    status: int
    """The HTTP status, or FAILED / DROPPED."""
    index: int
    """Position of the request in the sequence the run was given."""


@dataclass(frozen=True, slots=True)
class Summary:
    requests: int
    ok: int
    errors: int
    throughput: float
    """Successful responses per second of the run."""
    p50_s: float
    p95_s: float
    p99_s: float
    max_s: float
    statuses: dict[int, int]


@dataclass(slots=True)
class LoadResult:
    duration_s: float
    samples: list[Sample] = field(default_factory=list)

    def summary(self) -> Summary:
        latencies = sorted(s.latency_s for s in self.samples if s.status != DROPPED)
        ok = sum(1 for s in self.samples if 200 <= s.status < 300)
        return Summary(
            requests=len(self.samples),
            ok=ok,
            errors=len(self.samples) - ok,
            throughput=ok / self.duration_s if self.duration_s > 0 else 0.0,
            p50_s=percentile(latencies, 50),
            p95_s=percentile(latencies, 95),
            p99_s=percentile(latencies, 99),
            max_s=latencies[-1] if latencies else math.nan,
            statuses=dict(sorted(Counter(s.status for s in self.samples).items())),
        )


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (NaN when there are none)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


OnSample = Callable[[Sample], None]
OnResponse = Callable[[Request, Response], None]
"""Called with each answered request and its response once its sample is recorded; it must
not block (the load loop waits for it): queue any follow-up work instead."""
T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a load coroutine on uvloop when it is installed (about half the client CPU per
    request of the default event loop, CPU the server under test would otherwise lose),
    with every object made before it frozen out of the cyclic garbage collector.

    A full collection walks the whole heap, and a client holding the model's tokenizer, torch
    and a corpus stops for it: in the bench's overload run (bundled model, 1,890 req/s, Zen 4)
    the client stopped once for 130-160 ms in three runs of four, sent the requests of that
    moment late and read their answers late, and its clock put the pause on the server: 429
    p99 170-256 ms and admitted p95 187-224 ms. Frozen, three runs of three had no pause
    past 30 ms and 429 p99 of 21-25 ms, admitted p95 178-199 ms. The objects the run makes
    are still collected; the freeze ends with the run (unless the caller had one)."""
    gc.collect()
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    try:
        return _event_loop_runner()(main)
    finally:
        if not frozen_before:
            gc.unfreeze()


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, T]], T]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run
    return uvloop.run


async def closed_loop(
    host: str,
    port: int,
    requests: Sequence[Request],
    *,
    concurrency: int,
    duration_s: float,
    max_requests: int | None = None,
    timeout_s: float = 30.0,
    on_sample: OnSample | None = None,
    on_response: OnResponse | None = None,
) -> LoadResult:
    """`concurrency` clients cycle through `requests` for `duration_s` seconds."""
    _check(requests, duration_s)
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    counter = itertools.count()
    limit = max_requests if max_requests is not None else math.inf
    result = LoadResult(duration_s)
    begin = time.perf_counter()

    async def client() -> None:
        connection = Connection(host, port, timeout_s=timeout_s)
        try:
            while time.perf_counter() - begin < duration_s:
                i = next(counter)
                if i >= limit:
                    return
                request = requests[i % len(requests)]
                sample, response = await _send(connection, request, i, begin, None)
                result.samples.append(sample)
                if on_sample is not None:
                    on_sample(sample)
                if on_response is not None and response is not None:
                    on_response(request, response)
        finally:
            await connection.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.duration_s = max(duration_s, time.perf_counter() - begin)
    return result


async def open_loop(
    host: str,
    port: int,
    requests: Sequence[Request],
    *,
    rate: float,
    duration_s: float,
    poisson_seed: int | None = None,
    max_in_flight: int = 1000,
    timeout_s: float = 30.0,
    on_sample: OnSample | None = None,
    on_response: OnResponse | None = None,
) -> LoadResult:
    """Start `rate` requests per second for `duration_s` seconds: evenly spaced, or with
    `poisson_seed` as Poisson arrivals (independent users; exponential gaps from that seed)."""
    _check(requests, duration_s)
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    idle: list[Connection] = []
    tasks: set[asyncio.Task[None]] = set()
    result = LoadResult(duration_s)
    begin = time.perf_counter()

    def record(sample: Sample) -> None:
        result.samples.append(sample)
        if on_sample is not None:
            on_sample(sample)

    async def one(i: int, scheduled: float) -> None:
        connection = idle.pop() if idle else Connection(host, port, timeout_s=timeout_s)
        request = requests[i % len(requests)]
        sample, response = await _send(connection, request, i, begin, scheduled)
        record(sample)
        idle.append(connection)
        if on_response is not None and response is not None:
            on_response(request, response)

    for i, offset in enumerate(schedule(rate, duration_s, poisson_seed)):
        scheduled = begin + offset
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= max_in_flight:
            record(Sample(scheduled - begin, 0.0, DROPPED, i))
            continue
        task = asyncio.create_task(one(i, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    for connection in idle:
        await connection.close()
    result.duration_s = max(duration_s, time.perf_counter() - begin)
    return result


def schedule(rate: float, duration_s: float, poisson_seed: int | None = None) -> list[float]:
    """Start times in seconds from the beginning: `rate` per second over `duration_s`, evenly
    spaced from 0, or Poisson arrivals from `poisson_seed`."""
    if poisson_seed is None:
        return [i / rate for i in range(math.floor(rate * duration_s))]
    rng = random.Random(poisson_seed)
    times: list[float] = []
    at = rng.expovariate(rate)
    while at < duration_s:
        times.append(at)
        at += rng.expovariate(rate)
    return times


async def _send(
    connection: Connection, request: Request, index: int, begin: float, scheduled: float | None
) -> tuple[Sample, Response | None]:
    start = time.perf_counter() if scheduled is None else scheduled
    try:
        response: Response | None = await connection.request(
            request.method, request.path, request.body, content_type=request.content_type
        )
    except HttpError:
        response = None
    latency = time.perf_counter() - start
    status = FAILED if response is None else response.status
    return Sample(start - begin, latency, status, index), response


def _check(requests: Sequence[Request], duration_s: float) -> None:
    if not requests:
        raise ValueError("no requests to send")
    if duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
