"""Goodput at the seeds' service level, in the manner of MLPerf's server scenario: the highest
Poisson arrival rate a server answers with p95 <= 200 ms, p99 <= 500 ms and no errors.

`search` is the search alone (a rate in, a verdict out), so it can be checked without a
server; `bench.run` gives it a step that runs the load.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

P95_MS = 200.0
P99_MS = 500.0
"""The service level of the seeds: p95 within 200 ms, p99 within 500 ms."""

MIN_STEP_REQUESTS = 60
"""Requests a rate is tried with at least, time allowing (`step_seconds`): of fewer, the
p95 is one of the slowest two and a single stall fails the rate. With 8 s a step and no
floor, a fp32 RoBERTa-base server was judged on 6-9 requests at its lowest rates, and its
goodput moved 9-fold between two runs (6.5 and 0.7 req/s)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One rate tried for a bounded time."""

    rate: float
    requests: int
    errors: int
    """Non-2xx answers, timeouts and failed connections."""
    p95_ms: float
    p99_ms: float
    useful_tokens_per_s: float
    mean_ms: float = math.nan
    """Mean latency: times `rate`, the requests in flight on average (Little's law), which is
    what an autoscaler on in-flight requests should aim at; NaN in runs before it was kept."""

    @property
    def met(self) -> bool:
        return (
            self.requests > 0
            and self.errors == 0
            and self.p95_ms <= P95_MS
            and self.p99_ms <= P99_MS
        )


def step_seconds(rate: float, seconds: float, longest: float) -> float:
    """How long to try `rate`: `seconds`, or long enough for `MIN_STEP_REQUESTS` arrivals
    where that is longer, up to `longest`."""
    return max(seconds, min(MIN_STEP_REQUESTS / rate, longest))


def search(
    try_rate: Callable[[float], Step],
    hint: float,
    max_steps: int,
    precision: float = 0.05,
) -> list[Step]:
    """The steps tried, in order: from `hint` (a rate near capacity), down by 0.6x until one
    meets the service level and up by 1.4x until one does not, then halving the gap between
    the best met and the lowest missed until it is within `precision` of the former or
    `max_steps` are spent."""
    if hint <= 0 or max_steps < 1:
        raise ValueError(f"need a rate > 0 and at least one step, got {hint} and {max_steps}")
    steps: list[Step] = []
    met, missed = 0.0, math.inf
    rate = hint
    while len(steps) < max_steps:
        step = try_rate(rate)
        steps.append(step)
        if step.met:
            met = max(met, rate)
        else:
            missed = min(missed, rate)
        if met == 0.0:
            rate *= 0.6
        elif missed == math.inf:
            rate *= 1.4
        elif (missed - met) / met <= precision:
            break
        else:
            rate = (met + missed) / 2
    return steps


def best(steps: list[Step]) -> Step | None:
    """The highest rate that met the service level, if any did."""
    return max((s for s in steps if s.met), key=lambda s: s.rate, default=None)
