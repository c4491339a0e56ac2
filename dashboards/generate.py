"""Render every dashboard to JSON, write the files, or check that the committed ones are current."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from dashboards import api, availability, feedback, logs, overview, server
from dashboards import model as model_dashboard
from dashboards.alerts import ALERTS_FILE, ROOT, Thresholds, load_thresholds

OUT_DIR = ROOT / "deploy" / "grafana" / "dashboards"
GLOB = "sentimon-*.json"

# Every dashboard, in menu order.
BUILDERS: tuple[Callable[[Thresholds], model.Dashboard], ...] = (
    overview.build,
    api.build,
    model_dashboard.build,
    feedback.build,
    server.build,
    logs.build,
    availability.build,
)


def render(dashboard: model.Dashboard) -> str:
    """The JSON as committed: sorted keys, 2-space indent, one trailing newline."""
    return json.dumps(dashboard, cls=JSONEncoder, sort_keys=True, indent=2) + "\n"


def generate(alerts_file: Path = ALERTS_FILE) -> dict[str, str]:
    """File name -> JSON text, for every dashboard."""
    thresholds = load_thresholds(alerts_file)
    files: dict[str, str] = {}
    for build in BUILDERS:
        dashboard = build(thresholds)
        name = f"{dashboard.uid}.json"
        if name in files:
            raise ValueError(f"two dashboards share the uid {dashboard.uid}")
        files[name] = render(dashboard)
    return files


@dataclass(frozen=True)
class Diff:
    stale: list[str]  # differ from the generator's output
    missing: list[str]  # generated but not on disk
    extra: list[str]  # sentimon-*.json on disk that no dashboard generates

    def __bool__(self) -> bool:
        return bool(self.stale or self.missing or self.extra)


def compare(files: dict[str, str], out_dir: Path = OUT_DIR, glob: str = GLOB) -> Diff:
    on_disk = {path.name for path in out_dir.glob(glob)}
    stale, missing = [], []
    for name, text in sorted(files.items()):
        path = out_dir / name
        if not path.exists():
            missing.append(name)
        elif path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return Diff(stale=stale, missing=missing, extra=sorted(on_disk - set(files)))


def write(files: dict[str, str], out_dir: Path = OUT_DIR, glob: str = GLOB) -> Diff:
    """Write changed files and remove generated files no dashboard produces any more."""
    out_dir.mkdir(parents=True, exist_ok=True)
    diff = compare(files, out_dir, glob)
    for name in [*diff.stale, *diff.missing]:
        (out_dir / name).write_text(files[name], encoding="utf-8")
    for name in diff.extra:
        (out_dir / name).unlink()
    return diff
