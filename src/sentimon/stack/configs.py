"""The deploy/ configs, rewritten for one machine: loopback ports, absolute paths, timing.

deploy/prometheus and deploy/alertmanager stay the single source of truth; a local run only
changes where things listen and, for demos and tests, how fast alerts move.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sentimon.stack.processes import StackError

DEFAULT_WEBHOOK = "http://127.0.0.1:5001/alerts"
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "y": 365 * 86400,
}


@dataclass(frozen=True, slots=True)
class Ports:
    api: int = 8000
    prometheus: int = 9090
    alertmanager: int = 9093
    node_exporter: int = 9100
    webhook: int = 5001


@dataclass(frozen=True, slots=True)
class Timing:
    scrape_interval: str = "5s"
    evaluation_interval: str = "5s"
    for_scale: float = 1.0
    """Multiplies every alert's `for:` (tests use a small factor; 1 keeps the shipped rules)."""
    group_wait: str | None = None
    """Overrides Alertmanager's group_wait on every route (None keeps the shipped value)."""
    group_interval: str | None = None
    resend_delay: str | None = None
    """Prometheus --rules.alert.resend-delay (default 1m): how soon a firing alert is sent
    again, e.g. when Alertmanager was not discovered yet at its first evaluation."""


def find_deploy_dir() -> Path:
    """deploy/ of the source checkout this package runs from."""
    candidate = Path(__file__).resolve().parents[3] / "deploy"
    if (candidate / "prometheus" / "prometheus.yml").is_file():
        return candidate
    raise StackError(
        "cannot find the deploy/ folder (expected next to src/); run sentimon from a source "
        "checkout or pass --deploy-dir"
    )


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as `1h30m` or `500ms`."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    millis = max(1, round(seconds * 1000))
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def render_prometheus(deploy: Path, out_dir: Path, ports: Ports, timing: Timing) -> Path:
    """prometheus.yml for this machine in `out_dir` (rule files copied when timing changes)."""
    source = deploy / "prometheus" / "prometheus.yml"
    config: dict[str, Any] = yaml.safe_load(source.read_text(encoding="utf-8"))
    config["global"]["scrape_interval"] = timing.scrape_interval
    config["global"]["evaluation_interval"] = timing.evaluation_interval
    scrape = min(parse_duration(timing.scrape_interval), 10.0)
    config["global"]["scrape_timeout"] = format_duration(scrape)
    targets = {
        "sentimon": ports.api,
        "node": ports.node_exporter,
        "alertmanager": ports.alertmanager,
        "prometheus": ports.prometheus,
    }
    jobs = [job for job in config["scrape_configs"] if job["job_name"] in targets]
    for job in jobs:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{targets[job['job_name']]}"]}]
    config["scrape_configs"] = jobs
    config["alerting"]["alertmanagers"] = [
        {"static_configs": [{"targets": [f"127.0.0.1:{ports.alertmanager}"]}]}
    ]
    rules = []
    for relative in config["rule_files"]:
        rule_file = (source.parent / relative).resolve()
        if timing.for_scale != 1.0:
            rule_file = _scaled_rules(rule_file, out_dir, timing.for_scale)
        rules.append(str(rule_file))
    config["rule_files"] = rules
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _scaled_rules(rule_file: Path, out_dir: Path, scale: float) -> Path:
    rules: dict[str, Any] = yaml.safe_load(rule_file.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = format_duration(parse_duration(rule["for"]) * scale)
    out = out_dir / "rules" / rule_file.name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    return out


def render_alertmanager(deploy: Path, out_dir: Path, ports: Ports, timing: Timing) -> Path:
    """alertmanager.yml with its webhooks pointed at this stack's receiver."""
    source = deploy / "alertmanager" / "alertmanager.yml"
    config: dict[str, Any] = yaml.safe_load(source.read_text(encoding="utf-8"))
    webhook = f"http://127.0.0.1:{ports.webhook}/alerts"
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            if hook.get("url") == DEFAULT_WEBHOOK:
                hook["url"] = webhook
    routes = [config["route"], *config["route"].get("routes", [])]
    for route in routes:
        if timing.group_wait is not None:
            route["group_wait"] = timing.group_wait
        if timing.group_interval is not None:
            route["group_interval"] = timing.group_interval
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path
