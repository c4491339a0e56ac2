"""Panel thresholds are the alert thresholds of deploy/prometheus/rules/alerts.yaml.

The expected values are read here with a plain regex, independently of dashboards.alerts.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from dashboards.alerts import ALERTS_FILE
from dashboards.queries import panels


def alert_values() -> dict[str, set[float]]:
    """Alert name -> the number of each rule's first comparison (all rules of that name)."""
    document = yaml.safe_load(ALERTS_FILE.read_text(encoding="utf-8"))
    values: dict[str, set[float]] = {}
    for group in document["groups"]:
        for rule in group["rules"]:
            match = re.search(r"(?:[<>]=?|==)\s*([0-9.]+)", rule.get("expr", ""))
            if "alert" in rule and match:
                values.setdefault(rule["alert"], set()).add(float(match.group(1)))
    exprs = " ".join(r.get("expr", "") for g in document["groups"] for r in g["rules"])
    budgets = {float(b) for b in re.findall(r"ratio_rate\w+ / ([0-9.]+) >", exprs)}
    assert len(budgets) == 1
    (budget,) = budgets
    values["budget"] = {budget}
    values["slo"] = {round(1 - budget, 10)}
    # Feedback needed before SentimentLowFeedbackAccuracy judges (its `>= n` condition).
    accuracy = [
        r["expr"]
        for g in document["groups"]
        for r in g["rules"]
        if r.get("alert") == "SentimentLowFeedbackAccuracy"
    ]
    values["feedback_min"] = {float(n) for e in accuracy for n in re.findall(r">= ([0-9.]+)", e)}
    # The drift alerts' significance levels, as their descriptions state them ("threshold
    # p < 1e-4"): the p-value panels draw them (the alerts compare the chi-square with the
    # critical value computed at that level).
    described = " ".join(
        r["annotations"]["description"]
        for g in document["groups"]
        for r in g["rules"]
        if r.get("alert", "").startswith(("SentimentLabelMixDrift", "SentimentConfidenceDrift"))
    )
    values["drift_alpha"] = {
        float(p) for p in re.findall(r"threshold p < ([0-9.e-]+)\)", described)
    }
    values["one"] = {1.0}  # 0/1 series: up, model loaded, config reloaded, store up, Watchdog
    values["zero"] = {0.0}  # error budget left: negative means the SLO is broken
    return values


# (dashboard uid, panel title) -> where each of its threshold lines comes from.
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("sentimon-overview", "API up"): {"one"},
    ("sentimon-overview", "Request rate"): {"SentimentLowThroughput"},
    ("sentimon-overview", "5xx error ratio"): {"budget", "SentimentHighErrorRate"},
    ("sentimon-overview", "4xx error ratio"): {"SentimentHighClientErrorRate"},
    ("sentimon-overview", "p95 latency"): {"SentimentHighLatencyP95"},
    ("sentimon-overview", "p99 latency"): {"SentimentHighLatencyP99"},
    ("sentimon-overview", "Firing alerts"): {"one"},
    ("sentimon-overview", "Model loaded"): {"one"},
    ("sentimon-overview", "Mean confidence"): {
        "SentimentLowConfidence",
        "SentimentConfidenceDegraded",
    },
    ("sentimon-overview", "Feedback agreement"): {"SentimentLowFeedbackAccuracy"},
    ("sentimon-overview", "Host CPU"): {"HostHighCpuUsage"},
    ("sentimon-overview", "Host memory"): {"HostHighMemoryUsage"},
    ("sentimon-overview", "Lowest disk free"): {"HostLowDiskSpace"},
    ("sentimon-overview", "Latency p95 and p99"): {
        "SentimentHighLatencyP95",
        "SentimentHighLatencyP99",
    },
    ("sentimon-overview", "Mean confidence over time"): {
        "SentimentLowConfidence",
        "SentimentConfidenceDegraded",
    },
    ("sentimon-api", "Request rate"): {"SentimentLowThroughput"},
    ("sentimon-api", "5xx ratio"): {"budget", "SentimentHighErrorRate"},
    ("sentimon-api", "4xx ratio"): {"SentimentHighClientErrorRate"},
    ("sentimon-api", "Latency percentiles"): {
        "SentimentHighLatencyP95",
        "SentimentHighLatencyP99",
    },
    ("sentimon-api", "p95 latency by handler"): {"SentimentHighLatencyP95"},
    ("sentimon-api", "p99 latency by handler"): {"SentimentHighLatencyP99"},
    ("sentimon-model", "Mean confidence"): {
        "SentimentLowConfidence",
        "SentimentConfidenceDegraded",
    },
    ("sentimon-model", "Mean confidence by sentiment"): {
        "SentimentLowConfidence",
        "SentimentConfidenceDegraded",
    },
    ("sentimon-model", "Mean confidence over time"): {
        "SentimentLowConfidence",
        "SentimentConfidenceDegraded",
    },
    ("sentimon-model", "Model loaded"): {"one"},
    ("sentimon-drift-feedback", "Label-mix p-value (5m)"): {"drift_alpha"},
    ("sentimon-drift-feedback", "Predictions tested (5m)"): {"SentimentLabelMixDrift"},
    ("sentimon-drift-feedback", "Texts tested (5m)"): {"SentimentTextDrift"},
    ("sentimon-drift-feedback", "Drift p-values (5m)"): {"drift_alpha"},
    ("sentimon-drift-feedback", "Predictions in the estimate (1h)"): {
        "SentimentEstimatedAccuracyDrop"
    },
    ("sentimon-drift-feedback", "Agreement (1h)"): {"SentimentLowFeedbackAccuracy"},
    ("sentimon-drift-feedback", "Agreement (1d)"): {"SentimentLowFeedbackAccuracy"},
    ("sentimon-drift-feedback", "Feedback n (1h)"): {"feedback_min"},
    ("sentimon-drift-feedback", "Feedback n (1d)"): {"feedback_min"},
    ("sentimon-drift-feedback", "Agreement and 95% band over time (1h)"): {
        "SentimentLowFeedbackAccuracy"
    },
    ("sentimon-drift-feedback", "Agreement and 95% band over time (1d)"): {
        "SentimentLowFeedbackAccuracy"
    },
    ("sentimon-drift-feedback", "Feedback count"): {"feedback_min"},
    ("sentimon-drift-feedback", "Store up"): {"one"},
    ("sentimon-drift-feedback", "Store up by instance"): {"one"},
    ("sentimon-server", "CPU utilisation"): {"HostHighCpuUsage"},
    ("sentimon-server", "Memory utilisation"): {"HostHighMemoryUsage"},
    ("sentimon-server", "Disk space free"): {"HostLowDiskSpace"},
    ("sentimon-availability", "Targets up"): {"one"},
    ("sentimon-availability", "Targets up by job"): {"one"},
    ("sentimon-availability", "Availability"): {"slo"},
    ("sentimon-availability", "Availability over the time range"): {"slo"},
    ("sentimon-availability", "Availability over time"): {"slo"},
    ("sentimon-availability", "Error budget left (30 days)"): {"zero"},
    ("sentimon-availability", "Error budget burn rate"): {"SentimentErrorBudgetBurn"},
    ("sentimon-availability", "Watchdog"): {"one"},
    ("sentimon-availability", "Config reloads"): {"one"},
}


def threshold_values(panel: dict[str, Any]) -> set[float]:
    thresholds = panel["fieldConfig"]["defaults"].get("thresholds", {"steps": []})
    return {float(step["value"]) for step in thresholds["steps"] if step["value"] is not None}


def test_alert_values_are_read() -> None:
    values = alert_values()
    assert values["SentimentHighLatencyP95"] == {0.3}
    assert values["SentimentErrorBudgetBurn"] == {14.4, 6.0, 3.0, 1.0}
    assert values["budget"] == {0.01}
    assert values["SentimentLowFeedbackAccuracy"] == {0.8}
    assert values["feedback_min"] == {100.0}
    assert values["SentimentLabelMixDrift"] == {500.0}
    assert values["SentimentTextDrift"] == {500.0}
    assert values["SentimentEstimatedAccuracyDrop"] == {1000.0}
    assert values["drift_alpha"] == {1e-4, 1e-3}


def test_panel_thresholds_equal_the_alert_thresholds(boards: list[dict[str, Any]]) -> None:
    values = alert_values()
    seen = set()
    for board in boards:
        for panel in panels(board):
            key = (board["uid"], panel["title"])
            found = threshold_values(panel)
            if not found:
                assert key not in EXPECTED, f"{key} lost its thresholds"
                continue
            assert key in EXPECTED, f"{key} has thresholds {found} no alert defines"
            expected = set().union(*(values[source] for source in EXPECTED[key]))
            assert found == expected, key
            seen.add(key)
    assert seen == set(EXPECTED)


@pytest.mark.parametrize(
    ("uid", "title", "base", "above"),
    [
        ("sentimon-overview", "p99 latency", "green", "red"),
        ("sentimon-overview", "Lowest disk free", "red", "green"),
        ("sentimon-model", "Mean confidence", "red", "green"),
        ("sentimon-drift-feedback", "Agreement (1d)", "orange", "green"),
        ("sentimon-drift-feedback", "Store up", "red", "green"),
        ("sentimon-drift-feedback", "Drift p-values (5m)", "red", "green"),
        ("sentimon-drift-feedback", "Predictions tested (5m)", "orange", "green"),
        ("sentimon-drift-feedback", "Texts tested (5m)", "orange", "green"),
    ],
)
def test_threshold_colours_point_the_right_way(
    boards: list[dict[str, Any]], uid: str, title: str, base: str, above: str
) -> None:
    board = next(b for b in boards if b["uid"] == uid)
    panel = next(p for p in panels(board) if p["title"] == title)
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert (steps[0]["color"], steps[-1]["color"]) == (base, above)
