"""Overload at full scale: sentimon with its defaults, the admission bound on, under Poisson
arrivals at five times the capacity this run measured for it.

What an SRE asks of it: the excess refused at once (429 with a Retry-After), the requests it
takes answered within the service level, the probes quick, memory flat, and idle latency back
within two seconds of the load stopping. `tests/integration/test_overload.py` checks the same
at test scale.

`python -m bench.overload MODEL CAPACITY` measures this row alone (the capacity in req/s, as
the closed loop of a `make bench` run on the same machine measured it) and prints it as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

from bench.goodput import Step
from bench.probes import probe
from bench.servers import HOST, Server, ServerSpec
from sentimon.traffic.http import Connection, Response
from sentimon.traffic.load import Request, closed_loop, open_loop, percentile, run

FACTOR = 5.0
"""Arrivals, as a multiple of the closed-loop throughput."""
RECOVERY_WAIT_S = 2.0


@dataclass(slots=True)
class OverloadRun:
    model: str
    capacity_rps: float
    """sentimon-onnx's closed-loop throughput in this run."""
    rate: float
    """The Poisson arrival rate asked for."""
    sent_rps: float
    """The rate the client managed to start (it shares the cores with the server)."""
    duration_s: float
    statuses: dict[int, int]
    refused_p99_ms: float
    refused_without_retry_after: int
    admitted_p95_ms: float
    admitted_p99_ms: float
    health_p95_ms: float
    health_p99_ms: float
    metrics_p95_ms: float
    metrics_p99_ms: float
    rss_before_mb: float
    rss_after_mb: float
    idle_ms: float
    """Median latency of one request at a time before the load."""
    recovered_ms: float
    """The same, two seconds after the load stopped."""
    goodput: list[Step] = field(default_factory=list)
    """The goodput search on the same server before the overload (`bench.run`): what the
    shipped defaults, admission bound included, answer within the service level."""


def admission_on(spec: ServerSpec) -> ServerSpec:
    """`spec` (one of the bench's sentimon servers, which run with the bound off) with the
    admission bound at its default."""
    env = {k: v for k, v in spec.env.items() if k != "SENTIMON_MAX_QUEUE_WAIT_MS"}
    return replace(spec, name=f"{spec.name}-admission", env=env)


def measure_overload(
    server: Server,
    model: str,
    requests: Sequence[Request],
    capacity_rps: float,
    duration_s: float,
    seed: int,
) -> OverloadRun:
    run(closed_loop(HOST, server.port, requests, concurrency=4, duration_s=2.0))  # warm-up
    idle = run(_one_at_a_time(server, requests[0], 10))
    rss_before = server.rss_bytes()
    retry_after: list[bool] = []

    def on_response(_: Request, response: Response) -> None:
        if response.status == 429:
            retry_after.append(response.headers.get("retry-after", "").isdigit())

    async def load() -> tuple[list[float], list[float], float, list[tuple[int, float]]]:
        stop = asyncio.Event()
        prober = asyncio.create_task(probe(server, stop, interval_s=0.1))
        result = await open_loop(
            HOST,
            server.port,
            requests,
            rate=FACTOR * capacity_rps,
            duration_s=duration_s,
            poisson_seed=seed,
            on_response=on_response,
        )
        stop.set()
        health, metrics = await prober
        samples = [(s.status, s.latency_s * 1000) for s in result.samples]
        return health, metrics, len(result.samples) / duration_s, samples

    health, metrics, sent_rps, samples = run(load())
    rss_after = server.rss_bytes()
    time.sleep(RECOVERY_WAIT_S)
    recovered = run(_one_at_a_time(server, requests[0], 10))
    refused = sorted(ms for status, ms in samples if status == 429)
    admitted = sorted(ms for status, ms in samples if 200 <= status < 300)
    statuses: dict[int, int] = {}
    for status, _ in samples:
        statuses[status] = statuses.get(status, 0) + 1
    return OverloadRun(
        model=model,
        capacity_rps=capacity_rps,
        rate=FACTOR * capacity_rps,
        sent_rps=sent_rps,
        duration_s=duration_s,
        statuses=dict(sorted(statuses.items())),
        refused_p99_ms=percentile(refused, 99),
        refused_without_retry_after=retry_after.count(False),
        admitted_p95_ms=percentile(admitted, 95),
        admitted_p99_ms=percentile(admitted, 99),
        health_p95_ms=percentile(sorted(health), 95),
        health_p99_ms=percentile(sorted(health), 99),
        metrics_p95_ms=percentile(sorted(metrics), 95),
        metrics_p99_ms=percentile(sorted(metrics), 99),
        rss_before_mb=rss_before / 2**20,
        rss_after_mb=rss_after / 2**20,
        idle_ms=idle,
        recovered_ms=recovered,
    )


async def _one_at_a_time(server: Server, request: Request, n: int) -> float:
    """Median milliseconds of `n` requests sent one after another on one connection."""
    connection = Connection(HOST, server.port, timeout_s=30)
    latencies = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            await connection.request(
                request.method, request.path, request.body, content_type=request.content_type
            )
            latencies.append((time.perf_counter() - start) * 1000)
    finally:
        await connection.close()
    return statistics.median(latencies)


def main(argv: Sequence[str] | None = None) -> None:
    from bench.run import BenchConfig, _model_path, _servers, _token_counts, run_overload
    from sentimon.traffic.corpus import generate_corpus

    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__)
    parser.add_argument("model", choices=["bundled", "roberta-base"])
    parser.add_argument("capacity", type=float, help="closed-loop req/s of sentimon-onnx")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    config = BenchConfig()
    path = _model_path(args.model, config.work_dir)
    [spec] = [s for s in _servers(args.model, path, config) if s.name == "sentimon-onnx"]
    texts = [item.text for item in generate_corpus(config.corpus_size, seed=config.seed)]
    tokens = _token_counts(path, texts)
    result = run_overload(spec, args.model, texts, tokens, args.capacity, config)
    sys.stdout.write(json.dumps(asdict(result), indent=1) + "\n")


if __name__ == "__main__":
    main()
