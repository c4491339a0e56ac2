"""Drift statistics and label-free accuracy: the same arithmetic the Prometheus rules do.

Every replica exports additive counters; the recording rules in
``deploy/prometheus/rules`` turn fleet-wide ``sum(increase(...))`` counts into the numbers
below. These pure functions compute the same numbers in Python, for unit tests, for the
promtool tests (a rule fed known counts must give the function's value) and for the
simulations in ``tests/unit/drift/test_power.py``. numpy only: scipy is not a dependency.

- ``merge_bins``: which reference bins are pooled so each tested bin has >= 2% share.
- ``chi_square``: Pearson's goodness of fit against reference shares, exact p-value.
- ``chi2_sf`` / ``chi2_isf``: the chi-square tail and its inverse (critical values).
- ``wilson_hilferty_sf`` / ``promql_p_value``: the p-value PromQL can compute.
- ``psi``: population stability index, for display only (it does not scale with N).
- ``cbpe``: confidence-based performance estimation from the S_c, T_c and N_c counters.
- ``bbse_weights`` / ``bbse_accuracy``: black-box shift estimation under label shift.
- ``text_drift_chi2`` / ``residual_z``: the text-drift tests on the whitened embedding
  components and the residual norm; ``text_critical_values`` their Bonferroni thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

_EPS = 1e-15  # relative precision of the incomplete-gamma series and continued fraction
_TINY = 1e-300  # floor that keeps the modified Lentz algorithm away from division by 0
_MAX_ITERATIONS = 10_000


@dataclass(frozen=True)
class ChiSquare:
    """A Pearson chi-square goodness-of-fit test against reference shares."""

    statistic: float
    """sum over kept bins of (c - n p)^2 / (n p)."""
    df: int
    """Degrees of freedom: bins with reference share > 0, minus 1."""
    n: float
    """Observations: the sum of all counts."""
    p_value: float
    """Exact upper tail ``chi2_sf(statistic, df)``."""


@dataclass(frozen=True)
class Estimate:
    """Label-free performance estimated by CBPE."""

    accuracy: float | None
    """sum S / sum N; None without predictions."""
    f1: dict[str, float | None]
    """Per class 2 S_c / (N_c + T_c); None where N_c + T_c == 0."""
    macro_f1: float | None
    """Mean of the defined per-class F1 values; None if none is defined."""


def merge_bins(shares: Sequence[float], min_share: float = 0.02) -> list[tuple[int, int]]:
    """Group consecutive bins so that every group's reference share is >= ``min_share``.

    Rule, scanning left to right: bins are added to the open group until its share reaches
    ``min_share`` (and is > 0); then the group closes as ``[start, stop)``. So a bin below the
    threshold is merged into its right neighbour(s). A remainder left open at the end (its
    share below the threshold) is merged into the last closed group, its left neighbour. If
    no group ever closes, all bins form one group. Hence no group has zero share and the
    groups cover ``range(len(shares))`` exactly, in order.
    """
    values = [float(share) for share in shares]
    if not values:
        raise ValueError("merge_bins needs at least one bin")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"shares must be finite and >= 0, got {values}")
    if not math.isfinite(min_share) or min_share < 0:
        raise ValueError(f"min_share must be finite and >= 0, got {min_share}")
    if sum(values) <= 0:
        raise ValueError("shares sum to 0: there is no reference distribution to test against")
    groups: list[tuple[int, int]] = []
    start, accumulated = 0, 0.0
    for index, value in enumerate(values):
        accumulated += value
        if accumulated >= min_share and accumulated > 0:
            groups.append((start, index + 1))
            start, accumulated = index + 1, 0.0
    if start < len(values):
        if groups:
            groups[-1] = (groups[-1][0], len(values))
        else:
            groups.append((0, len(values)))
    return groups


def chi_square(counts: Sequence[float], shares: Sequence[float]) -> ChiSquare:
    """Pearson chi-square of observed ``counts`` against reference ``shares``, bin by bin.

    Bins whose reference share is 0 are left out of the statistic and of df (df = kept
    bins - 1); ``n`` is the sum of all counts. Shares are used as given, not renormalised, as
    the recording rule uses the exported gauges. With no observations (n == 0) the statistic
    is 0 and the p-value 1: no evidence of drift (the alerts also require N >= 500).
    """
    observed = _array(counts, "counts")
    expected_share = _array(shares, "shares")
    if observed.shape != expected_share.shape:
        raise ValueError(f"{observed.size} counts for {expected_share.size} shares")
    kept = expected_share > 0
    df = int(kept.sum()) - 1
    if df < 1:
        raise ValueError("a chi-square test needs at least two bins with reference share > 0")
    n = float(observed.sum())
    if n == 0:
        return ChiSquare(statistic=0.0, df=df, n=0.0, p_value=1.0)
    expected = n * expected_share[kept]
    statistic = float((((observed[kept] - expected) ** 2) / expected).sum())
    return ChiSquare(statistic=statistic, df=df, n=n, p_value=chi2_sf(statistic, df))


def chi2_sf(x: float, df: float) -> float:
    """P(X > x) for X chi-square with ``df`` degrees of freedom: Q(df / 2, x / 2).

    Q is the regularized upper incomplete gamma function, computed by its power series when
    x / 2 < df / 2 + 1 and by its continued fraction (modified Lentz) otherwise, to about
    1e-14 relative precision. For df == 2 it equals exp(-x / 2).
    """
    if not math.isfinite(df) or df <= 0:
        raise ValueError(f"df must be finite and > 0, got {df}")
    if math.isnan(x):
        raise ValueError("x is NaN")
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    return _gamma_q(df / 2.0, x / 2.0)


def chi2_isf(alpha: float, df: float) -> float:
    """The critical value x with ``chi2_sf(x, df) == alpha``, found by bisection.

    E.g. chi2_isf(1e-4, 2) = 18.4207 (the SentimentLabelMixDrift threshold) and
    chi2_isf(1e-3, 2) = 13.8155 (its info tier).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not math.isfinite(df) or df <= 0:
        raise ValueError(f"df must be finite and > 0, got {df}")
    low, high = 0.0, max(float(df), 1.0)
    while chi2_sf(high, df) > alpha:
        low, high = high, 2.0 * high
    for _ in range(200):
        middle = 0.5 * (low + high)
        if chi2_sf(middle, df) > alpha:
            low = middle
        else:
            high = middle
        if high - low <= 1e-13 * high:
            break
    return 0.5 * (low + high)


def wilson_hilferty_sf(x: float, df: float) -> float:
    """Approximate chi-square tail by the Wilson–Hilferty cube-root transform.

    z = ((x / df)^(1/3) - (1 - 2 / (9 df))) / sqrt(2 / (9 df)), and the normal upper tail
    Q(z) by Abramowitz & Stegun 26.2.17 (|error| < 7.5e-8): with t = 1 / (1 + 0.2316419 |z|),
    Q(|z|) = exp(-z^2 / 2) / sqrt(2 pi) * (b1 t + b2 t^2 + b3 t^3 + b4 t^4 + b5 t^5),
    b = (0.319381530, -0.356563782, 1.781477937, -1.821255978, 1.330274429), and
    Q(z) = 1 - Q(|z|) for z < 0. Only arithmetic, exp and sqrt: PromQL can do all of it.
    """
    if not math.isfinite(df) or df <= 0:
        raise ValueError(f"df must be finite and > 0, got {df}")
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"x must be finite and >= 0, got {x}")
    v = 2.0 / (9.0 * df)
    z = (math.pow(x / df, 1.0 / 3.0) - (1.0 - v)) / math.sqrt(v)
    t = 1.0 / (1.0 + 0.2316419 * abs(z))
    poly = t * (
        0.319381530 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429)))
    )
    upper = math.exp(-z * z / 2.0) / math.sqrt(2.0 * math.pi) * poly
    return upper if z >= 0 else 1.0 - upper


def promql_p_value(x: float, df: int) -> float:
    """The p-value the recording rule computes: exp(-x / 2) if df == 2, else Wilson–Hilferty."""
    if df == 2:
        if not math.isfinite(x) or x < 0:
            raise ValueError(f"x must be finite and >= 0, got {x}")
        return math.exp(-x / 2.0)
    return wilson_hilferty_sf(x, df)


def psi(counts: Sequence[float], shares: Sequence[float], epsilon: float = 1e-4) -> float:
    """Population stability index sum (q - p) ln(q / p), for display only.

    q = counts / sum(counts) and p = shares, both floored at ``epsilon`` so that empty bins
    give no inf or NaN. PSI does not grow with N, so it is never an alert condition. With
    no observations it is 0.
    """
    observed = _array(counts, "counts")
    reference = _array(shares, "shares")
    if observed.shape != reference.shape:
        raise ValueError(f"{observed.size} counts for {reference.size} shares")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    total = float(observed.sum())
    if total == 0:
        return 0.0
    q = np.maximum(observed / total, epsilon)
    p = np.maximum(reference, epsilon)
    return float(((q - p) * np.log(q / p)).sum())


def cbpe(n: Mapping[str, float], s: Mapping[str, float], t: Mapping[str, float]) -> Estimate:
    """Estimated accuracy and per-class F1 from the additive CBPE counters.

    ``n[c]`` = texts predicted c (N_c), ``s[c]`` = sum of the calibrated top probability over
    texts predicted c (S_c), ``t[c]`` = sum of the calibrated probability of c over all texts
    (T_c). Expected true positives of c are S_c, predicted positives N_c and expected actual
    positives T_c, so accuracy = sum S / sum N and F1_c = 2 S_c / (N_c + T_c). A class
    missing from a mapping counts 0.
    """
    labels = list(dict.fromkeys([*n, *s, *t]))
    total_n = sum(float(n.get(label, 0.0)) for label in labels)
    total_s = sum(float(s.get(label, 0.0)) for label in labels)
    accuracy = total_s / total_n if total_n > 0 else None
    f1: dict[str, float | None] = {}
    for label in labels:
        denominator = float(n.get(label, 0.0)) + float(t.get(label, 0.0))
        f1[label] = 2.0 * float(s.get(label, 0.0)) / denominator if denominator > 0 else None
    defined = [value for value in f1.values() if value is not None]
    macro_f1 = sum(defined) / len(defined) if defined else None
    return Estimate(accuracy=accuracy, f1=f1, macro_f1=macro_f1)


def bbse_weights(joint: Mapping[tuple[str, str], float], labels: Sequence[str]) -> dict[str, float]:
    """Per-predicted-class weights a_i of the BBSE accuracy, from the reference joint.

    ``joint[(predicted, actual)]`` = P(yhat = predicted, y = actual) on the reference set
    (missing pairs count 0); C[i, j] = joint[(labels[i], labels[j])]. Under label shift the
    live predicted shares are q = C w with w_j = P_live(y = j) / P_ref(y = j), so
    w = C^-1 q and the live accuracy is sum_j C[j, j] w_j = sum_i a_i q_i with
    a_i = sum_j C[j, j] (C^-1)[j, i] (Lipton et al. 2018).
    """
    names = list(labels)
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"labels must be distinct and non-empty, got {names}")
    unknown = {label for pair in joint for label in pair} - set(names)
    if unknown:
        raise ValueError(f"joint names labels not in {names}: {sorted(unknown)}")
    matrix = np.array([[float(joint.get((i, j), 0.0)) for j in names] for i in names])
    try:
        inverse = np.linalg.inv(matrix)
    except np.linalg.LinAlgError as error:
        raise ValueError("the reference confusion matrix is singular") from error
    weights = np.diag(matrix) @ inverse
    return {label: float(weight) for label, weight in zip(names, weights, strict=True)}


def bbse_accuracy(weights: Mapping[str, float], live_counts: Mapping[str, float]) -> float:
    """BBSE accuracy sum_i a_i q_i, q the live predicted shares, clamped to [0, 1]."""
    unknown = set(live_counts) - set(weights)
    if unknown:
        raise ValueError(f"live counts for classes without a weight: {sorted(unknown)}")
    total = sum(float(live_counts.get(label, 0.0)) for label in weights)
    if total <= 0:
        raise ValueError("no live predictions: BBSE accuracy is undefined")
    value = sum(
        weight * float(live_counts.get(label, 0.0)) / total for label, weight in weights.items()
    )
    return min(1.0, max(0.0, value))


def text_drift_chi2(component_means: Sequence[float], n: float, n_reference: float) -> float:
    """Chi-square (one df per component) of the live means of the whitened embedding
    components against the reference.

    The components have mean 0 and identity covariance on the reference's scaling split of
    ``n_reference`` texts, so a live mean over ``n`` texts of the same distribution differs
    from it by noise of variance 1/n + 1/n_reference per component (the reference mean is
    itself an estimate: leaving out its term inflates false alarms as n grows). The
    statistic is sum m_j^2 / (1/n + 1/n_reference).
    """
    means = np.asarray(component_means, dtype=np.float64)
    if means.ndim != 1 or not np.isfinite(means).all():
        raise ValueError("component_means must be a flat sequence of finite numbers")
    if not (n > 0 and n_reference > 0):
        raise ValueError(f"n and n_reference must be > 0, got {n}, {n_reference}")
    return float((means**2).sum() / (1.0 / n + 1.0 / n_reference))


def residual_z(
    mean: float, n: float, reference_mean: float, reference_sd: float, n_reference: float
) -> float:
    """z of the live mean residual norm (the part of the embedding outside the components)
    against the reference's: (mean - reference_mean) / (sd sqrt(1/n + 1/n_reference))."""
    if not (n > 0 and n_reference > 0 and reference_sd > 0):
        raise ValueError(
            f"n, n_reference and reference_sd must be > 0, got {n}, {n_reference}, {reference_sd}"
        )
    return (mean - reference_mean) / (reference_sd * math.sqrt(1.0 / n + 1.0 / n_reference))


def text_critical_values(alpha: float, components: int) -> tuple[float, float]:
    """The thresholds of the two text tests at family-wise level ``alpha`` (Bonferroni):
    the chi-square at alpha / 2 and |z| at alpha / 4 on each side."""
    if not 0 < alpha < 1 or components < 1:
        raise ValueError(f"need 0 < alpha < 1 and components >= 1, got {alpha}, {components}")
    return chi2_isf(alpha / 2, components), NormalDist().inv_cdf(1 - alpha / 4)


def _array(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must be finite and >= 0")
    return array


def _gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) for a > 0, x > 0."""
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        denominator = a
        for _ in range(_MAX_ITERATIONS):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * _EPS:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITERATIONS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return math.exp(log_prefactor) * h
