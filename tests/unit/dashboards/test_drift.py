"""The drift rows of the Drift & feedback dashboard: what they show and how the bars sort."""

from __future__ import annotations

import re
from typing import Any

from dashboards.common import FEEDBACK_UID
from dashboards.drift import PADS
from dashboards.queries import panels, prometheus_targets
from sentimon.drift.reference import HISTOGRAM_EDGES, le_string

# Recorded series an on-call engineer needs on the dashboard (issue 12, item 6).
SHOWN = {
    "job_sentiment:sentiment_label_mix:share5m",
    "job_sentiment:sentiment_reference_share:max",
    "job:sentiment_label_mix:chi2_5m",
    "job:sentiment_label_mix:pvalue5m",
    "job:sentiment_label_mix:n5m",
    "job:sentiment_label_mix:psi5m",
    "job_statistic_severity:sentiment_drift_critical_value:max",
    "job:sentiment_model_revisions:count",
    "job_lower_le:sentiment_confidence_drift:share5m",
    "job_lower_le:sentiment_confidence_drift:share1h",
    "job:sentiment_confidence_drift:chi2_5m",
    "job_lower_le:sentiment_input_tokens_drift:share5m",
    "job_lower_le:sentiment_input_tokens_drift:share1h",
    "job:sentiment_input_tokens_drift:chi2_5m",
    "job:sentiment_text_drift:chi2_5m",
    "job:sentiment_text_drift:chi2_1h",
    "job:sentiment_text_drift:n5m",
    "job:sentiment_text_drift:df",
    "job:sentiment_text_drift:pvalue5m",
    "job:sentiment_text_drift_residual:z5m",
    "job:sentiment_text_drift_residual:z1h",
    "job_component:sentiment_text_drift:mean5m",
    "job:sentiment_reference_text_n:max",
    "job_histogram_lower_le:sentiment_reference_bucket_share:max",
    "job:sentiment_estimated_accuracy:ratio5m",
    "job:sentiment_estimated_accuracy:ratio1h",
    "job:sentiment_reference_accuracy:max",
    "job:sentiment_bbse_accuracy:ratio1h",
    "job_sentiment:sentiment_estimated_f1:ratio1h",
    "job:sentiment_estimated_f1:macro1h",
    "job:sentiment_feedback_agreement:ratio1h",
    "job_sentiment:sentiment_feedback_f1:ratio1h",
}


def board(boards: list[dict[str, Any]]) -> dict[str, Any]:
    return next(b for b in boards if b["uid"] == FEEDBACK_UID)


def test_the_drift_statistics_are_on_the_dashboard(boards: list[dict[str, Any]]) -> None:
    exprs = " ".join(q.raw for q in prometheus_targets(board(boards)))
    used = set(re.findall(r"[\w:]+(?=\{)", exprs))
    assert used >= SHOWN, SHOWN - used


def test_drift_rows_come_first(boards: list[dict[str, Any]]) -> None:
    rows = [p["title"] for p in board(boards)["panels"] if p["type"] == "row"]
    assert rows[:5] == [
        "Label-mix drift",
        "Confidence and input-length drift",
        "Text drift",
        "Drift p-values and PSI",
        "Label-free accuracy",
    ]
    assert "Feedback agreement" in rows


def test_bins_sort_by_their_upper_edge_as_text() -> None:
    """The `order` label of a bar chart's bins (pad + le) sorts like the edges' numbers."""
    for histogram, edges in HISTOGRAM_EDGES.items():
        orders = []
        for edge in edges:
            le = le_string(edge)
            pads = [pad for pad, pattern in PADS if re.fullmatch(pattern, le)]
            assert len(pads) <= 1, (histogram, le)
            orders.append("".join(pads) + le)
        assert orders == sorted(orders), histogram


def test_bar_charts_show_live_and_reference_per_bin(boards: list[dict[str, Any]]) -> None:
    charts = [p for p in panels(board(boards)) if p["type"] == "barchart"]
    assert len(charts) == 2
    for chart in charts:
        assert chart["options"]["xField"] == "bin"
        rename = next(
            t["options"]["renameByName"] for t in chart["transformations"] if t["id"] == "organize"
        )
        assert set(rename.values()) == {"live (5m)", "live (1h)", "reference"}
        assert all(t["instant"] and t["format"] == "table" for t in chart["targets"])
