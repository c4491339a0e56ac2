"""Run a promtool rule-test suite written by a test (promtool comes with Debian's prometheus)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

PROMTOOL = shutil.which("promtool")


def run_rule_tests(folder: Path, suite: dict[str, Any]) -> None:
    """Write `suite` as test.yaml in `folder` (beside the rule files it names) and run it."""
    (folder / "test.yaml").write_text(yaml.safe_dump(suite), encoding="utf-8")
    assert PROMTOOL is not None, "promtool missing: run `make test` or apt-get install prometheus"
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "test.yaml"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
