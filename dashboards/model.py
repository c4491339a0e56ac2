"""Model: what the model says (labels, confidence), how it batches, and how fast it runs.

Series from sentimon.metrics.definitions; label children (sentiment, endpoint, error_type) are
created at start, so every panel has series before the first prediction.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards.alerts import Thresholds
from dashboards.common import API_UID, MODEL_UID, Doc, Row, assemble, drilldown, job_variable, steps
from dashboards.panels import Panels, Q
from dashboards.promql import mean, or_none, quantile, rate

TITLE = "sentimon / Model"
TEXTS_PER_S = "suffix: texts/s"
CONFIDENCE = "sentiment_prediction_confidence"


def build(th: Thresholds) -> model.Dashboard:
    p = Panels(th)
    # Texts at or below the warning line: the cumulative bucket at that boundary (one of
    # sentimon.metrics.definitions.CONFIDENCE_BUCKETS).
    low = rate(CONFIDENCE + "_bucket", f'le="{th.confidence_low:g}"')
    confidence = steps("red", (th.confidence_low, "orange"), (th.confidence_degraded, "green"))
    confidence_doc = Doc(
        "Mean probability of the top label over 5 minutes (the alerts' series).",
        f"Below {th.confidence_degraded:g} (info), below {th.confidence_low:g} (warning): "
        "unfamiliar inputs (drift, spam, another language) or a changed model.",
        ("SentimentLowConfidence", "SentimentConfidenceDegraded"),
    )
    predictions_row = [
        p.timeseries(
            "Predictions by sentiment",
            Doc(
                "Texts classified per second by predicted label (5-minute rates).",
                "A label vanishing or taking over: input drift or a broken model.",
            ),
            TEXTS_PER_S,
            [Q('job_sentiment:sentiment_predictions:rate5m{job="$job"}', "{{sentiment}}")],
            stack=common.StackingMode.NORMAL,
            span=9,
        ),
        p.timeseries(
            "Share by sentiment",
            Doc(
                "Share of each predicted label among all predictions (5-minute windows).",
                "A sudden shift in the mix without a known cause in the traffic.",
            ),
            "percentunit",
            [
                Q(
                    'job_sentiment:sentiment_predictions:rate5m{job="$job"} / ignoring (sentiment)'
                    ' group_left job:sentiment_predictions:rate5m{job="$job"}',
                    "{{sentiment}}",
                )
            ],
            stack=common.StackingMode.NORMAL,  # the shares already add up to 1
            min_value=0,
            max_value=1,
            span=9,
        ),
        p.piechart(
            "Label distribution",
            Doc(
                "Predicted labels over the dashboard's time range.",
                "Far from the usual mix of your traffic (compare with a past range).",
            ),
            "short",
            [
                Q(
                    rate(
                        "sentiment_predictions_total",
                        by=("sentiment",),
                        window="$__range",
                        func="increase",
                    ),
                    "{{sentiment}}",
                    instant=True,
                )
            ],
        ),
        p.timeseries(
            "Predictions by endpoint",
            Doc(
                "Texts classified per second per endpoint (/predict, /predict/batch, "
                "/analyze-sentiment/).",
                "An endpoint dropping to 0 while its requests continue: its requests fail.",
            ),
            TEXTS_PER_S,
            [Q(rate("sentiment_predictions_total", by=("endpoint",)), "{{endpoint}}")],
            stack=common.StackingMode.NORMAL,
            span=24,
            links=[drilldown("API (RED)", API_UID)],
        ),
    ]
    confidence_row = [
        p.heatmap(
            "Confidence distribution",
            Doc(
                "Predictions per confidence bucket per interval (top-label probability, from "
                "1/3 = a uniform guess to 1), all labels.",
                f"Mass moving below {th.confidence_degraded:g} and {th.confidence_low:g}.",
                ("SentimentLowConfidence", "SentimentConfidenceDegraded"),
            ),
            "short",
            Q(rate(CONFIDENCE + "_bucket", by=("le",), func="increase"), "{{le}}", heatmap=True),
            y_unit="percentunit",
            span=12,
        ),
        p.gauge(
            "Mean confidence",
            confidence_doc,
            "percentunit",
            [Q('job:sentiment_prediction_confidence:mean5m{job="$job"}', "all")],
            thresholds=confidence,
            min_value=0.3334,
            max_value=1,
        ),
        p.gauge(
            "Mean confidence by sentiment",
            Doc(
                "Mean top-label probability per predicted label over 5 minutes.",
                f"One label below {th.confidence_low:g}: the model hesitates on that class.",
                ("SentimentLowConfidence", "SentimentConfidenceDegraded"),
            ),
            "percentunit",
            [
                Q(
                    'job_sentiment:sentiment_prediction_confidence:mean5m{job="$job"}',
                    "{{sentiment}}",
                )
            ],
            thresholds=confidence,
            min_value=0.3334,
            max_value=1,
            span=8,
        ),
        p.timeseries(
            "Mean confidence over time",
            confidence_doc,
            "percentunit",
            [
                Q('job:sentiment_prediction_confidence:mean5m{job="$job"}', "all"),
                Q(
                    'job_sentiment:sentiment_prediction_confidence:mean5m{job="$job"}',
                    "{{sentiment}}",
                ),
            ],
            thresholds=confidence,
            span=12,
        ),
        p.timeseries(
            "Low-confidence share",
            Doc(
                f"Share of predictions whose confidence is at most {th.confidence_low:g} "
                "(cumulative bucket le=0.6 over the count).",
                "Rising: more inputs the model cannot decide on.",
                ("SentimentLowConfidence",),
            ),
            "percentunit",
            [Q(f"{low} / {rate(CONFIDENCE + '_count')}", f"confidence <= {th.confidence_low:g}")],
            min_value=0,
            span=12,
        ),
    ]
    batching_row = [
        _percentiles(
            p,
            "Batch size",
            "sentiment_batch_size",
            Doc(
                "Texts per model call: p50 and p95, and the 5-minute mean.",
                "Always 1 under load: batching does not help (check the batch wait setting); "
                "pinned at the maximum: the worker is saturated.",
            ),
            "short",
            extra=Q('job:sentiment_batch_size:mean5m{job="$job"}', "mean"),
            span=6,
        ),
        _percentiles(
            p,
            "Tokens per batch",
            "sentiment_batch_tokens",
            Doc(
                "Tokens per model call, padding included: p50 and p95.",
                "Near the token budget all the time: long inputs dominate the cost.",
            ),
            "short",
            span=6,
        ),
        _percentiles(
            p,
            "Padding ratio",
            "sentiment_padding_ratio",
            Doc(
                "Padded tokens over real tokens per model call (1 = no padding): p50, p95, mean.",
                "Above 2: texts of very different lengths share batches; compute is wasted.",
            ),
            "none",
            extra=Q(mean("sentiment_padding_ratio"), "mean"),
            span=6,
        ),
        _percentiles(
            p,
            "Input tokens per text",
            "sentiment_input_tokens",
            Doc(
                "Tokens per text as the model saw it (after truncation): p50, p95, mean.",
                "p95 at the model's maximum: inputs are truncated; a jump: different traffic.",
            ),
            "short",
            extra=Q(mean("sentiment_input_tokens"), "mean"),
            span=6,
        ),
    ]
    latency_row = [
        p.timeseries(
            "Stage latency p95",
            Doc(
                "95th percentile per stage: queue wait (before a batch starts), tokenization "
                "and inference (one model call).",
                "Queue wait dominating: saturated worker; inference growing: longer inputs, "
                "a slower backend or CPU contention.",
                ("SentimentHighLatencyP95",),
            ),
            "s",
            [
                Q('job:sentiment_queue_wait_seconds:p95_rate5m{job="$job"}', "queue wait"),
                Q(quantile(0.95, "sentiment_tokenization_seconds"), "tokenization"),
                Q('job:sentiment_inference_seconds:p95_rate5m{job="$job"}', "inference"),
            ],
            span=8,
        ),
        _percentiles(
            p,
            "Inference latency",
            "sentiment_inference_seconds",
            Doc(
                "Duration of one model call (forward pass): p50, p95, p99.",
                "Rising at constant batch size: CPU contention or a slower backend.",
                ("SentimentHighLatencyP95", "SentimentHighLatencyP99"),
            ),
            "s",
            quantiles=(0.5, 0.95, 0.99),
        ),
        _percentiles(
            p,
            "Queue wait",
            "sentiment_queue_wait_seconds",
            Doc(
                "Time a text waited before its batch started: p50, p95, p99.",
                "Growing: more work arrives than the worker can do.",
                ("SentimentHighLatencyP95", "SentimentHighLatencyP99"),
            ),
            "s",
            quantiles=(0.5, 0.95, 0.99),
        ),
        p.timeseries(
            "Prediction duration p95 by endpoint",
            Doc(
                "Validated input to result, queueing included, per endpoint (5-minute p95).",
                f"Above {th.latency_p95 * 1000:g} ms: most of the HTTP latency is the model's.",
                ("SentimentHighLatencyP95",),
            ),
            "s",
            [
                Q(
                    'job_endpoint:sentiment_prediction_duration_seconds:p95_rate5m{job="$job"}',
                    "{{endpoint}}",
                )
            ],
            span=8,
        ),
        p.timeseries(
            "Tokenization latency",
            Doc(
                "Time to tokenize one batch: p50, p95.",
                "Comparable to inference: tokenizer misconfigured (slow tokenizer).",
            ),
            "s",
            [
                Q(quantile(q, "sentiment_tokenization_seconds"), f"p{round(q * 100)}")
                for q in (0.5, 0.95)
            ],
            span=8,
        ),
        p.timeseries(
            "Queue depth",
            Doc(
                "Texts admitted and not yet answered, all instances.",
                "Growing or flat at the queue limit: requests get 429 overloaded.",
                ("SentimentHighLatencyP99", "SentimentHighClientErrorRate"),
            ),
            "short",
            [Q('job:sentiment_queue_depth:sum{job="$job"}', "queue depth")],
            span=8,
        ),
    ]
    errors_row = [
        p.timeseries(
            "Errors by type",
            Doc(
                "Error responses per second by error_type, 5-minute rates (types at 0 hidden).",
                "inference_failed or internal_error: bugs or bad model output; timeout: the "
                "worker is too slow; model_not_ready: no model.",
                ("SentimentHighErrorRate", "SentimentModelNotLoaded"),
            ),
            "reqps",
            [
                Q(
                    or_none('job_error_type:sentiment_errors:rate5m{job="$job"} > 0', "error_type"),
                    "{{error_type}}",
                )
            ],
            span=12,
        ),
        p.table(
            "Model info",
            Doc(
                "The model each instance serves: name, revision, backend, and for int8 the "
                "recipe and the CPU's int8 kernel (sentiment_model_info).",
                "Not the model you deployed, or instances disagreeing on the model or the "
                "recipe. The int8 kernel may differ between instances (CPUs with and without "
                "VNNI): recipe 5 computes the same results on both, only slower without.",
            ),
            "none",
            [Q('sentiment_model_info{job="$job"}', instant=True, table=True)],
            span=8,
        ),
        p.stat(
            "Model loaded",
            Doc(
                "Whether the model is loaded and warmed up, per instance (lowest shown).",
                "NOT LOADED: predictions answer 503.",
                ("SentimentModelNotLoaded",),
            ),
            "none",
            [Q('min(sentiment_model_loaded{job="$job"})')],
            thresholds=steps("red", (1, "green")),
            mappings={"0": ("NOT LOADED", "red"), "1": ("LOADED", "green")},
            graph=False,
            height=8,
        ),
    ]
    return assemble(
        MODEL_UID,
        TITLE,
        "What the model predicts and how sure it is, how it batches, and where time goes.",
        [
            Row("Predictions", predictions_row),
            Row("Confidence", confidence_row),
            Row("Batching and tokens", batching_row),
            Row("Latency and queue", latency_row),
            Row("Errors and model", errors_row),
        ],
        variables=[job_variable()],
        tags=["model"],
    )


def _percentiles(
    p: Panels,
    title: str,
    histogram: str,
    doc: Doc,
    unit: str,
    quantiles: tuple[float, ...] = (0.5, 0.95),
    extra: Q | None = None,
    span: int = 8,
) -> timeseries.Panel:
    """A histogram's percentiles over time (and one extra series, e.g. the mean)."""
    queries = [Q(quantile(q, histogram), f"p{round(q * 100)}") for q in quantiles]
    return p.timeseries(title, doc, unit, [*queries, *([extra] if extra else [])], span=span)
