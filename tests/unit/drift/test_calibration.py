import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager

import numpy as np
import numpy.typing as npt
import pytest

from sentimon.drift.calibration import (
    Calibration,
    _pool_adjacent_violators,
    expected_calibration_error,
    fit_calibration,
)

NAMES = ("negative", "neutral", "positive")
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Maker = Callable[[int, int], tuple[FloatArray, IntArray]]


def _softmax(z: FloatArray) -> FloatArray:
    e: FloatArray = np.exp(z - z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


def _sample(
    seed: int, n: int, shift: tuple[float, float, float], scale: float = 1.5
) -> tuple[FloatArray, IntArray]:
    """Logits and labels drawn from softmax(logits): softmax(logits) is calibrated."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, scale, (n, 3)) + np.array(shift)
    p = _softmax(z)
    labels = (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    return z, labels.astype(np.int64)


def _overconfident(n: int, seed: int) -> tuple[FloatArray, IntArray]:
    """Calibrated probabilities sharpened with T = 0.6; the third class is rare (< 1000 rows),
    so the fit takes the temperature path."""
    z, labels = _sample(seed, n, (0.5, 0.0, -3.3))
    return _softmax(z / 0.6), labels


def _biased(n: int, seed: int) -> tuple[FloatArray, IntArray]:
    """Overconfident and biased toward the first class: no single temperature fixes it."""
    z, labels = _sample(seed, n, (0.0, 0.0, 0.0), scale=2.0)
    return _softmax(z / 0.6 + np.array([0.8, 0.0, -0.8])), labels


def test_expected_calibration_error_known_answer() -> None:
    p = np.array([[0.9, 0.1], [0.65, 0.35], [0.28, 0.72]])
    labels = np.array([0, 1, 1])
    # Bins 13, 9 and 10 of 15: (|1 - 0.9| + |0 - 0.65| + |1 - 0.72|) / 3.
    assert expected_calibration_error(p, labels) == pytest.approx(1.03 / 3)
    # One bin: |2/3 - mean(0.9, 0.65, 0.72)|.
    assert expected_calibration_error(p, labels, bins=1) == pytest.approx(0.09)


def test_pool_adjacent_violators_known_answer() -> None:
    values, sizes = _pool_adjacent_violators(
        np.array([1.0, 3.0, 2.0, 4.0, 0.0]), np.array([1.0, 1.0, 1.0, 1.0, 3.0])
    )
    # [3, 2] pool to 2.5; 4 and the heavy 0 pool to 1, below 2.5, so those four pool to
    # (2.5 * 2 + 1 * 4) / 6 = 1.5, which is not below the first point's 1.
    assert values.tolist() == pytest.approx([1.0, 1.5])
    assert sizes.tolist() == [1, 4]
    values, sizes = _pool_adjacent_violators(np.array([0.0, 1.0, 0.5, 2.0]), np.ones(4))
    assert values.tolist() == pytest.approx([0.0, 0.75, 2.0])
    assert sizes.tolist() == [1, 2, 1]


def test_temperature_recovers_a_known_temperature() -> None:
    p, labels = _overconfident(20_000, seed=1)
    calibration = fit_calibration(p, labels, NAMES, fitted_on="synthetic T=0.6")
    assert calibration.method == "temperature"
    assert calibration.isotonic is None
    assert calibration.temperature == pytest.approx(1 / 0.6, rel=0.05)
    assert calibration.n == 20_000
    assert calibration.labels == NAMES
    assert calibration.fitted_on == "synthetic T=0.6"
    assert calibration.ece_before is not None and calibration.ece_after is not None
    assert calibration.ece_after < calibration.ece_before / 4


def test_temperature_lowers_ece_on_held_out_data() -> None:
    p, labels = _overconfident(5_000, seed=2)
    held_out, held_out_labels = _overconfident(5_000, seed=3)
    calibration = fit_calibration(p, labels, NAMES, fitted_on="split a")
    before = expected_calibration_error(held_out, held_out_labels)
    after = expected_calibration_error(calibration.apply(held_out), held_out_labels)
    assert before > 0.05
    assert after < before / 3


def test_isotonic_with_enough_rows_per_class_lowers_ece_on_held_out_data() -> None:
    p, labels = _biased(6_000, seed=4)
    held_out, held_out_labels = _biased(6_000, seed=5)
    assert np.bincount(labels).min() >= 1000
    calibration = fit_calibration(p, labels, NAMES, fitted_on="split a")
    assert calibration.method == "isotonic"
    assert calibration.temperature is None
    assert calibration.isotonic is not None and sorted(calibration.isotonic) == sorted(NAMES)
    for xs, ys in calibration.isotonic.values():
        assert len(xs) == len(ys) >= 2
        assert np.all(np.diff(xs) >= 0) and np.all(np.diff(ys) >= 0)
    before = expected_calibration_error(held_out, held_out_labels)
    after = expected_calibration_error(calibration.apply(held_out), held_out_labels)
    assert before > 0.05
    assert after < before / 3


def test_one_class_short_of_1000_rows_means_temperature() -> None:
    p, labels = _biased(6_000, seed=4)
    keep = np.ones(len(labels), dtype=bool)
    keep[np.flatnonzero(labels == 1)[999:]] = False
    assert np.bincount(labels[keep]).tolist()[1] == 999
    assert fit_calibration(p[keep], labels[keep], NAMES, "a").method == "temperature"


@pytest.mark.parametrize("make", [_overconfident, _biased])
def test_apply_keeps_shape_and_rows_sum_to_one(make: Maker) -> None:
    p, labels = make(6_000, 6)
    calibration = fit_calibration(p, labels, NAMES, "a")
    batch = make(64, 7)[0].astype(np.float32)
    out = calibration.apply(batch)
    assert out.shape == (64, 3)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(out >= 0)
    if calibration.method == "temperature":
        assert np.array_equal(out.argmax(axis=1), batch.argmax(axis=1))
    assert calibration.apply(batch[:0]).shape == (0, 3)


def test_apply_keeps_argmax_with_the_most_extreme_temperatures() -> None:
    p, _ = _overconfident(64, seed=8)
    p[0] = [1.0, 0.0, 0.0]
    for t in (0.05, 20.0):
        calibration = Calibration("temperature", t, None, NAMES, None, None, 0, "")
        out = calibration.apply(p)
        assert np.array_equal(out.argmax(axis=1), p.argmax(axis=1))
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)


def test_isotonic_row_with_all_maps_zero_is_returned_as_is() -> None:
    maps = {name: ([0.5, 1.0], [0.0, 1.0]) for name in NAMES}
    calibration = Calibration("isotonic", None, maps, NAMES, None, None, 0, "")
    p = np.array([[0.4, 0.3, 0.3], [0.2, 0.2, 0.6], [0.0, 0.0, 0.0]])
    out = calibration.apply(p)
    np.testing.assert_allclose(out, [[0.4, 0.3, 0.3], [0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3]])


def test_none_returns_the_input_unchanged() -> None:
    calibration = Calibration("none", None, None, NAMES, None, None, 0, "")
    p = np.array([[0.2, 0.3, 0.5]], dtype=np.float32)
    assert calibration.apply(p) is p


@pytest.mark.parametrize("make", [_overconfident, _biased])
def test_json_round_trip_is_exact(make: Maker) -> None:
    p, labels = make(6_000, 9)
    calibration = fit_calibration(p, labels, NAMES, "split a")
    data = json.loads(json.dumps(calibration.to_json()))
    again = Calibration.from_json(data)
    assert again == calibration
    assert again.to_json() == calibration.to_json()
    np.testing.assert_array_equal(again.apply(p[:64]), calibration.apply(p[:64]))


def test_to_json_layout() -> None:
    maps = {name: ([0.1, 0.9], [0.2, 0.8]) for name in NAMES}
    calibration = Calibration("isotonic", None, maps, NAMES, 0.1, 0.02, 5000, "val")
    assert calibration.to_json() == {
        "method": "isotonic",
        "temperature": None,
        "isotonic": {name: {"x": [0.1, 0.9], "y": [0.2, 0.8]} for name in NAMES},
        "labels": list(NAMES),
        "ece_before": 0.1,
        "ece_after": 0.02,
        "n": 5000,
        "fitted_on": "val",
    }


def _raises(message: str) -> AbstractContextManager[pytest.ExceptionInfo[ValueError]]:
    return pytest.raises(ValueError, match=f"^{re.escape(message)}$")


def test_bad_input_raises_a_precise_value_error() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    with _raises("labels must have shape (2,), got (3,)"):
        fit_calibration(p, np.array([0, 1, 2]), NAMES, "a")
    with _raises("labels must be in [0, 3), got 3 at row 1"):
        fit_calibration(p, np.array([0, 3]), NAMES, "a")
    with _raises("labels must be in [0, 3), got -1 at row 0"):
        expected_calibration_error(p, np.array([-1, 0]))
    with _raises("probabilities must have at least one row, got 0"):
        fit_calibration(np.zeros((0, 3)), np.zeros(0, dtype=np.int64), NAMES, "a")
    with _raises("probabilities must have shape (n, k) with k >= 2, got (3,)"):
        expected_calibration_error(np.array([0.2, 0.3, 0.5]), np.array([0]))
    with _raises("label_names has 2 names, probabilities have 3 columns"):
        fit_calibration(p, np.array([0, 1]), NAMES[:2], "a")
    with _raises("labels must be integer class indices, got dtype float64"):
        fit_calibration(p, np.array([0.0, 1.0]), NAMES, "a")
    with _raises("probabilities must be finite and in [0, 1]"):
        fit_calibration(np.array([[np.nan, 0.5, 0.5]]), np.array([0]), NAMES, "a")
    with _raises("probability rows must sum to 1 (within 0.001), row 1 sums to 1.1"):
        fit_calibration(np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.2]]), np.array([0, 1]), NAMES, "")
    with _raises("bins must be >= 1, got 0"):
        expected_calibration_error(p, np.array([0, 1]), bins=0)
    calibration = Calibration("temperature", 1.5, None, NAMES, None, None, 0, "")
    with _raises("probabilities must have shape (n, 3), got (64, 2)"):
        calibration.apply(np.full((64, 2), 0.5))


def test_inconsistent_calibrations_are_refused() -> None:
    with _raises("temperature must be in [0.05, 20.0], got 0.01"):
        Calibration("temperature", 0.01, None, NAMES, None, None, 0, "")
    with _raises("temperature must be set exactly when method is 'temperature'"):
        Calibration("isotonic", 1.0, None, NAMES, None, None, 0, "")
    with _raises("isotonic must be set exactly when method is 'isotonic'"):
        Calibration("isotonic", None, None, NAMES, None, None, 0, "")
    with _raises("isotonic map of 'neutral' must be non-decreasing in x and y"):
        maps = {name: ([0.1, 0.9], [0.8 if name == "neutral" else 0.2, 0.5]) for name in NAMES}
        Calibration("isotonic", None, maps, NAMES, None, None, 0, "")
    with _raises("calibration is missing n, fitted_on"):
        Calibration.from_json(
            {"method": "none", "temperature": None, "isotonic": None, "labels": list(NAMES)}
        )
    with _raises("method must be one of ('temperature', 'isotonic', 'none'), got 'platt'"):
        Calibration.from_json(
            {
                "method": "platt",
                "temperature": None,
                "isotonic": None,
                "labels": list(NAMES),
                "n": 0,
                "fitted_on": "",
            }
        )
