"""Every Prometheus query parses, and every metric it reads exists somewhere real."""

from __future__ import annotations

import re
from typing import Any

import promql_parser
import pytest
from prometheus_client import CollectorRegistry

from dashboards.alerts import load_recording_rules
from dashboards.queries import PanelQuery, prometheus_targets, substitute
from sentimon.metrics.definitions import (
    CONFIDENCE_BUCKETS,
    build_metrics,
)

# Series names per metric type, as the text exposition writes them.
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "gauge": ("",),
    "info": ("_info",),
}

# Series of the other scrape targets the dashboards read (exact names, to catch typos):
# node-exporter 1.5, Prometheus 2.42 (its own metrics, synthetic scrape series and ALERTS),
# Alertmanager 0.25.
NODE_EXPORTER = {
    "node_cpu_seconds_total",
    "node_load1",
    "node_load5",
    "node_load15",
    "node_memory_MemTotal_bytes",
    "node_memory_MemAvailable_bytes",
    "node_memory_Cached_bytes",
    "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes",
    "node_filesystem_readonly",
    "node_disk_read_bytes_total",
    "node_disk_written_bytes_total",
    "node_disk_io_time_seconds_total",
    "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total",
    "node_network_receive_errs_total",
    "node_network_transmit_errs_total",
    "node_network_receive_drop_total",
    "node_network_transmit_drop_total",
    "node_uname_info",
}
PROMETHEUS = {
    "up",
    "scrape_duration_seconds",
    "ALERTS",
    "prometheus_config_last_reload_successful",
    "prometheus_notifications_alertmanagers_discovered",
    "prometheus_notifications_errors_total",
    "prometheus_notifications_dropped_total",
    "prometheus_rule_evaluation_failures_total",
}
ALERTMANAGER = {
    "alertmanager_alerts",
    "alertmanager_config_last_reload_successful",
    "alertmanager_notifications_total",
    "alertmanager_notifications_failed_total",
}
# The service's own metrics must be selected by job, so the `job` variable works.
SERVICE_PREFIXES = ("sentiment_", "http_", "process_", "job:", "job_")


def service_series() -> set[str]:
    """Series names of the API's registry: sentiment_*, process_*, and the HTTP metrics."""
    registry = CollectorRegistry()
    build_metrics(registry)
    names = set()
    for family in registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


KNOWN = service_series() | set(load_recording_rules()) | NODE_EXPORTER | PROMETHEUS | ALERTMANAGER


def all_queries(boards: list[dict[str, Any]]) -> list[PanelQuery]:
    return [query for board in boards for query in prometheus_targets(board)]


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def metric_name(selector: promql_parser.VectorSelector) -> str | None:
    if selector.name:
        return selector.name
    names = [m.value for m in selector.matchers.matchers if m.name == "__name__"]
    return names[0] if names else None


def test_the_registry_knows_the_service_metrics() -> None:
    assert {
        "sentiment_predictions_total",
        "sentiment_prediction_confidence_bucket",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_size_bytes_sum",
        "http_requests_inprogress",
        "sentiment_model_info",
        "process_cpu_seconds_total",
    } <= KNOWN


def test_every_query_parses(boards: list[dict[str, Any]]) -> None:
    queries = all_queries(boards)
    assert len(queries) > 80
    for query in queries:
        try:
            promql_parser.parse(query.expr)
        except ValueError as exc:
            pytest.fail(f"{query.dashboard} / {query.panel} / {query.ref_id}: {exc}\n{query.expr}")


def test_every_metric_exists(boards: list[dict[str, Any]]) -> None:
    unknown = set()
    for query in all_queries(boards):
        for selector in selectors(query.expr):
            name = metric_name(selector)
            if name is None or name not in KNOWN:
                unknown.add((query.dashboard, query.panel, name))
    assert not unknown


def test_every_recording_rule_used_exists(boards: list[dict[str, Any]]) -> None:
    rules = set(load_recording_rules())
    used = {
        name
        for query in all_queries(boards)
        for selector in selectors(query.expr)
        if (name := metric_name(selector)) and ":" in name
    }
    assert used and used <= rules


def test_service_metrics_are_selected_by_job(boards: list[dict[str, Any]]) -> None:
    for query in all_queries(boards):
        for selector in selectors(query.expr):
            name = metric_name(selector) or ""
            if name.startswith(SERVICE_PREFIXES):
                labels = {m.name: m.value for m in selector.matchers.matchers}
                assert labels.get("job") == "sentimon", (query.panel, query.raw)


def test_bucket_boundaries_exist(boards: list[dict[str, Any]]) -> None:
    """A selector on one `le` value needs that exact bucket boundary in the histogram."""
    boundaries = {
        "sentiment_prediction_confidence_bucket": {f"{b:g}" for b in CONFIDENCE_BUCKETS},
    }
    checked = 0
    for query in all_queries(boards):
        for selector in selectors(query.expr):
            for matcher in selector.matchers.matchers:
                if matcher.name == "le":
                    assert matcher.value in boundaries[metric_name(selector) or ""], query.raw
                    checked += 1
    assert checked


def test_rates_use_the_rate_interval_or_an_alert_window(boards: list[dict[str, Any]]) -> None:
    windows = {
        match for query in all_queries(boards) for match in re.findall(r"\[([^\]]+)\]", query.raw)
    }
    assert windows <= {"$__rate_interval", "$__range", "5m", "30d"}


def test_variable_queries_read_known_metrics(boards: list[dict[str, Any]]) -> None:
    for board in boards:
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("datasource", {}).get("type") != "prometheus":
                continue
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
            assert match, variable["query"]
            (selector,) = selectors(substitute(match.group(1)))
            assert metric_name(selector) in KNOWN
