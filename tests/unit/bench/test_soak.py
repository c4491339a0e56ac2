"""The soak's verdict from its windows: errors, memory growth after warm-up, p99 drift."""

from __future__ import annotations

import pytest

from bench.soak import SoakWindow, _errors, judge


def window(
    end_s: float, p99_ms: float = 20.0, rss_mb: float = 500.0, errors: int = 0
) -> SoakWindow:
    statuses = {"200": 600 - errors, **({"429": errors} if errors else {})}
    return SoakWindow(
        end_s, 600, errors, 5.0, 10.0, p99_ms, p99_ms, rss_mb, 0.5, 3.0, 8.0, statuses
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
