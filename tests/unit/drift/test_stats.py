"""Known-answer tests of the drift statistics (the numbers the recording rules must match)."""

import math

import numpy as np
import pytest

from sentimon.drift.stats import (
    ChiSquare,
    bbse_accuracy,
    bbse_weights,
    cbpe,
    chi2_isf,
    chi2_sf,
    chi_square,
    merge_bins,
    promql_p_value,
    psi,
    wilson_hilferty_sf,
)

# The bundled model's reference_profile.json: confidence shares on the edges 1/3, 0.4, 0.5,
# 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0 and input-token shares on 0, 8, 16, ..., 512.
CONFIDENCE_SHARES = [0.0, 0.014286, 0.083333, 0.078571, 0.086905, 0.108333, 0.153571, 0.475, 0.0]
TOKEN_SHARES = [0.044048, 0.278571, 0.292857, 0.228571, 0.155952, 0.0, 0.0, 0.0, 0.0, 0.0]


# --- chi-square distribution -------------------------------------------------------------


@pytest.mark.parametrize(
    ("alpha", "df", "critical"),
    [
        (1e-4, 2, 18.4207),  # SentimentLabelMixDrift
        (1e-3, 2, 13.8155),  # SentimentLabelMixDriftInfo
        (0.01, 2, 9.2103),
        (0.05, 1, 3.8415),
        (0.01, 5, 15.0863),
        (1e-3, 5, 20.5150),
        (1e-4, 5, 25.7448),
        (0.01, 10, 23.2093),
        (0.05, 50, 67.5048),
        (0.05, 100, 124.3421),
    ],
)
def test_chi2_isf_gives_the_table_critical_values(alpha: float, df: int, critical: float) -> None:
    assert chi2_isf(alpha, df) == pytest.approx(critical, abs=5e-5)
    assert chi2_sf(chi2_isf(alpha, df), df) == pytest.approx(alpha, rel=1e-9)


@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 2.9, 3.0, 7.5, 18.4207, 40.0, 200.0])
def test_chi2_sf_equals_the_closed_forms_for_small_df(x: float) -> None:
    # Both branches (series below x/2 < df/2 + 1, continued fraction above) are exercised.
    assert chi2_sf(x, 1) == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-12, abs=1e-300)
    assert chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-12, abs=1e-300)
    three = math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)
    assert chi2_sf(x, 3) == pytest.approx(three, rel=1e-12, abs=1e-300)
    assert chi2_sf(x, 4) == pytest.approx(math.exp(-x / 2) * (1 + x / 2), rel=1e-12, abs=1e-300)


def test_chi2_sf_edges() -> None:
    assert chi2_sf(0.0, 3) == 1.0
    assert chi2_sf(-1.0, 3) == 1.0
    assert chi2_sf(math.inf, 3) == 0.0
    assert chi2_sf(10.0, 3) == pytest.approx(0.0185661354630432, rel=1e-12)
    assert chi2_sf(2000.0, 2) == 0.0
    with pytest.raises(ValueError, match="df"):
        chi2_sf(1.0, 0)
    with pytest.raises(ValueError, match="NaN"):
        chi2_sf(math.nan, 2)
    with pytest.raises(ValueError, match="alpha"):
        chi2_isf(0.0, 2)
    with pytest.raises(ValueError, match="alpha"):
        chi2_isf(1.0, 2)


# --- the PromQL p-value --------------------------------------------------------------------


def _wilson_hilferty_with_erfc(x: float, df: float) -> float:
    v = 2 / (9 * df)
    z = ((x / df) ** (1 / 3) - (1 - v)) / math.sqrt(v)
    return 0.5 * math.erfc(z / math.sqrt(2))


@pytest.mark.parametrize("df", [1, 3, 5, 8])
@pytest.mark.parametrize("alpha", [0.5, 0.05, 0.01, 1e-3, 1e-4])
def test_wilson_hilferty_uses_a_normal_tail_within_7_5e_8(df: int, alpha: float) -> None:
    x = chi2_isf(alpha, df)
    assert wilson_hilferty_sf(x, df) == pytest.approx(_wilson_hilferty_with_erfc(x, df), abs=7.5e-8)


@pytest.mark.parametrize(
    ("alpha", "approximate"),
    [(0.01, 0.0101250), (1e-3, 0.00110236), (1e-4, 0.000126982)],
)
def test_wilson_hilferty_is_close_to_exact_at_the_alert_levels(
    alpha: float, approximate: float
) -> None:
    # df 5: the merged confidence histogram of the bundled model (6 bins). The approximation
    # overstates the p-value by 1% at 0.01 and 27% at 1e-4 (conservative); the alerts compare
    # the statistic with the exact critical value instead.
    x = chi2_isf(alpha, 5)
    assert wilson_hilferty_sf(x, 5) == pytest.approx(approximate, rel=1e-5)
    assert alpha <= wilson_hilferty_sf(x, 5) <= 1.3 * alpha


def test_wilson_hilferty_is_one_half_at_the_transformed_median() -> None:
    df = 5
    x = df * (1 - 2 / (9 * df)) ** 3
    assert wilson_hilferty_sf(x, df) == pytest.approx(0.5, abs=7.5e-8)
    assert wilson_hilferty_sf(0.0, 3) == pytest.approx(1.0, abs=1e-3)


def test_promql_p_value_is_exact_for_two_degrees_of_freedom() -> None:
    assert promql_p_value(18.420680743952367, 2) == pytest.approx(1e-4, rel=1e-12)
    assert promql_p_value(0.0, 2) == 1.0
    assert promql_p_value(15.0863, 5) == wilson_hilferty_sf(15.0863, 5)
    with pytest.raises(ValueError, match="x"):
        promql_p_value(-1.0, 2)


# --- merging bins --------------------------------------------------------------------------


def test_merge_bins_on_the_bundled_reference_profile() -> None:
    # 1/3-0.4 (0%) and 0.4-0.5 (1.4%) join 0.5-0.6; the empty 0.99-1.0 joins 0.95-0.99.
    assert merge_bins(CONFIDENCE_SHARES) == [(0, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 9)]
    assert merge_bins(TOKEN_SHARES) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 10)]


@pytest.mark.parametrize(
    ("shares", "min_share", "groups"),
    [
        ([0.25, 0.25, 0.5], 0.02, [(0, 1), (1, 2), (2, 3)]),
        ([0.01, 0.01, 0.98], 0.02, [(0, 2), (2, 3)]),  # 0.02 reaches the threshold exactly
        ([0.01, 0.005, 0.985], 0.02, [(0, 3)]),
        ([0.5, 0.49, 0.01], 0.02, [(0, 1), (1, 3)]),  # the last merges left
        ([0.005, 0.005], 0.02, [(0, 2)]),  # the whole reference is under the threshold
        ([0.0, 1.0, 0.0], 0.0, [(0, 3)]),  # no group is ever empty
        ([0.3, 0.3, 0.4], 0.35, [(0, 2), (2, 3)]),
        ([1.0], 0.02, [(0, 1)]),
    ],
)
def test_merge_bins_rule(
    shares: list[float], min_share: float, groups: list[tuple[int, int]]
) -> None:
    assert merge_bins(shares, min_share) == groups


def test_merged_groups_cover_every_bin_and_reach_the_minimum_share() -> None:
    rng = np.random.default_rng(12)
    for _ in range(200):
        shares = rng.dirichlet(np.full(12, 0.3)) * (rng.random(12) > 0.3)
        if shares.sum() == 0:
            continue
        groups = merge_bins(list(shares))
        assert groups[0][0] == 0 and groups[-1][1] == 12
        assert all(a[1] == b[0] for a, b in zip(groups, groups[1:], strict=False))
        merged = [shares[start:stop].sum() for start, stop in groups]
        assert all(share > 0 for share in merged)
        if shares.sum() >= 0.02:
            assert min(merged) >= 0.02


@pytest.mark.parametrize(
    ("shares", "min_share"), [([], 0.02), ([-0.1, 1.1], 0.02), ([0.0, 0.0], 0.02), ([1.0], -1.0)]
)
def test_merge_bins_rejects_misuse(shares: list[float], min_share: float) -> None:
    with pytest.raises(ValueError):
        merge_bins(shares, min_share)


# --- chi-square test -----------------------------------------------------------------------


def test_chi_square_on_hand_computed_counts() -> None:
    # n = 60, expected 12, 18, 30: 4/12 + 4/18 + 0 = 5/9; df 2 so p = exp(-5/18).
    result = chi_square([10, 20, 30], [0.2, 0.3, 0.5])
    assert result.statistic == pytest.approx(5 / 9, rel=1e-12)
    assert (result.df, result.n) == (2, 60.0)
    assert result.p_value == pytest.approx(math.exp(-5 / 18), rel=1e-12)


def test_chi_square_of_a_ten_point_majority_shift_at_n_500() -> None:
    # The bundled model's label mix; live: positive 0.46, the 0.10 spread in proportion.
    shares = [0.278571, 0.161905, 0.559524]
    counts = [171, 99, 230]
    expected = [500 * share for share in shares]
    statistic = sum((c - e) ** 2 / e for c, e in zip(counts, expected, strict=True))
    result = chi_square(counts, shares)
    assert result.statistic == pytest.approx(statistic, rel=1e-12)
    assert result.statistic == pytest.approx(20.0960, abs=1e-4)
    assert result.statistic > chi2_isf(1e-4, 2)
    assert result.p_value == pytest.approx(math.exp(-result.statistic / 2), rel=1e-12)


def test_identical_samples_mean_no_drift() -> None:
    result = chi_square([280, 160, 560], [0.28, 0.16, 0.56])
    assert result == ChiSquare(statistic=0.0, df=2, n=1000.0, p_value=1.0)


def test_bins_without_reference_share_are_left_out() -> None:
    # n counts every observation; the zero-share bin adds no term and no degree of freedom.
    result = chi_square([5, 10, 20, 30], [0.0, 0.2, 0.3, 0.5])
    assert result.n == 65.0 and result.df == 2
    assert result.statistic == pytest.approx(3**2 / 13 + 0.5**2 / 19.5 + 2.5**2 / 32.5, rel=1e-12)
    assert math.isfinite(result.p_value)


def test_chi_square_without_observations_is_no_evidence() -> None:
    assert chi_square([0, 0, 0], [0.2, 0.3, 0.5]) == ChiSquare(0.0, 2, 0.0, 1.0)


def test_chi_square_p_value_matches_the_exact_tail_for_more_bins() -> None:
    result = chi_square([30, 60, 50, 60], [0.1, 0.3, 0.3, 0.3])
    # n = 200, expected 20, 60, 60, 60: 100/20 + 0 + 100/60 + 0 = 6.6667, df 3.
    assert result.statistic == pytest.approx(20 / 3, rel=1e-12)
    assert result.p_value == pytest.approx(
        math.erfc(math.sqrt(10 / 3)) + math.sqrt(40 / (3 * math.pi)) * math.exp(-10 / 3), rel=1e-12
    )


@pytest.mark.parametrize(
    ("counts", "shares"),
    [([1, 2], [0.5, 0.3, 0.2]), ([1, 2, 3], [1.0, 0.0, 0.0]), ([-1, 2], [0.5, 0.5]), ([], [])],
)
def test_chi_square_rejects_misuse(counts: list[float], shares: list[float]) -> None:
    with pytest.raises(ValueError):
        chi_square(counts, shares)


# --- PSI -------------------------------------------------------------------------------------


def test_psi_known_answers() -> None:
    assert psi([50, 30, 20], [0.5, 0.3, 0.2]) == pytest.approx(0.0, abs=1e-15)
    # q = 0.6, 0.4, 0 (floored at 1e-4) against p = 0.5, 0.3, 0.2.
    expected = 0.1 * math.log(1.2) + 0.1 * math.log(4 / 3) + (1e-4 - 0.2) * math.log(1e-4 / 0.2)
    assert psi([60, 40, 0], [0.5, 0.3, 0.2]) == pytest.approx(expected, rel=1e-12)
    assert psi([60, 40, 0], [0.5, 0.3, 0.2], epsilon=0.01) == pytest.approx(
        0.1 * math.log(1.2) + 0.1 * math.log(4 / 3) + (0.01 - 0.2) * math.log(0.05), rel=1e-12
    )
    assert psi([0, 0, 0], [0.5, 0.3, 0.2]) == 0.0


def test_psi_misses_the_ten_point_shift_that_chi_square_sees() -> None:
    # PSI stays at 0.040 < 0.1 (its usual threshold) at any N; chi-square grows with N.
    shares = [0.278571, 0.161905, 0.559524]
    live = [0.341814, 0.198662, 0.459524]
    expected = sum((q - p) * math.log(q / p) for q, p in zip(live, shares, strict=True))
    for n in (1_000, 100_000):
        assert psi([n * q for q in live], shares) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(0.04015, abs=1e-5)
    assert chi_square([1000 * q for q in live], shares).statistic == pytest.approx(40.575, abs=1e-3)


# --- CBPE ------------------------------------------------------------------------------------


def test_cbpe_known_answer() -> None:
    n = {"negative": 100.0, "neutral": 50.0, "positive": 250.0}
    s = {"negative": 80.0, "neutral": 30.0, "positive": 225.0}
    t = {"negative": 110.0, "neutral": 60.0, "positive": 230.0}
    estimate = cbpe(n, s, t)
    assert estimate.accuracy == pytest.approx(335 / 400, rel=1e-12)
    assert estimate.f1 == pytest.approx(
        {"negative": 160 / 210, "neutral": 60 / 110, "positive": 450 / 480}
    )
    assert estimate.macro_f1 == pytest.approx((160 / 210 + 60 / 110 + 450 / 480) / 3, rel=1e-12)


def test_cbpe_with_an_unseen_class_and_without_traffic() -> None:
    estimate = cbpe({"a": 10.0, "b": 0.0}, {"a": 9.0}, {"a": 10.0, "b": 0.0})
    assert estimate.accuracy == pytest.approx(0.9)
    assert estimate.f1 == {"a": pytest.approx(0.9), "b": None}
    assert estimate.macro_f1 == pytest.approx(0.9)
    empty = cbpe({"a": 0.0}, {"a": 0.0}, {"a": 0.0})
    assert (empty.accuracy, empty.f1, empty.macro_f1) == (None, {"a": None}, None)


def test_cbpe_equals_the_mean_calibrated_top_probability() -> None:
    rng = np.random.default_rng(3)
    probabilities = rng.dirichlet([1.0, 1.0, 1.0], size=500)
    predicted = probabilities.argmax(axis=1)
    top = probabilities.max(axis=1)
    labels = ["a", "b", "c"]
    n = {c: float((predicted == i).sum()) for i, c in enumerate(labels)}
    s = {c: float(top[predicted == i].sum()) for i, c in enumerate(labels)}
    t = {c: float(probabilities[:, i].sum()) for i, c in enumerate(labels)}
    assert cbpe(n, s, t).accuracy == pytest.approx(top.mean(), rel=1e-12)


# --- BBSE ------------------------------------------------------------------------------------

# A hand-checked 3x3 reference joint, rows predicted, columns actual (sums to 1):
#   C = [[0.2, 0.1, 0.0], [0.0, 0.3, 0.1], [0.0, 0.0, 0.3]]
# C^-1 = [[5, -5/3, 5/9], [0, 10/3, -10/9], [0, 0, 10/3]], diag(C) = (0.2, 0.3, 0.3), so
# a = diag(C) C^-1 = (1, -1/3 + 1, 1/9 - 1/3 + 1) = (1, 2/3, 7/9).
JOINT = {("a", "a"): 0.2, ("a", "b"): 0.1, ("b", "b"): 0.3, ("b", "c"): 0.1, ("c", "c"): 0.3}


def test_bbse_weights_hand_checked() -> None:
    weights = bbse_weights(JOINT, ["a", "b", "c"])
    assert weights == pytest.approx({"a": 1.0, "b": 2 / 3, "c": 7 / 9}, rel=1e-12)
    # On the reference mix itself (predicted 0.3, 0.4, 0.3) it returns the reference accuracy.
    assert bbse_accuracy(weights, {"a": 30, "b": 40, "c": 30}) == pytest.approx(0.8, rel=1e-12)


def test_bbse_recovers_the_true_accuracy_under_pure_label_shift() -> None:
    # Live labels 0.5, 0.3, 0.2 against the reference 0.2, 0.4, 0.4: w = (2.5, 0.75, 0.5).
    # Live joint C diag(w) = [[0.5, 0.075, 0], [0, 0.225, 0.05], [0, 0, 0.15]]: predicted
    # shares 0.575, 0.275, 0.15 and true accuracy 0.5 + 0.225 + 0.15 = 0.875.
    weights = bbse_weights(JOINT, ["a", "b", "c"])
    assert bbse_accuracy(weights, {"a": 575, "b": 275, "c": 150}) == pytest.approx(0.875, rel=1e-12)
    # Only class c is left: it is predicted b a quarter of the time, so accuracy is 0.75.
    assert bbse_accuracy(weights, {"a": 0, "b": 25, "c": 75}) == pytest.approx(0.75, rel=1e-12)


def test_bbse_is_exact_for_any_label_shift_of_a_random_joint() -> None:
    rng = np.random.default_rng(7)
    labels = ["negative", "neutral", "positive"]
    for _ in range(50):
        confusion = rng.dirichlet([1.0, 1.0, 1.0], size=3).T + 2 * np.eye(3)
        confusion /= confusion.sum(axis=0)  # P(predicted | actual), columns sum to 1
        joint = confusion * rng.dirichlet([2.0, 2.0, 2.0])  # times the reference priors
        live = confusion * rng.dirichlet([2.0, 2.0, 2.0])  # the same P(yhat | y), new priors
        weights = bbse_weights(
            {(p, a): joint[i, j] for i, p in enumerate(labels) for j, a in enumerate(labels)},
            labels,
        )
        counts = {p: 1000 * live[i].sum() for i, p in enumerate(labels)}
        assert bbse_accuracy(weights, counts) == pytest.approx(np.trace(live), abs=1e-12)


def test_bbse_accuracy_is_clamped_and_checks_its_inputs() -> None:
    assert bbse_accuracy({"a": 1.2, "b": 0.5}, {"a": 10, "b": 0}) == 1.0
    assert bbse_accuracy({"a": -0.2, "b": 0.5}, {"a": 10}) == 0.0
    with pytest.raises(ValueError, match="no live predictions"):
        bbse_accuracy({"a": 1.0}, {"a": 0})
    with pytest.raises(ValueError, match="without a weight"):
        bbse_accuracy({"a": 1.0}, {"a": 1, "z": 1})
    with pytest.raises(ValueError, match="singular"):
        bbse_weights({("a", "a"): 0.5, ("a", "b"): 0.5}, ["a", "b"])
    with pytest.raises(ValueError, match="not in"):
        bbse_weights({("a", "x"): 1.0}, ["a", "b"])
