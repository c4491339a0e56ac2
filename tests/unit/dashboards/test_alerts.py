from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dashboards.alerts import ALERTS_FILE, Alert, load_alerts, load_recording_rules, load_thresholds


def test_thresholds_read_from_the_alert_rules() -> None:
    th = load_thresholds()
    assert (th.error_ratio, th.client_error_ratio) == (0.5, 0.5)
    assert (th.latency_p95, th.latency_p99) == (0.3, 1.0)
    assert (th.low_throughput, th.usual_throughput) == (5, 10)
    assert (th.confidence_low, th.confidence_degraded) == (0.6, 0.7)
    assert (th.cpu, th.memory, th.disk_free) == (0.7, 0.85, 0.1)
    assert (th.accuracy_target, th.feedback_min) == (0.8, 100)
    assert th.drift_n_min == 500
    assert (th.accuracy_drop_n_min, th.accuracy_drop_margin) == (1000, 0.05)
    assert th.error_budget == 0.01 and th.slo == 0.99
    assert th.burn_rates == {"1h": 14.4, "6h": 6, "1d": 3, "3d": 1}
    assert "overlay" in th.disk_fstype_exclude and "tmpfs" in th.disk_fstype_exclude
    assert th.runbooks["Watchdog"].endswith("docs/runbooks.md#watchdog")


def _alert(expr: str) -> Alert:
    return Alert(name="Test", expr=expr, labels={}, runbook_url="")


@pytest.mark.parametrize(
    ("expr", "threshold"),
    [
        ("a > 0.3 and on (job) b > 0.2", 0.3),
        ("a < 5 and on (job) b > 10", 5),
        ("a / 0.01 > 14.4 and on (job) b / 0.01 > 14.4", 14.4),
        ('x{fstype!~"tmpfs"} / y < 0.1 unless on (instance) z == 1', 0.1),
        ("up == 0", 0),
    ],
)
def test_threshold_is_the_first_comparison(expr: str, threshold: float) -> None:
    assert _alert(expr).threshold == threshold


def test_comparisons_in_order() -> None:
    assert _alert("a < 5 and on (job) b > 10").comparisons == [5, 10]


def test_subtrahend_is_the_first_number_subtracted() -> None:
    alert = _alert("a < on (job) (b - 0.05) and on (job) n >= 1000")
    assert alert.subtrahend == 0.05
    assert alert.threshold == 1000  # a comparison with a series is no threshold
    with pytest.raises(ValueError, match="subtracts no number"):
        _ = _alert("a - b > 1").subtrahend


def test_drift_alerts_must_share_their_n_gate(tmp_path: Path) -> None:
    document = yaml.safe_load(ALERTS_FILE.read_text(encoding="utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "SentimentConfidenceDrift":
                rule["expr"] = rule["expr"].replace(">= 500", ">= 200")
    changed = tmp_path / "alerts.yaml"
    changed.write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(ValueError, match="different N"):
        load_thresholds(changed)


def test_divisor_and_matcher() -> None:
    alert = _alert('sum(a{fstype!~"tmpfs|overlay"}) / 0.01 > 3')
    assert alert.divisor == 0.01
    assert alert.matcher("a", "fstype") == "tmpfs|overlay"


def test_missing_parts_raise() -> None:
    with pytest.raises(ValueError, match="no comparison"):
        _ = _alert("vector(1)").threshold
    with pytest.raises(ValueError, match="divides by no number"):
        _ = _alert("a > 1").divisor
    with pytest.raises(ValueError, match="selects no"):
        _alert("a > 1").matcher("b", "fstype")


def test_rule_files_load() -> None:
    assert {alert.name for alert in load_alerts()} >= {"Watchdog", "SentimentHighErrorRate"}
    assert "job:http_requests:rate5m" in load_recording_rules()
