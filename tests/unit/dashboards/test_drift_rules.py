"""The drift recording rules and alerts do the arithmetic of `sentimon.drift.stats`.

Every expected number of deploy/prometheus/tests/drift.test.yaml is recomputed here from that
test's own input series with `chi_square`, `promql_p_value`, `psi`, `cbpe`, `bbse_accuracy`,
`text_drift_chi2` and `residual_z`, so the promtool cases (which run the rules) and the Python
functions cannot drift apart; each alert case is checked against the alert's condition computed
the same way; and random counts, references, label sets and text components go through promtool
against the same functions.
"""

from __future__ import annotations

import math
import random
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.alerts import ALERTS_FILE, RECORDING_FILE, ROOT
from sentimon.drift.reference import HISTOGRAM_EDGES, le_string
from sentimon.drift.stats import (
    bbse_accuracy,
    cbpe,
    chi2_isf,
    chi_square,
    merge_bins,
    promql_p_value,
    psi,
    residual_z,
    text_critical_values,
    text_drift_chi2,
)
from tests.unit.dashboards._promtool import PROMTOOL, run_rule_tests
from tests.unit.dashboards.test_feedback_rules import expand, round_to, seconds

DRIFT_TESTS = ROOT / "deploy" / "prometheus" / "tests" / "drift.test.yaml"
GROUP = "sentimon.rules.drift"
WINDOWS = {"5m": 300, "1h": 3600}
LOOKBACK = 300  # an instant selector sees the newest sample of the last 5 minutes
# The histograms tested against the reference: statistic (of sentiment_drift_critical_value)
# -> histogram name (the `histogram` label of sentiment_reference_bucket_share).
HISTOGRAMS = {
    "confidence": "sentiment_prediction_confidence",
    "input_tokens": "sentiment_input_tokens",
}
# statistic -> the metric part of its recording rules.
METRICS = {
    "label_mix": "sentiment_label_mix",
    "confidence": "sentiment_confidence_drift",
    "input_tokens": "sentiment_input_tokens_drift",
}
# Text drift: the reference's text gauges (each recorded as job:<gauge>:max), and the metric
# part of its rules (the residual's z is job:<TEXT>_residual:z5m).
TEXT_REFERENCE = (
    "sentiment_reference_text_n",
    "sentiment_reference_text_residual_mean",
    "sentiment_reference_text_residual_sd",
)
TEXT = "sentiment_text_drift"
MIN_N = 500  # the drift alerts' N gate (5m)
MIN_N_ACCURACY = 1000  # SentimentEstimatedAccuracyDrop's N gate (1h)
ACCURACY_MARGIN = 0.05  # ... below the reference accuracy

Labels = tuple[tuple[str, str], ...]
Values = dict[Labels, float]  # labels (job included) -> value
Rules = dict[str, Values]  # recorded series name -> its series

_SERIES = re.compile(r"(?P<name>[\w:]*)\s*(?:\{(?P<labels>.*)\})?")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
_EXPR = re.compile(r"(?:round\()?(?P<rule>[\w:]+)(?P<selector>\{[^}]*\})?(?:, (?P<to>[0-9.]+)\))?")


def key(**labels: str) -> Labels:
    return tuple(sorted(labels.items()))


# --- the input series and what increase() gives over them -----------------------------------


@dataclass(frozen=True)
class Series:
    name: str
    labels: Mapping[str, str]
    samples: tuple[tuple[int, float], ...]  # (seconds, value), present samples only


def parse_series(text: str) -> tuple[str, dict[str, str]]:
    match = _SERIES.fullmatch(text.strip())
    assert match, text
    return match["name"], dict(_LABEL.findall(match["labels"] or ""))


def case_series(case: Mapping[str, Any]) -> list[Series]:
    step = seconds(case["interval"])
    out = []
    for item in case["input_series"]:
        name, labels = parse_series(item["series"])
        samples = tuple(
            (i * step, v) for i, v in enumerate(expand(item["values"])) if v is not None
        )
        out.append(Series(name, labels, samples))
    return out


def increase(samples: Sequence[tuple[int, float]], at: int, window: int) -> float | None:
    """increase(x[window]) at `at`, where it needs no extrapolation (asserted).

    Counter resets count as in Prometheus. The cases are built so that the result is exact and
    does not depend on whether the window includes its left edge (Prometheus 2) or not
    (Prometheus 3): in each window a counter is constant, or its last sample is at `at` and
    its first sample is 0 or on the window's left edge.
    """
    results: set[float | None] = set()
    for left_open in (False, True):
        inside = [
            (t, v)
            for t, v in samples
            if at - window <= t <= at and not (left_open and t == at - window)
        ]
        if len(inside) < 2:
            results.add(None)
            continue
        total = 0.0
        for (_, before), (_, after) in zip(inside, inside[1:], strict=False):
            total += after - before if after >= before else after
        if total:
            first_t, first_v = inside[0]
            assert inside[-1][0] == at, "increase() would extrapolate to the window's end"
            assert first_t == at - window or first_v == 0, (
                "increase() would extrapolate to the window's start"
            )
        results.add(total)
    assert len(results) == 1, f"the window's left edge changes increase(): {results}"
    return results.pop()


def instant(samples: Sequence[tuple[int, float]], at: int) -> float | None:
    found = [v for t, v in samples if at - LOOKBACK < t <= at]
    return found[-1] if found else None


# --- the rules, in Python ---------------------------------------------------------------------


def wilson_hilferty_z(chi2: float, df: int) -> float:
    """The z the p-value rule transforms chi2 to (stats.wilson_hilferty_sf's first step)."""
    v = 2.0 / (9.0 * df)
    return (math.pow(chi2 / df, 1.0 / 3.0) - (1.0 - v)) / math.sqrt(v)


def normal_tail_t(z: float) -> float:
    """Abramowitz & Stegun 26.2.17's t."""
    return 1.0 / (1.0 + 0.2316419 * abs(z))


class _JobRules:
    """Every series of the drift group for one job at one time, from the input series."""

    def __init__(
        self, series: Sequence[Series], job: str, at: int, windows: Sequence[str] = tuple(WINDOWS)
    ) -> None:
        self.series = [s for s in series if s.labels.get("job") == job]
        self.job = job
        self.at = at
        self.windows = windows
        self.out: Rules = {}

    def put(self, rule: str, value: float, **labels: str) -> None:
        self.out.setdefault(rule, {})[key(job=self.job, **labels)] = value

    def revisions(self, window: int) -> int:
        seen = {
            (s.labels["model"], s.labels["revision"])
            for s in self.series
            if s.name == "sentiment_model_info"
            and any(self.at - window <= t <= self.at for t, _ in s.samples)
        }
        return len(seen)

    def maxed(self, name: str, by: Sequence[str]) -> dict[tuple[str, ...], float]:
        """max by (job, *by) of a gauge; nothing while two revisions serve."""
        found: dict[tuple[str, ...], float] = {}
        if self.revisions(WINDOWS["5m"]) > 1:
            return found
        for s in self.series:
            value = instant(s.samples, self.at) if s.name == name else None
            if value is not None:
                group = tuple(s.labels[label] for label in by)
                found[group] = max(found.get(group, -math.inf), value)
        return found

    def summed(self, name: str, by: Sequence[str], window: int) -> dict[tuple[str, ...], float]:
        """sum by (job, *by) (increase(name[window]))."""
        found: dict[tuple[str, ...], float] = {}
        for s in self.series:
            value = increase(s.samples, self.at, window) if s.name == name else None
            if value is not None:
                group = tuple(s.labels[label] for label in by)
                found[group] = found.get(group, 0.0) + value
        return found

    def drift(
        self,
        metric: str,
        level: Sequence[str],
        w: str,
        counts: Mapping[tuple[str, ...], float],
        reference: Mapping[tuple[str, ...], float],
    ) -> None:
        """The count, N, share, chi-square, z, t, p-value and PSI rules of one statistic."""
        prefix = "job_" + "_".join(level)
        for group, count in counts.items():
            self.put(
                f"{prefix}:{metric}:increase{w}", count, **dict(zip(level, group, strict=True))
            )
        if not counts:
            return
        n = sum(counts.values())
        self.put(f"job:{metric}:n{w}", n)
        if n <= 0:
            return
        for group, count in counts.items():
            self.put(
                f"{prefix}:{metric}:share{w}", count / n, **dict(zip(level, group, strict=True))
            )
        if not reference:
            return
        assert set(counts) == set(reference), "the cases give every reference bin a count"
        bins = sorted(reference)
        observed = [counts[b] for b in bins]
        shares = [reference[b] for b in bins]
        test = chi_square(observed, shares)
        self.put(f"job:{metric}:chi2_{w}", test.statistic)
        z = wilson_hilferty_z(test.statistic, test.df)
        self.put(f"job:{metric}:wilson_hilferty_z{w}", z)
        self.put(f"job:{metric}:normal_tail_t{w}", normal_tail_t(z))
        self.put(f"job:{metric}:pvalue{w}", promql_p_value(test.statistic, test.df))
        self.put(f"job:{metric}:psi{w}", psi(observed, shares))

    def text_drift(self, w: str, reference: Mapping[str, float], components: float | None) -> None:
        """The N, component mean, chi-square, z, t, p-value and residual z rules of text drift."""
        counted = self.summed(f"{TEXT}_texts_total", [], WINDOWS[w])
        if not counted:
            return
        n = counted[()]
        self.put(f"job:{TEXT}:n{w}", n)
        if n <= 0:
            return
        parts = self.summed(f"{TEXT}_component_total", ["component", "part"], WINDOWS[w])
        # The sum of z_j is positive - negative, each part summed over the fleet first.
        means = {
            component: (value - parts[(component, "negative")]) / n
            for (component, part), value in parts.items()
            if part == "positive" and (component, "negative") in parts
        }
        for component, value in means.items():
            self.put(f"job_component:{TEXT}:mean{w}", value, component=component)
        n_reference = reference.get("sentiment_reference_text_n", 0.0)
        if means and n_reference > 0:
            chi2 = text_drift_chi2(list(means.values()), n, n_reference)
            self.put(f"job:{TEXT}:chi2_{w}", chi2)
            if components is not None and components > 0:
                z = wilson_hilferty_z(chi2, int(components))
                self.put(f"job:{TEXT}:wilson_hilferty_z{w}", z)
                self.put(f"job:{TEXT}:normal_tail_t{w}", normal_tail_t(z))
                self.put(f"job:{TEXT}:pvalue{w}", promql_p_value(chi2, int(components)))
        residual = self.summed(f"{TEXT}_residual_total", [], WINDOWS[w])
        mean = reference.get("sentiment_reference_text_residual_mean")
        sd = reference.get("sentiment_reference_text_residual_sd", 0.0)
        if residual and mean is not None and sd > 0 and n_reference > 0:
            self.put(
                f"job:{TEXT}_residual:z{w}",
                residual_z(residual[()] / n, n, mean, sd, n_reference),
            )

    def compute(self) -> Rules:
        for suffix, window in (("", WINDOWS["5m"]), ("1h", WINDOWS["1h"])):
            if revisions := self.revisions(window):
                self.put(f"job:sentiment_model_revisions:count{suffix}", float(revisions))
        shares = {
            g[0]: v for g, v in self.maxed("sentiment_reference_share", ["sentiment"]).items()
        }
        buckets = self.maxed("sentiment_reference_bucket_share", ["histogram", "lower", "upper"])
        critical = self.maxed("sentiment_drift_critical_value", ["statistic", "severity"])
        accuracy = self.maxed("sentiment_reference_accuracy", [])
        weights = {
            g[0]: v for g, v in self.maxed("sentiment_reference_bbse_weight", ["sentiment"]).items()
        }
        for sentiment, value in shares.items():
            self.put("job_sentiment:sentiment_reference_share:max", value, sentiment=sentiment)
        for (histogram, lower, le), value in buckets.items():
            self.put(
                "job_histogram_lower_le:sentiment_reference_bucket_share:max",
                value,
                histogram=histogram,
                lower=lower,
                le=le,
            )
        for (statistic, severity), value in critical.items():
            self.put(
                "job_statistic_severity:sentiment_drift_critical_value:max",
                value,
                statistic=statistic,
                severity=severity,
            )
        for value in accuracy.values():
            self.put("job:sentiment_reference_accuracy:max", value)
        for sentiment, value in weights.items():
            self.put(
                "job_sentiment:sentiment_reference_bbse_weight:max", value, sentiment=sentiment
            )
        text_reference: dict[str, float] = {}
        for gauge in TEXT_REFERENCE:
            for value in self.maxed(gauge, []).values():
                text_reference[gauge] = value
                self.put(f"job:{gauge}:max", value)
        components = self.maxed("sentiment_reference_text_components", []).get(())
        if components is not None:
            self.put(f"job:{TEXT}:df", components)

        references: dict[str, dict[tuple[str, ...], float]] = {
            "label_mix": {(s,): v for s, v in shares.items()}
        }
        for statistic, histogram in HISTOGRAMS.items():
            references[statistic] = {
                (lower, le): v for (h, lower, le), v in buckets.items() if h == histogram
            }
        for statistic, reference in references.items():
            if reference:
                self.put(
                    f"job:{METRICS[statistic]}:df",
                    float(sum(1 for v in reference.values() if v > 0) - 1),
                )

        label_counts: dict[str, dict[str, float]] = {}
        for w in self.windows:
            window = WINDOWS[w]
            counts = self.summed("sentiment_predictions_total", ["sentiment"], window)
            label_counts[w] = {g[0]: v for g, v in counts.items()}
            self.drift("sentiment_label_mix", ["sentiment"], w, counts, references["label_mix"])
            for statistic, histogram in HISTOGRAMS.items():
                cumulative = self.summed(f"{histogram}_bucket", ["le"], window)
                bins: dict[tuple[str, ...], float] = {}
                for lower, le in references[statistic]:
                    if (le,) not in cumulative:
                        continue
                    if lower == "-Inf":
                        bins[(lower, le)] = cumulative[(le,)]
                    elif (lower,) in cumulative:
                        bins[(lower, le)] = cumulative[(le,)] - cumulative[(lower,)]
                self.drift(METRICS[statistic], ["lower", "le"], w, bins, references[statistic])
            self.text_drift(w, text_reference, components)

            correct = {
                g[0]: v
                for g, v in self.summed(
                    "sentiment_estimated_correct_total", ["sentiment"], window
                ).items()
            }
            n = sum(label_counts[w].values())
            if correct and n > 0:
                estimate = cbpe(label_counts[w], correct, {})
                assert estimate.accuracy is not None
                self.put(f"job:sentiment_estimated_accuracy:ratio{w}", estimate.accuracy)
            if w == "1h":
                per_class = {
                    g[0]: v
                    for g, v in self.summed(
                        "sentiment_estimated_class_total", ["sentiment"], window
                    ).items()
                }
                both = set(correct) & set(label_counts[w]) & set(per_class)
                estimate = cbpe(
                    {c: label_counts[w][c] for c in both},
                    {c: correct[c] for c in both},
                    {c: per_class[c] for c in both},
                )
                f1 = {c: v for c, v in estimate.f1.items() if v is not None}
                for sentiment, value in f1.items():
                    self.put(
                        "job_sentiment:sentiment_estimated_f1:ratio1h", value, sentiment=sentiment
                    )
                if f1:
                    self.put("job:sentiment_estimated_f1:macro1h", sum(f1.values()) / len(f1))
                if weights and n > 0:
                    assert set(weights) == set(label_counts[w]), "every class has a weight"
                    self.put(
                        "job:sentiment_bbse_accuracy:ratio1h",
                        bbse_accuracy(weights, label_counts[w]),
                    )
        return self.out


def evaluate(series: Sequence[Series], at: int, windows: Sequence[str] = tuple(WINDOWS)) -> Rules:
    """Every drift recording rule's series at `at` (seconds), for every job in `series`
    (of the windowed rules, those of `windows` only)."""
    rules: Rules = {}
    for job in sorted({s.labels["job"] for s in series}):
        for rule, values in _JobRules(series, job, at, windows).compute().items():
            rules.setdefault(rule, {}).update(values)
    return rules


def drift_rules() -> list[str]:
    document = yaml.safe_load(RECORDING_FILE.read_text(encoding="utf-8"))
    (group,) = [g for g in document["groups"] if g["name"] == GROUP]
    return [rule["record"] for rule in group["rules"]]


# --- the alerts, in Python --------------------------------------------------------------------


@dataclass(frozen=True)
class AlertCheck:
    for_seconds: int
    window: str  # of the statistics it reads
    condition: Callable[[Rules, Labels], bool]
    numbers: Callable[[Rules, Labels], list[str]]  # what the description must quote


def _get(rules: Rules, rule: str, job: Labels, **labels: str) -> float | None:
    return rules.get(rule, {}).get(tuple(sorted((*job, *labels.items()))))


def _drift_alert(statistic: str, severity: str) -> AlertCheck:
    metric = METRICS[statistic]
    critical_rule = "job_statistic_severity:sentiment_drift_critical_value:max"

    def condition(rules: Rules, job: Labels) -> bool:
        chi2 = _get(rules, f"job:{metric}:chi2_5m", job)
        critical = _get(rules, critical_rule, job, statistic=statistic, severity=severity)
        n = _get(rules, f"job:{metric}:n5m", job)
        revisions = _get(rules, "job:sentiment_model_revisions:count", job) or 0
        return (
            chi2 is not None
            and critical is not None
            and n is not None
            and chi2 > critical
            and n >= MIN_N
            and revisions <= 1
        )

    def numbers(rules: Rules, job: Labels) -> list[str]:
        chi2 = _get(rules, f"job:{metric}:chi2_5m", job)
        critical = _get(rules, critical_rule, job, statistic=statistic, severity=severity)
        p = _get(rules, f"job:{metric}:pvalue5m", job)
        n = _get(rules, f"job:{metric}:n5m", job)
        assert None not in (chi2, critical, p, n)
        return [f"chi-square {chi2:.1f} ", f" {critical:.2f} (p = {p:.2g}, ", f"from {n:.0f} "]

    return AlertCheck(120, "5m", condition, numbers)


def _accuracy_condition(rules: Rules, job: Labels) -> bool:
    estimate = _get(rules, "job:sentiment_estimated_accuracy:ratio1h", job)
    reference = _get(rules, "job:sentiment_reference_accuracy:max", job)
    n = _get(rules, "job:sentiment_label_mix:n1h", job)
    revisions = _get(rules, "job:sentiment_model_revisions:count1h", job) or 0
    return (
        estimate is not None
        and reference is not None
        and n is not None
        and estimate < reference - ACCURACY_MARGIN
        and n >= MIN_N_ACCURACY
        and revisions <= 1
    )


def _accuracy_numbers(rules: Rules, job: Labels) -> list[str]:
    estimate = _get(rules, "job:sentiment_estimated_accuracy:ratio1h", job)
    reference = _get(rules, "job:sentiment_reference_accuracy:max", job)
    n = _get(rules, "job:sentiment_label_mix:n1h", job)
    assert estimate is not None and reference is not None and n is not None
    return [f"at {estimate * 100:.4g}%, ", f"against {reference * 100:.4g}% ", f"from {n:.0f} "]


def _text_values(rules: Rules, job: Labels) -> dict[str, float | None]:
    critical_rule = "job_statistic_severity:sentiment_drift_critical_value:max"
    return {
        "chi2": _get(rules, f"job:{TEXT}:chi2_5m", job),
        "df": _get(rules, f"job:{TEXT}:df", job),
        "critical": _get(rules, critical_rule, job, statistic="text", severity="critical"),
        "z": _get(rules, f"job:{TEXT}_residual:z5m", job),
        "critical_z": _get(
            rules, critical_rule, job, statistic="text_residual", severity="critical"
        ),
        "n": _get(rules, f"job:{TEXT}:n5m", job),
    }


def _text_condition(rules: Rules, job: Labels) -> bool:
    """(chi2 > its critical value or |z| > its critical value), N >= 500, one revision."""
    v = _text_values(rules, job)
    chi2, critical, z, critical_z, n = (v[k] for k in ("chi2", "critical", "z", "critical_z", "n"))
    revisions = _get(rules, "job:sentiment_model_revisions:count", job) or 0
    beyond = (chi2 is not None and critical is not None and chi2 > critical) or (
        z is not None and critical_z is not None and abs(z) > critical_z
    )
    return beyond and n is not None and n >= MIN_N and revisions <= 1


def _text_numbers(rules: Rules, job: Labels) -> list[str]:
    v = _text_values(rules, job)
    assert None not in v.values(), v
    return [
        f"chi-square {v['chi2']:.1f} over {v['df']:.0f} components "
        f"(critical value {v['critical']:.2f}), ",
        f"residual z {v['z']:.2f} (critical |z| {v['critical_z']:.2f}), ",
        f"from {v['n']:.0f} texts.",
    ]


ALERTS = {
    "SentimentLabelMixDrift": _drift_alert("label_mix", "critical"),
    "SentimentLabelMixDriftInfo": _drift_alert("label_mix", "info"),
    "SentimentConfidenceDrift": _drift_alert("confidence", "critical"),
    "SentimentInputLengthDrift": _drift_alert("input_tokens", "critical"),
    "SentimentEstimatedAccuracyDrop": AlertCheck(
        1800, "1h", _accuracy_condition, _accuracy_numbers
    ),
    "SentimentTextDrift": AlertCheck(120, "5m", _text_condition, _text_numbers),
}


# --- the promtool cases against the Python --------------------------------------------------


def suite() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DRIFT_TESTS.read_text(encoding="utf-8"))
    return loaded


def promql_cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    cases = []
    for index, case in enumerate(suite()["tests"]):
        for item in case.get("promql_expr_test", []):
            cases.append((f"case {index} {item['expr']} @ {item['eval_time']}", case, item))
    return cases


CASES = promql_cases()


def exp_samples(item: Mapping[str, Any]) -> Values:
    found: Values = {}
    for sample in item.get("exp_samples") or []:
        _, labels = parse_series(sample["labels"])
        found[key(**labels)] = float(sample["value"])
    return found


@pytest.mark.parametrize(("case", "item"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_expected_value_is_what_the_stats_functions_give(
    case: dict[str, Any], item: dict[str, Any]
) -> None:
    match = _EXPR.fullmatch(item["expr"])
    assert match, item["expr"]
    rules = evaluate(case_series(case), seconds(item["eval_time"]))
    selector = dict(_LABEL.findall(match["selector"] or ""))
    want = {
        labels: value
        for labels, value in rules.get(match["rule"], {}).items()
        if selector.items() <= dict(labels).items()
    }
    if match["to"]:
        want = {labels: round_to(value, float(match["to"])) for labels, value in want.items()}
    assert exp_samples(item) == want


def test_every_drift_rule_is_checked_with_values_and_absent() -> None:
    rules = drift_rules()
    with_values: set[str] = set()
    absent: set[str] = set()
    for _, _, item in CASES:
        match = _EXPR.fullmatch(item["expr"])
        assert match
        (with_values if item.get("exp_samples") else absent).add(match["rule"])
    assert with_values == set(rules)
    # Where a window has no predictions every share, statistic and estimate is absent (not 0
    # or NaN), and while two revisions serve so is every reference-derived series.
    without_n = {
        r
        for r in rules
        if r.endswith("5m") and re.search(r":(share|chi2_|wilson|normal|pvalue|psi|ratio)", r)
    }
    assert without_n <= absent, without_n - absent
    assert {
        "job_sentiment:sentiment_reference_share:max",
        "job:sentiment_label_mix:chi2_5m",
        "job:sentiment_bbse_accuracy:ratio1h",
        f"job_component:{TEXT}:mean5m",
        f"job:{TEXT}_residual:z5m",
        f"job:{TEXT}:df",
        "job:sentiment_reference_text_n:max",
    } <= absent


def test_the_alert_cases_agree_with_the_stats_functions() -> None:
    """An alert fires exactly for the jobs whose condition held at every evaluation over its
    `for:`; its description quotes the statistic, the threshold, p or the reference, and N."""
    checked: set[str] = set()
    data = suite()
    step = seconds(data["evaluation_interval"])
    for case in data["tests"]:
        series = case_series(case)
        jobs = sorted({s.labels["job"] for s in series})
        for item in case.get("alert_rule_test", []):
            name = item["alertname"]
            check = ALERTS[name]
            at = seconds(item["eval_time"])
            times = range(at - check.for_seconds, at + 1, step)
            history = {t: evaluate(series, t, [check.window]) for t in times}
            firing = {
                job for job in jobs if all(check.condition(history[t], key(job=job)) for t in times)
            }
            alerts = item.get("exp_alerts") or []
            assert {a["exp_labels"]["job"] for a in alerts} == firing, (name, at)
            for alert in alerts:
                description = alert["exp_annotations"]["description"]
                for number in check.numbers(history[at], key(job=alert["exp_labels"]["job"])):
                    assert number in description, (number, description)
            checked.add(name)
    assert checked == set(ALERTS)


def test_the_alerts_read_the_exported_critical_values_and_the_gates() -> None:
    text = " ".join(ALERTS_FILE.read_text(encoding="utf-8").split())
    for statistic, metric in METRICS.items():
        assert (
            f"job:{metric}:chi2_5m > on (job) job_statistic_severity:sentiment_drift_critical_value"
            f':max{{statistic="{statistic}", severity="critical"}} '
            f"and on (job) job:{metric}:n5m >= {MIN_N} "
            "unless on (job) job:sentiment_model_revisions:count > 1"
        ) in text
    critical = "job_statistic_severity:sentiment_drift_critical_value:max"
    assert (
        f"( job:{TEXT}:chi2_5m > on (job) "
        f'{critical}{{statistic="text", severity="critical"}} '
        f"or on (job) abs(job:{TEXT}_residual:z5m) > on (job) "
        f'{critical}{{statistic="text_residual", severity="critical"}} ) '
        f"and on (job) job:{TEXT}:n5m >= {MIN_N} "
        "unless on (job) job:sentiment_model_revisions:count > 1"
    ) in text
    assert (
        "job:sentiment_estimated_accuracy:ratio1h < on (job) "
        f"(job:sentiment_reference_accuracy:max - {ACCURACY_MARGIN}) "
        f"and on (job) job:sentiment_label_mix:n1h >= {MIN_N_ACCURACY} "
        "unless on (job) job:sentiment_model_revisions:count1h > 1"
    ) in text


def test_increase_counts_resets_and_refuses_extrapolation() -> None:
    restart = [(0, 0.0), (60, 40.0), (120, 0.0), (180, 25.0)]
    assert increase(restart, 180, 300) == 65
    assert increase(restart, 180, 120) == 25  # 40 on the edge, then 0 and 25
    assert increase([(0, 5.0), (60, 5.0)], 60, 300) == 0
    with pytest.raises(AssertionError, match="extrapolate"):
        increase([(0, 5.0), (60, 9.0)], 60, 300)


def test_the_critical_values_are_chi2_isf() -> None:
    """The cases' critical-value gauges are what the service exports: chi2_isf of the alpha
    for the df of the same replica's reference, to 4 decimals; for text drift
    `text_critical_values` of the alpha and the replica's components (chi-square, |z|)."""
    alphas = {"critical": 1e-4, "info": 1e-3}
    text_tests = {"text": 0, "text_residual": 1}
    checked = 0
    for case in suite()["tests"]:
        series = case_series(case)
        for s in series:
            if s.name != "sentiment_drift_critical_value":
                continue
            replica = [
                x
                for x in series
                if (x.labels.get("job"), x.labels.get("instance"))
                == (s.labels["job"], s.labels["instance"])
            ]
            statistic = s.labels["statistic"]
            if statistic in text_tests:
                (components,) = [
                    x.samples[0][1]
                    for x in replica
                    if x.name == "sentiment_reference_text_components"
                ]
                value = text_critical_values(alphas[s.labels["severity"]], int(components))
                assert s.samples[0][1] == round(value[text_tests[statistic]], 4), s
                checked += 1
                continue
            shares = [
                x.samples[0][1]
                for x in replica
                if (statistic == "label_mix" and x.name == "sentiment_reference_share")
                or (
                    x.name == "sentiment_reference_bucket_share"
                    and x.labels["histogram"] == HISTOGRAMS.get(statistic)
                )
            ]
            df = sum(1 for v in shares if v > 0) - 1
            assert s.samples[0][1] == round(chi2_isf(alphas[s.labels["severity"]], df), 4), s
            checked += 1
    assert checked


# --- random counts through promtool -----------------------------------------------------------

LABEL_SETS = [["negative", "neutral", "positive"], ["bad", "good"], ["1", "2", "3", "4", "5"]]
# The exported histograms' `le` strings, as prometheus_client writes them.
EDGES = {name: [le_string(e) for e in edges] for name, edges in HISTOGRAM_EDGES.items()}


def _series(name: str, labels: Mapping[str, str], values: str) -> dict[str, str]:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _random_shares(rng: random.Random, size: int) -> list[float]:
    # Squared uniforms: several shares under 2%, so bins merge.
    raw = [rng.random() ** 3 for _ in range(size)]
    total = sum(raw)
    return [x / total for x in raw]


def _random_job(
    rng: random.Random, job: str, revisions: int = 1, components: int | None = None
) -> list[dict[str, str]]:
    """A reference and two replicas' counters, all created at 0 and moved once at 2m; with
    `components`, a text section of that many components and its counters too."""
    labels = rng.choice(LABEL_SETS)
    shares = _random_shares(rng, len(labels))
    if len(labels) > 2 and rng.random() < 0.3:
        shares[rng.randrange(len(labels))] = 0.0  # a class the reference never predicted
    shares = [round(s / sum(shares), 6) for s in shares]
    out = []
    bins = {}
    for histogram, edges in EDGES.items():
        bucket = _random_shares(rng, len(edges))
        bins[histogram] = [
            (
                "-Inf" if start == 0 else edges[start - 1],
                edges[stop - 1],
                round(sum(bucket[start:stop]), 6),
            )
            for start, stop in merge_bins(bucket)
        ]
    weights = {label: round(rng.uniform(-0.5, 1.5), 6) for label in labels}
    zero = job.endswith("idle")
    for index, pod in enumerate(("pod-a", "pod-b")):
        target = {"job": job, "instance": pod}
        gauge = "1x5"
        revision = f"r{min(index, revisions - 1)}"
        info = {"model": "m", "revision": revision, "backend": "onnx", "int8_recipe": "none"}
        out.append(
            _series("sentiment_model_info", {**target, **info, "int8_kernel": "none"}, gauge)
        )
        for label, share in zip(labels, shares, strict=True):
            out.append(
                _series("sentiment_reference_share", {**target, "sentiment": label}, f"{share}x5")
            )
            out.append(
                _series(
                    "sentiment_reference_bbse_weight",
                    {**target, "sentiment": label},
                    f"{weights[label]}x5",
                )
            )
        out.append(_series("sentiment_reference_accuracy", target, "0.8x5"))
        for histogram, merged in bins.items():
            for lower, le, share in merged:
                labels_ = {**target, "histogram": histogram, "lower": lower, "upper": le}
                out.append(_series("sentiment_reference_bucket_share", labels_, f"{share}x5"))

        def counter(value: float) -> str:
            return f"0 0 {0 if zero else value!r}x3"

        for label in labels:
            n = 0
            for endpoint in ("/predict", "/predict/batch"):
                count = rng.choice([0, rng.randint(1, 40), rng.randint(40, 900)])
                n += count
                out.append(
                    _series(
                        "sentiment_predictions_total",
                        {**target, "sentiment": label, "endpoint": endpoint},
                        counter(count),
                    )
                )
            correct = round(n * rng.uniform(0.3, 1.0), 3)
            out.append(
                _series(
                    "sentiment_estimated_correct_total",
                    {**target, "sentiment": label},
                    counter(correct),
                )
            )
            out.append(
                _series(
                    "sentiment_estimated_class_total",
                    {**target, "sentiment": label},
                    counter(round(rng.uniform(0, 900), 3)),
                )
            )
            cumulative = 0
            for le in EDGES["sentiment_prediction_confidence"]:
                cumulative += rng.choice([0, rng.randint(0, 30), rng.randint(0, 300)])
                out.append(
                    _series(
                        "sentiment_prediction_confidence_bucket",
                        {**target, "sentiment": label, "le": le},
                        counter(cumulative),
                    )
                )
        cumulative = 0
        for le in EDGES["sentiment_input_tokens"]:
            cumulative += rng.choice([0, rng.randint(0, 30), rng.randint(0, 300)])
            out.append(
                _series("sentiment_input_tokens_bucket", {**target, "le": le}, counter(cumulative))
            )
    if components is not None:
        # Its own generator: the other series stay those of the seed alone.
        out += _random_text(random.Random(f"text-{job}"), job, components, zero)
    return out


def _random_text(rng: random.Random, job: str, components: int, zero: bool) -> list[dict[str, str]]:
    """A text section (n_ref, k, residual mean and sd) and two replicas' text counters:
    per component the sums of max(z, 0) and max(-z, 0), shifted at random, and the residual."""
    n_reference = rng.randint(50, 3000)
    mean = round(rng.uniform(0.5, 5.0), 6)
    sd = round(rng.uniform(0.05, 1.0), 6)
    out = []
    for pod in ("pod-a", "pod-b"):
        target = {"job": job, "instance": pod}
        for name, value in (
            ("sentiment_reference_text_n", n_reference),
            ("sentiment_reference_text_components", components),
            ("sentiment_reference_text_residual_mean", mean),
            ("sentiment_reference_text_residual_sd", sd),
        ):
            out.append(_series(name, target, f"{value}x5"))
        texts = 0 if zero else rng.choice([0, rng.randint(1, 40), rng.randint(40, 900)])

        def counter(value: float) -> str:
            return f"0 0 {value!r}x3"

        out.append(_series(f"{TEXT}_texts_total", target, counter(texts)))
        for component in range(components):
            for part in ("positive", "negative"):
                total = round(texts * rng.uniform(0.0, 0.8), 3)
                labels = {**target, "component": f"{component:02d}", "part": part}
                out.append(_series(f"{TEXT}_component_total", labels, counter(total)))
        residual = round(texts * mean * rng.uniform(0.8, 1.2), 3)
        out.append(_series(f"{TEXT}_residual_total", target, counter(residual)))
    return out


def _checks(expected: Rules, jobs: Sequence[str], at: str) -> list[dict[str, Any]]:
    """Each rule's series, per job: how many, and each value to 1e-9 (relative for p-values)."""
    checks: list[dict[str, Any]] = []
    for rule in drift_rules():
        for job in jobs:
            found = {k: v for k, v in expected.get(rule, {}).items() if ("job", job) in k}
            selector = f'{rule}{{job="{job}"}}'
            if not found:
                checks.append({"expr": selector, "eval_time": at, "exp_samples": []})
                continue
            checks.append(
                {
                    "expr": f"count({selector})",
                    "eval_time": at,
                    "exp_samples": [{"labels": "{}", "value": len(found)}],
                }
            )
            for labels, value in found.items():
                inner = ", ".join(f'{k}="{v}"' for k, v in labels)
                absolute = 0.0 if ":pvalue" in rule else 1e-12
                tolerance = 1e-9 * abs(value) + absolute
                checks.append(
                    {
                        "expr": f"count(abs({rule}{{{inner}}} - ({value!r})) <= {tolerance!r})",
                        "eval_time": at,
                        "exp_samples": [{"labels": "{}", "value": 1}],
                    }
                )
    return checks


@pytest.mark.slow
@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
def test_random_counts_through_promtool(tmp_path: Path) -> None:
    """Rules evaluated by promtool equal the stats functions to 1e-9 (not only after rounding),
    for 2, 3 and 5 labels (df 1 and 4 take the Wilson–Hilferty branch), random references
    (merged bins, a class with share 0), an idle job (N = 0) and two revisions serving; text
    drift with 1, 2 (the exact p-value), 3 and 32 components, and a job without it."""
    rng = random.Random(20261201)
    jobs = [f"job-{i}" for i in range(10)] + ["job-idle", "job-canary"]
    # Text components per job; job-0's reference has no text section.
    components = [None, 1, 2, 3, 32, 2, 3, 32, 1, 32, 32, 3]
    series: list[dict[str, str]] = []
    for job, k in zip(jobs, components, strict=True):
        series += _random_job(rng, job, revisions=2 if job == "job-canary" else 1, components=k)
    case = {"interval": "1m", "input_series": series}
    expected = evaluate(case_series(case), seconds("5m"))
    p_values = {k: len(v) for k, v in expected.items() if k.endswith(":pvalue5m")}
    assert p_values.pop(f"job:{TEXT}:pvalue5m") == len(jobs) - 3
    assert set(p_values.values()) == {len(jobs) - 2}
    case["promql_expr_test"] = _checks(expected, jobs, "5m")
    shutil.copy(RECORDING_FILE, tmp_path / "recording.yaml")
    suite = {"rule_files": ["recording.yaml"], "evaluation_interval": "1m", "tests": [case]}
    run_rule_tests(tmp_path, suite)
