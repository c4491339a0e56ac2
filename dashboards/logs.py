"""Logs (Loki): the API's request log and events (stdout), errors and tracebacks (stderr), and
the host's syslog. Stream labels and JSON fields: see dashboards.logql."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards.alerts import Thresholds
from dashboards.common import API_JOB, LOGS_UID, LOKI, Doc, Row, assemble
from dashboards.logql import SYSLOG_JOB, selector
from dashboards.panels import Panels, Q

TITLE = "sentimon / Logs"
STDOUT = selector(job="$job", stream="stdout")
STDERR = selector(job="$job", stream="stderr")
SYSLOG = selector(job=SYSLOG_JOB)
SEARCH = '|= "$search"'
REQUESTS = f'{STDOUT} {SEARCH} | json | event="request"'


def variables() -> list[Builder[model.VariableModel]]:
    job = (
        dash.QueryVariable("job")
        .label("API job")
        .description("Loki job label of the API's logs.")
        .datasource(LOKI)
        .query('label_values({stream=~"stdout|stderr"}, job)')
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .current(model.VariableOption(selected=True, text=API_JOB, value=API_JOB))
    )
    search = (
        dash.TextBoxVariable("search")
        .label("line contains")
        .description("Show only lines containing this text, e.g. a request id (empty: all).")
        .default_value("")
        .current(model.VariableOption(selected=True, text="", value=""))
    )
    return [job, search]


def _volume(expr: str) -> str:
    return f"count_over_time({expr} [$__interval])"


def build(th: Thresholds) -> model.Dashboard:
    p = Panels(th)
    slow_ms = round(th.latency_p95 * 1000)
    # Metric queries drop lines `| json` cannot parse instead of failing on them.
    all_parsed = f'{selector(job="$job")} | json | __error__=""'
    requests_parsed = f'{REQUESTS} | __error__=""'
    volume_row = [
        p.timeseries(
            "Log lines by level",
            Doc(
                "The API's JSON log lines per interval by level (debug, info, warning, error).",
                "error lines appearing or warning lines growing.",
                ("SentimentHighErrorRate",),
            ),
            "short",
            [Q(f"sum by (level) ({_volume(all_parsed)})", "{{level}}")],
            stack=common.StackingMode.NORMAL,
            bars=True,
            span=8,
            datasource=LOKI,
        ),
        p.timeseries(
            "Requests by status (access log)",
            Doc(
                "Access-log lines per interval by HTTP status: the same requests as the "
                "metrics, seen from the logs.",
                "5xx lines; a burst of 4xx from one client (open the lines below).",
                ("SentimentHighErrorRate", "SentimentHighClientErrorRate"),
            ),
            "short",
            [Q(f"sum by (status) ({_volume(requests_parsed)})", "{{status}}")],
            stack=common.StackingMode.NORMAL,
            bars=True,
            span=8,
            datasource=LOKI,
        ),
        p.timeseries(
            "stderr and syslog lines",
            Doc(
                "Lines per interval on the API's stderr (errors only) and in the host's syslog.",
                "Any stderr line is an error; a syslog burst often means OOM kills or disk "
                "trouble.",
                ("SentimentHighErrorRate",),
            ),
            "short",
            [
                Q(f"sum({_volume(STDERR)})", "API stderr"),
                Q(f"sum({_volume(SYSLOG)})", "syslog"),
            ],
            bars=True,
            span=8,
            datasource=LOKI,
        ),
    ]
    request_row = [
        p.logs(
            "Request log",
            Doc(
                "One line per request: status, method, path, duration and request id "
                "(responses return the id in X-Request-ID; search for it above).",
                "Use it to find a failing or slow request's id, then its error below.",
            ),
            Q(
                f"{REQUESTS} | line_format "
                '"{{.status}} {{.method}} {{.path}} {{.duration_ms}} ms '
                'request_id={{.request_id}}"'
            ),
            span=12,
        ),
        p.logs(
            "Failed requests (4xx and 5xx)",
            Doc(
                "Access-log lines with a status of 400 or more.",
                "5xx lines; many 4xx from one client or path.",
                ("SentimentHighErrorRate", "SentimentHighClientErrorRate"),
            ),
            Q(f"{REQUESTS} | status >= 400"),
            span=12,
        ),
        p.logs(
            f"Slow requests (> {slow_ms} ms)",
            Doc(
                f"Access-log lines of requests slower than the p95 alert line ({slow_ms} ms).",
                "Many of them: see the Model dashboard's queue wait and inference time.",
                ("SentimentHighLatencyP95",),
            ),
            Q(f"{REQUESTS} | duration_ms > {slow_ms}"),
            span=12,
        ),
        p.logs(
            "App events",
            Doc(
                "stdout lines that are not access-log lines: startup, model loading, warnings.",
                "model_load_failed, warnings repeating.",
                ("SentimentModelNotLoaded",),
            ),
            Q(f'{STDOUT} {SEARCH} | json | event != "request"'),
            span=12,
        ),
    ]
    error_row = [
        p.logs(
            "Errors (stderr)",
            Doc(
                "Everything the API writes to stderr: error lines, with their tracebacks.",
                "Any line: each is a request or a component that failed.",
                ("SentimentHighErrorRate",),
            ),
            Q(f"{STDERR} {SEARCH}"),
            span=12,
        ),
        p.logs(
            "Tracebacks",
            Doc(
                "Error lines that carry a Python traceback, message and request id first.",
                "A new exception type; the same traceback repeating.",
                ("SentimentHighErrorRate",),
            ),
            Q(
                f'{STDERR} {SEARCH} | json | traceback != "" | line_format '
                '"{{.message}} request_id={{.request_id}}\\n{{.traceback}}"'
            ),
            span=12,
        ),
    ]
    syslog_row = [
        p.logs(
            "Host syslog",
            Doc(
                "The host's syslog (kernel, systemd, other daemons).",
                "Kernel errors, OOM kills, disk or network errors.",
                ("HostHighMemoryUsage", "HostLowDiskSpace"),
            ),
            Q(f"{SYSLOG} {SEARCH}"),
            span=12,
        ),
        p.logs(
            "Syslog problems",
            Doc(
                "Syslog lines mentioning errors, failures, OOM kills or segfaults.",
                "Out of memory / Killed process: the OOM killer ended something (maybe the "
                "API); I/O errors: a failing disk.",
                ("HostHighMemoryUsage", "HostLowDiskSpace"),
            ),
            Q(f'{SYSLOG} |~ "(?i)(error|fail|out of memory|killed process|segfault)"'),
            span=12,
        ),
    ]
    return assemble(
        LOGS_UID,
        TITLE,
        "The API's JSON logs and the host's syslog in Loki: requests, events, errors with "
        "tracebacks. Search by request id with the 'line contains' box.",
        [
            Row("Log volume", volume_row),
            Row("Requests and events (stdout)", request_row),
            Row("Errors (stderr)", error_row),
            Row("Host (syslog)", syslog_row),
        ],
        variables=variables(),
        tags=["logs"],
    )
