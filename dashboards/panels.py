"""Panel factories: one function per visualization, with the shared defaults applied.

Every factory takes a title, a `Doc` (rendered into the description), a unit and its queries,
so no panel can be built without them. Queries are `Q`s; the data source decides their kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from grafana_foundation_sdk.builders import (
    barchart,
    gauge,
    heatmap,
    logs,
    loki,
    piechart,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import heatmap as heatmap_model
from grafana_foundation_sdk.models import prometheus as prometheus_model

from dashboards.alerts import Thresholds
from dashboards.common import GRAPH_HEIGHT, LOKI, PROMETHEUS, STAT_HEIGHT, Doc, Steps

P = TypeVar(
    "P",
    timeseries.Panel,
    barchart.Panel,
    stat.Panel,
    gauge.Panel,
    heatmap.Panel,
    table.Panel,
    piechart.Panel,
    logs.Panel,
    statetimeline.Panel,
)

# The table builder under another name: inside `Panels`, `table` is the factory method.
TablePanel = table.Panel

# Value mappings for 0/1 series (up, model loaded, config reloads).
UP_DOWN = {"0": ("DOWN", "red"), "1": ("UP", "green")}


@dataclass(frozen=True)
class Q:
    """One query: PromQL or LogQL (by the panel's data source), with Grafana variables."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False  # Prometheus: one row per series (format=table)
    heatmap: bool = False  # Prometheus: buckets as a heatmap (format=heatmap)


def value_mappings(
    mapping: dict[str, tuple[str, str]] | None = None, nan_text: str | None = None
) -> list[model.ValueMapping]:
    """`{"1": ("UP", "green")}` -> a value mapping with that text and colour; `nan_text`: the
    text shown for NaN (a statistic with nothing to compute it from, see promql.or_nan)."""
    found: list[model.ValueMapping] = []
    if mapping:
        options = {
            value: model.ValueMappingResult(text=text, color=color, index=index)
            for index, (value, (text, color)) in enumerate(mapping.items())
        }
        found.append(model.ValueMap(options=options))
    if nan_text is not None:
        result = model.ValueMappingResult(text=nan_text, color="text", index=len(found))
        found.append(
            model.SpecialValueMap(
                options=model.DashboardSpecialValueMapOptions(
                    match=model.SpecialValueMatch.NA_N, result=result
                )
            )
        )
    return found


class Panels:
    """Panel factories bound to the alert thresholds (for runbook links in descriptions)."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds

    def _common(
        self,
        panel: P,
        title: str,
        doc: Doc,
        unit: str,
        queries: Sequence[Q],
        span: int,
        height: int,
        thresholds: Steps | None = None,
        links: Sequence[Builder[model.DashboardLink]] = (),
        datasource: model.DataSourceRef = PROMETHEUS,
    ) -> P:
        if not queries:
            raise ValueError(f"panel {title!r} has no query")
        panel = (
            panel.title(title)
            .description(doc.render(self.thresholds))
            .unit(unit)
            .datasource(datasource)
            .span(span)
            .height(height)
        )
        for index, query in enumerate(queries):
            panel = panel.with_target(_target(query, chr(ord("A") + index), datasource))
        if thresholds is not None:
            panel = panel.thresholds(
                dash.ThresholdsConfig()
                .mode(model.ThresholdsMode.ABSOLUTE)
                .steps([model.Threshold(value=v, color=c) for v, c in thresholds])
            )
        if links:
            panel = panel.links(list(links))
        return panel

    def timeseries(
        self,
        title: str,
        doc: Doc,
        unit: str,
        queries: Sequence[Q],
        *,
        thresholds: Steps | None = None,
        stack: common.StackingMode | None = None,
        bars: bool = False,
        min_value: float | None = None,
        max_value: float | None = None,
        band: tuple[str, str] | None = None,
        dashed: Sequence[str] = (),
        colors: Mapping[str, str] | None = None,
        right_axis: Mapping[str, str] | None = None,
        log_scale: bool = False,
        span: int = 12,
        height: int = GRAPH_HEIGHT,
        links: Sequence[Builder[model.DashboardLink]] = (),
        datasource: model.DataSourceRef = PROMETHEUS,
    ) -> timeseries.Panel:
        """`band=(upper, lower)`: shade between the series with those legends (an interval).

        Series picked by a regex on their legend: `dashed` draws them dashed (a reference or an
        alert line), `colors` gives them a fixed colour (regex -> colour), `right_axis` puts
        them on a right-hand axis in another unit (regex -> unit, e.g. the N of a test).
        `log_scale`: a base-10 y axis (p-values).
        """
        panel = self._common(
            timeseries.Panel(),
            title,
            doc,
            unit,
            queries,
            span,
            height,
            thresholds,
            links,
            datasource,
        )
        panel = panel.line_width(1).fill_opacity(10).show_points(common.VisibilityMode.NEVER)
        panel = panel.legend(
            cb.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        ).tooltip(cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
        if thresholds is not None and len(thresholds) > 1:
            # Draw the alert lines on the graph.
            panel = panel.thresholds_style(
                cb.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
            )
        if stack is not None:
            panel = panel.stacking(cb.StackingConfig().mode(stack)).fill_opacity(40)
        if bars:
            panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
        if min_value is not None:
            panel = panel.min(min_value)
        if max_value is not None:
            panel = panel.max(max_value)
        if band is not None:
            upper, lower = band
            line = [model.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash"})]
            panel = panel.override_by_name(
                upper,
                [
                    *line,
                    model.DynamicConfigValue(id_val="custom.fillBelowTo", value=lower),
                    model.DynamicConfigValue(id_val="custom.fillOpacity", value=20),
                ],
            ).override_by_name(
                lower, [*line, model.DynamicConfigValue(id_val="custom.fillOpacity", value=0)]
            )
        for pattern in dashed:
            panel = panel.override_by_regexp(pattern, [_DASHED])
        for pattern, color in (colors or {}).items():
            panel = panel.override_by_regexp(pattern, [_fixed_color(color)])
        for pattern, axis_unit in (right_axis or {}).items():
            panel = panel.override_by_regexp(
                pattern,
                [
                    model.DynamicConfigValue(id_val="unit", value=axis_unit),
                    model.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
                    model.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
                ],
            )
        if log_scale:
            panel = panel.scale_distribution(
                cb.ScaleDistributionConfig().type(common.ScaleDistribution.LOG).log(10)
            )
        return panel

    def stat(
        self,
        title: str,
        doc: Doc,
        unit: str,
        queries: Sequence[Q],
        *,
        thresholds: Steps | None = None,
        mappings: dict[str, tuple[str, str]] | None = None,
        graph: bool = True,
        span: int = 4,
        height: int = STAT_HEIGHT,
        links: Sequence[Builder[model.DashboardLink]] = (),
        decimals: int | None = None,
        nan_text: str | None = None,
    ) -> stat.Panel:
        panel = self._common(
            stat.Panel(),
            title,
            doc,
            unit,
            queries,
            span,
            height,
            thresholds or [(None, "blue")],
            links,
        )
        color = (
            common.BigValueColorMode.BACKGROUND if thresholds else common.BigValueColorMode.VALUE
        )
        panel = (
            panel.color_mode(color)
            .graph_mode(common.BigValueGraphMode.AREA if graph else common.BigValueGraphMode.NONE)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        )
        if mappings or nan_text is not None:
            panel = panel.mappings(value_mappings(mappings, nan_text))
        if nan_text is not None:
            panel = panel.no_value(nan_text)
        if decimals is not None:
            panel = panel.decimals(decimals)
        return panel

    def gauge(
        self,
        title: str,
        doc: Doc,
        unit: str,
        queries: Sequence[Q],
        *,
        thresholds: Steps,
        min_value: float,
        max_value: float,
        span: int = 4,
        height: int = GRAPH_HEIGHT,
    ) -> gauge.Panel:
        panel = self._common(gauge.Panel(), title, doc, unit, queries, span, height, thresholds)
        return (
            panel.min(min_value)
            .max(max_value)
            .decimals(2)
            .show_threshold_markers(True)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        )

    def heatmap(
        self,
        title: str,
        doc: Doc,
        unit: str,
        query: Q,
        *,
        y_unit: str,
        span: int = 12,
        height: int = GRAPH_HEIGHT,
    ) -> heatmap.Panel:
        """A Prometheus histogram's buckets over time (query with format=heatmap)."""
        panel = self._common(heatmap.Panel(), title, doc, unit, [query], span, height)
        return (
            panel.calculate(False)
            .y_axis(heatmap.YAxisConfig().unit(y_unit))
            .color(
                heatmap.HeatmapColorOptions()
                .mode(heatmap_model.HeatmapColorMode.SCHEME)
                .scheme("Oranges")
                .scale(heatmap_model.HeatmapColorScale.EXPONENTIAL)
                .exponent(0.5)
                .steps(64)
            )
            .cell_gap(1)
        )

    def table(
        self,
        title: str,
        doc: Doc,
        unit: str,
        queries: Sequence[Q],
        *,
        hide: Sequence[str] = ("Time", "Value", "__name__"),
        rename: Mapping[str, str] | None = None,
        merge: bool = False,
        decimals: int | None = None,
        nan_text: str | None = None,
        units: Mapping[str, str] | None = None,
        span: int = 12,
        height: int = GRAPH_HEIGHT,
    ) -> table.Panel:
        """One row per series (instant queries, format=table), label columns only by default.

        `merge`: join the queries' tables on their labels, one value column per query
        (`Value #A`, `Value #B`, ...; name them with `rename`). `units`: column (as renamed)
        -> its unit and decimals, where it differs from the panel's (a count beside ratios).
        """
        panel = self._common(table.Panel(), title, doc, unit, queries, span, height)
        if merge:
            panel = panel.with_transformation(
                model.DataTransformerConfig(id_val="merge", options={})
            )
        if decimals is not None:
            panel = panel.decimals(decimals)
        if nan_text is not None:
            panel = panel.mappings(value_mappings(nan_text=nan_text))
        for column, column_unit in (units or {}).items():
            panel = panel.override_by_name(
                column,
                [
                    model.DynamicConfigValue(id_val="unit", value=column_unit),
                    model.DynamicConfigValue(id_val="decimals", value=0),
                ],
            )
        return panel.with_transformation(
            model.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": dict.fromkeys(hide, True),
                    "renameByName": dict(rename or {}),
                },
            )
        )

    def barchart(
        self,
        title: str,
        doc: Doc,
        unit: str,
        queries: Sequence[Q],
        *,
        x_field: str,
        sort_by: str,
        hide: Sequence[str] = ("Time", "__name__"),
        rename: Mapping[str, str] | None = None,
        colors: Mapping[str, str] | None = None,
        max_value: float | None = None,
        span: int = 12,
        height: int = GRAPH_HEIGHT,
    ) -> barchart.Panel:
        """Instant table queries joined on their labels, a group of bars per value of the
        `x_field` label (one bar per query: `Value #A`, ... renamed with `rename`), the groups
        ordered by the `sort_by` label as text. `colors`: field name -> fixed colour."""
        for query in queries:
            if not (query.instant and query.table):
                raise ValueError(f"panel {title!r}: a bar chart needs instant table queries")
        panel = self._common(barchart.Panel(), title, doc, unit, queries, span, height)
        panel = (
            panel.with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
            .with_transformation(
                model.DataTransformerConfig(
                    id_val="sortBy", options={"fields": {}, "sort": [{"field": sort_by}]}
                )
            )
            .with_transformation(
                model.DataTransformerConfig(
                    id_val="organize",
                    options={
                        "excludeByName": dict.fromkeys(hide, True),
                        "renameByName": dict(rename or {}),
                    },
                )
            )
            .x_field(x_field)
            .x_tick_label_max_length(24)  # explicit: 0 may truncate every label
            .orientation(common.VizOrientation.VERTICAL)
            .show_value(common.VisibilityMode.NEVER)
            .group_width(0.7)
            .bar_width(0.9)
            .fill_opacity(70)
            .min(0)
            .legend(
                cb.VizLegendOptions()
                .display_mode(common.LegendDisplayMode.LIST)
                .placement(common.LegendPlacement.BOTTOM)
                .show_legend(True)
            )
            .tooltip(cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
        )
        if max_value is not None:
            panel = panel.max(max_value)
        for name, color in (colors or {}).items():
            panel = panel.override_by_name(name, [_fixed_color(color)])
        return panel

    def matrix(
        self,
        title: str,
        doc: Doc,
        unit: str,
        query: Q,
        *,
        rows: str,
        columns: str,
        decimals: int = 0,
        span: int = 12,
        height: int = GRAPH_HEIGHT,
    ) -> TablePanel:
        """One instant table query laid out as a matrix: a row per value of the `rows` label,
        a column per value of `columns` (a confusion matrix)."""
        if not (query.instant and query.table):
            raise ValueError(f"panel {title!r}: a matrix needs an instant table query")
        panel = self._common(table.Panel(), title, doc, unit, [query], span, height)
        return (
            panel.decimals(decimals)
            .with_transformation(
                model.DataTransformerConfig(
                    id_val="groupingToMatrix",
                    options={
                        "rowField": rows,
                        "columnField": columns,
                        "valueField": "Value",
                    },
                )
            )
            .cell_options(
                common.TableColoredBackgroundCellOptions(
                    mode=common.TableCellBackgroundDisplayMode.GRADIENT
                )
            )
            .color_scheme(dash.FieldColor().mode(model.FieldColorModeId.CONTINUOUS_BLUES))
        )

    def piechart(
        self,
        title: str,
        doc: Doc,
        unit: str,
        queries: Sequence[Q],
        *,
        span: int = 6,
        height: int = GRAPH_HEIGHT,
    ) -> piechart.Panel:
        panel = self._common(piechart.Panel(), title, doc, unit, queries, span, height)
        return panel.reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))

    def state_timeline(
        self,
        title: str,
        doc: Doc,
        unit: str,
        queries: Sequence[Q],
        *,
        thresholds: Steps,
        mappings: dict[str, tuple[str, str]],
        span: int = 24,
        height: int = GRAPH_HEIGHT,
    ) -> statetimeline.Panel:
        panel = self._common(
            statetimeline.Panel(), title, doc, unit, queries, span, height, thresholds
        )
        return panel.mappings(value_mappings(mappings)).show_value(common.VisibilityMode.NEVER)

    def logs(
        self,
        title: str,
        doc: Doc,
        query: Q,
        *,
        span: int = 24,
        height: int = 10,
    ) -> logs.Panel:
        """Log lines from Loki; the unit is "none" (a logs panel shows no numbers)."""
        panel = self._common(
            logs.Panel(), title, doc, "none", [query], span, height, datasource=LOKI
        )
        return (
            panel.show_time(True)
            .wrap_log_message(True)
            .prettify_log_message(False)
            .enable_log_details(True)
            .sort_order(common.LogsSortOrder.DESCENDING)
        )


_DASHED = model.DynamicConfigValue(
    id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
)


def _fixed_color(color: str) -> model.DynamicConfigValue:
    return model.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color})


def _target(query: Q, ref_id: str, datasource: model.DataSourceRef) -> Builder[variants.Dataquery]:
    if datasource.type_val == "loki":
        if query.table or query.heatmap:
            raise ValueError("table and heatmap formats are Prometheus options")
        target = loki.Dataquery().expr(query.expr).ref_id(ref_id).datasource(datasource)
        if query.legend:
            target = target.legend_format(query.legend)
        return target.instant(True) if query.instant else target.range(True)
    prom = prometheus.Dataquery().expr(query.expr).ref_id(ref_id).datasource(datasource)
    prom = prom.legend_format(query.legend or "__auto")
    prom = prom.instant() if query.instant else prom.range()
    if query.table:
        prom = prom.format(prometheus_model.PromQueryFormat.TABLE)
    elif query.heatmap:
        prom = prom.format(prometheus_model.PromQueryFormat.HEATMAP)
    return prom
