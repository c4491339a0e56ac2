"""Statistical quality of the drift tests and of the accuracy estimates, on simulated streams.

Issue 12 item 5. Seeded numpy simulations, no model; the statistic is the one
``sentimon.drift.stats`` and the recording rules compute (Pearson chi-square against the
reference shares, compared with the exact critical value ``chi2_isf(alpha, df)``). Each test
puts what it measured in its assertion message; these are the numbers it measured (numpy 2.4):

- Label mix (reference negative 0.279, neutral 0.162, positive 0.560). Positive falls 10
  points to 0.46, spread over the other classes in proportion; one 500-prediction window (the
  first one holding only shifted predictions), chi-square at alpha 0.01 (> 9.21): detected
  in 94.7% of 20,000 streams. That proportional spread is the worst of the 12 directions tried
  (positive falls or rises 10 points, 0, 25, 50, 63, 75 or 100% of it to or from negative:
  94.7% to 100%); it minimises the noncentrality (20.3 at N = 500). False alarms per
  evaluation on 200,000 unshifted windows: 1.016%.
- Confidence: 10% of inputs turn ambiguous (top probability uniform on 0.33-0.7). Merged
  reference bins of the bundled profile (6 bins, df 5; the first pools 1/3-0.6, because
  0.4-0.5 alone holds 1.4%), alpha 1e-4 (> 25.74), 4,000 streams: power 0.989 at N = 1,000
  and only 0.669 at N = 500; false alarms 0.025% (1 of 4,000 unshifted streams at N = 1,000).
- Stationary traffic, 15 s evaluations, 5-minute windows of exact counts, chi2 > 18.42 for 2m
  (9 evaluations) with N >= 500: 0.117 SentimentLabelMixDrift alerts per month over 60
  simulated months (20 each at 2, 15 and 200 req/s; 7 alerts), 88.3% of months without one;
  the info tier (> 13.82) 0.059 alerts a day. So "no alert in a stationary month" holds in
  about 9 months of 10, not always: each evaluation is a level-1e-4 test, 17 a month pass it.
- CBPE under covariate shift (40% more mass on inputs whose model margin is below the
  median; it lowers accuracy by 1.5 points): a 3-class model sharpened with temperature 0.7,
  temperature-calibrated on 5,000 labelled validation rows (fitted T 1.434, true 1/0.7 =
  1.429), N = 5,000 live texts, 200 seeds: |estimate - realized accuracy| <= 0.02 in 99.5%
  of seeds (mean error +0.0004, sd 0.0076, max 0.0226). Uncalibrated, the mean top
  probability is 6.3 points too high (0% within 2 points).
- Pure label shift (the positive class falls 10 points, P(x | y) fixed), same 200 seeds: BBSE
  within 2 points in 97.5% of seeds (mean -0.0012, sd 0.0086, max 0.0255); CBPE is biased
  there, +1.29 points on average, within 2 points in 87.0%.
"""

import numpy as np
import numpy.typing as npt
import pytest

from sentimon.drift.stats import (
    bbse_accuracy,
    bbse_weights,
    cbpe,
    chi2_isf,
    chi_square,
    merge_bins,
)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

LABELS = ("negative", "neutral", "positive")
# The bundled model's reference profile (reference_profile.json).
REFERENCE_MIX = np.array([0.278571, 0.161905, 0.559524])
CONFIDENCE_EDGES = np.array([1 / 3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0])
CONFIDENCE_SHARES = np.array(
    [0.0, 0.014286, 0.083333, 0.078571, 0.086905, 0.108333, 0.153571, 0.475, 0.0]
)


def _pearson(counts: npt.NDArray[np.integer] | Floats, shares: Floats) -> Floats:
    """Row-wise chi_square(counts[i], shares).statistic (every share > 0, every row n > 0)."""
    n = counts.sum(axis=1, keepdims=True)
    expected = n * shares
    statistic: Floats = ((counts - expected) ** 2 / expected).sum(axis=1)
    return statistic


def test_the_vectorised_statistic_is_chi_square() -> None:
    rng = np.random.default_rng(0)
    counts = rng.multinomial(500, REFERENCE_MIX, size=20)
    for row, statistic in zip(counts, _pearson(counts, REFERENCE_MIX), strict=True):
        assert chi_square(list(row), list(REFERENCE_MIX)).statistic == pytest.approx(
            statistic, rel=1e-12
        )


# --- label mix -----------------------------------------------------------------------------


def _label_shift(to_negative: float, fall: float = 0.10) -> Floats:
    """The positive share falls by ``fall`` (rises if negative); ``to_negative`` of it goes
    to negative, the rest to neutral."""
    shifted = REFERENCE_MIX + fall * np.array([to_negative, 1 - to_negative, -1.0])
    assert np.all(shifted > 0) and abs(shifted.sum() - REFERENCE_MIX.sum()) < 1e-12
    return shifted


def test_a_ten_point_majority_shift_is_detected_within_500_predictions() -> None:
    streams, window, critical = 20_000, 500, chi2_isf(0.01, 2)
    rng = np.random.default_rng(20261201)
    proportional = REFERENCE_MIX[0] / (REFERENCE_MIX[0] + REFERENCE_MIX[1])
    directions = [
        (fraction, fall)
        for fall in (0.10, -0.10)
        for fraction in (0.0, 0.25, 0.5, float(proportional), 0.75, 1.0)
    ]
    power = {}
    for fraction, fall in directions:
        counts = rng.multinomial(window, _label_shift(fraction, fall), size=streams)
        power[(round(fraction, 3), fall)] = float(
            (_pearson(counts, REFERENCE_MIX) > critical).mean()
        )
    null = rng.multinomial(window, REFERENCE_MIX / REFERENCE_MIX.sum(), size=200_000)
    false_alarms = float((_pearson(null, REFERENCE_MIX) > critical).mean())
    main = power[(round(float(proportional), 3), 0.10)]
    worst = min(power, key=lambda direction: power[direction])
    report = (
        f"power at positive 0.46 (proportional) {main:.4f}; worst {worst} {power[worst]:.4f}; "
        f"all {power}; false alarms per evaluation {false_alarms:.4%}"
    )
    assert main >= 0.90, report
    assert power[worst] >= 0.90, report
    assert false_alarms <= 0.012, report


# --- confidence -------------------------------------------------------------------------------


def _confidence_counts(
    rng: np.random.Generator, streams: int, size: int, ambiguous: float, groups: Ints
) -> Ints:
    """Per stream, counts in the merged bins of ``size`` top probabilities: reference ones
    drawn uniformly inside their reference bin, a fraction ``ambiguous`` uniform on 0.33-0.7."""
    shares = CONFIDENCE_SHARES / CONFIDENCE_SHARES.sum()
    bins = rng.choice(len(shares), size=(streams, size), p=shares)
    low, width = CONFIDENCE_EDGES[:-1], np.diff(CONFIDENCE_EDGES)
    confidence = low[bins] + width[bins] * rng.random((streams, size))
    turned = rng.random((streams, size)) < ambiguous
    confidence[turned] = rng.uniform(0.33, 0.7, size=int(turned.sum()))
    # Prometheus buckets are (lower, le]; anything at or below 1/3 lands in the first one.
    index = np.clip(np.searchsorted(CONFIDENCE_EDGES, confidence, side="left") - 1, 0, None)
    group = groups[index] + len(np.unique(groups)) * np.arange(streams)[:, None]
    counts: Ints = np.bincount(group.ravel(), minlength=streams * len(np.unique(groups)))
    return counts.reshape(streams, -1)


def test_ten_percent_ambiguous_inputs_are_detected_within_1000_predictions() -> None:
    merged = merge_bins(list(CONFIDENCE_SHARES))
    groups = np.zeros(len(CONFIDENCE_SHARES), dtype=np.int64)
    for number, (start, stop) in enumerate(merged):
        groups[start:stop] = number
    shares = np.array([CONFIDENCE_SHARES[start:stop].sum() for start, stop in merged])
    critical = chi2_isf(1e-4, len(merged) - 1)
    rng = np.random.default_rng(1201)
    streams = 4_000
    power = {}
    for size in (500, 1_000):
        counts = _confidence_counts(rng, streams, size, 0.10, groups)
        power[size] = float((_pearson(counts, shares) > critical).mean())
    null = _confidence_counts(rng, streams, 1_000, 0.0, groups)
    false_alarms = float((_pearson(null, shares) > critical).mean())
    report = (
        f"{len(merged)} merged bins, critical {critical:.2f}: power {power} over {streams} "
        f"streams; false alarms {false_alarms:.4%}"
    )
    assert power[1_000] >= 0.90, report
    assert false_alarms <= 0.001, report


# --- a stationary month ----------------------------------------------------------------------


def _alerts(condition: npt.NDArray[np.bool_], evaluations: int) -> int:
    """Alerts that fire: runs of at least ``evaluations`` consecutive true conditions."""
    padded = np.concatenate([[0], condition.astype(np.int8), [0]])
    starts = np.flatnonzero(np.diff(padded) == 1)
    stops = np.flatnonzero(np.diff(padded) == -1)
    return int(((stops - starts) >= evaluations).sum())


def test_stationary_months_at_15s_evaluations_rarely_raise_a_label_mix_alert() -> None:
    # Issue 12 asks for no alert in a stationary month. The alert is a level-1e-4 test run
    # every 15 s (about 17 exceedances a month, in clusters), so a month without any alert
    # is a probability, not a certainty: this measures false alerts per month over many.
    months, steps, window, for_evaluations = 20, 30 * 24 * 60 * 4, 20, 9  # 15 s, 5m, 2m
    warning, info = chi2_isf(1e-4, 2), chi2_isf(1e-3, 2)
    rng = np.random.default_rng(30)
    alerts: dict[int, list[int]] = {}
    info_alerts: dict[int, list[int]] = {}
    for rate in (2, 15, 200):
        alerts[rate], info_alerts[rate] = [], []
        for _ in range(months):
            # A Poisson total split multinomially is independent Poisson counts per class.
            counts = rng.poisson(rate * 15 * REFERENCE_MIX, size=(steps, 3))
            cumulative = np.vstack([np.zeros((1, 3), dtype=np.int64), np.cumsum(counts, axis=0)])
            windows = cumulative[window:] - cumulative[:-window]
            statistic = _pearson(windows, REFERENCE_MIX)
            enough = windows.sum(axis=1) >= 500
            alerts[rate].append(_alerts((statistic > warning) & enough, for_evaluations))
            info_alerts[rate].append(_alerts((statistic > info) & enough, for_evaluations))
    every = [count for counts in alerts.values() for count in counts]
    per_month = sum(every) / len(every)
    quiet = sum(count == 0 for count in every) / len(every)
    info_per_day = sum(sum(counts) for counts in info_alerts.values()) / (30 * len(every))
    report = (
        f"{len(every)} stationary months at 2, 15, 200 req/s: SentimentLabelMixDrift alerts per "
        f"month {per_month:.3f} (by rate {alerts}), months without one {quiet:.1%}; info tier "
        f"{info_per_day:.3f} alerts a day (by rate {info_alerts})"
    )
    assert per_month <= 0.25, report
    assert quiet >= 0.8, report


# --- label-free accuracy -------------------------------------------------------------------


def _softmax(logits: Floats) -> Floats:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: Floats = shifted / shifted.sum(axis=1, keepdims=True)
    return probabilities


def _population(rng: np.random.Generator, size: int) -> tuple[Floats, Floats, Ints]:
    """Inputs as (true calibrated probabilities, model output, label): a Dirichlet mix per
    reference class; the model sharpens the truth with temperature 0.7 (overconfident)."""
    component = rng.choice(3, size=size, p=REFERENCE_MIX / REFERENCE_MIX.sum())
    gamma = rng.standard_gamma((np.full((3, 3), 0.5) + 6 * np.eye(3))[component])
    truth = np.clip(gamma / gamma.sum(axis=1, keepdims=True), 1e-12, None)
    output = _softmax(np.log(truth) / 0.7)
    label: Ints = (rng.random(size)[:, None] > np.cumsum(truth, axis=1)).sum(axis=1)
    return truth, output, np.minimum(label, 2)


def _fit_temperature(output: Floats, label: Ints) -> float:
    """T minimising the NLL of softmax(log p / T) over T in [0.05, 20]: Newton's method on
    beta = 1 / T (the NLL is convex in beta), each step halved until the NLL falls."""
    logits = np.log(output)
    picked = logits[np.arange(len(label)), label]

    def nll(beta: float) -> float:
        scaled = beta * logits
        top = scaled.max(axis=1)
        log_norm = top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))
        return float((log_norm - beta * picked).mean())

    beta, low, high = 1.0, 1 / 20, 1 / 0.05
    for _ in range(50):
        probabilities = _softmax(beta * logits)
        mean = (probabilities * logits).sum(axis=1)
        gradient = float((mean - picked).mean())
        curvature = float(((probabilities * logits**2).sum(axis=1) - mean**2).mean())
        step = gradient / max(curvature, 1e-12)
        candidate = min(high, max(low, beta - step))
        while nll(candidate) > nll(beta) and abs(candidate - beta) > 1e-12:
            candidate = 0.5 * (candidate + beta)
        if abs(candidate - beta) <= 1e-10:
            break
        beta = candidate
    return 1 / beta


def _counters(calibrated: Floats) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """The exported CBPE counters N_c, S_c, T_c of a batch of calibrated probabilities."""
    predicted, top = calibrated.argmax(axis=1), calibrated.max(axis=1)
    n = {c: float((predicted == i).sum()) for i, c in enumerate(LABELS)}
    s = {c: float(top[predicted == i].sum()) for i, c in enumerate(LABELS)}
    t = {c: float(calibrated[:, i].sum()) for i, c in enumerate(LABELS)}
    return n, s, t


def test_estimated_accuracy_is_within_two_points_under_shift() -> None:
    seeds, size = 200, 5_000
    cbpe_errors, raw_errors, bbse_errors, cbpe_label_errors, drops = [], [], [], [], []
    temperatures = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        # Calibration and the reference confusion matrix: a labelled validation sample.
        _, output, label = _population(rng, size)
        temperature = _fit_temperature(output, label)
        temperatures.append(temperature)
        predicted = output.argmax(axis=1)
        joint = {
            (p, a): float(((predicted == i) & (label == j)).mean())
            for i, p in enumerate(LABELS)
            for j, a in enumerate(LABELS)
        }
        weights = bbse_weights(joint, LABELS)
        reference_accuracy = float((predicted == label).mean())

        # Covariate shift: 40% more mass on low-margin inputs; P(y | x) unchanged.
        _, output, label = _population(rng, 4 * size)
        ordered = np.sort(output, axis=1)
        margin = ordered[:, -1] - ordered[:, -2]
        mass = np.where(margin < np.median(margin), 1.4, 1.0)
        chosen = rng.choice(4 * size, size=size, p=mass / mass.sum())
        live_output, live_label = output[chosen], label[chosen]
        realized = float((live_output.argmax(axis=1) == live_label).mean())
        estimate = cbpe(*_counters(_softmax(np.log(live_output) / temperature))).accuracy
        assert estimate is not None
        cbpe_errors.append(estimate - realized)
        raw_errors.append(float(live_output.max(axis=1).mean()) - realized)
        drops.append(reference_accuracy - realized)

        # Pure label shift: the positive class falls 10 points, P(x | y) unchanged.
        shares = np.bincount(label, minlength=3) / len(label)
        target = shares + 0.10 * np.array([shares[0], shares[1], -(1 - shares[2])]) / (
            1 - shares[2]
        )
        mass = (target / shares)[label]
        chosen = rng.choice(4 * size, size=size, p=mass / mass.sum())
        live_output, live_label = output[chosen], label[chosen]
        live_predicted = live_output.argmax(axis=1)
        realized = float((live_predicted == live_label).mean())
        counts = {c: float((live_predicted == i).sum()) for i, c in enumerate(LABELS)}
        bbse_errors.append(bbse_accuracy(weights, counts) - realized)
        estimate = cbpe(*_counters(_softmax(np.log(live_output) / temperature))).accuracy
        assert estimate is not None
        cbpe_label_errors.append(estimate - realized)

    def within(errors: list[float]) -> float:
        return float((np.abs(errors) <= 0.02).mean())

    def summary(errors: list[float]) -> str:
        values = np.array(errors)
        return (
            f"within 2 points {within(errors):.3f}, mean {values.mean():+.4f}, "
            f"sd {values.std():.4f}, max |error| {np.abs(values).max():.4f}"
        )

    report = (
        f"{seeds} seeds, N = {size}; fitted T median {np.median(temperatures):.3f} "
        f"(true 1/0.7 = 1.429); covariate shift lowers accuracy by "
        f"{np.mean(drops):.4f}: CBPE {summary(cbpe_errors)}; uncalibrated mean top probability "
        f"{summary(raw_errors)}; pure label shift: BBSE {summary(bbse_errors)}, "
        f"CBPE {summary(cbpe_label_errors)}"
    )
    assert within(cbpe_errors) >= 0.95, report
    assert within(bbse_errors) >= 0.95, report
