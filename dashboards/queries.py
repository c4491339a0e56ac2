"""Every query of a dashboard's JSON, with Grafana's variables replaced by concrete values.

For tests that run the dashboards' queries against a live Prometheus or Loki:

    from dashboards.queries import load_dashboards, prometheus_targets
    for board in load_dashboards():
        for query in prometheus_targets(board):
            run(query.expr, instant=query.instant)  # none may fail or come back empty

Substitutions (DEFAULT_VALUES; pass `values=` to override or add):
    $job -> sentimon, $node_job -> node, $instance -> .+ (only used with =~),
    $search -> "" (Logs dashboard's free-text line filter),
    $__rate_interval -> 1m (4 x the 15s scrape interval, as Grafana computes it),
    $__interval -> 15s, $__range -> 5m, $__range_s -> 300.
Both `$name` and `${name}` / `${name:format}` forms are replaced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dashboards.alerts import ROOT

DASHBOARDS_DIR = ROOT / "deploy" / "grafana" / "dashboards"

DEFAULT_VALUES: Mapping[str, str] = {
    "job": "sentimon",
    "node_job": "node",
    "instance": ".+",
    "search": "",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
    "__range_s": "300",
}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # dashboard title
    uid: str  # dashboard uid
    panel: str  # panel title
    ref_id: str
    expr: str  # variables substituted: ready for the HTTP API
    raw: str  # as written in the dashboard
    instant: bool  # the panel asks for an instant query (else a range query)


def substitute(expr: str, values: Mapping[str, str] | None = None) -> str:
    """Replace Grafana variables; an unknown variable raises ValueError."""
    table = {**DEFAULT_VALUES, **(values or {})}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in table:
            raise ValueError(f"no value for Grafana variable ${name} in {expr!r}")
        return table[name]

    return _VARIABLE.sub(replace, expr)


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel but rows, including the panels inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def _targets(
    dashboard: Mapping[str, Any], kind: str, values: Mapping[str, str] | None
) -> list[PanelQuery]:
    found = []
    for panel in panels(dashboard):
        panel_kind = (panel.get("datasource") or {}).get("type")
        for target in panel.get("targets", []):
            target_kind = (target.get("datasource") or {}).get("type", panel_kind)
            if target_kind != kind or target.get("hide") or not target.get("expr"):
                continue
            found.append(
                PanelQuery(
                    dashboard=dashboard.get("title", ""),
                    uid=dashboard.get("uid", ""),
                    panel=panel.get("title", ""),
                    ref_id=target.get("refId", ""),
                    expr=substitute(target["expr"], values),
                    raw=target["expr"],
                    instant=bool(target.get("instant", False)),
                )
            )
    return found


def prometheus_targets(
    dashboard: Mapping[str, Any], values: Mapping[str, str] | None = None
) -> list[PanelQuery]:
    """The PromQL of every Prometheus panel query, variables substituted."""
    return _targets(dashboard, "prometheus", values)


def loki_targets(
    dashboard: Mapping[str, Any], values: Mapping[str, str] | None = None
) -> list[PanelQuery]:
    """The LogQL of every Loki panel query, variables substituted."""
    return _targets(dashboard, "loki", values)


def load_dashboards(directory: Path = DASHBOARDS_DIR) -> list[dict[str, Any]]:
    """The committed dashboards' JSON, in file-name order."""
    return [
        json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))
    ]
