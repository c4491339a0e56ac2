from __future__ import annotations

from typing import Any

import pytest

from dashboards.alerts import ROOT
from dashboards.logql import JSON_FIELDS, STREAM_LABELS, LogQLError, check, selector
from dashboards.queries import loki_targets


def test_every_loki_query_is_valid(boards: list[dict[str, Any]]) -> None:
    queries = [query for board in boards for query in loki_targets(board)]
    assert len(queries) >= 10
    for query in queries:
        check(query.expr)


def test_logs_dashboard_covers_stdout_stderr_and_syslog(boards: list[dict[str, Any]]) -> None:
    (logs,) = [board for board in boards if board["uid"] == "sentimon-logs"]
    exprs = " ".join(query.expr for query in loki_targets(logs))
    for stream in ('stream="stdout"', 'stream="stderr"', 'job="syslog"', "| json", "traceback"):
        assert stream in exprs


def test_json_fields_match_the_access_log_and_formatter() -> None:
    assert {"level", "event", "request_id", "status", "path", "duration_ms"} <= JSON_FIELDS
    assert set(STREAM_LABELS) == {"job", "stream", "instance"}


@pytest.mark.parametrize(
    "expr",
    [
        '{job="sentimon", stream="stdout"} |= "" | json | event="request" | status >= 400',
        'sum by (level) (count_over_time({job="sentimon"} | json | __error__="" [15s]))',
        'sum(count_over_time({job="syslog"} [1m]))',
        '{job="syslog"} |~ "(?i)error"',
        '{job="sentimon", stream="stderr"} | json | line_format "{{.message}}\\n{{.traceback}}"',
        "{job=`sentimon`} != `health`",
        'topk(3, sum by (path) (count_over_time({job="sentimon"} | json [5m])))',
    ],
)
def test_checker_accepts(expr: str) -> None:
    check(expr)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('{job="other"}', "not one of"),
        ('{app="sentimon"}', "not in the label set"),
        ('{job=~".*"}', "matches everything"),
        ('{job="sentimon"} | level="error"', "before `| json`"),
        ('sum by (level) (count_over_time({job="sentimon"} [1m]))', "before `| json`"),
        ('{job="sentimon"} | json | nope="x"', "unknown label"),
        ('{job="sentimon"} | jsonn', "unknown label"),
        ('{job="sentimon"} | json | line_format "{{.nope}}"', "unknown field"),
        ('count_over_time({job="sentimon"})', "expected range"),
        ('rate_over({job="sentimon"} [1m])', "unknown function"),
        ('{job="sentimon"} |= ', "unexpected end"),
        ('{job="sentimon"} |= "a', "cannot read"),
        ('{job="sentimon"} | json | status , 4', "bad label filter"),
        ('{job="sentimon"} extra', "unexpected"),
    ],
)
def test_checker_rejects(expr: str, message: str) -> None:
    with pytest.raises(LogQLError, match=message):
        check(expr)


def test_selector_builds_from_the_label_set() -> None:
    assert selector(job="$job", stream="stdout") == '{job="$job", stream="stdout"}'
    with pytest.raises(ValueError, match="label set"):
        selector(container="api")


def test_the_label_set_is_documented_for_the_log_shipper() -> None:
    readme = (ROOT / "deploy" / "grafana" / "README.md").read_text(encoding="utf-8")
    for label, values in STREAM_LABELS.items():
        assert f"| `{label}` |" in readme
        for value in values or ():
            assert f"`{value}`" in readme
