"""The goodput search on made-up servers: it finds the knee within its precision, in few
steps, and says so when nothing meets the service level."""

from __future__ import annotations

import pytest

from bench.goodput import MIN_STEP_REQUESTS, Step, best, search, step_seconds


def server(capacity: float) -> tuple[list[float], object]:
    """A server that meets the service level up to `capacity` requests/s."""
    tried: list[float] = []

    def try_rate(rate: float) -> Step:
        tried.append(rate)
        slow = rate > capacity
        return Step(rate, 100, 0, 300.0 if slow else 50.0, 400.0 if slow else 80.0, rate * 20)

    return tried, try_rate


@pytest.mark.parametrize("capacity", [3.0, 47.0, 100.0, 180.0])
def test_it_finds_the_knee_from_a_hint_of_100(capacity: float) -> None:
    tried, try_rate = server(capacity)
    steps = search(try_rate, hint=100, max_steps=12)  # type: ignore[arg-type]
    found = best(steps)
    assert found is not None and capacity * 0.95 <= found.rate <= capacity
    assert [s.rate for s in steps] == tried
    assert len(steps) <= 12


def test_each_part_of_the_service_level_counts() -> None:
    assert Step(10, 100, 0, 200.0, 500.0, 0).met
    assert not Step(10, 100, 1, 20.0, 50.0, 0).met  # one error
    assert not Step(10, 100, 0, 201.0, 300.0, 0).met
    assert not Step(10, 100, 0, 100.0, 501.0, 0).met
    assert not Step(10, 0, 0, 0.0, 0.0, 0).met  # nothing answered


def test_it_stops_at_max_steps_and_may_find_nothing() -> None:
    tried, try_rate = server(0.001)
    steps = search(try_rate, hint=100, max_steps=4)  # type: ignore[arg-type]
    assert [round(s.rate, 2) for s in steps] == [100, 60, 36, 21.6]
    assert best(steps) is None


def test_it_refuses_nonsense() -> None:
    _, try_rate = server(1)
    with pytest.raises(ValueError, match="need a rate > 0"):
        search(try_rate, hint=0, max_steps=3)  # type: ignore[arg-type]


def test_low_rates_are_tried_long_enough_for_a_percentile_time_allowing() -> None:
    assert MIN_STEP_REQUESTS == 60
    assert step_seconds(100.0, 8.0, 30.0) == 8.0  # 800 requests in 8 s
    assert step_seconds(5.0, 8.0, 30.0) == 12.0  # 60 requests
    assert step_seconds(0.7, 8.0, 30.0) == 30.0  # 21 requests, the most time allowed
    assert step_seconds(0.7, 40.0, 30.0) == 40.0  # never shorter than asked
