"""deploy/alertmanager/alertmanager.yml: routing, inhibition, receivers, and no secrets."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy._files import (
    ALERT_RULES,
    ALERTMANAGER_CONFIG,
    Rule,
    load_rules,
    load_yaml,
    load_yaml_text,
    require_binary,
    uncomment_examples,
)

WEBHOOK = "http://127.0.0.1:5001/alerts"
# Keys that would hold a secret inline; the `*_file` variants read it from a file instead.
SECRET_KEYS = {
    "api_url",
    "auth_password",
    "smtp_auth_password",
    "auth_secret",
    "service_key",
    "routing_key",
    "api_key",
    "bot_token",
    "password",
    "bearer_token",
}


def _config() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(ALERTMANAGER_CONFIG)
    return config


def _keys(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


_MATCHER = re.compile(r'^\s*(\w+)\s*(=~|!~|!=|=)\s*"(.*)"\s*$')


def _matches(matchers: list[str], labels: dict[str, str]) -> bool:
    """Alertmanager matcher semantics (regexes are anchored; a missing label is "")."""
    for matcher in matchers:
        found = _MATCHER.match(matcher)
        assert found, f"cannot parse matcher {matcher!r}"
        name, op, value = found.groups()
        actual = labels.get(name, "")
        ok = {
            "=": actual == value,
            "!=": actual != value,
            "=~": re.fullmatch(value, actual) is not None,
            "!~": re.fullmatch(value, actual) is None,
        }[op]
        if not ok:
            return False
    return True


def _rule_id(rule: Rule) -> str:
    variant = rule.labels.get("long_window")
    return f"{rule.name}[{variant}]" if variant else rule.name


def _inhibited_pairs(config: dict[str, Any], rules: list[Rule]) -> set[tuple[str, str]]:
    """(source, target) pairs of alert rules for which some inhibit rule holds.

    Alerts of one family come from the same job (every rule keeps `job`), so `job` is taken
    as equal; every other label in `equal` is compared on the rules' static labels.
    """
    pairs = set()
    for inhibit in config["inhibit_rules"]:
        assert "job" in inhibit["equal"], "inhibit only within one job"
        for source in rules:
            for target in rules:
                if source is target:
                    continue
                if (
                    _matches(inhibit["source_matchers"], source.labels)
                    and _matches(inhibit["target_matchers"], target.labels)
                    and all(
                        source.labels.get(label, "") == target.labels.get(label, "")
                        for label in inhibit["equal"]
                        if label != "job"
                    )
                ):
                    pairs.add((_rule_id(source), _rule_id(target)))
    return pairs


def test_a_critical_inhibits_exactly_the_warnings_of_its_family() -> None:
    pairs = _inhibited_pairs(_config(), load_rules(ALERT_RULES))
    slow_burns = {"SentimentErrorBudgetBurn[1d]", "SentimentErrorBudgetBurn[3d]"}
    fast = [
        "SentimentHighErrorRate",
        "SentimentErrorBudgetBurn[1h]",
        "SentimentErrorBudgetBurn[6h]",
    ]
    assert pairs == {
        *((source, target) for source in fast for target in slow_burns),
        ("SentimentHighLatencyP99", "SentimentHighLatencyP95"),
        ("SentimentLowConfidence", "SentimentConfidenceDegraded"),
        ("SentimentLabelMixDrift", "SentimentLabelMixDriftInfo"),
        ("SentimentFeedbackStoreDown", "SentimentStoreDroppingWrites"),
    }


def test_the_inhibition_check_sees_a_missing_family() -> None:
    # A critical and a warning without a family label would inhibit each other: the
    # simulation above must notice, or it proves nothing.
    critical = Rule("g", "A", True, "x", None, {"severity": "critical"}, {})
    warning = Rule("g", "B", True, "x", None, {"severity": "warning"}, {})
    assert ("A", "B") in _inhibited_pairs(_config(), [critical, warning])


def test_receivers_post_to_the_local_webhook() -> None:
    receivers = {r["name"]: r for r in _config()["receivers"]}
    assert set(receivers) == {"default", "pager", "watchdog"}
    for name, receiver in receivers.items():
        assert [w["url"] for w in receiver["webhook_configs"]] == [WEBHOOK], name
    assert receivers["default"]["webhook_configs"][0]["send_resolved"] is True
    assert receivers["pager"]["webhook_configs"][0]["send_resolved"] is True


def test_watchdog_has_its_own_route_with_a_short_repeat() -> None:
    route = _config()["route"]
    assert route["receiver"] == "default"
    watchdog = [r for r in route["routes"] if r["receiver"] == "watchdog"]
    assert len(watchdog) == 1 and watchdog[0]["matchers"] == ['alertname="Watchdog"']
    assert watchdog[0]["repeat_interval"] == "1m" and watchdog[0]["group_interval"] == "1m"
    assert route["routes"][0] is watchdog[0], "Watchdog's route comes first"


def test_no_secret_is_written_in_the_config_or_its_examples() -> None:
    text = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    for config in (load_yaml_text(text), load_yaml_text(uncomment_examples(text))):
        inline = {key for key, _ in _keys(config) if key in SECRET_KEYS}
        assert not inline, f"secrets must come from *_file settings: {inline}"
    examples = load_yaml_text(uncomment_examples(text))
    file_keys = {key: value for key, value in _keys(examples) if key.endswith("_file")}
    assert set(file_keys) == {"api_url_file", "auth_password_file"}
    assert all(str(path).startswith("/etc/alertmanager/secrets/") for path in file_keys.values())
    assert "hooks.slack.com" not in text


# --- amtool (apt: prometheus-alertmanager) ------------------------------------------------


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("amtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.slow
def test_amtool_accepts_the_config() -> None:
    result = _amtool("check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "3 receivers" in result.stdout


@pytest.mark.slow
def test_amtool_accepts_the_slack_and_email_examples(tmp_path: Path) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_text(uncomment_examples(ALERTMANAGER_CONFIG.read_text(encoding="utf-8")))
    result = _amtool("check-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 receivers" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=SentimentHighErrorRate", "severity=critical", "family=errors"], "pager"),
        (["alertname=SentimentHighLatencyP95", "severity=warning", "family=latency"], "default"),
        (["alertname=SentimentConfidenceDegraded", "severity=info"], "default"),
        (["alertname=Watchdog", "severity=none"], "watchdog"),
        (["alertname=Unlabelled"], "default"),
    ],
)
def test_alerts_route_by_severity(labels: list[str], receiver: str) -> None:
    result = _amtool(
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"--verify.receivers={receiver}",
        *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver
