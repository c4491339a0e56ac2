"""API (RED): rate, errors and duration per handler and status, then saturation and sizes.

The HTTP series (sentimon.metrics.http; prometheus-fastapi-instrumentator's names and labels):
`http_requests_total{handler,method,status}` with exact codes ("200", "422"), the histogram
`http_request_duration_seconds{handler,method}`, and the summaries `http_request_size_bytes` and
`http_response_size_bytes{handler}`, and the gauge `http_requests_inprogress{handler,method}`.
Unmatched paths (404s) have handler="none"; /metrics is not counted.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards.alerts import Thresholds
from dashboards.common import API_UID, MODEL_UID, Doc, Row, assemble, drilldown, job_variable, steps
from dashboards.panels import Panels, Q
from dashboards.promql import (
    HANDLER_LEGEND,
    mean,
    or_none,
    quantile,
    rate,
    zero_filled_ratio,
)

TITLE = "sentimon / API (RED)"
REQUESTS = "http_requests_total"
DURATION = "http_request_duration_seconds"


def build(th: Thresholds) -> model.Dashboard:
    p = Panels(th)
    latency_lines = steps("green", (th.latency_p95, "orange"), (th.latency_p99, "red"))
    rate_row = [
        p.timeseries(
            "Request rate",
            Doc(
                "HTTP requests per second, all handlers: the 5-minute rate the alerts use and "
                "the short-window rate.",
                f"Below {th.low_throughput:g} req/s after an hour above "
                f"{th.usual_throughput:g} req/s: traffic stopped arriving.",
                ("SentimentLowThroughput",),
            ),
            "reqps",
            [
                Q('job:http_requests:rate5m{job="$job"}', "5m rate"),
                Q(rate(REQUESTS), "rate"),
            ],
            thresholds=steps("orange", (th.low_throughput, "green")),
            span=8,
        ),
        p.timeseries(
            "Requests by handler",
            Doc(
                "HTTP requests per second per endpoint (route template; none = unknown path).",
                "An endpoint dropping to 0, or many requests to handler none (scanners).",
            ),
            "reqps",
            [Q(rate(REQUESTS, by=("handler",)), HANDLER_LEGEND)],
            stack=common.StackingMode.NORMAL,
            span=8,
        ),
        p.timeseries(
            "Requests by status",
            Doc(
                "HTTP requests per second per status code.",
                "Any 5xx; a rising share of 4xx (422 bad input, 413 too large, 429 overload).",
                ("SentimentHighErrorRate", "SentimentHighClientErrorRate"),
            ),
            "reqps",
            [Q(rate(REQUESTS, by=("status",)), "{{status}}")],
            stack=common.StackingMode.NORMAL,
            span=8,
        ),
    ]
    errors_row = [
        p.timeseries(
            "5xx ratio",
            Doc(
                "Share of requests answered with a 5xx (5-minute windows), overall and per "
                "handler.",
                f"Above {th.error_budget:.0%} (the SLO's budget) for long; above "
                f"{th.error_ratio:.0%} for a minute pages.",
                ("SentimentHighErrorRate", "SentimentErrorBudgetBurn"),
            ),
            "percentunit",
            [
                Q('job:http_requests_5xx:ratio_rate5m{job="$job"}', "all"),
                Q('job_handler:http_requests_5xx:ratio_rate5m{job="$job"}', HANDLER_LEGEND),
            ],
            thresholds=steps("green", (th.error_budget, "orange"), (th.error_ratio, "red")),
            min_value=0,
            span=8,
        ),
        p.timeseries(
            "4xx ratio",
            Doc(
                "Share of requests rejected with a 4xx (5-minute windows), overall and per "
                "handler.",
                f"Above {th.client_error_ratio:.0%} with real traffic: a broken client, a "
                "scanner, or 429s from overload.",
                ("SentimentHighClientErrorRate",),
            ),
            "percentunit",
            [
                Q('job:http_requests_4xx:ratio_rate5m{job="$job"}', "all"),
                # The same 5-minute window as the alert's ratio, per handler.
                Q(zero_filled_ratio(REQUESTS, 'status=~"4.."', ("handler",), "5m"), HANDLER_LEGEND),
            ],
            thresholds=steps("green", (th.client_error_ratio, "orange")),
            min_value=0,
            span=8,
        ),
        p.timeseries(
            "Errors by handler and status",
            Doc(
                "Requests per second answered with a 4xx or 5xx, per handler and status "
                "(a single none series at 0 when there are none).",
                "Any 5xx series; a 4xx series growing on one handler.",
                ("SentimentHighErrorRate", "SentimentHighClientErrorRate"),
            ),
            "reqps",
            [
                Q(
                    or_none(
                        rate(REQUESTS, 'status=~"4..|5.."', by=("handler", "status")), "status"
                    ),
                    "{{handler}} {{status}}",
                )
            ],
            span=8,
        ),
        p.timeseries(
            "Errors by type",
            Doc(
                "Error responses per second by error_type (the body's error_type: "
                "invalid_input, text_too_long, overloaded, model_not_ready, timeout, ...); "
                "error types at 0 are hidden.",
                "inference_failed, internal_error (500), timeout or model_not_ready (503); "
                "overloaded (429) means the queue is full.",
                ("SentimentHighErrorRate", "SentimentHighClientErrorRate"),
            ),
            "reqps",
            [
                Q(
                    or_none('job_error_type:sentiment_errors:rate5m{job="$job"} > 0', "error_type"),
                    "{{error_type}}",
                )
            ],
            span=24,
            links=[drilldown("Model", MODEL_UID)],
        ),
    ]
    duration_row = [
        p.timeseries(
            "Latency percentiles",
            Doc(
                "p50, p95 and p99 of HTTP request duration, all handlers, with the alert lines.",
                f"p95 above {th.latency_p95 * 1000:g} ms; p99 above {th.latency_p99:g} s.",
                ("SentimentHighLatencyP95", "SentimentHighLatencyP99"),
            ),
            "s",
            [Q(quantile(q, DURATION), f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)],
            thresholds=latency_lines,
            span=8,
        ),
        p.timeseries(
            "p95 latency by handler",
            Doc(
                "95th percentile of request duration per endpoint (5-minute windows).",
                f"An endpoint above {th.latency_p95 * 1000:g} ms; /predict/batch is slower "
                "by nature (many texts per request).",
                ("SentimentHighLatencyP95",),
            ),
            "s",
            [
                Q(
                    'job_handler:http_request_duration_seconds:p95_rate5m{job="$job"}',
                    HANDLER_LEGEND,
                )
            ],
            thresholds=steps("green", (th.latency_p95, "orange")),
            span=8,
        ),
        p.timeseries(
            "p99 latency by handler",
            Doc(
                "99th percentile of request duration per endpoint.",
                f"An endpoint above {th.latency_p99:g} s: requests queue behind a busy worker.",
                ("SentimentHighLatencyP99",),
            ),
            "s",
            [Q(quantile(0.99, DURATION, by=("handler",)), HANDLER_LEGEND)],
            thresholds=steps("green", (th.latency_p99, "red")),
            span=8,
        ),
        p.heatmap(
            "Request duration distribution",
            Doc(
                "How many requests fell in each duration bucket per interval, all handlers.",
                f"Mass moving above the {th.latency_p95 * 1000:g} ms bucket; a second band "
                "(bimodal) often means queueing.",
                ("SentimentHighLatencyP95", "SentimentHighLatencyP99"),
            ),
            "short",
            Q(
                rate(DURATION + "_bucket", by=("le",), func="increase"),
                "{{le}}",
                heatmap=True,
            ),
            y_unit="s",
            span=24,
        ),
    ]
    saturation_row = [
        p.timeseries(
            "Requests in progress",
            Doc(
                "Requests being served right now, per handler (the /metrics scrape itself "
                "counts 1 while it runs).",
                "Growing on /predict or /predict/batch: the queue backs up (see queue depth).",
                ("SentimentHighLatencyP99",),
            ),
            "short",
            [Q('sum by (handler) (http_requests_inprogress{job="$job"})', HANDLER_LEGEND)],
            span=8,
            links=[drilldown("Model", MODEL_UID)],
        ),
        p.timeseries(
            "Mean request size",
            Doc(
                "Mean Content-Length of requests per handler (0 for GETs).",
                "Growing: callers send longer texts or bigger batches; latency follows.",
            ),
            "bytes",
            [Q(mean("http_request_size_bytes", by=("handler",)), HANDLER_LEGEND)],
            span=8,
        ),
        p.timeseries(
            "Mean response size",
            Doc(
                "Mean Content-Length of responses per handler.",
                "A sudden change on one endpoint: the response shape changed.",
            ),
            "bytes",
            [Q(mean("http_response_size_bytes", by=("handler",)), HANDLER_LEGEND)],
            span=8,
        ),
        p.timeseries(
            "Bytes received and sent",
            Doc(
                "Request and response bytes per second, all handlers (Content-Length).",
                "Far above the usual with the same request rate: oversized inputs.",
            ),
            "Bps",
            [
                Q(rate("http_request_size_bytes_sum"), "received"),
                Q(rate("http_response_size_bytes_sum"), "sent"),
            ],
            span=24,
        ),
    ]
    return assemble(
        API_UID,
        TITLE,
        "RED view of the HTTP API: rate, errors and duration by endpoint and status.",
        [
            Row("Rate", rate_row),
            Row("Errors", errors_row),
            Row("Duration", duration_row),
            Row("Saturation and payload sizes", saturation_row),
        ],
        variables=[job_variable()],
        tags=["api"],
    )
