import math

import pytest

from sentimon.model.base import Prediction
from sentimon.model.build.profile import histogram, quantiles, reference_profile


def test_histogram_shares_sum_to_one_and_clamp_out_of_range() -> None:
    shares = histogram([0.0, 0.5, 0.99, 1.0, 7.0], (0.0, 0.5, 1.0))
    assert shares == [0.2, 0.8]
    assert histogram([], (0.0, 1.0)) == [0.0]


def test_quantiles_of_known_values() -> None:
    assert quantiles(list(range(100)), (0.05, 0.5)) == {"p5": 5, "p50": 50}
    assert quantiles([]) == {}


def test_profile_has_label_shares_and_distributions() -> None:
    preds = [
        Prediction("positive", 0.9, {"negative": 0.05, "neutral": 0.05, "positive": 0.9}, 10),
        Prediction("negative", 0.6, {"negative": 0.6, "neutral": 0.3, "positive": 0.1}, 30),
    ]
    profile = reference_profile(("negative", "neutral", "positive"), preds, "test")
    assert profile["label_shares"] == {"negative": 0.5, "neutral": 0.0, "positive": 0.5}
    assert profile["confidence"]["mean"] == pytest.approx(0.75)
    assert math.isclose(sum(profile["confidence"]["shares"]), 1.0)
    assert math.isclose(sum(profile["input_tokens"]["shares"]), 1.0)
    assert profile["input_tokens"]["mean"] == 20
