"""Load the monitoring files under deploy/ and docs/runbooks.md for the deploy tests."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yaml"))
RECORDING_RULES = PROMETHEUS_DIR / "rules" / "recording.yaml"
ALERT_RULES = PROMETHEUS_DIR / "rules" / "alerts.yaml"
RULE_TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yaml"))
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
RUNBOOK_BASE = "https://github.com/sentimon/sentimon/blob/main/docs/runbooks.md#"

# The Debian package that ships each binary the slow tests run.
APT_PACKAGES = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}


def require_binary(name: str) -> str:
    """The binary's path; fail (not skip) with the package to install when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} not found on PATH: install it with "
            f"`apt-get install -y --no-install-recommends {APT_PACKAGES[name]}` "
            "(Debian/Ubuntu, as root)"
        )
    return path


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_text(text: str) -> Any:
    return yaml.safe_load(text)


@dataclass(frozen=True)
class Rule:
    group: str
    name: str  # alert name or recorded series name
    is_alert: bool
    expr: str
    for_: str | None
    labels: dict[str, str]
    annotations: dict[str, str]


def load_rules(path: Path) -> list[Rule]:
    rules = []
    for group in load_yaml(path)["groups"]:
        for raw in group["rules"]:
            is_alert = "alert" in raw
            rules.append(
                Rule(
                    group=group["name"],
                    name=raw["alert"] if is_alert else raw["record"],
                    is_alert=is_alert,
                    expr=raw["expr"],
                    for_=raw.get("for"),
                    labels={k: str(v) for k, v in (raw.get("labels") or {}).items()},
                    annotations={k: str(v) for k, v in (raw.get("annotations") or {}).items()},
                )
            )
    return rules


def group_names(path: Path) -> list[str]:
    return [group["name"] for group in load_yaml(path)["groups"]]


_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration such as `90s`, `1h30m` or `3d`."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SERVICE_METRIC = re.compile(r"(?<![\w:])((?:sentiment|http)_\w*)(?![\w:])")
_RECORDED = re.compile(r"(?<![\w:])([a-zA-Z_]\w*:[\w:]*\w)(?![\w:])")


def service_metrics_in(expr: str) -> set[str]:
    """`sentiment_*` and `http_*` series names a PromQL expression selects."""
    return set(_SERVICE_METRIC.findall(_STRING.sub('""', expr)))


def recorded_series_in(expr: str) -> set[str]:
    """`level:metric:operation` names a PromQL expression reads (label values excluded)."""
    return set(_RECORDED.findall(_STRING.sub('""', expr)))


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading (without the de-duplicating suffix)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_anchors(markdown: str) -> set[str]:
    anchors: set[str] = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (match := re.match(r"#{1,6} (.+)", line)):
            anchor = github_anchor(match.group(1))
            suffix = 0
            unique = anchor
            while unique in anchors:
                suffix += 1
                unique = f"{anchor}-{suffix}"
            anchors.add(unique)
    return anchors


_EXAMPLE = re.compile(r"^[ \t]*# >>> example.*?\n(.*?)^[ \t]*# <<< example[^\n]*\n", re.M | re.S)


def uncomment_examples(config_text: str) -> str:
    """The Alertmanager config with its `# >>> example` ... `# <<< example` blocks uncommented."""

    def _uncomment(match: re.Match[str]) -> str:
        return re.sub(r"^([ \t]*)# ?", r"\1", match.group(1), flags=re.M)

    text, count = _EXAMPLE.subn(_uncomment, config_text)
    if count == 0:
        raise ValueError("no `# >>> example` blocks found")
    return text
