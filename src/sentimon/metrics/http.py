"""The HTTP metrics, recorded by the service's own middleware (`api.middleware`).

The series are the ones prometheus-fastapi-instrumentator's defaults export, with the same
names, types, labels and buckets, so the dashboards and rules that read them are unchanged:
`http_requests_total{method,status,handler}`, `http_request_size_bytes{handler}` and
`http_response_size_bytes{handler}` (summaries of the Content-Length headers, 0 without one),
`http_request_duration_highr_seconds` (no labels, many buckets) and
`http_request_duration_seconds{method,handler}`, plus the in-progress gauge. The library
matched every request against every route a second time and built a request, a response and
an info object for it, about 70 µs a request (`bench/overhead.py`): most of what the whole
middleware stack cost.

`handler` is the route's path template (`/feedback/{request_id}`), or "none" for a path no
route has; scrapes of /metrics are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

UNMATCHED = "none"
"""`handler` of a request no route has."""
EXCLUDED_HANDLERS = frozenset({"/metrics"})

HIGHR_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5, 10,
    30, 60,
)  # fmt: skip
"""`http_request_duration_highr_seconds`'s buckets: the instrumentator's defaults."""


@dataclass(frozen=True, slots=True)
class _Children:
    requests: Counter
    request_size: Summary
    response_size: Summary
    duration: Histogram


@dataclass(frozen=True)
class HttpMetrics:
    requests: Counter
    request_size: Summary
    response_size: Summary
    duration_highr: Histogram
    duration: Histogram
    inprogress: Gauge
    _children: dict[tuple[str, str, int], _Children] = field(default_factory=dict, repr=False)
    """Label children by (method, handler, status): looked up once, not four times a request.
    Bounded: handlers are the routes and "none", methods the parser's, statuses HTTP's."""

    def observe(
        self,
        method: str,
        handler: str,
        status: int,
        seconds: float,
        request_bytes: int,
        response_bytes: int,
    ) -> None:
        if handler in EXCLUDED_HANDLERS:
            return
        children = self._children.get((method, handler, status))
        if children is None:
            children = _Children(
                self.requests.labels(method=method, status=str(status), handler=handler),
                self.request_size.labels(handler=handler),
                self.response_size.labels(handler=handler),
                self.duration.labels(method=method, handler=handler),
            )
            self._children[(method, handler, status)] = children
        children.requests.inc()
        children.request_size.observe(request_bytes)
        children.response_size.observe(response_bytes)
        children.duration.observe(seconds)
        self.duration_highr.observe(seconds)


def build_http_metrics(registry: CollectorRegistry, buckets: tuple[float, ...]) -> HttpMetrics:
    """`buckets`: `http_request_duration_seconds`'s (the service's latency buckets)."""
    return HttpMetrics(
        requests=Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ["method", "status", "handler"],
            registry=registry,
        ),
        request_size=Summary(
            "http_request_size_bytes",
            "Content length of incoming requests by handler (the header's value; 0 without one).",
            ["handler"],
            registry=registry,
        ),
        response_size=Summary(
            "http_response_size_bytes",
            "Content length of outgoing responses by handler (the header's value; 0 without one).",
            ["handler"],
            registry=registry,
        ),
        duration_highr=Histogram(
            "http_request_duration_highr_seconds",
            "Latency with many buckets but no API specific labels.",
            buckets=HIGHR_BUCKETS,
            registry=registry,
        ),
        duration=Histogram(
            "http_request_duration_seconds",
            "Latency by handler and method.",
            ["method", "handler"],
            buckets=buckets,
            registry=registry,
        ),
        inprogress=Gauge(
            "http_requests_inprogress",
            "HTTP requests being served.",
            ["method", "handler"],
            registry=registry,
        ),
    )
