import random
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
    SummaryMetricFamily,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector

from sentimon.metrics.definitions import build_metrics
from sentimon.metrics.exposition import Exposition


class EveryKind(Collector):
    """One family of every type the text format knows, with label values that need escaping,
    timestamps, values that Go writes with an exponent, and the samples generate_latest moves
    into gauges of their own (`_created`, `_gsum`, `_gcount`)."""

    def __init__(self) -> None:
        self.value = 1.0

    def collect(self) -> Iterator[Metric]:
        counter = CounterMetricFamily(
            "jobs", "Jobs done.\nSecond line with a \\ backslash.", labels=["queue"]
        )
        counter.add_metric(['a "quoted"\nnew\\line'], self.value, created=1_700_000_000.5)
        counter.add_metric(["b"], 0.0, timestamp=1_700_000_001.25)
        yield counter
        gauge = GaugeMetricFamily("temperature", "Degrees.", labels=["room", "floor"])
        gauge.add_metric(["kitchen", "1"], -0.0)
        gauge.add_metric(["attic", "3"], 123_456_789.0)
        gauge.add_metric(["cellar", "0"], float("nan"))
        gauge.add_metric(["oven", "1"], float("inf"))
        gauge.add_metric(["freezer", "1"], float("-inf"))
        gauge.add_metric(["lab", "2"], 1e-9)
        yield gauge
        yield GaugeMetricFamily("plain", "No labels.", value=12.5)
        histogram = HistogramMetricFamily("size", "Sizes.", labels=["kind"])
        histogram.add_metric(["x"], [("0.5", 1.0), ("1.0", 3.0), ("+Inf", 4.0)], 2.5)
        yield histogram
        summary = SummaryMetricFamily("wait", "Waits.", count_value=3, sum_value=1.5)
        yield summary
        gauge_histogram = GaugeHistogramMetricFamily(
            "queue_age", "Ages.", buckets=[("1.0", 2.0), ("+Inf", 5.0)], gsum_value=7.0
        )
        yield gauge_histogram
        yield InfoMetricFamily("build", "Build.", value={"version": "1.2", "commit": "abc"})
        yield StateSetMetricFamily("mode", "Mode.", value={"fast": True, "slow": False})
        yield UnknownMetricFamily("mystery", "Unknown.", value=self.value)


def test_renders_what_generate_latest_renders_for_every_kind() -> None:
    registry = CollectorRegistry()
    registry.register(EveryKind())
    assert Exposition(registry).render() == generate_latest(registry)


def test_renders_the_service_metrics_as_generate_latest(registry: CollectorRegistry) -> None:
    metrics = build_metrics(registry, process_collectors=False)
    metrics.predictions.labels(sentiment="positive", endpoint="/predict").inc(3)
    metrics.prediction_duration.labels(endpoint="/predict").observe(0.042)
    metrics.http.observe("POST", "/predict", 200, 0.01, 120, 90)
    assert Exposition(registry).render() == generate_latest(registry)


def test_each_scrape_has_the_values_of_its_time_and_series_new_since() -> None:
    registry = CollectorRegistry()
    every = EveryKind()
    registry.register(every)
    jobs = Counter("steps", "Steps.", ["phase"], registry=registry)
    exposition = Exposition(registry)
    exposition.render()
    every.value = 41.0
    jobs.labels(phase="late").inc()
    rendered = exposition.render()
    assert rendered == generate_latest(registry)
    assert b"mystery 41.0\n" in rendered
    assert b'steps_total{phase="late"} 1.0\n' in rendered


def test_names_outside_the_legacy_set_are_left_to_generate_latest() -> None:
    class Dotted(Collector):
        def collect(self) -> Iterator[Metric]:
            gauge = GaugeMetricFamily("my.gauge", "Dotted.", labels=["the.label"])
            gauge.add_metric(["v"], 1.0)
            yield gauge

    registry = CollectorRegistry()
    registry.register(Dotted())
    exposition = Exposition(registry)
    for _ in range(2):
        rendered = exposition.render()
        assert rendered == generate_latest(registry)
        assert b'my_gauge{the_label="v"} 1.0\n' in rendered


def test_the_cache_is_emptied_past_its_bound() -> None:
    class Churning(Collector):
        """Thirty new series every scrape, none of them seen again."""

        def __init__(self) -> None:
            self.scrape = 0

        def collect(self) -> Iterator[Metric]:
            self.scrape += 1
            gauge = GaugeMetricFamily("sessions", "Sessions.", labels=["id"])
            for n in range(30):
                gauge.add_metric([f"{self.scrape}-{n}"], 1.0)
            yield gauge

    registry = CollectorRegistry()
    registry.register(Churning())
    exposition = Exposition(registry, max_entries=50)
    for scrape in range(1, 11):
        rendered = exposition.render()
        assert rendered.count(b"\nsessions{") == 30
        assert f'sessions{{id="{scrape}-29"}} 1.0\n'.encode() in rendered
        assert exposition.cached <= 50 + 30 + 1


def test_numbers_are_written_as_generate_latest_writes_them() -> None:
    rng = random.Random(0)
    values = [0.0, -0.0, 1.0, -1.0, 0.1, 999_999.0, 1_000_000.0, 1_234_567.5, 12_345_678.0]
    values += [1e15, 1e16, 1e21, 1.5e300, -1e7, 1e-5, 5e-324, float("inf"), float("nan")]
    values += [rng.uniform(-1e9, 1e9) for _ in range(200)]
    values += [10 ** rng.uniform(-12, 25) for _ in range(200)]
    registry = CollectorRegistry()
    gauge = Gauge("value", "Values.", ["n"], registry=registry)
    for n, value in enumerate(values):
        gauge.labels(n=str(n)).set(value)
    assert Exposition(registry).render() == generate_latest(registry)
