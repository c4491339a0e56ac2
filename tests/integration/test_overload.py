"""Overload at test scale: a real `sentimon serve` with the bundled model on one thread, driven
open loop (Poisson arrivals) at five times the capacity measured just before. Requests carry
16 texts each, so five times capacity is a rate a Python client on the same machine can send.

Excess requests must be refused at once with 429 and a Retry-After; admitted ones must be
answered within the latency target the admission bound keeps; /healthz and /metrics must stay
quick; memory must stay bounded; and two seconds after the load stops, latency must be back to
its idle level. `make bench` reports the same at full scale.

The client runs in a fresh process of its own: in the full suite this test's process holds
millions of objects, and its garbage collector's pauses (up to a second) were measured as the
server's latency.
"""

from __future__ import annotations

import asyncio
import gc
import pickle
import random
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import start_server

pytestmark = [pytest.mark.slow, pytest.mark.overload]

TEXTS = [
    f"{mood} tweet number {i} about the match, the weather and my commute today"
    for i, mood in enumerate(["great", "awful", "ok", "lovely", "terrible", "fine"] * 3)
][:16]
BODY = {"texts": TEXTS}
QUEUE_WAIT_MS = 100
LOAD_S = 6.0


@dataclass
class Outcome:
    status: int
    latency_s: float
    retry_after: str | None


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _closed_loop_rps(http: httpx.AsyncClient, seconds: float) -> float:
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        assert (await http.post("/predict/batch", json=BODY)).status_code == 200
        done += 1
    return done / (time.perf_counter() - started)


async def _idle_latency_s(http: httpx.AsyncClient, n: int = 8) -> float:
    latencies = []
    for _ in range(n):
        started = time.perf_counter()
        assert (await http.post("/predict/batch", json=BODY)).status_code == 200
        latencies.append(time.perf_counter() - started)
    return statistics.median(latencies)


async def _open_loop(http: httpx.AsyncClient, rate: float, seconds: float) -> list[Outcome]:
    outcomes: list[Outcome] = []

    async def one() -> None:
        started = time.perf_counter()
        response = await http.post("/predict/batch", json=BODY)
        outcomes.append(
            Outcome(
                response.status_code,
                time.perf_counter() - started,
                response.headers.get("retry-after"),
            )
        )

    rng = random.Random(20261201)
    tasks = []
    start = time.perf_counter()
    at = start
    while at - start < seconds:
        at += rng.expovariate(rate)
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return outcomes


async def _probe(http: httpx.AsyncClient, stop: asyncio.Event) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = {"/healthz": [], "/metrics": []}
    while not stop.is_set():
        for path, seen in latencies.items():
            started = time.perf_counter()
            assert (await http.get(path)).status_code == 200
            seen.append(time.perf_counter() - started)
        await asyncio.sleep(0.1)
    return latencies


@dataclass
class Measured:
    capacity: float
    idle: float
    recovered: float
    outcomes: list[Outcome]
    probes: dict[str, list[float]]
    rss_before: int
    rss_after: int


async def _drive(url: str, pid: int) -> Measured:
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
    async with (
        httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http,
        httpx.AsyncClient(base_url=url, timeout=30) as probe_http,
    ):
        await _closed_loop_rps(http, 1.0)  # warm-up
        capacity = await _closed_loop_rps(http, 3.0)
        idle = await _idle_latency_s(http)
        rss_before = _rss_kb(pid)

        stop = asyncio.Event()
        prober = asyncio.create_task(_probe(probe_http, stop))
        outcomes = await _open_loop(http, 5 * capacity, LOAD_S)
        stop.set()
        probes = await prober
        rss_after = _rss_kb(pid)

        await asyncio.sleep(2)
        recovered = await _idle_latency_s(http)
    return Measured(capacity, idle, recovered, outcomes, probes, rss_before, rss_after)


def _client_main() -> None:
    """The client's own process: `python -c` this with the URL and the server's pid; the
    measurement comes back pickled on stdout."""
    gc.freeze()
    measured = asyncio.run(_drive(sys.argv[1], int(sys.argv[2])))
    sys.stdout.buffer.write(pickle.dumps(measured))


def _measure(url: str, pid: int) -> Measured:
    client = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tests.integration.test_overload import _client_main; _client_main()",
            url,
            str(pid),
        ],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert client.returncode == 0, client.stderr.decode()[-3000:]
    measured = pickle.loads(client.stdout)  # our own child's output
    assert isinstance(measured, Measured)
    return measured


def _check(measured: Measured) -> None:
    capacity, idle, recovered = measured.capacity, measured.idle, measured.recovered
    outcomes, probes = measured.outcomes, measured.probes
    rss_before, rss_after = measured.rss_before, measured.rss_after
    refused = [o for o in outcomes if o.status == 429]
    admitted = [o for o in outcomes if o.status == 200]
    others = [o.status for o in outcomes if o.status not in (200, 429)]
    refusals = "/".join(
        f"{_p([o.latency_s for o in refused], q) * 1000:.0f}" for q in (0.5, 0.95, 0.99)
    )
    report = (
        f"capacity {capacity:.1f} req/s, sent {len(outcomes)}, admitted {len(admitted)}, "
        f"refused {len(refused)}, idle {idle * 1000:.0f} ms, recovered {recovered * 1000:.0f} ms"
        f", admitted p95 {_p([o.latency_s for o in admitted], 0.95) * 1000:.0f} ms, 429 p50/p95/"
        f"p99 {refusals} ms, RSS {rss_before} -> "
        f"{rss_after} kB, probes p95/p99 "
        + ", ".join(
            f"{k} {_p(v, 0.95) * 1000:.0f}/{_p(v, 0.99) * 1000:.0f} ms" for k, v in probes.items()
        )
    )
    print(report)  # noqa: T201 - the figures, with -s
    assert others == [], report
    # Five times capacity: most are refused, and at once, each saying when to come back.
    assert len(refused) > len(outcomes) / 2, report
    assert all(o.retry_after is not None and int(o.retry_after) >= 1 for o in refused)
    # The bench holds refusals to 50 ms at p99 with the client on other cores. Here the client
    # shares two cores with the server and the model: alone, this measured 429 p95 15 ms and
    # p99 15-34 ms, but one CI run on a busy moment of the same machine saw p99 114 ms (one
    # stall of the machine delays every request in flight: about 2% of these). A refusal that
    # waited its turn behind inference instead of being refused at once would take about as
    # long as an admitted request (~190 ms) at every percentile, so p95 tells the two apart
    # and p99 only bounds the tail.
    assert _p([o.latency_s for o in refused], 0.95) < 0.05, report
    assert _p([o.latency_s for o in refused], 0.99) < 0.2, report
    # Those admitted are answered within the wait admission allows plus their batch's service:
    # a batch holds 32 texts, so two of these requests (plus HTTP and the client's own share of
    # the two cores).
    bound = QUEUE_WAIT_MS / 1000 + 2 * idle + 0.15
    assert _p([o.latency_s for o in admitted], 0.95) < bound, report
    # The event loop never waited on inference: probes stay quick (the bench holds them to
    # 50 ms at full scale; here they share two cores with the model and the client's own
    # process, which adds up to about 20 ms).
    for path, seen in probes.items():
        assert seen and _p(seen, 0.95) < 0.075 and _p(seen, 0.99) < 0.15, (path, seen, report)
    # No queue grew: memory is what it was, give or take.
    assert rss_after - rss_before < 50_000, report
    # Two seconds after the load stops, answers are as quick as before it.
    assert recovered < 1.5 * idle + 0.02, (recovered, report)


def test_five_times_capacity_is_refused_fast_and_the_rest_served_in_time(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path, "--num-threads", "1", "--max-queue-wait-ms", str(QUEUE_WAIT_MS))
    try:
        _check(_measure(server.url, server.process.pid))
    finally:
        assert server.stop() in (0, -signal.SIGTERM)
    assert "Traceback" not in server.log.read_text()
