"""The soak's verdict from its windows: errors, memory growth after warm-up, p99 drift, and
the last windows against the control (a new process at the same rate, right after)."""

from __future__ import annotations

import pytest

from bench.soak import SoakWindow, _errors, judge


def window(
    end_s: float,
    p99_ms: float = 20.0,
    rss_mb: float = 500.0,
    errors: int = 0,
    cpu_cores: float = 0.5,
) -> SoakWindow:
    statuses = {"200": 600 - errors, **({"429": errors} if errors else {})}
    return SoakWindow(
        end_s, 600, errors, 5.0, 10.0, p99_ms, p99_ms, rss_mb, cpu_cores, 3.0, 8.0, statuses
    )


def test_a_steady_run_meets_every_check() -> None:
    windows = [window(60 * i, rss_mb=400 + (50 if i > 1 else 0)) for i in range(1, 31)]
    verdict = judge(windows, warmup_s=300)
    # Growth counts from the end of the warm-up (RSS 450), not from the cold start (400).
    assert verdict.rss_growth == 0 and verdict.errors == 0 and verdict.met


def test_memory_that_keeps_growing_fails() -> None:
    windows = [window(60 * i, rss_mb=500 + 2 * i) for i in range(1, 31)]
    verdict = judge(windows, warmup_s=300)
    assert verdict.rss_growth == pytest.approx((560 - 510) / 510)
    assert not verdict.met


def test_a_p99_that_creeps_up_fails_and_one_error_fails() -> None:
    creeping = [window(60 * i, p99_ms=20 + i) for i in range(1, 31)]
    verdict = judge(creeping, warmup_s=300)
    assert (verdict.p99_first_ms, verdict.p99_last_ms) == (29.5, 46.5)
    assert not verdict.met
    one_error = [window(60 * i, errors=int(i == 7)) for i in range(1, 31)]
    assert judge(one_error, warmup_s=300).errors == 1 and not judge(one_error, 300).met


def test_the_control_tells_a_slower_machine_from_an_aged_server() -> None:
    # p99 and CPU rise over the run: stable fails either way, the control tells why.
    rising = [
        window(60 * i, p99_ms=20 + (20 if i > 20 else 0), cpu_cores=0.8 + (0.2 if i > 20 else 0))
        for i in range(1, 31)
    ]
    slow_host = [window(60 * i, p99_ms=39.0, cpu_cores=1.0) for i in (1, 2)]
    verdict = judge(rising, warmup_s=300, control=slow_host)
    assert (verdict.p99_last_ms, verdict.p99_control_ms) == (40.0, 39.0)
    assert (verdict.cpu_last, verdict.cpu_control) == pytest.approx((1.0, 1.0))
    assert verdict.cpu_first == pytest.approx(0.8)
    assert not verdict.stable and verdict.unaged and not verdict.met
    fresh_is_fast = [window(60 * i, p99_ms=20.0, cpu_cores=0.8) for i in (1, 2)]
    aged = judge(rising, warmup_s=300, control=fresh_is_fast)
    assert not aged.unaged and not aged.met


def test_a_steady_run_needs_a_steady_control_and_counts_its_errors() -> None:
    steady = [window(60 * i) for i in range(1, 31)]
    assert judge(steady, warmup_s=300).unaged  # no control: nothing to hold against
    assert judge(steady, 300, control=[window(60), window(120)]).met
    failing = judge(steady, 300, control=[window(60, errors=2), window(120)])
    assert failing.errors == 2 and not failing.met


def test_a_run_no_longer_than_its_warmup_cannot_be_judged() -> None:
    with pytest.raises(ValueError, match="no window after the warm-up"):
        judge([window(60), window(120)], warmup_s=300)


def test_a_window_s_errors_are_shown_by_status() -> None:
    assert _errors({"errors": 0, "statuses": {"200": 600}}) == "0"
    assert (
        _errors({"errors": 3, "statuses": {"0": 1, "200": 597, "429": 2}})
        == "3 (failed: 1, 429: 2)"
    )
    assert _errors({"errors": 2}) == "2"  # results from before statuses were kept
