"""The feedback recording rules do the arithmetic of `sentimon.store.stats`.

Every expected number of deploy/prometheus/tests/feedback.test.yaml is recomputed here from
that test's own input series with `scores()`, so the promtool cases (which run the rules) and
the Python function cannot drift apart; and random confusion matrices go through promtool
against `scores()` too.
"""

from __future__ import annotations

import math
import random
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.alerts import ALERTS_FILE, RECORDING_FILE, ROOT
from sentimon.store.stats import UNKNOWN, FeedbackScores, scores
from tests.unit.dashboards._promtool import PROMTOOL, run_rule_tests

FEEDBACK_TESTS = ROOT / "deploy" / "prometheus" / "tests" / "feedback.test.yaml"
GROUP = "sentimon.rules.feedback"
WINDOWS = {"1h": 3600, "1d": 86400}

Counts = dict[tuple[str, str], float]
Expected = dict[str, float]  # sentiment ("" for job-level series) -> value

_RULE = re.compile(
    r"(?P<level>job|job_sentiment):sentiment_feedback(?:_(?P<what>[a-z0-9]+))?"
    r":(?P<op>[a-z0-9_]+?)(?P<window>1h|1d)"
)
_ROUNDED = re.compile(r"round\((?P<rule>[\w:]+), (?P<to>[0-9.]+)\)")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
_DURATION = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# Rule (level, what, operation) -> the field of FeedbackScores it records.
JOB_FIELDS: dict[tuple[str | None, str], Callable[[FeedbackScores], float | None]] = {
    (None, "increase"): lambda s: s.n,
    ("correct", "increase"): lambda s: s.correct,
    ("agreement", "ratio"): lambda s: s.agreement,
    ("agreement", "wilson95_lower"): lambda s: s.lower95,
    ("agreement", "wilson95_upper"): lambda s: s.upper95,
    ("agreement", "wilson99_upper"): lambda s: s.upper99_one_sided,
    ("f1", "macro"): lambda s: s.macro_f1,
}
CLASS_FIELDS = {
    ("predicted", "increase"): "predicted",
    ("actual", "increase"): "actual",
    ("correct", "increase"): "true_positives",
    ("precision", "ratio"): "precision",
    ("recall", "ratio"): "recall",
    ("f1", "ratio"): "f1",
}


def round_to(value: float, to: float) -> float:
    """PromQL's round(value, to), float for float."""
    inverse = 1 / to
    return math.floor(value * inverse + 0.5) / inverse


def expected(counts: Counts, rule: str) -> Expected:
    """What `rule` records for these counts, by `scores()`; absent values are left out."""
    match = _RULE.fullmatch(rule)
    if match is None:
        raise ValueError(f"not a feedback rule: {rule}")
    key = (match["what"], match["op"])
    result = scores({cell: round(n) for cell, n in counts.items()})
    if match["level"] == "job":
        value = JOB_FIELDS[key](result)
        return {} if value is None else {"": float(value)}
    found = {}
    for label, cls in result.classes.items():
        value = getattr(cls, CLASS_FIELDS[key])
        if value is not None:
            found[label] = float(value)
    return found


def feedback_rules() -> list[str]:
    document = yaml.safe_load(RECORDING_FILE.read_text(encoding="utf-8"))
    (group,) = [g for g in document["groups"] if g["name"] == GROUP]
    return [rule["record"] for rule in group["rules"]]


def seconds(text: str) -> int:
    parts = _DURATION.findall(text)
    assert parts and "".join(n + u for n, u in parts) == text, text
    return sum(int(n) * _SECONDS[u] for n, u in parts)


def expand(values: str) -> list[float | None]:
    """promtool's series notation: `0 40x3` -> 0 40 40 40 40; `_x2` -> two missing samples."""
    out: list[float | None] = []
    for token in values.split():
        match = re.fullmatch(r"(_|-?[0-9.]+)(?:([+-][0-9.]+)?x(\d+))?", token)
        assert match, token
        start, step, times = match.groups()
        if start == "_":
            out += [None] * (int(times) if times else 1)
            continue
        if times is None:
            out.append(float(start))
            continue
        delta = float(step or 0)
        out += [float(start) + i * delta for i in range(int(times) + 1)]
    return out


def window_counts(suite_case: Mapping[str, Any], at: int, window: int) -> Counts:
    """Each confusion-matrix cell's increase over (at - window, at], summed over replicas.

    The cases are built so that increase() is exact there: each counter's first sample in the
    window is 0, or it does not change inside the window.
    """
    step = seconds(suite_case["interval"])
    counts: Counts = {}
    for item in suite_case["input_series"]:
        labels = dict(_LABEL.findall(item["series"]))
        if not item["series"].startswith("sentiment_feedback_total{"):
            continue
        samples = expand(item["values"])
        present = [(i * step, v) for i, v in enumerate(samples) if v is not None and i * step <= at]
        inside = [v for t, v in present if t >= at - window]
        increase = inside[-1] - inside[0] if inside and present[-1][0] == at else 0.0
        cell = (labels["predicted"], labels["actual"])
        counts[cell] = counts.get(cell, 0.0) + increase
    return counts


def exp_samples(item: Mapping[str, Any]) -> Expected:
    found = {}
    for sample in item.get("exp_samples") or []:
        labels = dict(_LABEL.findall(sample["labels"]))
        assert labels.pop("job") == "sentimon"
        found[labels.pop("sentiment", "")] = float(sample["value"])
        assert not labels, sample
    return found


def promql_cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    suite = yaml.safe_load(FEEDBACK_TESTS.read_text(encoding="utf-8"))
    cases = []
    for index, case in enumerate(suite["tests"]):
        for item in case.get("promql_expr_test", []):
            cases.append((f"case {index} {item['expr']} @ {item['eval_time']}", case, item))
    return cases


CASES = promql_cases()


@pytest.mark.parametrize(("case", "item"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_expected_value_is_what_scores_gives(
    case: dict[str, Any], item: dict[str, Any]
) -> None:
    expr = item["expr"]
    rounded = _ROUNDED.fullmatch(expr)
    rule = rounded["rule"] if rounded else expr
    window = WINDOWS[rule[-2:]]
    counts = window_counts(case, seconds(item["eval_time"]), window)
    want = expected(counts, rule)
    if rounded:
        want = {k: round_to(v, float(rounded["to"])) for k, v in want.items()}
    assert exp_samples(item) == want


def test_every_feedback_rule_is_checked_with_values_and_absent() -> None:
    rules = feedback_rules()
    assert len(rules) == 26
    with_values: set[str] = set()
    absent: set[str] = set()
    for _, _, item in CASES:
        rounded = _ROUNDED.fullmatch(item["expr"])
        rule = rounded["rule"] if rounded else item["expr"]
        (with_values if item.get("exp_samples") else absent).add(rule)
    assert with_values == set(rules)
    # With no feedback, every ratio and bound is absent (not NaN); counts stay, at 0.
    ratios = {r for r in rules if ":increase" not in r and r.endswith("1h")}
    assert ratios <= absent


def test_the_alert_cases_agree_with_scores() -> None:
    """Fires when scores() puts the 99% upper bound under 0.80 with n >= 100 at the evaluation
    and `for: 1h` before it (the cases' counts only rise); the description quotes both."""
    suite = yaml.safe_load(FEEDBACK_TESTS.read_text(encoding="utf-8"))

    def condition(case: Mapping[str, Any], at: int) -> tuple[bool, FeedbackScores]:
        counts = window_counts(case, at, WINDOWS["1d"])
        result = scores({cell: round(n) for cell, n in counts.items()})
        bound = result.upper99_one_sided
        return bound is not None and bound < 0.8 and result.n >= 100, result

    checked = 0
    for case in suite["tests"]:
        for item in case.get("alert_rule_test", []):
            if item["alertname"] != "SentimentLowFeedbackAccuracy":
                continue
            at = seconds(item["eval_time"])
            now, result = condition(case, at)
            fires = now and condition(case, at - 3600)[0]
            assert bool(item["exp_alerts"]) == fires, item
            for alert in item["exp_alerts"]:
                description = alert["exp_annotations"]["description"]
                assert result.upper99_one_sided is not None
                assert f"at most {result.upper99_one_sided * 100:.4g}%" in description
                assert f"from {result.n} feedbacks" in description
            checked += 1
    assert checked >= 4


def test_the_alert_reads_the_one_sided_99_bound_and_the_table_target() -> None:
    text = ALERTS_FILE.read_text(encoding="utf-8")
    assert "job:sentiment_feedback_agreement:wilson99_upper1d < 0.8\n" in text
    assert "and on (job) job:sentiment_feedback:increase1d >= 100" in text
    assert re.search(r"#   SentimentLowFeedbackAccuracy +warning [^\n]*\n#[^\n]*< 0\.80 ", text)


@pytest.mark.parametrize(
    ("values", "samples"),
    [
        ("0 40x3", [0, 40, 40, 40, 40]),
        ("_x2 0 5", [None, None, 0, 5]),
        ("0+2x2", [0, 2, 4]),
        ("1", [1]),
    ],
)
def test_expand_follows_the_promtool_notation(values: str, samples: list[float | None]) -> None:
    assert expand(values) == samples


# --- random confusion matrices through promtool -----------------------------------------------


def _random_counts(rng: random.Random, labels: list[str]) -> dict[tuple[str, str], int]:
    counts = {}
    for predicted in labels:
        for actual in [*labels, UNKNOWN]:
            # Many zeros: classes without feedback and empty rows must work too.
            counts[(predicted, actual)] = rng.choice([0, 0, rng.randint(1, 9), rng.randint(9, 500)])
    return counts


def _selector(sentiment: str = "", matcher: str = "=") -> str:
    extra = f', sentiment{matcher}"{sentiment}"' if sentiment else ""
    return f'{{job="sentimon"{extra}}}'


def _promtool_case(labels: list[str], counts: dict[tuple[str, str], int]) -> dict[str, Any]:
    series = []
    for (predicted, actual), n in counts.items():
        correct = "true" if predicted == actual else "false"
        cell = f'predicted="{predicted}", actual="{actual}", correct="{correct}"'
        # Split over two replicas: the rules must sum before dividing.
        for instance, part in (("pod-a", n // 3), ("pod-b", n - n // 3)):
            series.append(
                {
                    "series": f'sentiment_feedback_total{{job="sentimon", instance="{instance}", '
                    f"{cell}}}",
                    "values": f"0 {part}x10",
                }
            )
    checks: list[dict[str, Any]] = []
    for rule in feedback_rules():
        want = expected({cell: float(n) for cell, n in counts.items()}, rule)
        for label, value in want.items():
            checks.append(
                {
                    "expr": f"abs({rule}{_selector(label)} - {value!r}) < bool 1e-9",
                    "eval_time": "5m",
                    "exp_samples": [{"labels": _selector(label), "value": 1}],
                }
            )
        if rule.startswith("job_sentiment:"):
            missing = sorted(set(labels) - set(want))
            if missing:
                selector = _selector("|".join(missing), "=~")
                checks.append({"expr": rule + selector, "eval_time": "5m", "exp_samples": []})
        elif not want:
            checks.append({"expr": rule, "eval_time": "5m", "exp_samples": []})
    return {"interval": "1m", "input_series": series, "promql_expr_test": checks}


@pytest.mark.slow
@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
def test_random_confusion_matrices_through_promtool(tmp_path: Path) -> None:
    """Rules evaluated by promtool equal scores() to 1e-9 (not only after rounding)."""
    rng = random.Random(20240611)
    label_sets = [["negative", "neutral", "positive"], ["bad", "good"], ["1", "2", "3", "4", "5"]]
    tests = []
    for _ in range(12):
        labels = rng.choice(label_sets)
        tests.append(_promtool_case(labels, _random_counts(rng, labels)))
    # And no feedback at all: every ratio and bound absent.
    labels = label_sets[0]
    zeros = {(p, a): 0 for p in labels for a in [*labels, UNKNOWN]}
    tests.append(_promtool_case(labels, zeros))
    shutil.copy(RECORDING_FILE, tmp_path / "recording.yaml")
    suite = {"rule_files": ["recording.yaml"], "evaluation_interval": "1m", "tests": tests}
    run_rule_tests(tmp_path, suite)
