"""Overview: is the service up, fast, correct and quiet, at a glance; links to the details."""

from __future__ import annotations

from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards.alerts import Thresholds
from dashboards.common import (
    API_UID,
    AVAILABILITY_UID,
    FEEDBACK_UID,
    MODEL_UID,
    NODE_JOB,
    OVERVIEW_UID,
    SERVER_UID,
    Doc,
    Row,
    assemble,
    drilldown,
    job_variable,
    steps,
)
from dashboards.panels import UP_DOWN, Panels, Q
from dashboards.promql import disk_free_ratio, or_nan, or_zero, rate

TITLE = "sentimon / Overview"
NODE = f'job="{NODE_JOB}"'


def build(th: Thresholds) -> model.Dashboard:
    p = Panels(th)
    to_api = [drilldown("API (RED)", API_UID)]
    to_model = [drilldown("Model", MODEL_UID)]
    to_server = [drilldown("Server", SERVER_UID)]
    to_availability = [drilldown("Availability", AVAILABILITY_UID)]
    to_feedback = [drilldown("Drift & feedback", FEEDBACK_UID)]
    confidence = steps("red", (th.confidence_low, "orange"), (th.confidence_degraded, "green"))
    glance = [
        p.stat(
            "API up",
            Doc(
                "Whether Prometheus can scrape the API's /metrics (lowest value over its "
                "instances).",
                "DOWN: the process is dead, hung or unreachable.",
                ("SentimentApiDown",),
            ),
            "none",
            [Q('min(up{job="$job"})')],
            thresholds=steps("red", (1, "green")),
            mappings=UP_DOWN,
            graph=False,
            span=3,
            links=to_availability,
        ),
        p.stat(
            "Request rate",
            Doc(
                "HTTP requests per second served by the API over 5 minutes (all handlers).",
                f"Below {th.low_throughput:g} req/s when the last hour averaged more than "
                f"{th.usual_throughput:g} req/s: callers stopped sending or cannot reach the "
                "API. On an idle service a low value is normal.",
                ("SentimentLowThroughput",),
            ),
            "reqps",
            [Q('job:http_requests:rate5m{job="$job"}')],
            thresholds=steps("orange", (th.low_throughput, "green")),
            span=3,
            links=to_api,
        ),
        p.stat(
            "5xx error ratio",
            Doc(
                "Share of requests answered with a 5xx over 5 minutes (server faults: failed "
                f"inference, model not ready, timeouts). SLO: at most {th.error_budget:.0%}.",
                f"Above {th.error_budget:.0%} spends the error budget; above "
                f"{th.error_ratio:.0%} the service is effectively down.",
                ("SentimentHighErrorRate", "SentimentErrorBudgetBurn"),
            ),
            "percentunit",
            [Q('job:http_requests_5xx:ratio_rate5m{job="$job"}')],
            thresholds=steps("green", (th.error_budget, "orange"), (th.error_ratio, "red")),
            span=3,
            links=to_api,
        ),
        p.stat(
            "4xx error ratio",
            Doc(
                "Share of requests rejected with a 4xx over 5 minutes (bad input, unknown paths, "
                "429 when the queue is full).",
                f"Above {th.client_error_ratio:.0%}: a broken client, a scanner or overload.",
                ("SentimentHighClientErrorRate",),
            ),
            "percentunit",
            [Q('job:http_requests_4xx:ratio_rate5m{job="$job"}')],
            thresholds=steps("green", (th.client_error_ratio, "orange")),
            span=3,
            links=to_api,
        ),
        p.stat(
            "p95 latency",
            Doc(
                "95th percentile of HTTP request duration over 5 minutes, all handlers.",
                f"Above {th.latency_p95 * 1000:g} ms: users notice; queueing or slow inference.",
                ("SentimentHighLatencyP95",),
            ),
            "s",
            [Q('job:http_request_duration_seconds:p95_rate5m{job="$job"}')],
            thresholds=steps("green", (th.latency_p95, "orange")),
            span=3,
            links=to_api,
        ),
        p.stat(
            "p99 latency",
            Doc(
                "99th percentile of HTTP request duration over 5 minutes, all handlers.",
                f"Above {th.latency_p99:g} s: heavy queueing or a stalled worker; pages.",
                ("SentimentHighLatencyP99",),
            ),
            "s",
            [Q('job:http_request_duration_seconds:p99_rate5m{job="$job"}')],
            thresholds=steps("green", (th.latency_p99, "red")),
            span=3,
            links=to_api,
        ),
        p.stat(
            "Firing alerts",
            Doc(
                "Alerts firing now in Prometheus (the ALERTS series), the always-firing "
                "Watchdog left out.",
                "Anything above 0: see the Availability dashboard's alert table.",
            ),
            "none",
            [Q(or_zero('count(ALERTS{alertstate="firing", alertname!="Watchdog"})'))],
            thresholds=steps("green", (1, "red")),
            graph=False,
            span=3,
            links=to_availability,
        ),
        p.stat(
            "Model loaded",
            Doc(
                "Whether the model is loaded and passed its warm-up (lowest over instances).",
                "NOT LOADED: predictions answer 503 model_not_ready.",
                ("SentimentModelNotLoaded",),
            ),
            "none",
            [Q('min(sentiment_model_loaded{job="$job"})')],
            thresholds=steps("red", (1, "green")),
            mappings={"0": ("NOT LOADED", "red"), "1": ("LOADED", "green")},
            graph=False,
            span=3,
            links=to_model,
        ),
    ]
    model_row = [
        p.stat(
            "Mean confidence",
            Doc(
                "Mean probability of the top label over 5 minutes, all predictions.",
                f"Below {th.confidence_degraded:g} (info) or {th.confidence_low:g} (warning): "
                "the inputs no longer look like what the model knows (drift, spam, a new "
                "language) or the model changed.",
                ("SentimentLowConfidence", "SentimentConfidenceDegraded"),
            ),
            "percentunit",
            [Q('job:sentiment_prediction_confidence:mean5m{job="$job"}')],
            thresholds=confidence,
            span=3,
            links=to_model,
        ),
        p.stat(
            "Feedback agreement",
            Doc(
                "Share of the last day's user feedback that says the prediction was right, all "
                "replicas (n, the Wilson interval and per-class scores on the Drift & "
                "feedback dashboard).",
                f"Below the {th.accuracy_target:.0%} target; the alert fires only when the "
                "interval is below it too, with enough feedback.",
                ("SentimentLowFeedbackAccuracy",),
            ),
            "percentunit",
            [
                Q(
                    or_nan(
                        'job:sentiment_feedback_agreement:ratio1d{job="$job"}',
                        'job:sentiment_feedback:increase1d{job="$job"}',
                    )
                )
            ],
            thresholds=steps("orange", (th.accuracy_target, "green")),
            decimals=1,
            nan_text="no feedback",
            span=3,
            links=to_feedback,
        ),
        p.stat(
            "Predictions",
            Doc(
                "Texts classified per second over 5 minutes (a batch request counts each text).",
                "0 while requests arrive: every prediction fails (see the error ratios).",
            ),
            "suffix: texts/s",
            [Q('job:sentiment_predictions:rate5m{job="$job"}')],
            span=3,
            links=to_model,
        ),
        p.stat(
            "Queue depth",
            Doc(
                "Texts admitted and not yet answered (waiting or in inference), all instances.",
                "Steadily high or growing: the inference worker cannot keep up; when the queue "
                "is full, requests get 429.",
                ("SentimentHighLatencyP99",),
            ),
            "short",
            [Q('job:sentiment_queue_depth:sum{job="$job"}')],
            span=3,
            links=to_model,
        ),
        p.stat(
            "Host CPU",
            Doc(
                "Busiest host's CPU utilisation over 5 minutes (node-exporter).",
                f"Above {th.cpu:.0%} for minutes: latency rises; find the process using it.",
                ("HostHighCpuUsage",),
            ),
            "percentunit",
            [Q(f"max(instance:node_cpu_utilisation:rate5m{{{NODE}}})")],
            thresholds=steps("green", (th.cpu, "red")),
            span=2,
            links=to_server,
        ),
        p.stat(
            "Host memory",
            Doc(
                "Fullest host's memory in use (page cache that can be freed is not counted).",
                f"Above {th.memory:.0%}: the OOM killer may end the API.",
                ("HostHighMemoryUsage",),
            ),
            "percentunit",
            [Q(f"max(instance:node_memory_utilisation:ratio{{{NODE}}})")],
            thresholds=steps("green", (th.memory, "red")),
            span=2,
            links=to_server,
        ),
        p.stat(
            "Lowest disk free",
            Doc(
                "Free share of the fullest real filesystem (and of / always).",
                f"Below {th.disk_free:.0%}: logs and the TSDB will soon fail to write.",
                ("HostLowDiskSpace",),
            ),
            "percentunit",
            [Q(f"min({disk_free_ratio(th.disk_fstype_exclude, NODE)})")],
            thresholds=steps("red", (th.disk_free, "green")),
            span=2,
            links=to_server,
        ),
        p.stat(
            "API process memory",
            Doc(
                "Resident memory of the API process (sum over instances).",
                "Growing without bound: a leak; compare with the host's memory.",
            ),
            "bytes",
            [Q('sum(process_resident_memory_bytes{job="$job"})')],
            span=3,
            links=to_server,
        ),
        p.stat(
            "API process CPU",
            Doc(
                "CPU used by the API process, in cores (1 = one core busy), sum over instances.",
                "Pinned at the thread count while latency rises: CPU-bound; scale out.",
            ),
            "percentunit",
            [Q(rate("process_cpu_seconds_total"))],
            span=3,
            links=to_server,
        ),
    ]
    trends = [
        p.timeseries(
            "Requests by status",
            Doc(
                "HTTP requests per second by status code.",
                "5xx series growing; 4xx rising with a client release; the total dropping.",
                ("SentimentHighErrorRate", "SentimentHighClientErrorRate"),
            ),
            "reqps",
            [Q(rate("http_requests_total", by=("status",)), "{{status}}")],
            stack=common.StackingMode.NORMAL,
            links=to_api,
        ),
        p.timeseries(
            "Latency p95 and p99",
            Doc(
                "95th and 99th percentile of HTTP request duration (5-minute windows), with "
                "the alert lines.",
                f"p95 above {th.latency_p95 * 1000:g} ms or p99 above {th.latency_p99:g} s.",
                ("SentimentHighLatencyP95", "SentimentHighLatencyP99"),
            ),
            "s",
            [
                Q('job:http_request_duration_seconds:p95_rate5m{job="$job"}', "p95"),
                Q('job:http_request_duration_seconds:p99_rate5m{job="$job"}', "p99"),
            ],
            thresholds=steps("green", (th.latency_p95, "orange"), (th.latency_p99, "red")),
            links=to_api,
        ),
        p.timeseries(
            "Predictions by sentiment",
            Doc(
                "Texts classified per second, by predicted label (5-minute rates).",
                "One label taking over, or the mix shifting suddenly: input drift or a model "
                "problem.",
            ),
            "suffix: texts/s",
            [Q('job_sentiment:sentiment_predictions:rate5m{job="$job"}', "{{sentiment}}")],
            stack=common.StackingMode.NORMAL,
            links=to_model,
        ),
        p.timeseries(
            "Mean confidence over time",
            Doc(
                "Mean top-label probability over 5 minutes, with the alert lines.",
                f"Below {th.confidence_degraded:g}, worse below {th.confidence_low:g}.",
                ("SentimentLowConfidence", "SentimentConfidenceDegraded"),
            ),
            "percentunit",
            [Q('job:sentiment_prediction_confidence:mean5m{job="$job"}', "mean confidence")],
            thresholds=confidence,
            links=to_model,
        ),
    ]
    return assemble(
        OVERVIEW_UID,
        TITLE,
        "Is the sentiment API up, fast, correct and quiet? Each panel links to its details.",
        [
            Row("Service at a glance", glance),
            Row("Model and host at a glance", model_row),
            Row("Trends", trends),
        ],
        variables=[job_variable()],
        tags=["overview"],
    )
