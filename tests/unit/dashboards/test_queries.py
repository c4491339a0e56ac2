from __future__ import annotations

from typing import Any

import pytest

from dashboards.queries import (
    DEFAULT_VALUES,
    load_dashboards,
    loki_targets,
    prometheus_targets,
    substitute,
)


def test_substitute_every_form() -> None:
    assert substitute('rate(x{job="$job"}[$__rate_interval])') == 'rate(x{job="sentimon"}[1m])'
    assert substitute("${job}-${job:regex} $__range $__interval") == "sentimon-sentimon 5m 15s"
    assert substitute('x{instance=~"$instance"}') == 'x{instance=~".+"}'
    assert substitute("$job", {"job": "other"}) == "other"
    assert substitute('"^/path$"') == '"^/path$"'


def test_unknown_variable_raises() -> None:
    with pytest.raises(ValueError, match=r"\$nope"):
        substitute("x{a='$nope'}")


def test_defaults_are_documented() -> None:
    assert DEFAULT_VALUES["job"] == "sentimon" and DEFAULT_VALUES["__rate_interval"] == "1m"


BOARD: dict[str, Any] = {
    "title": "T",
    "uid": "sentimon-t",
    "panels": [
        {
            "type": "timeseries",
            "title": "prom",
            "datasource": {"type": "prometheus", "uid": "prometheus"},
            "targets": [
                {"refId": "A", "expr": 'up{job="$job"}'},
                {"refId": "B", "expr": "hidden", "hide": True},
                {"refId": "C", "expr": "up", "instant": True},
            ],
        },
        {
            "type": "row",
            "title": "collapsed",
            "collapsed": True,
            "panels": [
                {
                    "type": "logs",
                    "title": "loki",
                    "datasource": {"type": "loki", "uid": "loki"},
                    "targets": [{"refId": "A", "expr": '{job="$job"} |= "$search"'}],
                }
            ],
        },
    ],
}


def test_targets_by_datasource_and_substituted() -> None:
    prom = prometheus_targets(BOARD)
    assert [(q.panel, q.ref_id, q.expr, q.instant) for q in prom] == [
        ("prom", "A", 'up{job="sentimon"}', False),
        ("prom", "C", "up", True),
    ]
    assert prom[0].raw == 'up{job="$job"}' and prom[0].dashboard == "T"
    (log,) = loki_targets(BOARD)
    assert (log.panel, log.expr) == ("loki", '{job="sentimon"} |= ""')


def test_committed_dashboards_have_queries() -> None:
    boards = load_dashboards()
    assert len(boards) == 7
    assert sum(len(prometheus_targets(b)) for b in boards) > 80
    assert sum(len(loki_targets(b)) for b in boards) >= 10
