"""Feedback statistics: known answers, the edge cases, and the Wilson interval's figures."""

from __future__ import annotations

import pytest

from sentimon.store.stats import Z95, Z99_ONE_SIDED, scores, wilson


def test_wilson_half_widths_match_the_design_figures() -> None:
    # ML-MONITORING.md: half-width at 0.85 is 0.070 at n=100, 0.035 at 400, 0.022 at 1000.
    for n, half in ((100, 0.070), (400, 0.035), (1000, 0.022)):
        low, high = wilson(0.85 * n, n, Z95)
        assert (high - low) / 2 == pytest.approx(half, abs=0.001)


def test_wilson_stays_inside_zero_and_one() -> None:
    assert wilson(0, 10, Z95)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson(10, 10, Z95)[1] == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="^n must be positive$"):
        wilson(0, 0, Z95)


def test_known_confusion_matrix() -> None:
    counts = {
        ("positive", "positive"): 8,
        ("positive", "negative"): 2,
        ("negative", "negative"): 5,
        ("negative", "unknown"): 1,
        ("neutral", "positive"): 4,
    }
    s = scores(counts)
    assert (s.n, s.correct) == (20, 13)
    assert s.agreement == pytest.approx(0.65)
    assert s.lower95 is not None and s.upper95 is not None
    assert s.lower95 < 0.65 < s.upper95
    assert s.upper99_one_sided == pytest.approx(wilson(13, 20, Z99_ONE_SIDED)[1])
    positive = s.classes["positive"]
    assert (positive.predicted, positive.actual, positive.true_positives) == (10, 12, 8)
    assert positive.precision == pytest.approx(0.8)
    assert positive.recall == pytest.approx(8 / 12)
    assert positive.f1 == pytest.approx(16 / 22)
    negative = s.classes["negative"]
    assert negative.precision == pytest.approx(5 / 6)
    assert negative.recall == pytest.approx(5 / 7)
    neutral = s.classes["neutral"]
    assert (neutral.precision, neutral.recall, neutral.f1) == (0.0, None, 0.0)
    assert s.macro_f1 == pytest.approx((16 / 22 + 10 / 13 + 0.0) / 3)
    assert "unknown" not in s.classes


def test_no_feedback_gives_no_numbers() -> None:
    s = scores({})
    assert (s.n, s.agreement, s.lower95, s.macro_f1, s.classes) == (0, None, None, None, {})
