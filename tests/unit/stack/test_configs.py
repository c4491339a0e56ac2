from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sentimon.stack.configs import (
    Ports,
    Timing,
    find_deploy_dir,
    format_duration,
    parse_duration,
    render_alertmanager,
    render_prometheus,
)

PORTS = Ports(api=18000, prometheus=19090, alertmanager=19093, node_exporter=19100, webhook=15001)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m", 60), ("30s", 30), ("1h30m", 5400), ("500ms", 0.5), ("3d", 259200), ("2w", 1209600)],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "m", "1 m", "1.5m", "5x", "1m junk"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        parse_duration(text)


def test_durations_format() -> None:
    assert [format_duration(s) for s in (60, 3, 0.5, 0.0001)] == ["60s", "3s", "500ms", "1ms"]


def test_prometheus_config_points_every_job_at_this_machines_ports(tmp_path: Path) -> None:
    path = render_prometheus(find_deploy_dir(), tmp_path, PORTS, Timing(scrape_interval="2s"))
    config = yaml.safe_load(path.read_text())
    targets = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    assert targets == {
        "sentimon": ["127.0.0.1:18000"],
        "node": ["127.0.0.1:19100"],
        "alertmanager": ["127.0.0.1:19093"],
        "prometheus": ["127.0.0.1:19090"],
    }
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:19093"
    ]
    assert config["global"]["scrape_interval"] == "2s"
    assert config["global"]["scrape_timeout"] == "2s"
    # Unscaled: the shipped rule files themselves, by absolute path.
    deploy_rules = find_deploy_dir() / "prometheus" / "rules"
    assert config["rule_files"] == [
        str(deploy_rules / "recording.yaml"),
        str(deploy_rules / "alerts.yaml"),
    ]


def test_scaled_timing_copies_the_rules_with_shorter_waits(tmp_path: Path) -> None:
    path = render_prometheus(find_deploy_dir(), tmp_path, PORTS, Timing(for_scale=0.05))
    rule_files = yaml.safe_load(path.read_text())["rule_files"]
    assert all(f.startswith(str(tmp_path)) for f in rule_files)
    shipped = yaml.safe_load((find_deploy_dir() / "prometheus/rules/alerts.yaml").read_text())
    scaled = yaml.safe_load(Path(rule_files[1]).read_text())
    pairs = [
        (a, b)
        for g1, g2 in zip(shipped["groups"], scaled["groups"], strict=True)
        for a, b in zip(g1["rules"], g2["rules"], strict=True)
    ]
    assert pairs and all(a["expr"] == b["expr"] and a["labels"] == b["labels"] for a, b in pairs)
    for a, b in pairs:
        if "for" in a:
            assert parse_duration(b["for"]) == pytest.approx(parse_duration(a["for"]) * 0.05)


def test_alertmanager_config_sends_to_this_stacks_webhook(tmp_path: Path) -> None:
    path = render_alertmanager(
        find_deploy_dir(), tmp_path, PORTS, Timing(group_wait="1s", group_interval="2s")
    )
    config = yaml.safe_load(path.read_text())
    urls = {h["url"] for r in config["receivers"] for h in r.get("webhook_configs", [])}
    assert urls == {"http://127.0.0.1:15001/alerts"}
    routes = [config["route"], *config["route"]["routes"]]
    assert {(r["group_wait"], r["group_interval"]) for r in routes} == {("1s", "2s")}
    assert config["inhibit_rules"]  # the rest is kept as shipped
