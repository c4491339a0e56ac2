"""Every `sentiment_*` metric, built on a registry passed in (a fresh one per app and test)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from sentimon.metrics.http import HttpMetrics, build_http_metrics
from sentimon.metrics.store import StoreMetrics, build_store_metrics
from sentimon.model.base import ModelInfo

# The prediction endpoints, the only values of the `endpoint` label of prediction metrics.
ENDPOINTS = ("/analyze-sentiment/", "/predict", "/predict/batch")
# `endpoint` of errors: those, feedback (POST and GET), and "other" for any other path.
FEEDBACK_ENDPOINT = "/feedback"
OTHER_ENDPOINT = "other"
ERROR_ENDPOINTS = (*ENDPOINTS, FEEDBACK_ENDPOINT, OTHER_ENDPOINT)

# `int8_recipe` and `int8_kernel` of `sentiment_model_info` when the backend is not int8.
NOT_INT8 = "none"

# Why the server closed a connection itself (see api/connections.py).
CONNECTION_CLOSE_REASONS = (
    "idle_timeout",
    "header_timeout",
    "body_timeout",
    "headers_too_large",
    "too_many_connections",
    "evicted_idle",
    "shutting_down",
)

# Closed set of `error_type` values (see errors.py and api/errors.py).
ERROR_TYPES = (
    "invalid_json",
    "invalid_body",
    "unsupported_media_type",
    "body_too_large",
    "missing_field",
    "invalid_type",
    "invalid_input",
    "empty_text",
    "text_too_long",
    "empty_batch",
    "batch_too_large",
    "not_found",
    "method_not_allowed",
    "overloaded",
    "model_not_ready",
    "timeout",
    "inference_failed",
    "internal_error",
    "unknown_request_id",
    "prediction_expired",
    "feedback_conflict",
    "invalid_feedback",
    "store_unavailable",
    "store_disabled",
)

# Request latency: boundaries at the 200 ms and 300 ms SLO thresholds and the 1 s p99 alert.
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
# Stage latency (queue wait, inference): finer at the low end.
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0)
# Top-label probability: from 1/3 (a uniform 3-way guess) to 1, with 0.6/0.7 at the alert lines.
CONFIDENCE_BUCKETS = (0.3334, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
BATCH_TOKEN_BUCKETS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
PADDING_BUCKETS = (1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0)
TOKEN_BUCKETS = (4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    predictions: Counter
    prediction_duration: Histogram
    confidence: Histogram
    batch_size: Histogram
    input_tokens: Histogram
    queue_depth: Gauge
    queue_wait: Histogram
    inference: Histogram
    tokenization: Histogram
    batch_tokens: Histogram
    padding_ratio: Histogram
    model_loaded: Gauge
    model_info: Gauge
    errors: Counter
    http: HttpMetrics
    http_connections: Gauge
    http_connections_closed: Counter
    store: StoreMetrics | None
    """The prediction log's and feedback's metrics; None (not exported) with the store off."""

    def init_model_series(self, info: ModelInfo) -> None:
        """Create every child that depends on the model, so series exist before traffic."""
        for label in info.labels:
            self.confidence.labels(sentiment=label)
            for endpoint in ENDPOINTS:
                self.predictions.labels(sentiment=label, endpoint=endpoint)
        if self.store is not None:
            self.store.init_label_series(info.labels)
        self.model_info.clear()
        self.model_info.labels(
            model=info.name,
            revision=info.revision,
            backend=info.backend,
            int8_recipe=info.int8.recipe if info.int8 else NOT_INT8,
            int8_kernel=info.int8.kernel if info.int8 else NOT_INT8,
        ).set(1)


def build_metrics(
    registry: CollectorRegistry | None = None, process_collectors: bool = True, store: bool = True
) -> Metrics:
    """Register the service's metrics (and, by default, process/platform/GC collectors); the
    store's only with `store`, so a service without one exports no misleading zeros."""
    registry = registry if registry is not None else CollectorRegistry()
    if process_collectors:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    m = Metrics(
        registry=registry,
        predictions=Counter(
            "sentiment_predictions_total",
            "Texts classified, by top label.",
            ["sentiment", "endpoint"],
            registry=registry,
        ),
        prediction_duration=Histogram(
            "sentiment_prediction_duration_seconds",
            "Time from a request's validated input to its result, queueing included.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        confidence=Histogram(
            "sentiment_prediction_confidence",
            "Probability of the top label, per text.",
            ["sentiment"],
            buckets=CONFIDENCE_BUCKETS,
            registry=registry,
        ),
        batch_size=Histogram(
            "sentiment_batch_size",
            "Texts per model call.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        ),
        input_tokens=Histogram(
            "sentiment_input_tokens",
            "Tokens per text as the model saw it (after truncation).",
            buckets=TOKEN_BUCKETS,
            registry=registry,
        ),
        queue_depth=Gauge(
            "sentiment_queue_depth",
            "Texts admitted and not yet answered (waiting or in inference).",
            registry=registry,
        ),
        queue_wait=Histogram(
            "sentiment_queue_wait_seconds",
            "Time a text waited in the queue before its batch started.",
            buckets=STAGE_BUCKETS,
            registry=registry,
        ),
        inference=Histogram(
            "sentiment_inference_seconds",
            "Time of one model call (the forward pass).",
            buckets=STAGE_BUCKETS,
            registry=registry,
        ),
        tokenization=Histogram(
            "sentiment_tokenization_seconds",
            "Time to tokenize one batch of texts.",
            buckets=STAGE_BUCKETS,
            registry=registry,
        ),
        batch_tokens=Histogram(
            "sentiment_batch_tokens",
            "Tokens per model call, padding included (packed: rows times their width).",
            buckets=BATCH_TOKEN_BUCKETS,
            registry=registry,
        ),
        padding_ratio=Histogram(
            "sentiment_padding_ratio",
            "Padded tokens over real tokens, per model call (1 means no padding).",
            buckets=PADDING_BUCKETS,
            registry=registry,
        ),
        model_loaded=Gauge(
            "sentiment_model_loaded",
            "1 when the model is loaded and its warm-up passed, else 0.",
            registry=registry,
        ),
        model_info=Gauge(
            "sentiment_model_info",
            "The model being served (value is always 1); for int8, the recipe and this CPU's "
            "int8 kernel.",
            ["model", "revision", "backend", "int8_recipe", "int8_kernel"],
            registry=registry,
        ),
        errors=Counter(
            "sentiment_errors_total",
            "Requests answered with an error.",
            ["error_type", "endpoint"],
            registry=registry,
        ),
        http=build_http_metrics(registry, LATENCY_BUCKETS),
        http_connections=Gauge(
            "sentiment_http_connections",
            "Open HTTP connections.",
            registry=registry,
        ),
        http_connections_closed=Counter(
            "sentiment_http_connections_closed",
            "Connections the server closed itself: idle, too slow, headers too large, or over "
            "the connection limit.",
            ["reason"],
            registry=registry,
        ),
        store=build_store_metrics(registry) if store else None,
    )
    for reason in CONNECTION_CLOSE_REASONS:
        m.http_connections_closed.labels(reason=reason)
    for error_type in ERROR_TYPES:
        for endpoint in ERROR_ENDPOINTS:
            m.errors.labels(error_type=error_type, endpoint=endpoint)
    for endpoint in ENDPOINTS:
        m.prediction_duration.labels(endpoint=endpoint)
    return m


def endpoint_label(path: str) -> str:
    """The bounded `endpoint` label of a request path."""
    if path in ENDPOINTS:
        return path
    if path == FEEDBACK_ENDPOINT or path.startswith(FEEDBACK_ENDPOINT + "/"):
        return FEEDBACK_ENDPOINT
    return OTHER_ENDPOINT
