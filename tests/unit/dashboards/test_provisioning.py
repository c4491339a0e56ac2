from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dashboards.alerts import ROOT
from dashboards.queries import DASHBOARDS_DIR

PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def test_datasources_have_the_uids_the_dashboards_use() -> None:
    sources = {
        source["uid"]: source
        for source in _load(PROVISIONING / "datasources" / "datasources.yaml")["datasources"]
    }
    assert set(sources) == {"prometheus", "loki", "alertmanager"}
    assert (sources["prometheus"]["type"], sources["prometheus"]["url"]) == (
        "prometheus",
        "http://prometheus:9090",
    )
    assert (sources["loki"]["type"], sources["loki"]["url"]) == ("loki", "http://loki:3100")
    alertmanager = sources["alertmanager"]
    assert (alertmanager["type"], alertmanager["url"]) == (
        "alertmanager",
        "http://alertmanager:9093",
    )
    assert alertmanager["jsonData"]["implementation"] == "prometheus"
    assert sources["prometheus"]["jsonData"]["timeInterval"] == "15s"


def test_dashboard_provider_loads_the_generated_folder() -> None:
    (provider,) = _load(PROVISIONING / "dashboards" / "dashboards.yaml")["providers"]
    assert provider["type"] == "file" and provider["folder"] == "sentimon"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert DASHBOARDS_DIR == ROOT / "deploy" / "grafana" / "dashboards"
