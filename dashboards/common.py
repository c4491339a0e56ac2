"""Defaults every dashboard shares: data sources, variables, links, descriptions, layout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import dashboard as model

from dashboards.alerts import Thresholds

# Data sources, by the fixed UIDs of deploy/grafana/provisioning/datasources/datasources.yaml.
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid="prometheus")
LOKI = model.DataSourceRef(type_val="loki", uid="loki")

# Every dashboard carries this tag (the links between them follow it) and sits in this folder.
TAG = "sentimon"
UID_PREFIX = "sentimon-"

# Fixed dashboard UIDs (also the JSON file names): links and bookmarks rely on them.
OVERVIEW_UID = "sentimon-overview"
API_UID = "sentimon-api"
MODEL_UID = "sentimon-model"
SERVER_UID = "sentimon-server"
LOGS_UID = "sentimon-logs"
AVAILABILITY_UID = "sentimon-availability"
FEEDBACK_UID = "sentimon-drift-feedback"

# Scrape jobs of deploy/prometheus/prometheus.yml. The API's job is the `job` variable.
API_JOB = "sentimon"
NODE_JOB = "node"
PROMETHEUS_JOB = "prometheus"
ALERTMANAGER_JOB = "alertmanager"

# Grid: 24 columns wide; heights in grid rows (30 px each).
WIDTH = 24
STAT_HEIGHT = 4
GRAPH_HEIGHT = 8

Steps = Sequence[tuple[float | None, str]]


def steps(base: str, *above: tuple[float, str]) -> Steps:
    """Threshold steps: `base` colour below the first value, then each colour from its value."""
    return [(None, base), *above]


@dataclass(frozen=True)
class Doc:
    """A panel's description: what it shows, what bad looks like, which alerts cover it."""

    what: str
    bad: str
    alerts: tuple[str, ...] = ()

    def render(self, thresholds: Thresholds) -> str:
        if self.alerts:
            links = []
            for name in self.alerts:
                if name not in thresholds.runbooks:
                    raise ValueError(f"unknown alert {name!r} in a panel description")
                links.append(f"[{name}]({thresholds.runbooks[name]})")
            covered = ", ".join(links)
        else:
            covered = "none"
        return f"{self.what}\n\nBad: {self.bad}\n\nAlerts: {covered}."


@dataclass(frozen=True)
class Row:
    title: str
    panels: Sequence[Builder[model.Panel]]


def job_variable() -> Builder[model.VariableModel]:
    """The API's scrape job (`sentimon` unless a second deployment is scraped too)."""
    return (
        dash.QueryVariable("job")
        .label("API job")
        .description("Prometheus scrape job of the sentiment API.")
        .datasource(PROMETHEUS)
        .query("label_values(sentiment_model_loaded, job)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .current(model.VariableOption(selected=True, text=API_JOB, value=API_JOB))
    )


def links() -> list[Builder[model.DashboardLink]]:
    """A drop-down to every sentimon dashboard, keeping the time range and variables."""
    return [
        dash.DashboardLink("sentimon dashboards")
        .type(model.DashboardLinkType.DASHBOARDS)
        .tags([TAG])
        .as_dropdown(True)
        .include_vars(True)
        .keep_time(True),
        dash.DashboardLink("Runbooks")
        .type(model.DashboardLinkType.LINK)
        .url("https://github.com/sentimon/sentimon/blob/main/docs/runbooks.md")
        .icon("doc")
        .target_blank(True),
    ]


def drilldown(title: str, uid: str) -> Builder[model.DashboardLink]:
    """A panel link to another sentimon dashboard, same time range and job."""
    return (
        dash.DashboardLink(title)
        .type(model.DashboardLinkType.LINK)
        .url(f"/d/{uid}?${{__url_time_range}}&${{job:queryparam}}")
    )


def assemble(
    uid: str,
    title: str,
    description: str,
    rows: Sequence[Row],
    variables: Sequence[Builder[model.VariableModel]] = (),
    tags: Sequence[str] = (),
) -> model.Dashboard:
    """Build a dashboard: expanded rows, panels flowing left to right, ids in order."""
    if not uid.startswith(UID_PREFIX):
        raise ValueError(f"dashboard uid {uid!r} must start with {UID_PREFIX!r}")
    builder = (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG, *tags])
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .links(links())
    )
    for variable in variables:
        builder = builder.with_variable(variable)
    board = builder.build()
    board.panels = list(_layout(rows))
    return board


def _layout(rows: Sequence[Row]) -> list[model.Panel | model.RowPanel]:
    placed: list[model.Panel | model.RowPanel] = []
    y = 0
    for row in rows:
        placed.append(
            model.RowPanel(
                title=row.title,
                collapsed=False,
                id_val=len(placed) + 1,
                grid_pos=model.GridPos(h=1, w=WIDTH, x=0, y=y),
                panels=[],
            )
        )
        y += 1
        x, line_height = 0, 0
        for builder in row.panels:
            panel = builder.build()
            pos = panel.grid_pos or model.GridPos()
            if x + pos.w > WIDTH:
                x, y, line_height = 0, y + line_height, 0
            panel.grid_pos = model.GridPos(h=pos.h, w=pos.w, x=x, y=y)
            panel.id_val = len(placed) + 1
            placed.append(panel)
            x += pos.w
            line_height = max(line_height, pos.h)
        y += line_height
    return placed
