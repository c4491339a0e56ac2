"""promtool (apt: prometheus) on the Prometheus config, the rule files and their unit tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy._files import (
    PROMETHEUS_CONFIG,
    PROMETHEUS_DIR,
    RULE_FILES,
    RULE_TEST_FILES,
    require_binary,
)

pytestmark = pytest.mark.slow


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def test_promtool_accepts_the_prometheus_config() -> None:
    result = _promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.name for p in RULE_FILES])
def test_promtool_accepts_the_rules(path: Path) -> None:
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("path", RULE_TEST_FILES, ids=[p.name for p in RULE_TEST_FILES])
def test_promtool_rule_tests_pass(path: Path) -> None:
    result = _promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _mutated_copy(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of deploy/prometheus with `old` replaced by `new` in the alert rules."""
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, copy)
    alerts = copy / "rules" / "alerts.yaml"
    text = alerts.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in alerts.yaml"
    alerts.write_text(text.replace(old, new), encoding="utf-8")
    return copy


@pytest.mark.parametrize(
    ("old", "new", "test_file", "message"),
    [
        # A threshold moved: the 60% case no longer fires.
        (
            "job:http_requests_5xx:ratio_rate5m > 0.5",
            "job:http_requests_5xx:ratio_rate5m > 0.7",
            "api.test.yaml",
            "alertname: SentimentHighErrorRate, time: 2m",
        ),
        # A `for:` lengthened: the alert is still pending when the test expects it firing.
        (
            "for: 3h",
            "for: 4h",
            "slo.test.yaml",
            "alertname: SentimentErrorBudgetBurn, time: 3h1m",
        ),
        # tmpfs no longer excluded: the full /run now alerts too.
        (
            'fstype!~"tmpfs|',
            'fstype!~"',
            "infra.test.yaml",
            "alertname: HostLowDiskSpace, time: 5m",
        ),
    ],
)
def test_the_rule_tests_catch_a_broken_rule(
    tmp_path: Path, old: str, new: str, test_file: str, message: str
) -> None:
    copy = _mutated_copy(tmp_path, old, new)
    result = _promtool("test", "rules", str(copy / "tests" / test_file))
    assert result.returncode != 0, result.stdout
    assert message in result.stdout + result.stderr
