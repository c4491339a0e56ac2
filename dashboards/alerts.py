"""Alert thresholds and runbook links, read from the Prometheus alert rules.

Panels colour their values at the same lines the alerts fire at. The numbers live in one place,
`deploy/prometheus/rules/alerts.yaml`; this module reads each alert's threshold from its PromQL
(the first comparison with a number, e.g. `... > 0.3 and on (job) ... > 0.2` gives 0.3), so
changing a threshold there and running `python -m dashboards` moves the panels too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERTS_FILE = ROOT / "deploy" / "prometheus" / "rules" / "alerts.yaml"
RECORDING_FILE = ROOT / "deploy" / "prometheus" / "rules" / "recording.yaml"

# Alerts on a drift statistic: each compares with a critical-value series, so its first
# comparison with a number is the N it needs.
DRIFT_ALERTS = (
    "SentimentLabelMixDrift",
    "SentimentLabelMixDriftInfo",
    "SentimentConfidenceDrift",
    "SentimentInputLengthDrift",
    "SentimentTextDrift",
)

_COMPARISONS = frozenset({">", "<", ">=", "<=", "==", "!="})


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    labels: dict[str, str]
    runbook_url: str

    @property
    def threshold(self) -> float:
        """The number of the expression's first comparison (left to right)."""
        found = self.comparisons
        if not found:
            raise ValueError(f"alert {self.name} has no comparison with a number: {self.expr!r}")
        return found[0]

    @property
    def comparisons(self) -> list[float]:
        """The numbers of all comparisons, left to right (the threshold, then conditions)."""
        return _find(self.expr, _COMPARISONS, first=False)

    @property
    def subtrahend(self) -> float:
        """The number the expression's first subtraction takes away (a margin below a line)."""
        found = _find(self.expr, frozenset({"-"}))
        if not found:
            raise ValueError(f"alert {self.name} subtracts no number: {self.expr!r}")
        return found[0]

    @property
    def divisor(self) -> float:
        """The number the expression's first division divides by (the SLO's error budget)."""
        found = _find(self.expr, frozenset({"/"}))
        if not found:
            raise ValueError(f"alert {self.name} divides by no number: {self.expr!r}")
        return found[0]

    def matcher(self, metric: str, label: str) -> str:
        """Value of the `label` matcher on the first selector of `metric` in the expression."""
        found: list[str] = []

        def visit(node: promql_parser.Expr) -> bool:
            if isinstance(node, promql_parser.VectorSelector) and node.name == metric:
                found.extend(m.value for m in node.matchers.matchers if m.name == label)
                return not found
            return True

        promql_parser.walk(promql_parser.parse(self.expr), visit)
        if not found:
            raise ValueError(f"alert {self.name} selects no {metric}{{{label}...}}")
        return found[0]


def _find(expr: str, ops: frozenset[str], first: bool = True) -> list[float]:
    """Right-hand numbers of the binary operations in `ops`, in pre-order (left first)."""
    found: list[float] = []

    def visit(node: promql_parser.Expr) -> bool:
        if (
            isinstance(node, promql_parser.BinaryExpr)
            and str(node.op) in ops
            and isinstance(node.rhs, promql_parser.NumberLiteral)
        ):
            found.append(node.rhs.val)
            return not first
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def load_alerts(path: Path = ALERTS_FILE) -> list[Alert]:
    """Every alerting rule of a rules file, in file order."""
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    alerts = []
    for group in document["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                alerts.append(
                    Alert(
                        name=rule["alert"],
                        expr=rule["expr"],
                        labels=dict(rule.get("labels", {})),
                        runbook_url=rule.get("annotations", {}).get("runbook_url", ""),
                    )
                )
    return alerts


def load_recording_rules(path: Path = RECORDING_FILE) -> dict[str, str]:
    """Recorded series name -> its expression."""
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {
        rule["record"]: rule["expr"]
        for group in document["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


@dataclass(frozen=True)
class Thresholds:
    """The alert lines the panels draw, all in base units (seconds, ratios, req/s)."""

    error_ratio: float  # SentimentHighErrorRate: 5xx share
    client_error_ratio: float  # SentimentHighClientErrorRate: 4xx share
    latency_p95: float  # SentimentHighLatencyP95, seconds
    latency_p99: float  # SentimentHighLatencyP99, seconds
    low_throughput: float  # SentimentLowThroughput, req/s
    usual_throughput: float  # SentimentLowThroughput: only after an hour above this, req/s
    confidence_low: float  # SentimentLowConfidence (warning)
    confidence_degraded: float  # SentimentConfidenceDegraded (info)
    cpu: float  # HostHighCpuUsage, busy share
    memory: float  # HostHighMemoryUsage, used share
    disk_free: float  # HostLowDiskSpace, free share
    disk_fstype_exclude: str  # HostLowDiskSpace: regex of filesystem types it ignores
    accuracy_target: float  # SentimentLowFeedbackAccuracy: target feedback agreement
    feedback_min: float  # SentimentLowFeedbackAccuracy: feedbacks needed in its window
    drift_n_min: float  # the drift alerts (label mix, confidence, length, text): N in 5m
    accuracy_drop_n_min: float  # SentimentEstimatedAccuracyDrop: predictions needed in 1h
    accuracy_drop_margin: float  # SentimentEstimatedAccuracyDrop: fires this far below reference
    error_budget: float  # 1 - SLO: the burn-rate alerts divide the 5xx ratio by it
    burn_rates: dict[str, float]  # long window -> burn-rate factor of SentimentErrorBudgetBurn
    runbooks: dict[str, str]  # alert name -> runbook URL

    @property
    def slo(self) -> float:
        """Target share of requests that are not 5xx (0.99)."""
        return round(1 - self.error_budget, 10)


def load_thresholds(path: Path = ALERTS_FILE) -> Thresholds:
    alerts = load_alerts(path)
    by_name = {alert.name: alert for alert in alerts}

    def get(name: str) -> Alert:
        if name not in by_name:
            raise ValueError(f"{path} has no alert {name}")
        return by_name[name]

    burns = [alert for alert in alerts if alert.name == "SentimentErrorBudgetBurn"]
    if not burns:
        raise ValueError(f"{path} has no SentimentErrorBudgetBurn alerts")
    # The drift alerts gate on N first (`... and on (job) n5m >= 500`): one line on the panels.
    gates = {name: get(name).threshold for name in DRIFT_ALERTS}
    if len(set(gates.values())) != 1:
        raise ValueError(f"the drift alerts gate on different N: {gates}")
    budgets = {alert.divisor for alert in burns}
    if len(budgets) != 1:
        raise ValueError(f"SentimentErrorBudgetBurn alerts use different budgets: {budgets}")
    return Thresholds(
        error_ratio=get("SentimentHighErrorRate").threshold,
        client_error_ratio=get("SentimentHighClientErrorRate").threshold,
        latency_p95=get("SentimentHighLatencyP95").threshold,
        latency_p99=get("SentimentHighLatencyP99").threshold,
        low_throughput=get("SentimentLowThroughput").threshold,
        usual_throughput=get("SentimentLowThroughput").comparisons[1],
        confidence_low=get("SentimentLowConfidence").threshold,
        confidence_degraded=get("SentimentConfidenceDegraded").threshold,
        cpu=get("HostHighCpuUsage").threshold,
        memory=get("HostHighMemoryUsage").threshold,
        disk_free=get("HostLowDiskSpace").threshold,
        disk_fstype_exclude=get("HostLowDiskSpace").matcher(
            "node_filesystem_avail_bytes", "fstype"
        ),
        accuracy_target=get("SentimentLowFeedbackAccuracy").threshold,
        feedback_min=get("SentimentLowFeedbackAccuracy").comparisons[1],
        drift_n_min=gates[DRIFT_ALERTS[0]],
        accuracy_drop_n_min=get("SentimentEstimatedAccuracyDrop").threshold,
        accuracy_drop_margin=get("SentimentEstimatedAccuracyDrop").subtrahend,
        error_budget=budgets.pop(),
        burn_rates={alert.labels["long_window"]: alert.threshold for alert in burns},
        runbooks={alert.name: alert.runbook_url for alert in alerts},
    )
