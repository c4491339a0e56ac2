"""Every Prometheus panel query evaluates to at least one series, offline, with `promtool`.

The service's series come from the real app (FakeModel, with a reference profile built from it
so the drift metrics exist) after a little mixed traffic and feedback, the other targets'
(node-exporter, Prometheus, Alertmanager) from a small hand-written sample. Each panel query
becomes a recording rule, next to the repo's recording and alert rules; an alert on `absent()`
of each recorded series must stay silent. A query that errors records nothing, so it fails
the same way. Runs `promtool test rules` (no server).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dashboards.alerts import ALERTS_FILE, RECORDING_FILE
from dashboards.queries import PanelQuery, panels, prometheus_targets
from sentimon.app import create_app
from sentimon.config import Settings
from sentimon.drift.profiling import Texts, build_profile
from tests.fakes import FakeModel
from tests.unit.dashboards._promtool import PROMTOOL, run_rule_tests

pytestmark = pytest.mark.slow
STEPS = 60  # 15 minutes of 15-second samples
OR_NAN = " + 0 or "  # what dashboards.promql.or_nan appends
Series = tuple[str, dict[str, str], str]  # name, labels, promtool values


def _counter(rate_per_step: float) -> str:
    return f"0+{rate_per_step:g}x{STEPS}"


def _gauge(value: float) -> str:
    return f"{value:g}x{STEPS}"


def reference_profile(folder: Path) -> Path:
    """A labelled reference profile of FakeModel in which every label is predicted, and the
    confidence and token-length histograms each have more than one merged bin, so that every
    drift statistic, the critical values and the BBSE weights exist, and enough texts for a
    text-embedding basis (`sentimon.drift.text.MIN_FIT_TEXTS`, `MIN_SCALE_TEXTS`)."""
    texts = [
        *(f"love it {i}" for i in range(150)),
        *(f"what a bad day for me today {i}" for i in range(100)),
        *(
            f"the bus is at the stop on the corner of main street by the old mill {i}"
            for i in range(75)
        ),
    ]
    truth = ["positive"] * 150 + ["negative"] * 100 + ["neutral"] * 50 + ["positive"] * 25
    profile = build_profile(
        FakeModel(),
        Texts(texts, truth, "dashboard test texts"),
        Texts(texts[::2], truth[::2], "every other text"),
    )
    path = folder / "reference_profile.json"
    profile.write(path)
    return path


def service_series(registry: CollectorRegistry, profile: Path) -> list[Series]:
    """The API's /metrics after mixed traffic, as series that keep growing at that pace."""
    settings = Settings(reference_profile=profile)
    with TestClient(create_app(settings, model=FakeModel(), registry=registry)) as client:
        ids = []
        for text in ("great game", "awful flight", "a table", "love it"):
            ids.append(client.post("/predict", json={"text": text}).json()["request_id"])
            client.post("/analyze-sentiment/", json={"text": text})
        # Feedback: right, wrong with the right label, and a bare "wrong" (actual unknown).
        answers: list[dict[str, bool | str]] = [
            {"correct": True},
            {"label": "positive"},
            {"correct": False},
            {"label": "positive"},
        ]
        for request_id, feedback in zip(ids, answers, strict=True):
            response = client.post("/feedback", json={"request_id": request_id, **feedback})
            assert response.status_code == 201, response.text
        client.post("/predict/batch", json={"texts": ["good", "bad", "meh"]})
        client.post("/predict", json={})  # 422
        client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
        client.get("/no-such-path")  # 404
        client.get("/healthz")
    target = {"job": "sentimon", "instance": "api:8000"}
    series = []
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            labels = {**sample.labels, **target}
            cumulative = family.type in {"counter", "histogram", "summary"}
            value = _counter(sample.value) if cumulative else _gauge(sample.value)
            series.append((sample.name, labels, value))
    return series


def other_series() -> list[Series]:
    node = {"job": "node", "instance": "host:9100"}
    prom = {"job": "prometheus", "instance": "localhost:9090"}
    am = {"job": "alertmanager", "instance": "localhost:9093"}
    series: list[Series] = []
    for labels in (node, prom, am, {"job": "sentimon", "instance": "api:8000"}):
        series += [("up", labels, _gauge(1)), ("scrape_duration_seconds", labels, _gauge(0.01))]
    for cpu in ("0", "1"):
        for mode, share in (("idle", 10), ("user", 3), ("system", 1), ("iowait", 0.5)):
            series.append(
                ("node_cpu_seconds_total", {**node, "cpu": cpu, "mode": mode}, _counter(share))
            )
    series += [(f"node_load{m}", node, _gauge(0.5)) for m in (1, 5, 15)]
    series += [
        ("node_memory_MemTotal_bytes", node, _gauge(8e9)),
        ("node_memory_MemAvailable_bytes", node, _gauge(5e9)),
        ("node_memory_Cached_bytes", node, _gauge(2e9)),
        ("node_uname_info", {**node, "nodename": "host"}, _gauge(1)),
    ]
    for mount, fstype, device in (
        ("/", "overlay", "overlay"),
        ("/data", "ext4", "/dev/sda1"),
        ("/run", "tmpfs", "tmpfs"),
    ):
        fs = {**node, "mountpoint": mount, "fstype": fstype, "device": device}
        series += [
            ("node_filesystem_avail_bytes", fs, _gauge(4e10)),
            ("node_filesystem_size_bytes", fs, _gauge(1e11)),
            ("node_filesystem_readonly", fs, _gauge(0)),
        ]
    for metric in ("read_bytes", "written_bytes", "io_time_seconds"):
        series.append((f"node_disk_{metric}_total", {**node, "device": "sda"}, _counter(100)))
    for device in ("lo", "eth0"):
        for direction in ("receive", "transmit"):
            for metric, pace in (("bytes", 1000), ("errs", 0), ("drop", 0)):
                name = f"node_network_{direction}_{metric}_total"
                series.append((name, {**node, "device": device}, _counter(pace)))
    series += [
        ("prometheus_config_last_reload_successful", prom, _gauge(1)),
        ("prometheus_notifications_alertmanagers_discovered", prom, _gauge(1)),
        ("prometheus_notifications_errors_total", {**prom, "alertmanager": "am"}, _counter(0)),
        ("prometheus_notifications_dropped_total", prom, _counter(0)),
        ("prometheus_rule_evaluation_failures_total", {**prom, "rule_group": "g"}, _counter(0)),
        ("alertmanager_alerts", {**am, "state": "active"}, _gauge(1)),
        ("alertmanager_alerts", {**am, "state": "suppressed"}, _gauge(0)),
        ("alertmanager_notifications_total", {**am, "integration": "webhook"}, _counter(1)),
        ("alertmanager_notifications_failed_total", {**am, "integration": "webhook"}, _counter(0)),
        ("alertmanager_config_last_reload_successful", am, _gauge(1)),
    ]
    return series


def _series_text(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "}"


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
def test_every_panel_query_returns_series(
    tmp_path: Path, boards: list[dict[str, Any]], registry: CollectorRegistry
) -> None:
    queries: list[PanelQuery] = [q for board in boards for q in prometheus_targets(board)]
    # A statistic completed with NaN where it has nothing to compute from (promql.or_nan):
    # with the feedback above, the statistic itself must have series too.
    queries += [
        replace(q, expr=q.expr.split(OR_NAN)[0], ref_id=f"{q.ref_id} without NaN")
        for q in queries
        if OR_NAN in q.expr
    ]
    record = [
        {"record": f"dashboard:query_{i}:value", "expr": q.expr} for i, q in enumerate(queries)
    ]
    check = [
        {
            "alert": "DashboardQueryEmpty",
            "expr": f"absent(dashboard:query_{i}:value)",
            "labels": {"query": str(i), "panel": f"{q.uid} / {q.panel} / {q.ref_id}"},
        }
        for i, q in enumerate(queries)
    ]
    # A bar chart merges its queries' tables on their labels: each must return the label sets
    # of the first, or Grafana draws them as separate groups of bars.
    charts = {
        (board["uid"], panel["title"])
        for board in boards
        for panel in panels(board)
        if panel["type"] == "barchart"
    }
    assert charts, "no bar chart to check"
    for uid, title in sorted(charts):
        first, *others = [q for q in queries if (q.uid, q.panel) == (uid, title)]
        for other in others:
            for left, right in ((first, other), (other, first)):
                check.append(
                    {
                        "alert": "BarChartQueriesDoNotJoin",
                        "expr": f"({left.expr}) unless ({right.expr})",
                        "labels": {"panel": f"{uid} / {title} / {left.ref_id}-{right.ref_id}"},
                    }
                )
    rules = {"groups": [{"name": "queries", "rules": record}, {"name": "absent", "rules": check}]}
    (tmp_path / "dashboards.yaml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    shutil.copy(RECORDING_FILE, tmp_path / "recording.yaml")
    shutil.copy(ALERTS_FILE, tmp_path / "alerts.yaml")
    service = service_series(registry, reference_profile(tmp_path))
    assert any(name.startswith("sentiment_text_drift_") for name, _, _ in service)
    series = service + other_series()
    test = {
        "rule_files": ["recording.yaml", "alerts.yaml", "dashboards.yaml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {"series": _series_text(name, labels), "values": values}
                    for name, labels, values in series
                ],
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": name, "exp_alerts": []}
                    for name in ("DashboardQueryEmpty", "BarChartQueriesDoNotJoin")
                ],
            }
        ],
    }
    run_rule_tests(tmp_path, test)
