from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dashboards.__main__ import main
from dashboards.alerts import ALERTS_FILE
from dashboards.generate import OUT_DIR, compare, generate


def test_committed_dashboards_match_the_generator(generated: dict[str, str]) -> None:
    diff = compare(generated, OUT_DIR)
    assert not diff, f"run `python -m dashboards`: {diff}"


def test_generation_is_deterministic(generated: dict[str, str]) -> None:
    assert generate() == generated


def test_check_fails_until_written_then_passes(tmp_path: Path) -> None:
    assert main(["--check", "--out", str(tmp_path)]) == 1  # missing
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--check", "--out", str(tmp_path)]) == 0
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == sorted(generate())


def test_check_reports_stale_and_extra_files_and_write_fixes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--out", str(tmp_path)])
    stale = tmp_path / "sentimon-overview.json"
    stale.write_text(stale.read_text(encoding="utf-8").replace("Overview", "Overveiw"))
    (tmp_path / "sentimon-old.json").write_text("{}")
    capsys.readouterr()
    assert main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "stale:" in err and "sentimon-overview.json" in err
    assert "extra:" in err and "sentimon-old.json" in err
    assert main(["--out", str(tmp_path)]) == 0
    assert not (tmp_path / "sentimon-old.json").exists()
    assert main(["--check", "--out", str(tmp_path)]) == 0


def test_thresholds_follow_the_alert_rules(tmp_path: Path) -> None:
    alerts = tmp_path / "alerts.yaml"
    shutil.copy(ALERTS_FILE, alerts)
    text = alerts.read_text(encoding="utf-8")
    changed = text.replace(
        "job:http_request_duration_seconds:p95_rate5m > 0.3",
        "job:http_request_duration_seconds:p95_rate5m > 0.45",
    )
    assert changed != text
    alerts.write_text(changed, encoding="utf-8")
    before, after = generate(), generate(alerts)
    assert before != after
    assert '"value": 0.45' in after["sentimon-overview.json"]
    assert '"value": 0.45' not in before["sentimon-overview.json"]
