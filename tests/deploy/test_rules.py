"""The Prometheus config and rules, read as data: labels, annotations, runbooks, metric names,
and that every alert has promtool tests (the tests themselves run in test_promtool.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from sentimon.config import BUNDLED_MODEL_DIR
from sentimon.drift.reference import PROFILE_FILE, load_profile
from sentimon.metrics.definitions import build_metrics
from sentimon.metrics.drift import build_drift_metrics
from tests.deploy._files import (
    ALERT_RULES,
    PROMETHEUS_CONFIG,
    PROMETHEUS_DIR,
    RECORDING_RULES,
    RULE_FILES,
    RULE_TEST_FILES,
    RUNBOOK_BASE,
    RUNBOOKS,
    Rule,
    duration_seconds,
    github_anchor,
    group_names,
    load_rules,
    load_yaml,
    recorded_series_in,
    runbook_anchors,
    service_metrics_in,
)

ALERTS = load_rules(ALERT_RULES)
RECORDS = load_rules(RECORDING_RULES)
SEVERITIES = {"critical", "warning", "info", "none"}


def _rule_id(rule: Rule) -> str:
    variant = rule.labels.get("long_window")
    return f"{rule.name}[{variant}]" if variant else rule.name


def _exposed_names(registry: CollectorRegistry) -> set[str]:
    """Series names as /metrics exposes them: counters end in _total, histograms in _bucket..."""
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type in ("histogram", "gaugehistogram"):
            names |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"}
        elif family.type == "summary":
            names |= {family.name, f"{family.name}_sum", f"{family.name}_count"}
        elif family.type == "info":
            names.add(f"{family.name}_info")
        else:
            names.add(family.name)
    return names


def _metrics_used(prefix: str) -> set[str]:
    used = {name for rule in ALERTS + RECORDS for name in service_metrics_in(rule.expr)}
    return {name for name in used if name.startswith(prefix)}


# --- the files hang together ------------------------------------------------------------


def test_the_rule_files_are_the_ones_prometheus_loads() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    loaded = {(PROMETHEUS_DIR / path).resolve() for path in config["rule_files"]}
    assert loaded == {path.resolve() for path in RULE_FILES}
    assert all(not Path(path).is_absolute() for path in config["rule_files"])
    assert RULE_FILES == sorted([ALERT_RULES, RECORDING_RULES])


def test_prometheus_scrapes_the_stack_and_sends_to_alertmanager() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    targets = {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets == {
        "sentimon": ["127.0.0.1:8000"],
        "node": ["127.0.0.1:9100"],
        "alertmanager": ["127.0.0.1:9093"],
        "prometheus": ["127.0.0.1:9090"],
    }
    alertmanagers = config["alerting"]["alertmanagers"]
    assert [t for am in alertmanagers for s in am["static_configs"] for t in s["targets"]] == [
        "127.0.0.1:9093"
    ]


def test_rule_names_are_unique_across_groups_and_files() -> None:
    groups = group_names(RECORDING_RULES) + group_names(ALERT_RULES)
    assert len(groups) == len(set(groups))
    records = [rule.name for rule in RECORDS]
    assert len(records) == len(set(records))


@pytest.mark.parametrize("rule", RECORDS, ids=[r.name for r in RECORDS])
def test_recording_rules_are_named_level_metric_operation(rule: Rule) -> None:
    level, metric, operation = rule.name.split(":")
    # The level lists the labels the result keeps, aggregated at least to the job or instance.
    assert re.fullmatch(r"(job|instance)(_[a-z]+)*", level), rule.name
    assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", metric) and not metric.endswith("_total")
    assert re.fullmatch(r"[a-z0-9_]+", operation), rule.name


def test_alerts_read_only_recorded_series_that_exist() -> None:
    recorded = {rule.name for rule in RECORDS}
    used = {name for rule in ALERTS for name in recorded_series_in(rule.expr)}
    assert used, "the alerts read no recorded series: is the name pattern broken?"
    assert used <= recorded, f"alerts read series no recording rule makes: {used - recorded}"


def test_the_metric_name_scanner_ignores_labels_and_recorded_names() -> None:
    expr = (
        "job:http_requests:rate5m > 1 and sum by (sentiment) "
        '(rate(sentiment_predictions_total{sentiment="sentiment_x", handler="http_y"}[5m]))'
        " / http_requests_total"
    )
    assert service_metrics_in(expr) == {"sentiment_predictions_total", "http_requests_total"}
    assert recorded_series_in('a:b:c{instance="127.0.0.1:8000"} + x') == {"a:b:c"}


# --- every series the rules read exists in the service ----------------------------------


def test_sentiment_metrics_in_the_rules_exist_in_the_registry() -> None:
    registry = CollectorRegistry()
    build_metrics(registry, process_collectors=False)
    # The drift metrics exist with a reference profile (the bundled model's has labels, so
    # the reference accuracy and BBSE weights too), the text-drift ones with a text-embedding
    # basis of the served kind (the bundled profile has one per kind, all with the same names).
    profile = load_profile(BUNDLED_MODEL_DIR / PROFILE_FILE)
    build_drift_metrics(registry, profile, next(iter(profile.text.values())))
    exposed = _exposed_names(registry)
    used = _metrics_used("sentiment_")
    assert len(used) >= 8, used
    assert used <= exposed, f"rules read metrics the service does not export: {used - exposed}"


def test_http_metrics_in_the_rules_exist_in_the_app(
    client: TestClient, registry: CollectorRegistry
) -> None:
    # The HTTP metrics are recorded by the app's own middleware (sentimon.metrics.http).
    assert client.get("/healthz").status_code == 200
    exposed = _exposed_names(registry)
    used = _metrics_used("http_")
    assert {"http_requests_total", "http_request_duration_seconds_bucket"} <= used
    assert used <= exposed, f"rules read metrics the service does not export: {used - exposed}"


# --- every alert is complete --------------------------------------------------------------


@pytest.mark.parametrize("rule", ALERTS, ids=[_rule_id(r) for r in ALERTS])
def test_alert_has_severity_summary_description_and_runbook(rule: Rule) -> None:
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule.name), "alert names are CamelCase"
    assert rule.labels.get("severity") in SEVERITIES
    assert rule.annotations.get("summary"), "summary missing"
    assert "{{" not in rule.annotations["summary"], "summary is static; details go in description"
    description = rule.annotations.get("description", "")
    assert re.search(r"\{\{[^}]*\$(value|labels\.\w+|externalURL)", description), (
        "description not templated"
    )
    assert set(rule.annotations) == {"summary", "description", "runbook_url"}
    url = rule.annotations.get("runbook_url", "")
    assert url.startswith(RUNBOOK_BASE), url
    anchor = url.removeprefix(RUNBOOK_BASE)
    assert anchor == github_anchor(rule.name), "each alert's runbook section is its name"
    assert anchor in runbook_anchors(RUNBOOKS.read_text(encoding="utf-8")), (
        f"docs/runbooks.md has no section #{anchor}"
    )


@pytest.mark.parametrize("rule", ALERTS, ids=[_rule_id(r) for r in ALERTS])
def test_alert_has_a_family_for_inhibition(rule: Rule) -> None:
    # Alertmanager inhibits on `equal: [family, job]`; an alert without a family would match
    # every other family-less alert.
    if rule.labels["severity"] == "none":
        assert rule.name == "Watchdog"
    else:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.labels.get("family", "")), rule.labels


def test_the_catalogue_is_complete() -> None:
    severities: dict[str, set[str]] = {}
    for rule in ALERTS:
        severities.setdefault(rule.name, set()).add(rule.labels["severity"])
    assert severities == {
        "SentimentHighErrorRate": {"critical"},
        "SentimentErrorBudgetBurn": {"critical", "warning"},
        "SentimentHighClientErrorRate": {"warning"},
        "SentimentHighLatencyP95": {"warning"},
        "SentimentHighLatencyP99": {"critical"},
        "SentimentLowThroughput": {"warning"},
        "SentimentApiDown": {"critical"},
        "SentimentModelNotLoaded": {"critical"},
        "SentimentLowConfidence": {"warning"},
        "SentimentConfidenceDegraded": {"info"},
        "SentimentLowFeedbackAccuracy": {"warning"},
        "SentimentLabelMixDrift": {"warning"},
        "SentimentLabelMixDriftInfo": {"info"},
        "SentimentConfidenceDrift": {"warning"},
        "SentimentInputLengthDrift": {"warning"},
        "SentimentTextDrift": {"warning"},
        "SentimentEstimatedAccuracyDrop": {"warning"},
        "SentimentFeedbackStoreDown": {"critical"},
        "SentimentStoreDroppingWrites": {"warning"},
        "TargetDown": {"warning"},
        "HostHighCpuUsage": {"warning"},
        "HostHighMemoryUsage": {"warning"},
        "HostLowDiskSpace": {"warning"},
        "Watchdog": {"none"},
    }


def test_burn_rate_alerts_follow_the_sre_workbook() -> None:
    burns = {
        (r.labels["long_window"], r.labels["short_window"]): r
        for r in ALERTS
        if r.name == "SentimentErrorBudgetBurn"
    }
    expected = {
        ("1h", "5m"): ("14.4", "critical"),
        ("6h", "30m"): ("6", "critical"),
        ("1d", "2h"): ("3", "warning"),
        ("3d", "6h"): ("1", "warning"),
    }
    assert set(burns) == set(expected)
    for (long, short), (factor, severity) in expected.items():
        rule = burns[(long, short)]
        assert rule.labels["severity"] == severity
        expr = " ".join(rule.expr.split())
        for window in (long, short):
            assert f"job:http_requests_5xx:ratio_rate{window} / 0.01 > {factor}" in expr


# --- the runbooks -------------------------------------------------------------------------


def test_runbook_links_between_sections_resolve() -> None:
    text = RUNBOOKS.read_text(encoding="utf-8")
    anchors = runbook_anchors(text)
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links, "no cross-links found: is the pattern broken?"
    assert links <= anchors, f"broken links: {links - anchors}"


def test_every_runbook_section_has_meaning_checks_actions_and_escalation() -> None:
    text = RUNBOOKS.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    by_title = {s.splitlines()[0]: s for s in sections}
    for name in {rule.name for rule in ALERTS}:
        assert name in by_title, f"no `## {name}` section"
        for part in ("**Meaning.**", "**Check first", "**Do.**", "**Escalate**"):
            assert part in by_title[name], f"{name}: no {part}"


# --- every alert rule has promtool cases: silent one step before `for:`, firing at it -------


def _cases() -> list[tuple[Path, int, float, dict[str, Any]]]:
    cases = []
    for path in RULE_TEST_FILES:
        suite = load_yaml(path)
        for index, group in enumerate(suite["tests"]):
            for item in group.get("alert_rule_test", []):
                cases.append((path, index, duration_seconds(item["eval_time"]), item))
    return cases


def _fires(item: dict[str, Any], rule: Rule) -> bool:
    return item["alertname"] == rule.name and any(
        rule.labels.items() <= {k: str(v) for k, v in alert.get("exp_labels", {}).items()}.items()
        for alert in item.get("exp_alerts") or []
    )


def test_every_test_file_orders_recording_rules_before_alerts() -> None:
    # Without group_eval_order promtool evaluates groups in a random order, and an alert may
    # read a recording rule's value from the previous evaluation: flaky tests.
    expected = group_names(RECORDING_RULES) + group_names(ALERT_RULES)
    assert RULE_TEST_FILES, "no promtool test files"
    for path in RULE_TEST_FILES:
        suite = load_yaml(path)
        assert suite["group_eval_order"] == expected, path.name
        files = {(path.parent / f).resolve() for f in suite["rule_files"]}
        assert files == {f.resolve() for f in RULE_FILES}, path.name


@pytest.mark.parametrize("rule", ALERTS, ids=[_rule_id(r) for r in ALERTS])
def test_alert_is_tested_silent_before_for_and_firing_at_it(rule: Rule) -> None:
    cases = _cases()
    firing = [(path, group, t) for path, group, t, item in cases if _fires(item, rule)]
    assert firing, f"no promtool case expects {_rule_id(rule)} to fire"
    if rule.for_ is None:
        return
    for path, group, t in firing:
        step = duration_seconds(load_yaml(path).get("evaluation_interval", "1m"))
        silent_before = [
            item
            for p, g, t2, item in cases
            if (p, g) == (path, group)
            and item["alertname"] == rule.name
            and t2 == t - step
            and not _fires(item, rule)
        ]
        if silent_before and t >= duration_seconds(rule.for_):
            return
    pytest.fail(
        f"{_rule_id(rule)}: no case checks it silent one evaluation before a firing case "
        f"(`for: {rule.for_}`)"
    )
