"""End to end on the real stack: the API, Prometheus, Alertmanager, node-exporter and the
webhook receiver, started by the code behind `sentimon up`, with test-speed intervals.

Alert waits (`for:`) are scaled by FOR_SCALE and Alertmanager's group waits shortened, so
each alert behaves as shipped, only faster.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dashboards.queries import load_dashboards, prometheus_targets
from sentimon.cli.main import app
from sentimon.stack.configs import Ports, Timing
from sentimon.stack.stack import Stack, StackConfig
from sentimon.stack.webhook import Notification
from tests.integration.conftest import bundled_profile_for_this_cpu

pytestmark = pytest.mark.slow

FOR_SCALE = 1 / 20  # 1m -> 3s, 5m -> 15s
TIMING = Timing(
    scrape_interval="1s",
    evaluation_interval="1s",
    for_scale=FOR_SCALE,
    group_wait="1s",
    group_interval="2s",
    resend_delay="2s",
)
# The test machine itself is busy running tests: host alerts may rightly fire here.
HOST_ALERTS = {"HostHighCpuUsage", "HostHighMemoryUsage", "HostLowDiskSpace"}


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_stack(tmp: Path, *api_args: str) -> Stack:
    """A stack serving the bundled model (or what `api_args` say) against a reference profile
    with a text basis for this CPU's arithmetic, so every drift series exists on any CPU."""
    profile = bundled_profile_for_this_cpu(tmp)
    api_args = ("--reference-profile", str(profile), *api_args)
    ports = Ports(*free_ports(5))
    stack = Stack(
        StackConfig(
            ports=ports,
            timing=TIMING,
            data_dir=tmp,
            api_args=["--num-threads", "1", *api_args],
            api_env={"HF_HUB_OFFLINE": "1"},
        )
    )
    stack.start()
    return stack


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def active_alerts(stack: Stack) -> dict[str, dict[str, Any]]:
    alerts = get_json(f"{stack.urls['alertmanager']}/api/v2/alerts?active=true")
    return {a["labels"]["alertname"]: a for a in alerts}


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 90) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


def notified(stack: Stack, alertname: str, receiver: str) -> Callable[[], list[Notification]]:
    def check() -> list[Notification]:
        assert stack.webhook is not None
        return [
            n
            for n in stack.webhook.received()
            if n["receiver"] == receiver
            and n["status"] == "firing"
            and any(a["labels"]["alertname"] == alertname for a in n["alerts"])
        ]

    return check


def send_traffic(
    stack: Stack, scenario: str, seconds: float, rate: int = 25, feedback_share: float = 0.0
) -> str:
    result = CliRunner().invoke(
        app,
        [
            "traffic",
            "--scenario",
            scenario,
            "--url",
            stack.urls["api"],
            "--rate",
            str(rate),
            "--duration",
            str(seconds),
            "--feedback-share",
            str(feedback_share),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()


def test_every_target_is_scraped(stack: Stack) -> None:
    def all_up() -> dict[str, str]:
        targets = get_json(f"{stack.urls['prometheus']}/api/v1/targets")["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        return health if set(health.values()) == {"up"} else {}

    assert set(wait_for("all targets up", all_up)) == {
        "sentimon",
        "node",
        "alertmanager",
        "prometheus",
    }


def test_normal_traffic_fires_nothing_but_watchdog(stack: Stack) -> None:
    # With feedback on half the texts, so the feedback rules and panels have data too.
    send_traffic(stack, "normal", seconds=8, feedback_share=0.5)
    wait_for("the Watchdog notification", notified(stack, "Watchdog", "watchdog"))
    # Give every rule several evaluations (and the scaled waits) with the traffic in.
    time.sleep(5)
    firing = set(active_alerts(stack)) - HOST_ALERTS
    assert firing == {"Watchdog"}


def test_every_dashboard_panel_query_returns_data(stack: Stack) -> None:
    """Each Prometheus query of each committed dashboard, against the live stack with the
    normal traffic (and feedback) of the test above: none may fail or come back empty."""
    queries = [q for d in load_dashboards() for q in prometheus_targets(d)]
    assert len(queries) > 100
    empty, failed = [], []
    for query in queries:
        url = f"{stack.urls['prometheus']}/api/v1/query?query={urllib.parse.quote(query.expr)}"
        try:
            result = get_json(url)["data"]["result"]
        except urllib.error.HTTPError as exc:
            failed.append(f"{query.dashboard} / {query.panel}: {exc.read()[:200]!r}")
            continue
        if not result:
            empty.append(f"{query.dashboard} / {query.panel}: {query.expr}")
    assert not failed, "\n".join(failed)
    assert not empty, "\n".join(empty)


def test_bad_input_fires_the_client_error_alert_and_reaches_the_webhook(tmp_path: Path) -> None:
    # A stack of its own: the 5-minute ratio windows must not hold the other tests' traffic.
    stack = start_stack(tmp_path)
    try:
        _bad_input_alert(stack)
    finally:
        stack.stop()


def _bad_input_alert(stack: Stack) -> None:
    send_traffic(stack, "bad-input", seconds=10)
    alert = wait_for(
        "SentimentHighClientErrorRate in Alertmanager",
        lambda: active_alerts(stack).get("SentimentHighClientErrorRate"),
    )
    assert alert["labels"]["severity"] == "warning"
    assert alert["labels"]["job"] == "sentimon"
    assert alert["annotations"]["runbook_url"].endswith("#sentimenthighclienterrorrate")
    assert "were rejected" in alert["annotations"]["description"]
    [notification, *_] = wait_for(
        "the webhook notification",
        notified(stack, "SentimentHighClientErrorRate", "default"),
    )
    assert notification["commonLabels"]["severity"] == "warning"
    # Bad input is the client's fault: nothing may have answered with a 5xx.
    assert "SentimentHighErrorRate" not in active_alerts(stack)


def test_a_service_without_its_model_fires_model_not_loaded(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, "--model", "/no/such/model", "--no-fail-on-model-error")
    try:
        alert = wait_for(
            "SentimentModelNotLoaded in Alertmanager",
            lambda: active_alerts(stack).get("SentimentModelNotLoaded"),
        )
        assert alert["labels"]["severity"] == "critical"
        wait_for("the pager notification", notified(stack, "SentimentModelNotLoaded", "pager"))
        assert "SentimentApiDown" not in active_alerts(stack)  # alive, just not ready
    finally:
        stack.stop()


DRIFT_ALERTS = {
    "SentimentLabelMixDrift",
    "SentimentLabelMixDriftInfo",
    "SentimentConfidenceDrift",
    "SentimentInputLengthDrift",
    "SentimentTextDrift",
}


def query(stack: Stack, expr: str) -> float | None:
    url = f"{stack.urls['prometheus']}/api/v1/query?query={urllib.parse.quote(expr)}"
    result = get_json(url)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_drifted_traffic_fires_the_drift_alert_and_normal_traffic_does_not(
    tmp_path: Path,
) -> None:
    # A stack of its own: the 5-minute windows must hold only this test's traffic.
    stack = start_stack(tmp_path)
    try:
        _drift_alerts(stack)
    finally:
        stack.stop()


def _drift_alerts(stack: Stack) -> None:
    # Normal traffic past the N gate (500 texts in 5m; 720 sent) must not look drifted.
    send_traffic(stack, "normal", seconds=12, rate=60)
    time.sleep(3)  # several evaluations and the scaled `for` (2m -> 6 s)
    n = query(stack, "job:sentiment_label_mix:n5m")
    chi2 = query(stack, "job:sentiment_label_mix:chi2_5m")
    critical = query(
        stack,
        'job_statistic_severity:sentiment_drift_critical_value:max{statistic="label_mix",'
        'severity="critical"}',
    )
    assert n is not None and n >= 500, n
    assert chi2 is not None and critical is not None and chi2 < critical, (chi2, critical)
    text_chi2 = query(stack, "job:sentiment_text_drift:chi2_5m")
    text_critical = query(
        stack,
        'job_statistic_severity:sentiment_drift_critical_value:max{statistic="text",'
        'severity="critical"}',
    )
    assert text_chi2 is not None and text_critical is not None, (text_chi2, text_critical)
    assert text_chi2 < text_critical / 2, (text_chi2, text_critical)
    time.sleep(4)
    assert not DRIFT_ALERTS & set(active_alerts(stack)), active_alerts(stack).keys()

    send_traffic(stack, "drift", seconds=10, rate=60)
    alert = wait_for(
        "SentimentLabelMixDrift in Alertmanager",
        lambda: active_alerts(stack).get("SentimentLabelMixDrift"),
    )
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["runbook_url"].endswith("#sentimentlabelmixdrift")
    wait_for("the webhook notification", notified(stack, "SentimentLabelMixDrift", "default"))
    # The texts themselves moved too: long, generated, a quarter not English.
    text = wait_for(
        "SentimentTextDrift in Alertmanager", lambda: active_alerts(stack).get("SentimentTextDrift")
    )
    assert text["annotations"]["runbook_url"].endswith("#sentimenttextdrift")
